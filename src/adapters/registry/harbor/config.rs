//! Harbor adapter settings (the `[registry.harbor]` table when wired into the server config).

use serde::Deserialize;

use super::paging::MAX_PAGE_SIZE;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HarborSettings {
    /// Items asked for per Harbor page when the caller does not say; capped at Harbor's 100.
    pub page_size: u32,
    /// Harbor's robot account name prefix (`ROBOT_NAME_PREFIX`), `robot$` unless an operator
    /// changed it. Usernames starting with it log in as robots.
    pub robot_name_prefix: String,
    /// Longest lifetime given to a robot account issued for pulling, in days.
    pub max_robot_days: u32,
}

impl Default for HarborSettings {
    fn default() -> Self {
        HarborSettings {
            page_size: MAX_PAGE_SIZE,
            robot_name_prefix: "robot$".into(),
            max_robot_days: 365,
        }
    }
}

impl HarborSettings {
    /// The Harbor page size for a caller's `size` (0: the default), 1..=100.
    pub fn page_size_for(&self, size: u32) -> u32 {
        let size = if size == 0 { self.page_size } else { size };
        size.clamp(1, MAX_PAGE_SIZE)
    }
}

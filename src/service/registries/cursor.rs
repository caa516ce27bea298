//! Flotilla's page token around an adapter's cursor: the cursor (Harbor page number, OCI
//! `last`, ACR `NextToken`, …) travels inside our token with a fingerprint of the query it
//! belongs to, so a token from another registry, repository or list is refused instead of
//! paging something else.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::adapters::registry::PageRequest;
use crate::service::{Error, Result, paging::Page};

/// A validated page request for an adapter list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorPage {
    pub request: PageRequest,
    fingerprint: u64,
}

const PREFIX: &str = "r1.";

impl CursorPage {
    /// `page_size` as every list takes it (0 → 50, above 1000 → 1000, negative → error);
    /// `page_token` must come from the same `query_key`.
    pub fn parse(page_size: i32, page_token: &str, query_key: &str) -> Result<CursorPage> {
        let size = Page::parse(page_size, "", query_key)?.size;
        let fingerprint = fnv1a(query_key.as_bytes());
        let cursor = if page_token.is_empty() {
            None
        } else {
            let bad = || {
                Error::invalid(
                    "page_token",
                    "is not a token this server issued for this list; pass next_page_token \
                     unchanged with the same registry and arguments, or leave it empty for \
                     the first page",
                )
            };
            let raw = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (hash, cursor) = text
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split_once('.'))
                .ok_or_else(bad)?;
            if u64::from_str_radix(hash, 16).ok() != Some(fingerprint) || cursor.is_empty() {
                return Err(bad());
            }
            Some(cursor.to_string())
        };
        Ok(CursorPage {
            request: PageRequest {
                size: size as u32,
                cursor,
            },
            fingerprint,
        })
    }

    /// Our token for the adapter's next cursor ("" on the last page).
    pub fn next_token(&self, next: Option<&str>) -> String {
        match next.filter(|c| !c.is_empty()) {
            Some(cursor) => {
                URL_SAFE_NO_PAD.encode(format!("{PREFIX}{:016x}.{cursor}", self.fingerprint))
            }
            None => String::new(),
        }
    }
}

/// FNV-1a, as the other page tokens use: stable across builds.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_cursors_per_query() {
        let first = CursorPage::parse(0, "", "tags|r|app").unwrap();
        assert_eq!(first.request.size, 50);
        assert_eq!(first.request.cursor, None);
        let token = first.next_token(Some("page=3.x"));
        let second = CursorPage::parse(7, &token, "tags|r|app").unwrap();
        assert_eq!(second.request.cursor.as_deref(), Some("page=3.x"));
        assert_eq!(second.request.size, 7);
        assert!(CursorPage::parse(0, &token, "tags|r|other").is_err());
        assert!(CursorPage::parse(0, "junk!", "tags|r|app").is_err());
        assert!(CursorPage::parse(-1, "", "q").is_err());
        assert_eq!(CursorPage::parse(5000, "", "q").unwrap().request.size, 1000);
        assert_eq!(first.next_token(None), "");
        assert_eq!(first.next_token(Some("")), "");
    }
}

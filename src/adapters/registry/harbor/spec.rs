//! Harbor's naming rules, checked before any call so that a bad name is refused with the rule
//! instead of travelling to Harbor (and a name that would escape its path segment never does).
//!
//! - Project names: 1–255 characters, lowercase letters and digits in groups joined by a single
//!   `.`, `_` or `-` (`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`; Harbor's `restrictedNameChars` with
//!   `projectNameMinLen`/`projectNameMaxLen`, and `ProjectReq.project_name` `maxLength: 255`
//!   in the v2.0 swagger). Robot names follow the same rule.
//! - Repository names: `<project>/<path>`; every path component follows the OCI distribution
//!   `<name>` grammar (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`), 255 characters in all.
//! - References: a tag (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) or a digest (`algorithm:hex`).

/// Longest project (and robot) name Harbor accepts.
pub const MAX_PROJECT_NAME: usize = 255;
/// Longest repository name, project included (distribution's `NameTotalLengthMax`).
pub const MAX_REPOSITORY_NAME: usize = 255;
/// Longest tag.
pub const MAX_TAG: usize = 128;

const PROJECT_RULE: &str = "1 to 255 lowercase letters and digits, in groups joined by a single '.', '_' or '-' (no leading, trailing or repeated separators)";

/// A project (namespace) name Harbor accepts.
pub fn check_project_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_PROJECT_NAME || !is_separated_groups(name) {
        return Err(format!(
            "Harbor project name {name:?} is not allowed: {PROJECT_RULE}"
        ));
    }
    Ok(())
}

/// A robot account name (the part after `robot$`), same rule as a project name.
pub fn check_robot_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_PROJECT_NAME || !is_separated_groups(name) {
        return Err(format!(
            "Harbor robot account name {name:?} is not allowed: {PROJECT_RULE}"
        ));
    }
    Ok(())
}

/// `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`.
fn is_separated_groups(name: &str) -> bool {
    let mut previous_separator = true;
    for c in name.chars() {
        match c {
            'a'..='z' | '0'..='9' => previous_separator = false,
            '.' | '_' | '-' if !previous_separator => previous_separator = true,
            _ => return false,
        }
    }
    !previous_separator
}

/// A repository name split into its project and the rest: `team/app/web` is
/// (`team`, `app/web`). Harbor's repository APIs take both apart.
pub fn split_repository(name: &str) -> Result<(&str, &str), String> {
    let rule = "a Harbor repository name is '<project>/<path>': lowercase letters and digits, components joined by '.', '_', '__' or dashes, separated by '/', 255 characters at most";
    let Some((project, rest)) = name.split_once('/') else {
        return Err(format!("repository {name:?} has no project: {rule}"));
    };
    if name.len() > MAX_REPOSITORY_NAME {
        return Err(format!("repository {name:?} is too long: {rule}"));
    }
    check_project_name(project)?;
    if !rest.split('/').all(is_oci_component) {
        return Err(format!("repository {name:?} is not allowed: {rule}"));
    }
    Ok((project, rest))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_oci_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let run = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && alnum(bytes[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return false;
    }
    while i < bytes.len() {
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
        if !run(&mut i) {
            return false;
        }
    }
    true
}

pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok || tag.len() > MAX_TAG {
        return Err(format!(
            "tag {tag:?} is not allowed: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
        ));
    }
    Ok(())
}

pub fn check_digest(digest: &str) -> Result<(), String> {
    let valid = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '_' | '-')
            })
            && hex.len() >= 32
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    });
    if !valid {
        return Err(format!(
            "digest {digest:?} is not allowed: '<algorithm>:<lowercase hex>', such as sha256:<64 hex digits>"
        ));
    }
    Ok(())
}

/// A tag or a digest.
pub fn check_reference(reference: &str) -> Result<(), String> {
    if reference.contains(':') {
        check_digest(reference)
    } else {
        check_tag(reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        for good in [
            "a",
            "library",
            "team-a",
            "team.a_b-c",
            "1abc",
            "0",
            &"a".repeat(255),
        ] {
            assert!(check_project_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Team",
            "-team",
            "team-",
            "team--a",
            "a..b",
            "a/b",
            "a b",
            "tèam",
            "a%2Fb",
            &"a".repeat(256),
        ] {
            let err = check_project_name(bad).unwrap_err();
            assert!(err.contains("lowercase"), "{bad}: {err}");
        }
    }

    #[test]
    fn repository_names() {
        assert_eq!(split_repository("team/app").unwrap(), ("team", "app"));
        assert_eq!(
            split_repository("team/app/web").unwrap(),
            ("team", "app/web")
        );
        assert_eq!(
            split_repository("team/a__b/c--d.e").unwrap(),
            ("team", "a__b/c--d.e")
        );
        for bad in [
            "app",
            "team/",
            "team//app",
            "Team/app",
            "team/App",
            "team/app/",
            "team/a___b",
            "team/-a",
            "team/a?b",
            "team/a%2Fb",
            "../etc/passwd",
        ] {
            assert!(split_repository(bad).is_err(), "{bad}");
        }
        let long = format!("team/{}", "a".repeat(251));
        assert!(split_repository(&long).is_err());
    }

    #[test]
    fn references() {
        assert!(check_reference("v1.2.3").is_ok());
        assert!(check_reference("_latest").is_ok());
        assert!(check_reference(&format!("sha256:{}", "a".repeat(64))).is_ok());
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "sha256:XYZ",
            "sha256:",
            ":abc",
            &"t".repeat(129),
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn robot_names() {
        assert!(check_robot_name("flotilla-ps-1").is_ok());
        assert!(check_robot_name("robot$x").is_err());
        assert!(check_robot_name("").is_err());
    }
}

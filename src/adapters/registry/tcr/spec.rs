//! TCR's rules for registry definitions and names (vendor-apis.md §3.1), checked before any
//! call: namespaces 2–30 characters, repositories 3–244 (the doc's `2 < len < 245`), both of
//! lowercase letters, digits and `. _ -`, no separator first, last or doubled. The Personal
//! Edition's rules are not in our notes; the Enterprise ones are applied to it too
//! (UNCONFIRMED).

use super::config::Edition;
use crate::adapters::registry::{RegistryTarget, TargetViolation};

pub const NAMESPACE_LEN: (usize, usize) = (2, 30);
pub const REPOSITORY_LEN: (usize, usize) = (3, 244);

fn check_separated(what: &str, name: &str, (min, max): (usize, usize)) -> Result<(), String> {
    let separator = |c: char| matches!(c, '_' | '-' | '.');
    let ok = (min..=max).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || separator(c))
        && !name.starts_with(separator)
        && !name.ends_with(separator)
        && !name
            .as_bytes()
            .windows(2)
            .any(|w| separator(w[0] as char) && separator(w[1] as char));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} must be {min}-{max} characters of lowercase letters, digits and `. _ -`, \
             with no separator first, last or twice in a row; got {name:?}"
        ))
    }
}

pub fn check_namespace_name(name: &str) -> Result<(), String> {
    check_separated("a TCR namespace name", name, NAMESPACE_LEN)
}

/// `namespace/repository`, split after checking both halves.
pub fn split_repository(full: &str) -> Result<(&str, &str), String> {
    let Some((namespace, repository)) = full.split_once('/') else {
        return Err(format!(
            "a TCR repository is named `namespace/repository`; got {full:?}"
        ));
    };
    check_namespace_name(namespace)?;
    check_separated("a TCR repository name", repository, REPOSITORY_LEN)?;
    Ok((namespace, repository))
}

/// A tag: what docker accepts (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    if first
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && tag.len() <= 128
    {
        Ok(())
    } else {
        Err(format!(
            "a tag is 1-128 characters of letters, digits and `_ . -`, not starting with `.` \
             or `-`; got {tag:?}"
        ))
    }
}

pub fn is_digest(reference: &str) -> bool {
    reference.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// A Tencent Cloud region such as `ap-guangzhou` or `na-siliconvalley`.
pub fn check_region(region: &str) -> Result<(), String> {
    let ok = region.len() <= 40
        && region.contains('-')
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && !region.ends_with('-')
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else if region.is_empty() {
        Err("TCR needs the region of the registry, such as \"ap-guangzhou\"".into())
    } else {
        Err(format!(
            "{region:?} is not a Tencent Cloud region (such as \"ap-guangzhou\")"
        ))
    }
}

/// An Enterprise instance id: `tcr-` and lowercase letters and digits.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    let ok = id.len() <= 64
        && id.strip_prefix("tcr-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else if id.is_empty() {
        Err("TCR Enterprise needs the instance id (RegistryId), such as \"tcr-xxxxxxxx\"".into())
    } else {
        Err(format!(
            "{id:?} is not a TCR Enterprise instance id (\"tcr-\" and lowercase letters and digits)"
        ))
    }
}

/// The registry's data-plane URL: `http(s)://host[:port]`; returns the host pull secrets name.
pub fn registry_host(endpoint: &str) -> Result<String, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|_| format!("{endpoint:?} is not a URL"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("https" | "http"), Some(authority))
            if uri.path().trim_end_matches('/').is_empty() =>
        {
            Ok(authority.as_str().to_ascii_lowercase())
        }
        _ => Err(format!(
            "the registry endpoint must be `https://host[:port]`, such as \
             \"https://myregistry.tencentcloudcr.com\"; got {endpoint:?}"
        )),
    }
}

pub fn check_target(target: &RegistryTarget, edition: Edition) -> Vec<TargetViolation> {
    let mut violations = Vec::new();
    let mut check = |field: &str, result: Result<(), String>| {
        if let Err(description) = result {
            violations.push(TargetViolation {
                field: field.into(),
                description,
            });
        }
    };
    check("endpoint", registry_host(&target.endpoint).map(|_| ()));
    check("region", check_region(&target.region));
    match edition {
        Edition::Enterprise => check("vendor_instance_id", check_instance_id(&target.instance_id)),
        Edition::Personal if !target.instance_id.is_empty() => check(
            "vendor_instance_id",
            Err("the TCR Personal Edition has no instances; leave the instance id empty".into()),
        ),
        Edition::Personal => {}
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules_follow_the_doc() {
        for good in ["ab", "team-a", "a.b_c", &"a".repeat(30)] {
            assert_eq!(check_namespace_name(good), Ok(()), "{good}");
        }
        for bad in [
            "a",
            &"a".repeat(31),
            "Team",
            "-a",
            "a-",
            "a--b",
            "a._b",
            "a b",
            "a/b",
        ] {
            assert!(check_namespace_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repository_rules_follow_the_doc() {
        assert_eq!(split_repository("team/app"), Ok(("team", "app")));
        assert!(split_repository("team/ab").is_err(), "2 < len");
        assert!(split_repository(&format!("team/{}", "a".repeat(245))).is_err());
        assert!(split_repository(&format!("team/{}", "a".repeat(244))).is_ok());
        assert!(split_repository("team/a/b").is_err());
        assert!(split_repository("app").is_err());
    }

    #[test]
    fn targets_per_edition() {
        assert_eq!(check_instance_id("tcr-abc123"), Ok(()));
        for bad in ["", "tcr-", "cri-abc", "tcr-ABC"] {
            assert!(check_instance_id(bad).is_err(), "{bad}");
        }
        assert_eq!(check_region("ap-guangzhou"), Ok(()));
        assert!(check_region("guangzhou").is_err());
        assert!(registry_host("https://x.tencentcloudcr.com").is_ok());
        assert!(registry_host("x.tencentcloudcr.com").is_err());
    }
}

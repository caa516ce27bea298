//! ACR's rules for what a registry definition and a name may be, checked before any call so a
//! bad one is refused with the rule instead of a vendor round trip.
//!
//! vendor-apis.md §4 gives no name rules for ACR EE; these are the console's published ones
//! (UNCONFIRMED against the API): namespaces 2–120 characters, repositories 2–64, lowercase
//! letters, digits and the separators `_ - .`, starting and ending with a letter or digit, no
//! two separators in a row.

use crate::adapters::registry::{RegistryTarget, TargetViolation};

pub const NAMESPACE_LEN: (usize, usize) = (2, 120);
pub const REPOSITORY_LEN: (usize, usize) = (2, 64);

/// Checks `name` against a "lowercase words joined by single separators" rule.
pub fn check_separated(what: &str, name: &str, (min, max): (usize, usize)) -> Result<(), String> {
    let rule = format!(
        "{what} must be {min}-{max} characters of lowercase letters, digits and `_ - .`, \
         start and end with a letter or digit, and have no two separators in a row"
    );
    let len = name.chars().count();
    let separator = |c: char| matches!(c, '_' | '-' | '.');
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || separator(c);
    let ok = (min..=max).contains(&len)
        && name.chars().all(allowed)
        && !name.starts_with(separator)
        && !name.ends_with(separator)
        && !name
            .as_bytes()
            .windows(2)
            .any(|w| separator(w[0] as char) && separator(w[1] as char));
    if ok {
        Ok(())
    } else {
        Err(format!("{rule}; got {name:?}"))
    }
}

pub fn check_namespace_name(name: &str) -> Result<(), String> {
    check_separated("an ACR namespace name", name, NAMESPACE_LEN)
}

/// A repository's full name, `namespace/repository`, split in two after checking both halves.
pub fn split_repository(full: &str) -> Result<(&str, &str), String> {
    let Some((namespace, repository)) = full.split_once('/') else {
        return Err(format!(
            "an ACR repository is named `namespace/repository`; got {full:?}"
        ));
    };
    check_namespace_name(namespace)?;
    check_separated("an ACR repository name", repository, REPOSITORY_LEN)?;
    Ok((namespace, repository))
}

/// A tag: what docker accepts (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn check_tag(tag: &str) -> Result<(), String> {
    let mut chars = tag.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && tag.len() <= 128 {
        Ok(())
    } else {
        Err(format!(
            "a tag is 1-128 characters of letters, digits and `_ . -`, not starting with \
             `.` or `-`; got {tag:?}"
        ))
    }
}

/// A digest reference: `sha256:` and 64 lowercase hex digits.
pub fn is_digest(reference: &str) -> bool {
    reference.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// An Alibaba Cloud region id such as `cn-hangzhou` or `ap-southeast-1`.
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
        Err("ACR needs the region of the instance, such as \"cn-hangzhou\"".into())
    } else {
        Err(format!(
            "{region:?} is not an Alibaba Cloud region id (such as \"cn-hangzhou\")"
        ))
    }
}

/// An ACR EE instance id: `cri-` and lowercase letters and digits.
pub fn check_instance_id(id: &str) -> Result<(), String> {
    let ok = id.len() <= 64
        && id.strip_prefix("cri-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else if id.is_empty() {
        Err("ACR needs the Enterprise Edition instance id, such as \"cri-xxxxxxxx\"".into())
    } else {
        Err(format!(
            "{id:?} is not an ACR Enterprise Edition instance id (\"cri-\" and lowercase letters \
             and digits)"
        ))
    }
}

/// The registry's data-plane URL (what pull secrets name): `http(s)://host[:port]`, no path
/// beyond `/`.
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
             \"https://myregistry-registry.cn-hangzhou.cr.aliyuncs.com\"; got {endpoint:?}"
        )),
    }
}

/// Everything wrong with a registry definition, each on its field.
pub fn check_target(target: &RegistryTarget) -> Vec<TargetViolation> {
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
    check("vendor_instance_id", check_instance_id(&target.instance_id));
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rules() {
        for good in ["ab", "team-a", "team.a_b", "a1", &"a".repeat(120)] {
            assert_eq!(check_namespace_name(good), Ok(()), "{good}");
        }
        for bad in [
            "a",
            "Team",
            "-team",
            "team-",
            "te--am",
            "te_.am",
            "te am",
            "t/a",
            "",
            &"a".repeat(121),
        ] {
            let err = check_namespace_name(bad).unwrap_err();
            assert!(err.contains("lowercase"), "{bad}: {err}");
        }
    }

    #[test]
    fn repositories_split_on_the_first_slash() {
        assert_eq!(split_repository("team/app"), Ok(("team", "app")));
        assert!(split_repository("app").is_err());
        assert!(split_repository("team/a/b").is_err());
        assert!(split_repository("Team/app").is_err());
        assert!(split_repository(&format!("team/{}", "a".repeat(65))).is_err());
    }

    #[test]
    fn targets() {
        assert_eq!(check_region("cn-hangzhou"), Ok(()));
        assert_eq!(check_region("ap-southeast-1"), Ok(()));
        for bad in [
            "",
            "cnhangzhou",
            "CN-hangzhou",
            "cn-hangzhou-",
            "cn_hangzhou",
            "1cn-x",
        ] {
            assert!(check_region(bad).is_err(), "{bad}");
        }
        assert_eq!(check_instance_id("cri-abc123"), Ok(()));
        for bad in ["", "cri-", "abc", "cri-ABC", "tcr-abc", "cri-a/b"] {
            assert!(check_instance_id(bad).is_err(), "{bad}");
        }
        assert_eq!(
            registry_host("https://r-registry.cn-hangzhou.cr.aliyuncs.com/").as_deref(),
            Ok("r-registry.cn-hangzhou.cr.aliyuncs.com")
        );
        assert!(registry_host("r.example.com").is_err());
        assert!(registry_host("https://r.example.com/v2").is_err());
    }

    #[test]
    fn tags_and_digests() {
        assert_eq!(check_tag("v1.2.3-rc_1"), Ok(()));
        assert!(check_tag("").is_err());
        assert!(check_tag(".x").is_err());
        assert!(check_tag("a/b").is_err());
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest("latest"));
    }
}

//! Naming rules for ids, labels and display names.

use std::collections::BTreeMap;

use crate::service::{Error, Result};

/// Ids of clusters, credentials and registries: 1-63 characters, lowercase letters, digits and
/// '-', starting with a letter and not ending with '-' (a DNS label, usable in URLs and names).
pub fn id(field: &str, value: &str) -> Result<()> {
    let ok = (1..=63).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a valid id: use 1-63 lowercase letters, digits and '-', \
                 starting with a letter and not ending with '-'"
            ),
        ))
    }
}

/// Turns any name (a kubeconfig context, a host) into a valid id, or `None` if nothing is left.
pub fn id_from(name: &str) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed: String = out
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
        .into();
    let mut id: String = trimmed.chars().take(55).collect();
    while id.ends_with('-') {
        id.pop();
    }
    (!id.is_empty()).then_some(id)
}

pub fn display_name(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > 256 {
        return Err(Error::invalid(field, "is longer than 256 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "contains control characters"));
    }
    Ok(())
}

/// Kubernetes label syntax: `[prefix/]name` keys, values of at most 63 characters.
pub fn labels(field: &str, labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > 64 {
        return Err(Error::invalid(field, "at most 64 labels"));
    }
    for (key, value) in labels {
        let (prefix, name) = match key.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, key.as_str()),
        };
        let prefix_ok = prefix.is_none_or(|p| {
            !p.is_empty()
                && p.len() <= 253
                && p.split('.')
                    .all(|part| label_name(part) && !part.contains('_'))
        });
        if !prefix_ok || !label_name(name) {
            return Err(Error::invalid(
                format!("{field}.{key}"),
                "is not a valid label key: [prefix/]name, name of 1-63 letters, digits, '-', \
                 '_' or '.', starting and ending with a letter or digit",
            ));
        }
        if !(value.is_empty() || label_name(value)) {
            return Err(Error::invalid(
                format!("{field}.{key}"),
                format!(
                    "value {value:?} is not a valid label value (at most 63 letters, digits, '-', '_' or '.')"
                ),
            ));
        }
    }
    Ok(())
}

fn label_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for good in [
            "a",
            "prod-1",
            "a23456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert!(id("id", good).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "Abc", "a_b", "a-", "-a", "a.b", &"a".repeat(64)] {
            assert!(id("id", bad).is_err(), "{bad}");
        }
        assert_eq!(
            id_from("kind-Prod_Cluster@east").as_deref(),
            Some("kind-prod-cluster-east")
        );
        assert_eq!(id_from("10.0.0.1").as_deref(), None);
        assert_eq!(
            id_from("https://api.example.com:6443").as_deref(),
            Some("https-api-example-com-6443")
        );
    }

    #[test]
    fn label_rules() {
        let ok: BTreeMap<_, _> = [
            ("env".to_string(), "prod".to_string()),
            ("example.com/team".into(), "".into()),
        ]
        .into();
        assert!(labels("labels", &ok).is_ok());
        let bad: BTreeMap<_, _> = [("-x".to_string(), "v".to_string())].into();
        assert!(
            matches!(labels("labels", &bad), Err(Error::InvalidArgument { field, .. }) if field == "labels.-x")
        );
        let bad_value: BTreeMap<_, _> = [("x".to_string(), "has space".to_string())].into();
        assert!(labels("labels", &bad_value).is_err());
    }
}

//! What Flotilla checks itself before any registry call: the endpoint URL, the CA bundle, and
//! the OCI distribution spec's grammar for repository names, tags and digests (every registry
//! follows it; namespace names have vendor rules, checked by the provider).

use crate::service::{Error, Result};

/// `https://host[:port]` (or `http://` for a plain registry on a trusted network), without
/// credentials, query or fragment; a trailing slash is dropped.
pub fn endpoint(field: &str, value: &str) -> Result<String> {
    if value.is_empty() {
        return Err(Error::invalid(
            field,
            "is required: the registry's URL, such as https://registry.example.com",
        ));
    }
    let url = reqwest::Url::parse(value).map_err(|e| {
        Error::invalid(
            field,
            format!("is not a URL ({e}); use https://host[:port]"),
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(Error::invalid(field, "must start with https:// or http://"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // Never a secret in a stored, listed field: credentials go into CredentialService.
        return Err(Error::invalid(
            field,
            "must not carry credentials; create a credential with CredentialService and name it \
             in credential_id",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::invalid(field, "must not have a query or fragment"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, "has no host"));
    }
    Ok(value.trim_end_matches('/').to_string())
}

/// A PEM bundle of at least one certificate, or nothing.
pub fn ca_pem(field: &str, value: &str) -> Result<Option<String>> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    if value.len() > 1024 * 1024 {
        return Err(Error::invalid(field, "is larger than 1 MiB"));
    }
    match x509_parser::pem::parse_x509_pem(value.as_bytes()) {
        Ok((_, pem)) if pem.label == "CERTIFICATE" && pem.parse_x509().is_ok() => {
            Ok(Some(value.to_string()))
        }
        _ => Err(Error::invalid(
            field,
            "is not a PEM certificate bundle (-----BEGIN CERTIFICATE----- ...)",
        )),
    }
}

/// A repository name: path components of lowercase letters and digits joined by `.`, `_`,
/// `__` or `-`s, separated by `/`; at most 255 characters.
pub fn repository(field: &str, value: &str) -> Result<()> {
    let rule = "use path components of lowercase letters and digits, separated by '.', '_', \
                '__' or '-' inside a component and '/' between components (OCI distribution \
                spec)";
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if value.len() > 255 {
        return Err(Error::invalid(field, "is longer than 255 characters"));
    }
    if !value.split('/').all(path_component) {
        return Err(Error::invalid(
            field,
            format!("{value:?} is not a repository name: {rule}"),
        ));
    }
    Ok(())
}

fn path_component(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", between alphanumerics.
        let run = bytes[i..].iter().take_while(|c| **c == b).count();
        let ok = match b {
            b'.' => run == 1,
            b'_' => run <= 2,
            b'-' => true,
            _ => false,
        };
        if !ok {
            return false;
        }
        i += run;
    }
    true
}

/// What a reference names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Tag,
    Digest,
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a digest (`algorithm:hex`, sha256 with 64 hex
/// digits).
pub fn reference(field: &str, value: &str) -> Result<Reference> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required: a tag or a digest"));
    }
    if let Some((algorithm, encoded)) = value.split_once(':') {
        let ok = match algorithm {
            "sha256" => {
                encoded.len() == 64
                    && encoded
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }
            "sha512" => {
                encoded.len() == 128
                    && encoded
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            }
            _ => false,
        };
        return if ok {
            Ok(Reference::Digest)
        } else {
            Err(Error::invalid(
                field,
                format!(
                    "{value:?} is not a digest: use sha256: and 64 lowercase hex digits (or \
                     sha512: and 128)"
                ),
            ))
        };
    }
    tag(field, value).map(|()| Reference::Tag)
}

pub fn tag(field: &str, value: &str) -> Result<()> {
    let bytes = value.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = (1..=128).contains(&bytes.len())
        && word(bytes[0])
        && bytes.iter().all(|b| word(*b) || *b == b'.' || *b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a tag: 1-128 letters, digits, '_', '.' and '-', not starting \
                 with '.' or '-'"
            ),
        ))
    }
}

/// A chart name: a repository path component.
pub fn chart(field: &str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    if value.len() > 255 || !path_component(value) {
        return Err(Error::invalid(
            field,
            format!(
                "{value:?} is not a chart name: lowercase letters and digits, separated by \
                 '.', '_' or '-'"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for good in ["app", "team/app", "a.b_c__d--e/f-1", "library/alpine"] {
            assert!(repository("r", good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "App",
            "team//app",
            "/app",
            "app/",
            "a..b",
            "a___b",
            "-a",
            "a b",
        ] {
            assert!(repository("r", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn references() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(reference("ref", &digest).unwrap(), Reference::Digest);
        assert_eq!(reference("ref", "v1.2.3-rc_1").unwrap(), Reference::Tag);
        for bad in [
            "",
            "sha256:abc",
            "md5:00",
            ".hidden",
            "-x",
            "a/b",
            &"t".repeat(129),
        ] {
            assert!(reference("ref", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint("e", "https://registry.example.com/").unwrap(),
            "https://registry.example.com"
        );
        assert!(endpoint("e", "http://127.0.0.1:5000").is_ok());
        for bad in [
            "",
            "registry.example.com",
            "ftp://x",
            "https://user:pw@x.example",
            "https://x.example/?a=b",
        ] {
            assert!(endpoint("e", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ca_bundles() {
        assert_eq!(ca_pem("ca", "  ").unwrap(), None);
        assert!(
            ca_pem(
                "ca",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
        assert!(ca_pem("ca", "not pem").is_err());
    }
}

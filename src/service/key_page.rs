//! Paging by key over a sorted, changing index (the watch caches, and the cluster table): the
//! page token carries the last `(namespace, name)` returned (for clusters, `(sort value, id)`),
//! and the next page starts after it. Unlike an offset, that position does not move when
//! objects before it come or go, so a walk neither skips nor repeats an object that exists for
//! the whole walk (the guarantee of Kubernetes' `continue`), and a page deep into a list costs
//! no more than the first.
//!
//! The token is opaque to clients: `c1.<query fingerprint>.<namespace>.<name>`, each part
//! base64url, the whole base64url again. A token from another query, or not from us, is refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::service::{
    Error, Result,
    paging::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
};

/// A validated page request over a keyed index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPage {
    pub size: usize,
    /// Resume after this `(namespace, name)`; `None` for the first page.
    pub after: Option<(String, String)>,
    fingerprint: u64,
}

impl KeyPage {
    /// Validates `page_size` (0 → default, above the maximum → the maximum, negative → error)
    /// and `page_token` (must come from the same query, identified by `query_key`).
    pub fn parse(page_size: i32, page_token: &str, query_key: &str) -> Result<KeyPage> {
        if page_size < 0 {
            return Err(Error::invalid("page_size", "must not be negative"));
        }
        let size = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        } as usize;
        let fingerprint = fnv1a(query_key.as_bytes());
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode(page_token, fingerprint)?)
        };
        Ok(KeyPage {
            size,
            after,
            fingerprint,
        })
    }

    pub fn is_first(&self) -> bool {
        self.after.is_none()
    }

    /// The token for the page after one that ended at `last`, or "" when nothing follows.
    pub fn next_token(&self, last: Option<(&str, &str)>, more: bool) -> String {
        match last {
            Some((namespace, name)) if more => URL_SAFE_NO_PAD.encode(format!(
                "c1.{:016x}.{}.{}",
                self.fingerprint,
                URL_SAFE_NO_PAD.encode(namespace),
                URL_SAFE_NO_PAD.encode(name)
            )),
            _ => String::new(),
        }
    }
}

fn decode(token: &str, fingerprint: u64) -> Result<(String, String)> {
    let bad = || {
        Error::invalid(
            "page_token",
            "is not a token this server issued; pass next_page_token from the previous response \
             unchanged, or leave it empty for the first page",
        )
    };
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.split('.');
    let (Some("c1"), Some(hash), Some(namespace), Some(name), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let hash = u64::from_str_radix(hash, 16).map_err(|_| bad())?;
    let part = |p: &str| {
        URL_SAFE_NO_PAD
            .decode(p)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .ok_or_else(bad)
    };
    let (namespace, name) = (part(namespace)?, part(name)?);
    if name.is_empty() {
        return Err(bad());
    }
    if hash != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "belongs to a different query; keep the filters unchanged while paging",
        ));
    }
    Ok((namespace, name))
}

/// FNV-1a, as the offset tokens use: stable across builds and platforms.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_end() {
        let first = KeyPage::parse(2, "", "pods|q").unwrap();
        assert!(first.is_first());
        let token = first.next_token(Some(("ns.with.dots", "pod-1")), true);
        let second = KeyPage::parse(2, &token, "pods|q").unwrap();
        assert_eq!(
            second.after,
            Some(("ns.with.dots".to_string(), "pod-1".to_string()))
        );
        assert_eq!(second.next_token(Some(("ns", "p")), false), "");
        assert_eq!(second.next_token(None, true), "");
        assert_eq!(KeyPage::parse(0, "", "q").unwrap().size, 50);
        assert_eq!(KeyPage::parse(5000, "", "q").unwrap().size, 1000);
    }

    #[test]
    fn foreign_or_garbage_tokens_are_invalid_argument() {
        let token = KeyPage::parse(2, "", "q1")
            .unwrap()
            .next_token(Some(("a", "b")), true);
        let offset_token = URL_SAFE_NO_PAD.encode("v1.2.00000000000000ff");
        for bad in [token.as_str(), "garbage!", offset_token.as_str()] {
            let err = KeyPage::parse(2, bad, "q2").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "page_token"),
                "{bad}: {err:?}"
            );
        }
        assert!(KeyPage::parse(-1, "", "q").is_err());
    }
}

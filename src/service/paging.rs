//! Page sizes and opaque page tokens shared by every list.
//!
//! A token records where the next page starts and a fingerprint of the query it belongs to, so a
//! token replayed with another filter or order is refused instead of silently skipping rows.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::service::{Error, Result};

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// A validated page request: how many rows and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub size: i64,
    pub offset: i64,
    fingerprint: u64,
}

impl Page {
    /// Validates `page_size` (0 → default, above the maximum → the maximum, negative → error) and
    /// `page_token` (must come from the same query, identified by `query_key`).
    pub fn parse(page_size: i32, page_token: &str, query_key: &str) -> Result<Page> {
        if page_size < 0 {
            return Err(Error::invalid("page_size", "must not be negative"));
        }
        let size = match i64::from(page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let fingerprint = fnv1a(query_key.as_bytes());
        let offset = if page_token.is_empty() {
            0
        } else {
            decode_token(page_token, fingerprint)?
        };
        Ok(Page {
            size,
            offset,
            fingerprint,
        })
    }

    /// The token for the page after this one, or "" when `total` rows are exhausted.
    pub fn next_token(&self, returned: usize, total: i64) -> String {
        let next = self.offset + returned as i64;
        if returned == 0 || next >= total {
            return String::new();
        }
        URL_SAFE_NO_PAD.encode(format!("v1.{next}.{:016x}", self.fingerprint))
    }
}

fn decode_token(token: &str, fingerprint: u64) -> Result<i64> {
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
    let (Some("v1"), Some(offset), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    let offset: i64 = offset.parse().map_err(|_| bad())?;
    let hash = u64::from_str_radix(hash, 16).map_err(|_| bad())?;
    if offset < 0 {
        return Err(bad());
    }
    if hash != fingerprint {
        return Err(Error::invalid(
            "page_token",
            "belongs to a different query; keep filter and order_by unchanged while paging",
        ));
    }
    Ok(offset)
}

/// FNV-1a: small, stable across builds and platforms (unlike `DefaultHasher`'s contract).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_and_coerce() {
        assert_eq!(Page::parse(0, "", "q").unwrap().size, 50);
        assert_eq!(Page::parse(7, "", "q").unwrap().size, 7);
        assert_eq!(Page::parse(5000, "", "q").unwrap().size, 1000);
        assert!(matches!(
            Page::parse(-1, "", "q"),
            Err(Error::InvalidArgument { field, .. }) if field == "page_size"
        ));
    }

    #[test]
    fn token_round_trips_and_ends() {
        let first = Page::parse(2, "", "q").unwrap();
        let token = first.next_token(2, 5);
        let second = Page::parse(2, &token, "q").unwrap();
        assert_eq!(second.offset, 2);
        assert_eq!(second.next_token(2, 4), "");
        assert_eq!(first.next_token(0, 5), "");
    }

    #[test]
    fn foreign_or_garbage_tokens_are_invalid_argument() {
        let token = Page::parse(2, "", "q1").unwrap().next_token(2, 5);
        for bad in [token.as_str(), "garbage!", "djEuLTEuMA", ""] {
            if bad.is_empty() {
                continue;
            }
            let err = Page::parse(2, bad, "q2").unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { field, .. } if field == "page_token"),
                "{bad}: {err:?}"
            );
        }
    }
}

/// Paging over a Kubernetes list: the page token wraps the API server's `continue` token and
/// the query fingerprint, so a token is only valid for the query that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubePage {
    /// Items per request to the API server.
    pub limit: u32,
    /// The API server's continue token; empty for the first page.
    pub continue_token: String,
    fingerprint: u64,
}

impl KubePage {
    pub fn parse(page_size: i32, page_token: &str, query_key: &str) -> Result<KubePage> {
        let page = Page::parse(page_size, "", query_key)?;
        let fingerprint = fnv1a(query_key.as_bytes());
        let continue_token = if page_token.is_empty() {
            String::new()
        } else {
            let bad = || {
                Error::invalid(
                    "page_token",
                    "is not a token this server issued for this query; pass next_page_token \
                     unchanged with the same filters",
                )
            };
            let raw = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (hash, token) = text
                .strip_prefix("k1.")
                .and_then(|rest| rest.split_once('.'))
                .ok_or_else(bad)?;
            if u64::from_str_radix(hash, 16).ok() != Some(fingerprint) || token.is_empty() {
                return Err(bad());
            }
            token.to_string()
        };
        Ok(KubePage {
            limit: page.size as u32,
            continue_token,
            fingerprint,
        })
    }

    /// Our token for the API server's next `continue` token ("" when the list is complete).
    pub fn next_token(&self, kube_continue: Option<&str>) -> String {
        match kube_continue.filter(|c| !c.is_empty()) {
            Some(token) => URL_SAFE_NO_PAD.encode(format!("k1.{:016x}.{token}", self.fingerprint)),
            None => String::new(),
        }
    }
}

#[cfg(test)]
mod kube_page_tests {
    use super::*;

    #[test]
    fn wraps_continue_tokens_per_query() {
        let first = KubePage::parse(0, "", "pods|ns").unwrap();
        assert_eq!(first.limit, 50);
        assert_eq!(first.continue_token, "");
        let token = first.next_token(Some("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"));
        let second = KubePage::parse(0, &token, "pods|ns").unwrap();
        assert_eq!(second.continue_token, "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ");
        assert!(KubePage::parse(0, &token, "pods|other").is_err());
        assert!(KubePage::parse(0, "junk", "pods|ns").is_err());
        assert_eq!(first.next_token(None), "");
        assert_eq!(first.next_token(Some("")), "");
    }
}

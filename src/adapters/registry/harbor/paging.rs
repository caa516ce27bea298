//! Harbor's page numbers folded into the trait's cursor paging.
//!
//! Harbor pages by `page` (from 1) and `page_size` (at most 100), and says what is left with
//! `X-Total-Count` and a `Link` header (`<…?page=3&page_size=10>; rel="next"`, several links
//! joined by `" , "`; vendor-apis.md §5). The cursor handed out is the **item offset** of the
//! next item, so a caller may change its page size between calls without skipping or repeating
//! anything: an offset that does not fall on a Harbor page boundary is served from the page
//! that holds it, skipping what comes before it. Harbor's `Link` URL is never followed (it is
//! the server's to choose); only whether it has a `next`.

use std::future::Future;

use crate::adapters::{ErrorClass, Result, VendorError, transport::RawResponse};

use super::VENDOR;

/// Harbor's `page_size` maximum (swagger `pageSize.maximum`).
pub const MAX_PAGE_SIZE: u32 = 100;
/// Harbor pages fetched by one trait call at most, so one call stays bounded.
const MAX_PAGES_PER_CALL: usize = 50;

/// What a list response says beyond its items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageInfo {
    pub total: Option<u64>,
    /// `Link` has `rel="next"`.
    pub next: bool,
}

impl PageInfo {
    pub fn of(raw: &RawResponse) -> PageInfo {
        let header = |name: &str| raw.headers.get(name).and_then(|v| v.to_str().ok());
        PageInfo {
            total: header("x-total-count").and_then(|t| t.trim().parse().ok()),
            next: header("link").is_some_and(link_has_next),
        }
    }
}

/// Whether an RFC 5988 `Link` value has a `rel="next"` link.
pub fn link_has_next(link: &str) -> bool {
    link.split(',').any(|part| {
        part.split(';').skip(1).any(|param| {
            let param = param.trim();
            param
                .strip_prefix("rel=")
                .map(|rel| rel.trim_matches('"'))
                .is_some_and(|rel| {
                    rel.split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
                })
        })
    })
}

/// The item offset in a cursor (`None`: the first page).
pub fn parse_offset(cursor: Option<&str>, operation: &'static str) -> Result<u64> {
    match cursor {
        None | Some("") => Ok(0),
        Some(text) => text.parse().map_err(|_| bad_cursor(operation, text)),
    }
}

pub fn bad_cursor(operation: &'static str, text: &str) -> VendorError {
    VendorError::new(
        ErrorClass::InvalidConfiguration,
        VENDOR,
        operation,
        "BadCursor",
        format!("page cursor {text:?} was not made by the Harbor adapter"),
    )
}

/// Harbor's page holding item `offset` at `page_size`, and how many items of it come before.
pub fn window(offset: u64, page_size: u32) -> (u64, usize) {
    let size = u64::from(page_size.max(1));
    (offset / size + 1, (offset % size) as usize)
}

/// What `collect` gathered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected<T> {
    pub items: Vec<T>,
    /// The offset of the next item, when there is one.
    pub next: Option<u64>,
    pub total: Option<u64>,
}

/// Up to `want` items from `offset` on, fetching Harbor pages of `page_size` (≤ 100) with
/// `fetch(page, page_size)` until `want` are gathered or Harbor has no more.
pub async fn collect<T, F, Fut>(
    offset: u64,
    want: usize,
    page_size: u32,
    mut fetch: F,
) -> Result<Collected<T>>
where
    F: FnMut(u64, u32) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, PageInfo)>>,
{
    let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
    let want = want.max(1);
    let mut offset = offset;
    let mut items = Vec::new();
    let mut total = None;
    for _ in 0..MAX_PAGES_PER_CALL {
        let (page, skip) = window(offset, page_size);
        let (got, info) = fetch(page, page_size).await?;
        total = info.total.or(total);
        let available = got.len().saturating_sub(skip);
        let take = available.min(want - items.len());
        items.extend(got.into_iter().skip(skip).take(take));
        offset += take as u64;
        // Harbor always links a next page when there is one; the total backs it up.
        let more_pages = info.next || info.total.is_some_and(|t| page * u64::from(page_size) < t);
        if take < available {
            return Ok(Collected {
                items,
                next: Some(offset),
                total,
            });
        }
        if !more_pages || available == 0 {
            return Ok(Collected {
                items,
                next: None,
                total,
            });
        }
        if items.len() >= want {
            return Ok(Collected {
                items,
                next: Some(offset),
                total,
            });
        }
    }
    Ok(Collected {
        items,
        next: Some(offset),
        total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links() {
        assert!(link_has_next(
            r#"</api/v2.0/projects?page=2&page_size=10>; rel="next""#
        ));
        assert!(link_has_next(
            r#"</api/v2.0/projects?page=1&page_size=10>; rel="prev" , </api/v2.0/projects?page=3&page_size=10>; rel="next""#
        ));
        assert!(!link_has_next(
            r#"</api/v2.0/projects?page=1&page_size=10>; rel="prev""#
        ));
        assert!(!link_has_next(""));
    }

    #[test]
    fn windows() {
        assert_eq!(window(0, 100), (1, 0));
        assert_eq!(window(100, 100), (2, 0));
        assert_eq!(window(130, 100), (2, 30));
        assert_eq!(window(7, 3), (3, 1));
    }

    /// A fake Harbor over `n` numbered items.
    fn harbor(n: u64) -> impl FnMut(u64, u32) -> std::future::Ready<Result<(Vec<u64>, PageInfo)>> {
        move |page, size| {
            assert!(size <= MAX_PAGE_SIZE);
            let start = (page - 1) * u64::from(size);
            let items: Vec<u64> = (start..n.min(start + u64::from(size))).collect();
            let info = PageInfo {
                total: Some(n),
                next: start + u64::from(size) < n,
            };
            std::future::ready(Ok((items, info)))
        }
    }

    async fn walk(n: u64, sizes: &[usize]) -> Vec<u64> {
        let mut seen = Vec::new();
        let mut offset = Some(0);
        let mut i = 0;
        while let Some(at) = offset {
            let want = sizes[i % sizes.len()];
            i += 1;
            let page = collect(at, want, want.min(100) as u32, harbor(n))
                .await
                .unwrap();
            assert!(page.items.len() <= want);
            assert_eq!(page.total, Some(n));
            seen.extend(page.items);
            offset = page.next;
            assert!(i < 10_000);
        }
        seen
    }

    #[tokio::test]
    async fn every_item_once_whatever_the_sizes() {
        for n in [0, 1, 99, 100, 101, 250] {
            for sizes in [&[1][..], &[7], &[100], &[250], &[3, 100, 41, 1000]] {
                let seen = walk(n, sizes).await;
                assert_eq!(seen, (0..n).collect::<Vec<_>>(), "n={n} sizes={sizes:?}");
            }
        }
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_offset(None, "X").unwrap(), 0);
        assert_eq!(parse_offset(Some("130"), "X").unwrap(), 130);
        assert_eq!(
            parse_offset(Some("page=2"), "X").unwrap_err().class,
            ErrorClass::InvalidConfiguration
        );
    }
}

//! Name lists — `_catalog` and `tags/list` — paged whatever the registry does with `n`/`last`:
//! every page is sorted here, filtered to names after the cursor and cut to the page size, and
//! the cursor is the last name returned. Namespaces of a plain registry are found by walking
//! the catalog.
//!
//! One name more than the page is asked for: Distribution sends a `Link` to a next page
//! whenever a page is full, also when nothing follows, so a full page alone cannot tell "more"
//! from "done" — the extra name can, and no caller is handed a token to an empty page.

use super::{
    backend::OciRegistry,
    client::{self, CATALOG_SCOPE, CatalogAnswer, TagsAnswer, pull_scope},
    error::VENDOR,
    spec,
};
use crate::adapters::{
    ErrorClass, Result, VendorError,
    transport::{Idempotency, RawResponse},
};

/// One page of sorted names after the cursor, and whether more follow.
pub(super) struct NamePage {
    pub(super) names: Vec<String>,
    pub(super) more: bool,
}

impl OciRegistry {
    /// One page of a name list (`_catalog` or `tags/list`), whatever the registry does with
    /// `n`/`last`: sorted, after `cursor`, at most `size`.
    pub(super) async fn name_page(
        &self,
        operation: &'static str,
        repository: Option<&str>,
        size: u32,
        cursor: Option<&str>,
    ) -> Result<NamePage> {
        // `n` stays within `max_page` (Distribution refuses a catalog `n` above 1000).
        let size = size.clamp(1, self.client.settings.max_page.saturating_sub(1).max(1));
        let ask = size + 1;
        let mut last = cursor.map(str::to_string);
        // A registry that honours `n` but not `last` would hand back names we already have; a
        // few Link hops forward are allowed before giving up on it.
        for _ in 0..64 {
            let raw = match repository {
                Some(repo) => {
                    self.client
                        .send(
                            operation,
                            &pull_scope(repo),
                            Idempotency::Idempotent,
                            |auth| {
                                client::tags_request(&self.client, repo, ask, last.as_deref(), auth)
                            },
                        )
                        .await?
                }
                None => self.catalog(operation, ask, last.as_deref()).await?,
            };
            let received = match repository {
                Some(_) => raw
                    .json::<TagsAnswer>(VENDOR, operation)?
                    .tags
                    .unwrap_or_default(),
                None => raw
                    .json::<CatalogAnswer>(VENDOR, operation)?
                    .repositories
                    .unwrap_or_default(),
            };
            let link = client::next_link_last(&raw.headers, &self.client.base);
            let mut names: Vec<String> = received
                .into_iter()
                .filter(|name| cursor.is_none_or(|c| name.as_str() > c))
                .collect();
            names.sort();
            names.dedup();
            if names.is_empty()
                && let Some(Some(next)) = &link
                && last.as_deref().is_none_or(|l| next.as_str() > l)
            {
                last = Some(next.clone());
                continue;
            }
            // More names than the page, or a registry that stopped short of `ask` and links
            // on (it caps `n` lower); a full page of `ask` names with a `Link` is the first case.
            let more = names.len() > size as usize || link.is_some();
            names.truncate(size as usize);
            return Ok(NamePage {
                more: more && !names.is_empty(),
                names,
            });
        }
        Err(VendorError::new(
            ErrorClass::Unknown,
            VENDOR,
            operation,
            "PagingInconsistent",
            "the registry's pages do not move forward (it ignores `last`)",
        ))
    }

    /// `GET /v2/_catalog`, with a missing or refused catalog turned into a clear `Unsupported`.
    pub(super) async fn catalog(
        &self,
        operation: &'static str,
        n: u32,
        last: Option<&str>,
    ) -> Result<RawResponse> {
        let result = self
            .client
            .send(operation, CATALOG_SCOPE, Idempotency::Idempotent, |auth| {
                client::catalog_request(&self.client, n, last, auth)
            })
            .await;
        match result {
            Err(err)
                if err.http_status == 404
                    || err.class == ErrorClass::CredentialsForbidden
                    || err.class == ErrorClass::Unsupported =>
            {
                Err(VendorError::new(
                    ErrorClass::Unsupported,
                    VENDOR,
                    operation,
                    err.code.clone(),
                    format!(
                        "the registry does not list its repositories (GET /v2/_catalog answered HTTP {}: {}), so neither all repositories nor those of a namespace can be discovered; name the repository instead",
                        err.http_status, err.message
                    ),
                )
                .with_status(err.http_status))
            }
            other => other,
        }
    }

    /// Every repository name of the catalog (bounded), for namespace counts.
    pub(super) async fn whole_catalog(&self, operation: &'static str) -> Result<Vec<String>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .name_page(
                    operation,
                    None,
                    self.client.settings.max_page,
                    cursor.as_deref(),
                )
                .await?;
            cursor = page.names.last().cloned();
            all.extend(page.names);
            if !page.more || all.len() >= self.client.settings.max_catalog_walk as usize {
                return Ok(all);
            }
        }
    }

    /// Repositories of `namespace` after `cursor`: its names are contiguous in the catalog's
    /// order (everything starting "ns/", plus "ns" itself), so the walk starts just before them
    /// and stops after them.
    pub(super) async fn namespace_repositories(
        &self,
        operation: &'static str,
        namespace: &str,
        size: u32,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, bool)> {
        let end = format!("{namespace}/\u{7f}");
        let mut last = match cursor {
            Some(c) => Some(c.to_string()),
            None => Some(just_before(namespace)),
        };
        let mut found = Vec::new();
        loop {
            let page = self
                .name_page(
                    operation,
                    None,
                    self.client.settings.max_page,
                    last.as_deref(),
                )
                .await?;
            for name in &page.names {
                if name.as_str() > end.as_str() {
                    return Ok((found, false));
                }
                if spec::in_namespace(name, namespace) {
                    if found.len() == size as usize {
                        return Ok((found, true));
                    }
                    found.push(name.clone());
                }
            }
            if !page.more {
                return Ok((found, false));
            }
            last = page.names.last().cloned();
        }
    }
}

/// A string just before every name starting with `prefix` (all names use ASCII below 0x7f).
pub(super) fn just_before(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    match bytes.pop() {
        Some(last) => {
            bytes.push(last.saturating_sub(1));
            bytes.push(0x7f);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        None => String::new(),
    }
}

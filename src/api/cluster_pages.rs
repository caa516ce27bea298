//! ListClusters pages, kept encoded (issue #20). Reading a page of 50 clusters costs a database
//! query and about 5 µs a cluster to decode rows, parse labels and build messages; a page kept
//! from an earlier answer costs a copy of its bytes.
//!
//! A page is kept with the clusters table's change count it was read at (see
//! `Store::clusters_change_count`), and served again only while the count is still that: any
//! write to any cluster, by any writer (another replica, the `sqlite3` tool), ends every kept
//! page. The count is read before the page, so a kept page is never older than its count. What
//! the prober saw of each cluster is not kept: every answer adds it fresh, so a page stays
//! current however often the clusters are probed.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use bytes::{Bytes, BytesMut};
use prost::Message;

use super::{
    convert::{cluster_status, stored_cluster},
    pb,
};
use crate::service::{
    Result,
    clusters::{ClusterCatalog, ClusterList, ListClusters},
};

/// At most this many pages are kept, of at most this many bytes in all (a page of 50 clusters is
/// about 14 KB; of 1,000, the largest, about 280 KB); past either, all are dropped and kept anew.
const MAX_PAGES: usize = 256;
const MAX_BYTES: usize = 8 << 20;

/// The pages kept for ListClusters, shared by every caller.
#[derive(Default)]
pub struct ClusterPages {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// The change count every kept page was read at.
    count: i64,
    pages: HashMap<PageKey, Arc<StoredPage>>,
    /// The memory the kept pages take, about: the sum of their `capacity`.
    bytes: usize,
}

impl Kept {
    /// Drops every page when the count moved (either way: a restored database counts again).
    fn at(&mut self, count: i64) {
        if self.count != count {
            self.clear();
            self.count = count;
        }
    }

    fn clear(&mut self) {
        self.pages.clear();
        self.bytes = 0;
    }
}

/// What a page depends on besides the stored clusters: the request, and the clusters the caller
/// may see.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PageKey {
    filter: String,
    order_by: String,
    page_size: i32,
    page_token: String,
    scope: Option<Vec<String>>,
}

impl PageKey {
    fn of(request: &ListClusters) -> PageKey {
        PageKey {
            filter: request.filter.clone(),
            order_by: request.order_by.clone(),
            page_size: request.page_size,
            page_token: request.page_token.clone(),
            scope: request.scope.clone(),
        }
    }
}

/// A page as stored: each cluster encoded without its status.
struct StoredPage {
    clusters: Vec<StoredCluster>,
    next_page_token: String,
    total_size: i32,
    /// The encoded clusters' length, with room for their statuses.
    capacity: usize,
}

struct StoredCluster {
    id: String,
    /// The `Cluster` message without `status`.
    encoded: Bytes,
    /// The cluster's own warnings, which lead its status's warnings.
    permanent_warnings: Vec<pb::Warning>,
}

/// Room for one cluster's tag, length and status (a status with a reason or warnings grows it).
const STATUS_ROOM: usize = 96;

impl From<ClusterList> for StoredPage {
    fn from(list: ClusterList) -> StoredPage {
        let clusters: Vec<StoredCluster> = list
            .clusters
            .into_iter()
            .map(|cluster| {
                let id = cluster.id.clone();
                let (message, permanent_warnings) = stored_cluster(cluster);
                StoredCluster {
                    id,
                    encoded: message.encode_to_vec().into(),
                    permanent_warnings,
                }
            })
            .collect();
        let capacity = clusters.iter().map(|c| c.encoded.len() + STATUS_ROOM).sum();
        StoredPage {
            clusters,
            next_page_token: list.next_page_token,
            total_size: list.total_size,
            capacity,
        }
    }
}

impl StoredPage {
    /// The answer: every cluster as stored, with what the prober last saw of it.
    fn answer(&self, catalog: &ClusterCatalog) -> pb::ListClustersResponse {
        let statuses = catalog.statuses(self.clusters.iter().map(|c| c.id.as_str()));
        let mut encoded = BytesMut::with_capacity(self.capacity);
        for (cluster, observed) in self.clusters.iter().zip(statuses) {
            let rest = pb::Cluster {
                status: Some(cluster_status(cluster.permanent_warnings.clone(), observed)),
                ..Default::default()
            };
            pb::append_cluster(&mut encoded, &cluster.encoded, &rest);
        }
        pb::ListClustersResponse {
            clusters: Vec::new(),
            next_page_token: self.next_page_token.clone(),
            total_size: self.total_size,
            encoded_clusters: encoded.freeze(),
        }
    }
}

impl ClusterPages {
    /// One page of clusters for `request` (its scope already set from the caller's roles).
    pub async fn list(
        &self,
        catalog: &ClusterCatalog,
        request: &ListClusters,
    ) -> Result<pb::ListClustersResponse> {
        let key = PageKey::of(request);
        // Without a count (the database was busy), the page is read and not kept.
        let count = catalog.change_count().await.ok();
        let kept = count.and_then(|count| self.get(&key, count));
        let page = match kept {
            Some(page) => page,
            None => {
                let page = Arc::new(StoredPage::from(catalog.list_stored(request).await?));
                if let Some(count) = count {
                    self.put(key, count, page.clone());
                }
                page
            }
        };
        Ok(page.answer(catalog))
    }

    fn get(&self, key: &PageKey, count: i64) -> Option<Arc<StoredPage>> {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.at(count);
        kept.pages.get(key).cloned()
    }

    fn put(&self, key: PageKey, count: i64, page: Arc<StoredPage>) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.at(count);
        if page.capacity > MAX_BYTES {
            return;
        }
        if kept.pages.len() >= MAX_PAGES || kept.bytes + page.capacity > MAX_BYTES {
            kept.clear();
        }
        kept.bytes += page.capacity;
        if let Some(replaced) = kept.pages.insert(key, page) {
            kept.bytes -= replaced.capacity;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(token: &str) -> PageKey {
        PageKey::of(&ListClusters {
            page_token: token.into(),
            ..Default::default()
        })
    }

    fn page(capacity: usize) -> Arc<StoredPage> {
        Arc::new(StoredPage {
            clusters: Vec::new(),
            next_page_token: String::new(),
            total_size: 0,
            capacity,
        })
    }

    #[test]
    fn a_page_is_served_only_at_the_count_it_was_read_at() {
        let pages = ClusterPages::default();
        pages.put(key("a"), 7, page(10));
        assert!(pages.get(&key("a"), 7).is_some());
        assert!(pages.get(&key("b"), 7).is_none(), "another request");
        assert!(pages.get(&key("a"), 8).is_none(), "a write since");
        assert!(
            pages.get(&key("a"), 7).is_none(),
            "gone for good: the count went back (a restored database)"
        );
        // Racing readers that saw different counts never mix their pages: every change of the
        // count drops every page, whichever way it goes.
        pages.put(key("a"), 9, page(10));
        pages.put(key("b"), 8, page(10));
        assert!(pages.get(&key("a"), 9).is_none());
    }

    #[test]
    fn kept_pages_stay_within_their_bytes_and_number() {
        let pages = ClusterPages::default();
        let big = MAX_BYTES / 3;
        for i in 0..10 {
            pages.put(key(&i.to_string()), 1, page(big));
            let kept = pages.kept.lock().unwrap();
            assert!(kept.bytes <= MAX_BYTES, "{} bytes kept", kept.bytes);
            assert_eq!(kept.bytes, kept.pages.len() * big);
        }
        pages.put(key("huge"), 1, page(MAX_BYTES + 1));
        assert!(pages.get(&key("huge"), 1).is_none(), "too big to keep");
        for i in 0..MAX_PAGES + 10 {
            pages.put(key(&format!("small {i}")), 1, page(1));
            assert!(pages.kept.lock().unwrap().pages.len() <= MAX_PAGES);
        }
        // The same page kept again is counted once.
        pages.put(key("again"), 2, page(5));
        pages.put(key("again"), 2, page(5));
        assert_eq!(pages.kept.lock().unwrap().bytes, 5);
    }
}

//! Cluster rows: insert, get, list with filters and paging, update, delete.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Backend, ClusterRow, Error, Result, SecretRow, Store,
    schema::{cluster_labels, clusters, secrets},
    with_conn, write_transaction,
};

/// Sort orders for cluster lists. Ties are broken by id so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ClusterOrder {
    #[default]
    Id,
    DisplayName,
    CreateTime,
}

/// What to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ClusterQuery {
    pub provider: Option<String>,
    pub state: Option<String>,
    pub region: Option<String>,
    /// Every (key, value) must match; a value of `None` only requires the key.
    pub labels: Vec<(String, Option<String>)>,
    /// When set, only these ids (a token's cluster scope).
    pub ids: Option<Vec<String>>,
    pub order: ClusterOrder,
    pub descending: bool,
    /// Start after this row of the same order (the last row of the previous page): a page is
    /// then cut by key and costs what it returns, instead of stepping over every row before it.
    pub after: Option<ClusterKey>,
}

/// Where a row stands in a [`ClusterOrder`]: its sort value (the display name, the create time
/// in decimal, or the id again for the id order) and its id, which breaks ties.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterKey {
    pub sort: String,
    pub id: String,
}

impl ClusterKey {
    /// The key of `row` in `order`.
    pub fn of(row: &ClusterRow, order: ClusterOrder) -> ClusterKey {
        let sort = match order {
            ClusterOrder::Id => row.id.clone(),
            ClusterOrder::DisplayName => row.display_name.clone(),
            ClusterOrder::CreateTime => row.create_time.to_string(),
        };
        ClusterKey {
            sort,
            id: row.id.clone(),
        }
    }
}

/// One page of a cluster list.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterPage {
    pub rows: Vec<ClusterRow>,
    /// Rows matching the query, over all pages.
    pub total: i64,
}

macro_rules! filtered {
    ($query:expr) => {{
        let q: &ClusterQuery = $query;
        let mut sql = clusters::table.into_boxed();
        if let Some(provider) = &q.provider {
            sql = sql.filter(clusters::provider.eq(provider.clone()));
        }
        if let Some(state) = &q.state {
            sql = sql.filter(clusters::state.eq(state.clone()));
        }
        if let Some(region) = &q.region {
            sql = sql.filter(clusters::region.eq(region.clone()));
        }
        if let Some(ids) = &q.ids {
            sql = sql.filter(clusters::id.eq_any(ids.clone()));
        }
        for (key, value) in &q.labels {
            let with_key = cluster_labels::table.filter(cluster_labels::key.eq(key.clone()));
            sql = match value {
                Some(value) => sql.filter(
                    clusters::id.eq_any(
                        with_key
                            .filter(cluster_labels::value.eq(value.clone()))
                            .select(cluster_labels::cluster_id),
                    ),
                ),
                None => {
                    sql.filter(clusters::id.eq_any(with_key.select(cluster_labels::cluster_id)))
                }
            };
        }
        sql
    }};
}

/// The matching clusters counted from their label rows alone, when one label is all a query
/// filters on: every label row belongs to a cluster that exists (the triggers and the cascade
/// of the cluster_labels migration), so the clusters table need not be read.
macro_rules! label_count {
    ($label:expr) => {{
        let (key, value): &(String, Option<String>) = $label;
        let sql = cluster_labels::table
            .filter(cluster_labels::key.eq(key.clone()))
            .into_boxed();
        match value {
            Some(value) => sql.filter(cluster_labels::value.eq(value.clone())),
            None => sql,
        }
        .select(diesel::dsl::count(cluster_labels::cluster_id).aggregate_distinct())
    }};
}

/// A page in id order of the clusters with one label, when that label is all a query filters
/// on: the label rows are in cluster id order within a key and value (their primary key), so
/// the page's ids are an index range cut to the page, and a page costs what it returns however
/// common or rare the label is. (`id IN (every id with the label)` built the whole list for
/// every page; a correlated EXISTS walks every cluster before a rare label's match.)
macro_rules! label_page {
    ($query:expr, $label:expr, $limit:expr) => {{
        let q: &ClusterQuery = $query;
        let (key, value): &(String, Option<String>) = $label;
        let mut ids = cluster_labels::table
            .filter(cluster_labels::key.eq(key.clone()))
            .select(cluster_labels::cluster_id)
            .into_boxed();
        ids = match value {
            Some(value) => ids.filter(cluster_labels::value.eq(value.clone())),
            // Any value: one row per cluster, unless a stored JSON object repeats a key.
            None => ids.distinct(),
        };
        if let Some(after) = &q.after {
            ids = if q.descending {
                ids.filter(cluster_labels::cluster_id.lt(after.id.clone()))
            } else {
                ids.filter(cluster_labels::cluster_id.gt(after.id.clone()))
            };
        }
        ids = if q.descending {
            ids.order(cluster_labels::cluster_id.desc())
        } else {
            ids.order(cluster_labels::cluster_id.asc())
        };
        let sql = clusters::table
            .filter(clusters::id.eq_any(ids.limit($limit)))
            .into_boxed();
        // The ids are the page already; only their order is the query's.
        ordered!(sql, q).select(ClusterRow::as_select())
    }};
}

/// The one label `q` filters on, when nothing else narrows it (see [`label_count!`]).
fn only_label(q: &ClusterQuery) -> Option<&(String, Option<String>)> {
    match (
        &q.provider,
        &q.state,
        &q.region,
        &q.ids,
        q.labels.as_slice(),
    ) {
        (None, None, None, None, [label]) => Some(label),
        _ => None,
    }
}

/// The label of a page that [`label_page!`] can cut: one label as the whole filter, id order,
/// no offset.
fn by_label(q: &ClusterQuery, offset: i64) -> Option<&(String, Option<String>)> {
    only_label(q).filter(|_| q.order == ClusterOrder::Id && offset == 0)
}

/// Rows after `q.after` in `q`'s order. A range on the order's index (`sort >= value`, or `<=`
/// descending) narrowed by the tie-break, in a form both databases use the index for.
macro_rules! after_key {
    ($sql:expr, $query:expr, $time:expr) => {{
        let q: &ClusterQuery = $query;
        let sql = $sql;
        match &q.after {
            None => sql,
            Some(key) => {
                let id = key.id.clone();
                match (q.order, q.descending) {
                    (ClusterOrder::Id, false) => sql.filter(clusters::id.gt(id)),
                    (ClusterOrder::Id, true) => sql.filter(clusters::id.lt(id)),
                    (ClusterOrder::DisplayName, false) => sql.filter(
                        clusters::display_name.ge(key.sort.clone()).and(
                            clusters::display_name
                                .gt(key.sort.clone())
                                .or(clusters::id.gt(id)),
                        ),
                    ),
                    (ClusterOrder::DisplayName, true) => sql.filter(
                        clusters::display_name.le(key.sort.clone()).and(
                            clusters::display_name
                                .lt(key.sort.clone())
                                .or(clusters::id.lt(id)),
                        ),
                    ),
                    (ClusterOrder::CreateTime, descending) => {
                        let time: i64 = $time;
                        if descending {
                            sql.filter(
                                clusters::create_time
                                    .le(time)
                                    .and(clusters::create_time.lt(time).or(clusters::id.lt(id))),
                            )
                        } else {
                            sql.filter(
                                clusters::create_time
                                    .ge(time)
                                    .and(clusters::create_time.gt(time).or(clusters::id.gt(id))),
                            )
                        }
                    }
                }
            }
        }
    }};
}

macro_rules! ordered {
    ($sql:expr, $query:expr) => {{
        let q: &ClusterQuery = $query;
        match (q.order, q.descending) {
            (ClusterOrder::Id, false) => $sql.order(clusters::id.asc()),
            (ClusterOrder::Id, true) => $sql.order(clusters::id.desc()),
            (ClusterOrder::DisplayName, false) => $sql
                .order(clusters::display_name.asc())
                .then_order_by(clusters::id.asc()),
            (ClusterOrder::DisplayName, true) => $sql
                .order(clusters::display_name.desc())
                .then_order_by(clusters::id.desc()),
            (ClusterOrder::CreateTime, false) => $sql
                .order(clusters::create_time.asc())
                .then_order_by(clusters::id.asc()),
            (ClusterOrder::CreateTime, true) => $sql
                .order(clusters::create_time.desc())
                .then_order_by(clusters::id.desc()),
        }
    }};
}

impl Store {
    pub async fn insert_cluster(&self, row: &ClusterRow) -> Result<()> {
        with_conn!(self, conn => {
            diesel::insert_into(clusters::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    pub async fn get_cluster(&self, id: &str) -> Result<Option<ClusterRow>> {
        with_conn!(self, conn => {
            Ok(clusters::table
                .find(id)
                .select(ClusterRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn find_cluster_by_uid(&self, kube_system_uid: &str) -> Result<Option<ClusterRow>> {
        with_conn!(self, conn => {
            Ok(clusters::table
                .filter(clusters::kube_system_uid.eq(kube_system_uid))
                .select(ClusterRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// One page of clusters matching `query`: after `query.after` when set (and `offset` is
    /// ignored), else skipping `offset` rows. The total is counted only when the page does not
    /// tell it (a full page, an empty one past the first, or any page after a key).
    pub async fn list_clusters(
        &self,
        query: &ClusterQuery,
        offset: i64,
        limit: i64,
    ) -> Result<ClusterPage> {
        let keyed = query.after.is_some();
        // The create time of the key, checked here: the queries below cannot fail on it.
        let time = match (&query.after, query.order) {
            (Some(key), ClusterOrder::CreateTime) => {
                key.sort.parse::<i64>().map_err(|_| Error::BadKey)?
            }
            _ => 0,
        };
        let (offset, limit) = (if keyed { 0 } else { offset.max(0) }, limit.max(0));
        let total_from = move |rows: &[ClusterRow]| {
            let n = rows.len() as i64;
            (!keyed && n < limit && (n > 0 || offset == 0)).then_some(offset + n)
        };
        let _timer = self.metrics.timer(self.system_name());
        match &self.backend {
            // Both statements in one trip to a blocking thread: on SQLite every query is a hop
            // off the async runtime, and the hop costs more than the query.
            Backend::Sqlite(pool) => {
                use diesel::RunQueryDsl as Blocking;
                let mut conn = pool.get().await?;
                let query = query.clone();
                Ok(conn
                    .spawn_blocking(move |conn| {
                        let rows = match by_label(&query, offset) {
                            Some(label) => Blocking::load(label_page!(&query, label, limit), conn)?,
                            None => Blocking::load(
                                ordered!(after_key!(filtered!(&query), &query, time), &query)
                                    .offset(offset)
                                    .limit(limit)
                                    .select(ClusterRow::as_select()),
                                conn,
                            )?,
                        };
                        let total = match (total_from(&rows), only_label(&query)) {
                            (Some(total), _) => total,
                            (None, Some(label)) => Blocking::get_result(label_count!(label), conn)?,
                            (None, None) => Blocking::get_result(filtered!(&query).count(), conn)?,
                        };
                        Ok(ClusterPage { rows, total })
                    })
                    .await?)
            }
            Backend::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let conn: &mut diesel_async::AsyncPgConnection = &mut guard;
                let rows = match by_label(query, offset) {
                    Some(label) => label_page!(query, label, limit).load(conn).await?,
                    None => {
                        ordered!(after_key!(filtered!(query), query, time), query)
                            .offset(offset)
                            .limit(limit)
                            .select(ClusterRow::as_select())
                            .load(conn)
                            .await?
                    }
                };
                let total = match (total_from(&rows), only_label(query)) {
                    (Some(total), _) => total,
                    (None, Some(label)) => label_count!(label).get_result(conn).await?,
                    (None, None) => filtered!(query).count().get_result(conn).await?,
                };
                Ok(ClusterPage { rows, total })
            }
        }
    }

    /// Replaces a cluster's row if its version is still `expected_version`; bumps the version.
    pub async fn update_cluster(&self, row: &ClusterRow, expected_version: i64) -> Result<()> {
        with_conn!(self, conn => {
            let changed = diesel::update(
                clusters::table
                    .filter(clusters::id.eq(&row.id))
                    .filter(clusters::version.eq(expected_version)),
            )
            .set((
                clusters::display_name.eq(&row.display_name),
                clusters::labels.eq(&row.labels),
                clusters::state.eq(&row.state),
                clusters::endpoint.eq(&row.endpoint),
                clusters::credential_id.eq(&row.credential_id),
                clusters::access_secret_id.eq(&row.access_secret_id),
                clusters::warnings.eq(&row.warnings),
                clusters::last_operation_id.eq(&row.last_operation_id),
                clusters::vendor_cluster_id.eq(&row.vendor_cluster_id),
                clusters::kube_access.eq(&row.kube_access),
                clusters::version.eq(expected_version + 1),
                clusters::update_time.eq(row.update_time),
            ))
            .execute(conn)
            .await?;
            if changed == 1 { Ok(()) } else { Err(Error::Conflict) }
        })
    }

    /// Deletes a cluster row; true when it existed.
    pub async fn delete_cluster(&self, id: &str) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::delete(clusters::table.find(id)).execute(conn).await?;
            Ok(n == 1)
        })
    }
}

impl Store {
    /// Stores a new cluster and its encrypted access secret together, or neither.
    pub async fn insert_cluster_with_secret(
        &self,
        secret: &SecretRow,
        cluster: &ClusterRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
                {
                    diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
                    diesel::insert_into(clusters::table).values(cluster).execute(conn).await?;
                    Ok(())
                }
        })
    }

    /// Points a cluster at a new access secret (and endpoint, warnings, state and kube-system
    /// UID), deleting the old
    /// secret, if the cluster is still at `expected_version`. All or nothing.
    pub async fn replace_cluster_secret(
        &self,
        cluster: &ClusterRow,
        expected_version: i64,
        secret: &SecretRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
                {
                    let old: Option<Option<String>> = clusters::table
                        .find(&cluster.id)
                        .filter(clusters::version.eq(expected_version))
                        .select(clusters::access_secret_id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(old) = old else { return Err(Error::Conflict) };
                    diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
                    diesel::update(clusters::table.find(&cluster.id))
                        .set((
                            clusters::access_secret_id.eq(Some(&secret.id)),
                            clusters::endpoint.eq(&cluster.endpoint),
                            clusters::warnings.eq(&cluster.warnings),
                            clusters::state.eq(&cluster.state),
                            clusters::kube_system_uid.eq(&cluster.kube_system_uid),
                            clusters::version.eq(expected_version + 1),
                            clusters::update_time.eq(cluster.update_time),
                        ))
                        .execute(conn)
                        .await?;
                    if let Some(old) = old {
                        diesel::delete(secrets::table.find(old)).execute(conn).await?;
                    }
                    Ok(())
                }
        })
    }

    /// Removes a cluster's stored access (it is reached through its agent again) together with
    /// its secret, when the cluster is still at `expected_version`; `Conflict` otherwise.
    pub async fn clear_cluster_secret(
        &self,
        cluster: &ClusterRow,
        expected_version: i64,
    ) -> Result<()> {
        write_transaction!(self, conn => {
                {
                    let old: Option<Option<String>> = clusters::table
                        .find(&cluster.id)
                        .filter(clusters::version.eq(expected_version))
                        .select(clusters::access_secret_id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(old) = old else { return Err(Error::Conflict) };
                    diesel::update(clusters::table.find(&cluster.id))
                        .set((
                            clusters::access_secret_id.eq(None::<String>),
                            clusters::endpoint.eq(&cluster.endpoint),
                            clusters::warnings.eq(&cluster.warnings),
                            clusters::version.eq(expected_version + 1),
                            clusters::update_time.eq(cluster.update_time),
                        ))
                        .execute(conn)
                        .await?;
                    if let Some(old) = old {
                        diesel::delete(secrets::table.find(old)).execute(conn).await?;
                    }
                    Ok(())
                }
        })
    }

    /// Forgets a cluster and its access secret together. True when it existed.
    pub async fn delete_cluster_and_secret(&self, id: &str) -> Result<bool> {
        write_transaction!(self, conn => {
                {
                    let secret: Option<Option<String>> = clusters::table
                        .find(id)
                        .select(clusters::access_secret_id)
                        .first(conn)
                        .await
                        .optional()?;
                    let Some(secret) = secret else { return Ok(false) };
                    diesel::delete(clusters::table.find(id)).execute(conn).await?;
                    if let Some(secret) = secret {
                        diesel::delete(secrets::table.find(secret)).execute(conn).await?;
                    }
                    Ok(true)
                }
        })
    }

    /// Every cluster, for the prober. Ordered by id.
    pub async fn all_clusters(&self) -> Result<Vec<ClusterRow>> {
        with_conn!(self, conn => {
            Ok(clusters::table
                .order(clusters::id.asc())
                .select(ClusterRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Ids of clusters whose id starts with `prefix`, for choosing a free id.
    pub async fn cluster_ids_with_prefix(&self, prefix: &str) -> Result<Vec<String>> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        with_conn!(self, conn => {
            Ok(clusters::table
                .filter(clusters::id.like(pattern))
                .select(clusters::id)
                .load(conn)
                .await?)
        })
    }
}

//! Operation rows: insert (with the cluster a create makes, atomically), get, list, and the
//! worker's lease protocol — claim a due operation, save progress only while holding the lease.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    ClusterRow, Result, Store,
    schema::{clusters, operations},
    with_conn, write_transaction,
};

/// An operation as stored; `detail` is the service layer's JSON record.
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = operations)]
pub struct OperationRow {
    pub id: String,
    pub resource: String,
    pub cluster_id: String,
    pub kind: String,
    pub state: String,
    pub provider: String,
    pub request_id: Option<String>,
    pub requested_by: String,
    pub detail: String,
    pub lease_owner: Option<String>,
    pub lease_expire_time: Option<i64>,
    pub next_run_time: i64,
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
    /// The API token id `request_id` belongs to ('' for Flotilla's own work): keys are per caller.
    pub request_token: String,
    /// SHA-256 (hex) of the request that made it, without its request_id; `None` on rows from
    /// before hashes were kept.
    pub request_hash: Option<String>,
}

/// States a worker still has work to do in.
pub const ACTIVE_STATES: [&str; 4] = ["PENDING", "RUNNING", "ERROR_RETRYING", "CANCELLING"];

/// What to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct OperationQuery {
    pub resource: Option<String>,
    pub states: Vec<String>,
    pub kinds: Vec<String>,
    /// When set, only operations on these clusters (a token's scope).
    pub cluster_ids: Option<Vec<String>>,
}

macro_rules! op_filtered {
    ($query:expr) => {{
        let q: &OperationQuery = $query;
        let mut sql = operations::table.into_boxed();
        if let Some(resource) = &q.resource {
            sql = sql.filter(operations::resource.eq(resource.clone()));
        }
        if !q.states.is_empty() {
            sql = sql.filter(operations::state.eq_any(q.states.clone()));
        }
        if !q.kinds.is_empty() {
            sql = sql.filter(operations::kind.eq_any(q.kinds.clone()));
        }
        if let Some(ids) = &q.cluster_ids {
            sql = sql.filter(operations::cluster_id.eq_any(ids.clone()));
        }
        sql
    }};
}

/// Claims the most overdue unleased operation. PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas
/// sharing one database never claim the same row and never wait on each other. SQLite has one
/// writer at a time, which gives the same guarantee.
const CLAIM_POSTGRES: &str = "UPDATE operations SET lease_owner = $1, lease_expire_time = $2, \
     version = version + 1 WHERE id = (SELECT id FROM operations \
     WHERE state IN ('PENDING', 'RUNNING', 'ERROR_RETRYING', 'CANCELLING') \
     AND next_run_time <= $3 AND (lease_expire_time IS NULL OR lease_expire_time < $3) \
     ORDER BY next_run_time LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *";
const CLAIM_SQLITE: &str = "UPDATE operations SET lease_owner = ?1, lease_expire_time = ?2, \
     version = version + 1 WHERE id = (SELECT id FROM operations \
     WHERE state IN ('PENDING', 'RUNNING', 'ERROR_RETRYING', 'CANCELLING') \
     AND next_run_time <= ?3 AND (lease_expire_time IS NULL OR lease_expire_time < ?3) \
     ORDER BY next_run_time LIMIT 1) RETURNING *";

impl Store {
    pub async fn insert_operation(&self, row: &OperationRow) -> Result<()> {
        with_conn!(self, conn => {
            diesel::insert_into(operations::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    /// Inserts the cluster a create makes together with the operation that makes it.
    pub async fn insert_cluster_with_operation(
        &self,
        cluster: &ClusterRow,
        operation: &OperationRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
            diesel::insert_into(clusters::table).values(cluster).execute(conn).await?;
            diesel::insert_into(operations::table).values(operation).execute(conn).await?;
            Ok(())
        })
    }

    /// Inserts an operation and points its cluster at it, moving the cluster to `cluster_state`.
    pub async fn insert_operation_for_cluster(
        &self,
        operation: &OperationRow,
        cluster_state: Option<&str>,
    ) -> Result<()> {
        write_transaction!(self, conn => {
            diesel::insert_into(operations::table).values(operation).execute(conn).await?;
            let target = clusters::table.find(&operation.cluster_id);
            match cluster_state {
                Some(state) => diesel::update(target)
                    .set((
                        clusters::state.eq(state),
                        clusters::last_operation_id.eq(&operation.id),
                        clusters::version.eq(clusters::version + 1),
                        clusters::update_time.eq(operation.create_time),
                    ))
                    .execute(conn)
                    .await?,
                None => diesel::update(target)
                    .set((
                        clusters::last_operation_id.eq(&operation.id),
                        clusters::version.eq(clusters::version + 1),
                        clusters::update_time.eq(operation.create_time),
                    ))
                    .execute(conn)
                    .await?,
            };
            Ok(())
        })
    }

    pub async fn get_operation(&self, id: &str) -> Result<Option<OperationRow>> {
        with_conn!(self, conn => {
            Ok(operations::table
                .find(id)
                .select(OperationRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// The operation `token` made with `request_id` (idempotency keys are per token).
    pub async fn operation_by_request_id(
        &self,
        token: &str,
        request_id: &str,
    ) -> Result<Option<OperationRow>> {
        with_conn!(self, conn => {
            Ok(operations::table
                .filter(operations::request_token.eq(token))
                .filter(operations::request_id.eq(request_id))
                .select(OperationRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Operations on `resource` that a worker still has work to do in.
    pub async fn active_operations_on(&self, cluster_id: &str) -> Result<Vec<OperationRow>> {
        with_conn!(self, conn => {
            Ok(operations::table
                .filter(operations::cluster_id.eq(cluster_id))
                .filter(operations::state.eq_any(ACTIVE_STATES))
                .select(OperationRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// One page, newest first, and the number of matches.
    pub async fn list_operations(
        &self,
        query: &OperationQuery,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<OperationRow>, i64)> {
        with_conn!(self, conn => {
            let total: i64 = op_filtered!(query).count().get_result(conn).await?;
            let rows = op_filtered!(query)
                .order(operations::create_time.desc())
                .then_order_by(operations::id.desc())
                .offset(offset)
                .limit(limit)
                .select(OperationRow::as_select())
                .load(conn)
                .await?;
            Ok((rows, total))
        })
    }

    /// Claims one due operation for `owner` until `lease_until`.
    pub async fn claim_operation(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<OperationRow>> {
        use diesel::sql_types::{BigInt, Text};
        match &self.backend {
            super::Backend::Sqlite(pool) => {
                let mut guard = pool.get().await?;
                let conn: &mut super::SqliteConn = &mut guard;
                Ok(diesel::sql_query(CLAIM_SQLITE)
                    .bind::<Text, _>(owner)
                    .bind::<BigInt, _>(lease_until)
                    .bind::<BigInt, _>(now)
                    .get_result::<OperationRow>(conn)
                    .await
                    .optional()?)
            }
            super::Backend::Postgres(pool) => {
                let mut guard = pool.get().await?;
                let conn: &mut diesel_async::AsyncPgConnection = &mut guard;
                Ok(diesel::sql_query(CLAIM_POSTGRES)
                    .bind::<Text, _>(owner)
                    .bind::<BigInt, _>(lease_until)
                    .bind::<BigInt, _>(now)
                    .get_result::<OperationRow>(conn)
                    .await
                    .optional()?)
            }
        }
    }

    /// Saves a worker's progress; only the lease holder can. Returns false when the lease was
    /// lost (it expired and another worker claimed the operation).
    pub async fn save_operation(&self, row: &OperationRow, owner: &str) -> Result<bool> {
        with_conn!(self, conn => {
            let updated = diesel::update(
                operations::table
                    .filter(operations::id.eq(&row.id))
                    .filter(operations::lease_owner.eq(owner)),
            )
            .set((
                operations::state.eq(&row.state),
                operations::detail.eq(&row.detail),
                operations::lease_owner.eq(&row.lease_owner),
                operations::lease_expire_time.eq(row.lease_expire_time),
                operations::next_run_time.eq(row.next_run_time),
                operations::version.eq(operations::version + 1),
                operations::update_time.eq(row.update_time),
            ))
            .execute(conn)
            .await?;
            Ok(updated == 1)
        })
    }

    /// Extends a held lease. Returns false when it was lost.
    pub async fn renew_lease(&self, id: &str, owner: &str, until: i64) -> Result<bool> {
        with_conn!(self, conn => {
            let updated = diesel::update(
                operations::table
                    .filter(operations::id.eq(id))
                    .filter(operations::lease_owner.eq(owner)),
            )
            .set(operations::lease_expire_time.eq(until))
            .execute(conn)
            .await?;
            Ok(updated == 1)
        })
    }

    /// Replaces an operation nobody holds a live lease on, if it is still at `expected_version`
    /// (cancel and retry from the API). Returns false when it changed or a worker holds it.
    pub async fn replace_idle_operation(
        &self,
        row: &OperationRow,
        expected_version: i64,
        now: i64,
    ) -> Result<bool> {
        with_conn!(self, conn => {
            let updated = diesel::update(
                operations::table
                    .filter(operations::id.eq(&row.id))
                    .filter(operations::version.eq(expected_version))
                    .filter(
                        operations::lease_expire_time
                            .is_null()
                            .or(operations::lease_expire_time.lt(now)),
                    ),
            )
            .set((
                operations::state.eq(&row.state),
                operations::detail.eq(&row.detail),
                operations::lease_owner.eq(None::<String>),
                operations::lease_expire_time.eq(None::<i64>),
                operations::next_run_time.eq(row.next_run_time),
                operations::version.eq(operations::version + 1),
                operations::update_time.eq(row.update_time),
            ))
            .execute(conn)
            .await?;
            Ok(updated == 1)
        })
    }

    /// Sets a cluster's lifecycle state (and, when given, its vendor id and endpoint) from an
    /// operation's worker.
    pub async fn set_cluster_lifecycle(
        &self,
        cluster_id: &str,
        state: &str,
        vendor_cluster_id: Option<&str>,
        now: i64,
    ) -> Result<()> {
        with_conn!(self, conn => {
            let target = clusters::table.find(cluster_id);
            match vendor_cluster_id {
                Some(vendor_id) => diesel::update(target)
                    .set((
                        clusters::state.eq(state),
                        clusters::vendor_cluster_id.eq(vendor_id),
                        clusters::version.eq(clusters::version + 1),
                        clusters::update_time.eq(now),
                    ))
                    .execute(conn)
                    .await?,
                None => diesel::update(target)
                    .set((
                        clusters::state.eq(state),
                        clusters::version.eq(clusters::version + 1),
                        clusters::update_time.eq(now),
                    ))
                    .execute(conn)
                    .await?,
            };
            Ok(())
        })
    }
}

//! Replicas and per-cluster leases: which `flotilla serve` process probes a cluster and keeps its
//! watch caches, and the status it last observed. Every statement is a single conditional write,
//! so replicas sharing one database agree without talking to each other:
//!
//! - a replica renews only leases it still holds (`owner = me`);
//! - it claims only a cluster with no lease or an expired one, with one `INSERT … ON CONFLICT DO
//!   UPDATE … WHERE expire_time < now`: of two replicas racing for the same cluster, the second
//!   waits on the primary key, then finds the lease live and gets nothing back;
//! - status rows and lease rows reference the cluster `ON DELETE CASCADE`, so detaching a
//!   cluster leaves nothing behind, and a status written after the detach fails instead of
//!   recreating a row.

use diesel::{
    prelude::*,
    sql_types::{BigInt, Text},
};
use diesel_async::RunQueryDsl;

use super::{
    BackendKind, Result, Store,
    schema::{cluster_leases, cluster_status, clusters, replicas},
    with_conn,
};

/// A replica's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = replicas)]
pub struct ReplicaRow {
    pub id: String,
    pub start_time: i64,
    pub heartbeat_time: i64,
    /// The replica counts as alive until then.
    pub expire_time: i64,
}

/// Who holds a cluster, until when.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = cluster_leases)]
pub struct ClusterLeaseRow {
    pub cluster_id: String,
    pub owner: String,
    pub expire_time: i64,
    pub acquire_time: i64,
}

/// What a replica last observed of a cluster; `status` is the service layer's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = cluster_status)]
pub struct ClusterStatusRow {
    pub cluster_id: String,
    pub observed_by: String,
    pub status: String,
    pub observed_time: i64,
}

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = Text)]
    cluster_id: String,
}

/// Claims up to `$4` clusters that have no lease or an expired one, for owner `$1` until `$2`,
/// at time `$3`. The `WHERE` of the conflict branch re-checks expiry under the row lock, so a
/// lease renewed meanwhile is never stolen. (PostgreSQL cannot `FOR UPDATE` the nullable side
/// of the outer join; the conditional upsert gives the same guarantee: at most one winner.)
const CLAIM: &str = "INSERT INTO cluster_leases (cluster_id, owner, expire_time, acquire_time) \
     SELECT c.id, $1, $2, $3 FROM clusters c \
     LEFT JOIN cluster_leases l ON l.cluster_id = c.id \
     WHERE l.cluster_id IS NULL OR l.expire_time < $3 \
     ORDER BY c.id LIMIT $4 \
     ON CONFLICT (cluster_id) DO UPDATE SET owner = excluded.owner, \
     expire_time = excluded.expire_time, acquire_time = excluded.acquire_time \
     WHERE cluster_leases.expire_time < $3 \
     RETURNING cluster_id";

/// SQLite numbers its parameters `?N`; PostgreSQL `$N`.
fn dialect(kind: BackendKind, sql: &str) -> String {
    match kind {
        BackendKind::Postgres => sql.to_string(),
        BackendKind::Sqlite => sql.replace('$', "?"),
    }
}

impl Store {
    /// Records that replica `id` is alive until `until`.
    pub async fn heartbeat_replica(&self, id: &str, now: i64, until: i64) -> Result<()> {
        let row = ReplicaRow {
            id: id.to_string(),
            start_time: now,
            heartbeat_time: now,
            expire_time: until,
        };
        with_conn!(self, conn => {
            diesel::insert_into(replicas::table)
                .values(&row)
                .on_conflict(replicas::id)
                .do_update()
                .set((
                    replicas::heartbeat_time.eq(now),
                    replicas::expire_time.eq(until),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// Replicas whose heartbeat has not expired at `now`, by id.
    pub async fn live_replicas(&self, now: i64) -> Result<Vec<ReplicaRow>> {
        with_conn!(self, conn => {
            Ok(replicas::table
                .filter(replicas::expire_time.ge(now))
                .order(replicas::id.asc())
                .select(ReplicaRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Forgets replicas whose heartbeat expired before `before`; returns how many.
    pub async fn prune_replicas(&self, before: i64) -> Result<usize> {
        with_conn!(self, conn => {
            Ok(diesel::delete(replicas::table.filter(replicas::expire_time.lt(before)))
                .execute(conn)
                .await?)
        })
    }

    /// A replica leaving cleanly: its heartbeat and every lease it holds go at once, so the
    /// others take its clusters on their next round instead of after the lease expires.
    pub async fn retire_replica(&self, id: &str) -> Result<()> {
        with_conn!(self, conn => {
            diesel::delete(cluster_leases::table.filter(cluster_leases::owner.eq(id)))
                .execute(conn)
                .await?;
            diesel::delete(replicas::table.find(id)).execute(conn).await?;
            Ok(())
        })
    }

    pub async fn count_clusters(&self) -> Result<i64> {
        with_conn!(self, conn => {
            Ok(clusters::table.count().get_result(conn).await?)
        })
    }

    /// Extends every lease `owner` still holds to `until`; returns those clusters, by id.
    pub async fn renew_cluster_leases(&self, owner: &str, until: i64) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            let mut ids: Vec<String> = diesel::update(
                cluster_leases::table.filter(cluster_leases::owner.eq(owner)),
            )
            .set(cluster_leases::expire_time.eq(until))
            .returning(cluster_leases::cluster_id)
            .get_results(conn)
            .await?;
            ids.sort();
            Ok(ids)
        })
    }

    /// Gives up `owner`'s leases on `ids` (rebalancing); returns how many it held.
    pub async fn release_cluster_leases(&self, owner: &str, ids: &[String]) -> Result<usize> {
        with_conn!(self, conn => {
            Ok(diesel::delete(
                cluster_leases::table
                    .filter(cluster_leases::owner.eq(owner))
                    .filter(cluster_leases::cluster_id.eq_any(ids)),
            )
            .execute(conn)
            .await?)
        })
    }

    /// Claims up to `limit` clusters nobody holds a live lease on, for `owner` until `until`;
    /// returns the ones it got, by id.
    pub async fn claim_cluster_leases(
        &self,
        owner: &str,
        now: i64,
        until: i64,
        limit: i64,
    ) -> Result<Vec<String>> {
        if limit <= 0 {
            return Ok(Vec::new());
        }
        let sql = dialect(self.kind(), CLAIM);
        with_conn!(self, conn => {
            let claimed: Vec<ClaimedId> = diesel::sql_query(sql.as_str())
                .bind::<Text, _>(owner)
                .bind::<BigInt, _>(until)
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(limit)
                .load(conn)
                .await?;
            let mut ids: Vec<String> = claimed.into_iter().map(|c| c.cluster_id).collect();
            ids.sort();
            Ok(ids)
        })
    }

    /// Takes the lease on `cluster_id` for `owner` until `until`, whoever held it: the replica an
    /// agent's tunnel is attached to must own that cluster (the newest tunnel wins, as on one
    /// replica). False when the cluster does not exist (detached meanwhile).
    pub async fn take_cluster_lease(
        &self,
        owner: &str,
        cluster_id: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let written: Result<usize> = with_conn!(self, conn => {
            diesel::insert_into(cluster_leases::table)
                .values((
                    cluster_leases::cluster_id.eq(cluster_id),
                    cluster_leases::owner.eq(owner),
                    cluster_leases::expire_time.eq(until),
                    cluster_leases::acquire_time.eq(now),
                ))
                .on_conflict(cluster_leases::cluster_id)
                .do_update()
                .set((
                    cluster_leases::owner.eq(owner),
                    cluster_leases::expire_time.eq(until),
                    cluster_leases::acquire_time.eq(now),
                ))
                .execute(conn)
                .await
                .map_err(super::Error::from)
        });
        match written {
            Ok(n) => Ok(n > 0),
            Err(super::Error::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ))) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Every lease row, by cluster id.
    pub async fn cluster_leases(&self) -> Result<Vec<ClusterLeaseRow>> {
        with_conn!(self, conn => {
            Ok(cluster_leases::table
                .order(cluster_leases::cluster_id.asc())
                .select(ClusterLeaseRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Stores what a replica observed. Returns false when the cluster is gone (detached while
    /// it was being probed): no row is left behind for it.
    pub async fn save_cluster_status(&self, row: &ClusterStatusRow) -> Result<bool> {
        // No `?` on the write itself: a foreign-key failure is an answer here, not an error.
        let written: Result<usize> = with_conn!(self, conn => {
            diesel::insert_into(cluster_status::table)
                .values(row)
                .on_conflict(cluster_status::cluster_id)
                .do_update()
                .set((
                    cluster_status::observed_by.eq(&row.observed_by),
                    cluster_status::status.eq(&row.status),
                    cluster_status::observed_time.eq(row.observed_time),
                ))
                .execute(conn)
                .await
                .map_err(super::Error::from)
        });
        match written {
            Ok(n) => Ok(n == 1),
            Err(super::Error::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ))) => Ok(false),
            Err(other) => Err(other),
        }
    }

    /// Every stored status, by cluster id.
    pub async fn cluster_statuses(&self) -> Result<Vec<ClusterStatusRow>> {
        with_conn!(self, conn => {
            Ok(cluster_status::table
                .order(cluster_status::cluster_id.asc())
                .select(ClusterStatusRow::as_select())
                .load(conn)
                .await?)
        })
    }
}

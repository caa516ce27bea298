//! API tokens and the audit log.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    ApiTokenRow, AuditRow, Result, Store,
    schema::{api_tokens, audit_events},
    with_conn, write_transaction,
};

/// Filters for the audit log; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub token_name: Option<String>,
    pub method: Option<String>,
    pub cluster_id: Option<String>,
    pub result_code: Option<String>,
    pub since: Option<i64>,
    pub before: Option<i64>,
}

impl Store {
    pub async fn insert_token(&self, row: &ApiTokenRow) -> Result<()> {
        with_conn!(self, conn => {
            diesel::insert_into(api_tokens::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<ApiTokenRow>> {
        with_conn!(self, conn => {
            Ok(api_tokens::table
                .filter(api_tokens::secret_hash.eq(hash))
                .select(ApiTokenRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn token_by_id(&self, id: &str) -> Result<Option<ApiTokenRow>> {
        with_conn!(self, conn => {
            Ok(api_tokens::table
                .find(id)
                .select(ApiTokenRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn token_by_name(&self, name: &str) -> Result<Option<ApiTokenRow>> {
        with_conn!(self, conn => {
            Ok(api_tokens::table
                .filter(api_tokens::name.eq(name))
                .select(ApiTokenRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn count_tokens(&self) -> Result<i64> {
        with_conn!(self, conn => Ok(api_tokens::table.count().get_result(conn).await?))
    }

    /// Tokens ordered by creation, optionally with revoked ones.
    pub async fn list_tokens(&self, show_revoked: bool) -> Result<Vec<ApiTokenRow>> {
        with_conn!(self, conn => {
            let mut sql = api_tokens::table.into_boxed();
            if !show_revoked {
                sql = sql.filter(api_tokens::revoke_time.is_null());
            }
            Ok(sql
                .order((api_tokens::create_time.asc(), api_tokens::id.asc()))
                .select(ApiTokenRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Marks a token revoked (once). True if it was active.
    pub async fn revoke_token(&self, id: &str, at: i64) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::update(
                api_tokens::table
                    .find(id)
                    .filter(api_tokens::revoke_time.is_null()),
            )
            .set(api_tokens::revoke_time.eq(Some(at)))
            .execute(conn)
            .await?;
            Ok(n == 1)
        })
    }

    pub async fn touch_token(&self, id: &str, at: i64) -> Result<()> {
        with_conn!(self, conn => {
            diesel::update(api_tokens::table.find(id))
                .set(api_tokens::last_used_time.eq(Some(at)))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    pub async fn insert_audit_events(&self, rows: &[AuditRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        // One statement per row inside one transaction: portable, and one fsync per batch.
        write_transaction!(self, conn => {
                for row in rows {
                    diesel::insert_into(audit_events::table).values(row).execute(conn).await?;
                }
                Ok(())
        })
    }

    /// Inserts count rows, or adds their `call_count` to rows with the same id (another write
    /// of the same address and minute, from this replica or another).
    pub async fn add_audit_counts(&self, rows: &[AuditRow]) -> Result<()> {
        use diesel::upsert::excluded;
        if rows.is_empty() {
            return Ok(());
        }
        write_transaction!(self, conn => {
                for row in rows {
                    diesel::insert_into(audit_events::table)
                        .values(row)
                        .on_conflict(audit_events::id)
                        .do_update()
                        .set(
                            audit_events::call_count
                                .eq(audit_events::call_count + excluded(audit_events::call_count)),
                        )
                        .execute(conn)
                        .await?;
                }
                Ok(())
        })
    }

    /// Deletes audit rows older than `cutoff` (milliseconds), in batches so that a large backlog
    /// does not hold the write lock for long. Returns how many were deleted.
    pub async fn delete_audit_events_before(&self, cutoff: i64) -> Result<usize> {
        const BATCH: i64 = 5_000;
        let mut deleted = 0;
        loop {
            let n = with_conn!(self, conn => {
                let old: Vec<String> = audit_events::table
                    .filter(audit_events::time.lt(cutoff))
                    .select(audit_events::id)
                    .limit(BATCH)
                    .load(conn)
                    .await?;
                diesel::delete(audit_events::table.filter(audit_events::id.eq_any(old)))
                    .execute(conn)
                    .await
            })?;
            deleted += n;
            if (n as i64) < BATCH {
                return Ok(deleted);
            }
        }
    }

    /// Newest first; `(rows, total)`.
    pub async fn list_audit_events(
        &self,
        query: &AuditQuery,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditRow>, i64)> {
        macro_rules! filtered {
            () => {{
                let mut sql = audit_events::table.into_boxed();
                if let Some(v) = &query.token_name {
                    sql = sql.filter(audit_events::token_name.eq(v.clone()));
                }
                if let Some(v) = &query.method {
                    sql = sql.filter(audit_events::method.eq(v.clone()));
                }
                if let Some(v) = &query.cluster_id {
                    sql = sql.filter(audit_events::cluster_id.eq(v.clone()));
                }
                if let Some(v) = &query.result_code {
                    sql = sql.filter(audit_events::result_code.eq(v.clone()));
                }
                if let Some(v) = query.since {
                    sql = sql.filter(audit_events::time.ge(v));
                }
                if let Some(v) = query.before {
                    sql = sql.filter(audit_events::time.lt(v));
                }
                sql
            }};
        }
        with_conn!(self, conn => {
            let total: i64 = filtered!().count().get_result(conn).await?;
            let rows = filtered!()
                .order((audit_events::time.desc(), audit_events::id.desc()))
                .offset(offset)
                .limit(limit)
                .select(AuditRow::as_select())
                .load(conn)
                .await?;
            Ok((rows, total))
        })
    }
}

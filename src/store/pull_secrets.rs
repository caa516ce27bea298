//! Pull secret rows: what Flotilla wrote into which cluster and namespace for which registry,
//! and under which issued credential. No password is stored: it lives only in the cluster's
//! Secret. Rows are keyed by (registry, cluster, namespace, Secret name); writing the same
//! target again replaces the row.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Result, Store, schema::pull_secrets, with_conn};

/// One Secret Flotilla wrote.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = pull_secrets, treat_none_as_null = true)]
pub struct PullSecretRow {
    pub id: String,
    pub registry_id: String,
    pub cluster_id: String,
    pub namespace: String,
    pub secret_name: String,
    /// The ServiceAccount it was attached to ('' for none).
    pub service_account: String,
    /// JSON array of the registry namespaces (projects) the credential may pull from.
    pub registry_namespaces: String,
    /// The vendor's id of the issued credential (a Harbor robot account id), to revoke it.
    pub vendor_credential_id: Option<String>,
    /// The issued credential's username (never its password).
    pub username: String,
    pub issue_time: i64,
    pub expire_time: Option<i64>,
    /// The registry's credential the pull credential was issued under, and its rotation time:
    /// when either changes, the Secret is rewritten.
    pub registry_credential_id: Option<String>,
    pub registry_credential_version: i64,
    /// "created", "updated", "unchanged" or "failed" (the last attempt to write it).
    pub outcome: String,
    pub message: String,
    pub create_time: i64,
    pub update_time: i64,
}

impl Store {
    /// Records what was written to a target: inserts the row, or replaces the one of the same
    /// (registry, cluster, namespace, Secret name), keeping its id and create time.
    pub async fn upsert_pull_secret(&self, row: &PullSecretRow) -> Result<()> {
        with_conn!(self, conn => {
            let existing: Option<(String, i64)> = pull_secrets::table
                .filter(pull_secrets::registry_id.eq(&row.registry_id))
                .filter(pull_secrets::cluster_id.eq(&row.cluster_id))
                .filter(pull_secrets::namespace.eq(&row.namespace))
                .filter(pull_secrets::secret_name.eq(&row.secret_name))
                .select((pull_secrets::id, pull_secrets::create_time))
                .first(conn)
                .await
                .optional()?;
            match existing {
                None => {
                    diesel::insert_into(pull_secrets::table).values(row).execute(conn).await?;
                }
                Some((id, create_time)) => {
                    let replacement = PullSecretRow { id: id.clone(), create_time, ..row.clone() };
                    diesel::update(pull_secrets::table.find(&id))
                        .set(&replacement)
                        .execute(conn)
                        .await?;
                }
            }
            Ok(())
        })
    }

    /// Records the outcome of a failed rewrite, leaving what the row says was written.
    pub async fn mark_pull_secret(
        &self,
        id: &str,
        outcome: &str,
        message: &str,
        now: i64,
    ) -> Result<()> {
        with_conn!(self, conn => {
            diesel::update(pull_secrets::table.find(id))
                .set((
                    pull_secrets::outcome.eq(outcome),
                    pull_secrets::message.eq(message),
                    pull_secrets::update_time.eq(now),
                ))
                .execute(conn)
                .await?;
            Ok(())
        })
    }

    /// The pull secrets written for a registry, by cluster, namespace and name.
    pub async fn pull_secrets_of_registry(&self, registry_id: &str) -> Result<Vec<PullSecretRow>> {
        with_conn!(self, conn => {
            Ok(pull_secrets::table
                .filter(pull_secrets::registry_id.eq(registry_id))
                .order((
                    pull_secrets::cluster_id.asc(),
                    pull_secrets::namespace.asc(),
                    pull_secrets::secret_name.asc(),
                ))
                .select(PullSecretRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Every pull secret, for the renewal scheduler.
    pub async fn all_pull_secrets(&self) -> Result<Vec<PullSecretRow>> {
        with_conn!(self, conn => {
            Ok(pull_secrets::table
                .order((pull_secrets::registry_id.asc(), pull_secrets::id.asc()))
                .select(PullSecretRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Forgets one pull secret (its cluster was forgotten).
    pub async fn delete_pull_secret(&self, id: &str) -> Result<()> {
        with_conn!(self, conn => {
            diesel::delete(pull_secrets::table.find(id)).execute(conn).await?;
            Ok(())
        })
    }

    /// How many Secrets of `registry_id` still hold the credential the vendor knows as
    /// `vendor_credential_id`: it may be revoked only at zero.
    pub async fn pull_secrets_holding(
        &self,
        registry_id: &str,
        vendor_credential_id: &str,
    ) -> Result<i64> {
        with_conn!(self, conn => {
            Ok(pull_secrets::table
                .filter(pull_secrets::registry_id.eq(registry_id))
                .filter(pull_secrets::vendor_credential_id.eq(vendor_credential_id))
                .count()
                .get_result(conn)
                .await?)
        })
    }
}

//! Encrypted secret rows. The store sees only ciphertext.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Result, SecretRow, Store,
    schema::{clusters, credentials, secrets},
    with_conn,
};

impl Store {
    pub async fn insert_secret(&self, row: &SecretRow) -> Result<()> {
        with_conn!(self, conn => {
            diesel::insert_into(secrets::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    pub async fn get_secret(&self, id: &str) -> Result<Option<SecretRow>> {
        with_conn!(self, conn => {
            Ok(secrets::table
                .find(id)
                .select(SecretRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    pub async fn delete_secret(&self, id: &str) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::delete(secrets::table.find(id)).execute(conn).await?;
            Ok(n == 1)
        })
    }
}

impl Store {
    /// Ids of secrets sealed under a key other than `key_id` (for master key rotation).
    pub async fn secret_ids_not_under_key(&self, key_id: &str) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            Ok(secrets::table
                .filter(secrets::key_id.ne(key_id))
                .select(secrets::id)
                .load(conn)
                .await?)
        })
    }

    /// Ids of secrets that need re-sealing: under a key other than `key_id`, or sealed with
    /// associated data older than `aad_version`.
    pub async fn secret_ids_to_reseal(
        &self,
        key_id: &str,
        aad_version: i32,
    ) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            Ok(secrets::table
                .filter(
                    secrets::key_id
                        .ne(key_id)
                        .or(secrets::aad_version.lt(aad_version)),
                )
                .order(secrets::id.asc())
                .select(secrets::id)
                .load(conn)
                .await?)
        })
    }

    /// Ids of secrets sealed with associated data older than `aad_version`.
    pub async fn secret_ids_below_aad_version(&self, aad_version: i32) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            Ok(secrets::table
                .filter(secrets::aad_version.lt(aad_version))
                .order(secrets::id.asc())
                .select(secrets::id)
                .load(conn)
                .await?)
        })
    }

    /// Who points at each secret: `(secret id, owner kind, owner id)` with kind `cluster` (its
    /// access) or `credential`.
    pub async fn secret_owners(&self) -> Result<Vec<(String, &'static str, String)>> {
        with_conn!(self, conn => {
            let clusters: Vec<(Option<String>, String)> = clusters::table
                .filter(clusters::access_secret_id.is_not_null())
                .select((clusters::access_secret_id, clusters::id))
                .load(conn)
                .await?;
            let credentials: Vec<(String, String)> = credentials::table
                .select((credentials::secret_id, credentials::id))
                .load(conn)
                .await?;
            Ok(clusters
                .into_iter()
                .filter_map(|(secret, id)| secret.map(|secret| (secret, "cluster", id)))
                .chain(
                    credentials
                        .into_iter()
                        .map(|(secret, id)| (secret, "credential", id)),
                )
                .collect())
        })
    }

    /// Replaces a secret's ciphertext if it is still exactly `old` (same key and nonce: nobody
    /// re-sealed it meanwhile). True if replaced.
    pub async fn reseal_secret(&self, old: &SecretRow, fresh: &SecretRow) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::update(
                secrets::table
                    .find(&old.id)
                    .filter(secrets::key_id.eq(&old.key_id))
                    .filter(secrets::nonce.eq(&old.nonce)),
            )
            .set((
                secrets::key_id.eq(&fresh.key_id),
                secrets::nonce.eq(&fresh.nonce),
                secrets::ciphertext.eq(&fresh.ciphertext),
                secrets::update_time.eq(fresh.update_time),
                secrets::aad_version.eq(fresh.aad_version),
            ))
            .execute(conn)
            .await?;
            Ok(n == 1)
        })
    }
}

impl Store {
    /// Number of stored secrets (tests check nothing is left behind).
    pub async fn count_secrets(&self) -> Result<i64> {
        with_conn!(self, conn => Ok(secrets::table.count().get_result(conn).await?))
    }
}

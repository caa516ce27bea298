//! Encrypted secret rows. The store sees only ciphertext.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{Result, SecretRow, Store, schema::secrets, with_conn};

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

    /// Replaces a secret's ciphertext if it is still sealed under `old_key_id`. True if replaced.
    pub async fn reseal_secret(&self, old_key_id: &str, row: &SecretRow) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::update(
                secrets::table
                    .find(&row.id)
                    .filter(secrets::key_id.eq(old_key_id)),
            )
            .set((
                secrets::key_id.eq(&row.key_id),
                secrets::nonce.eq(&row.nonce),
                secrets::ciphertext.eq(&row.ciphertext),
                secrets::update_time.eq(row.update_time),
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

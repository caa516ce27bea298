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

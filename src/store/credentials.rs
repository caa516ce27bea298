//! Credential rows, always written together with their secret.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    CredentialRow, Error, Result, SecretRow, Store,
    schema::{clusters, credentials, secrets},
    with_conn, write_transaction,
};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct CredentialQuery {
    pub provider: Option<String>,
    pub kind: Option<String>,
}

impl Store {
    pub async fn insert_credential_with_secret(
        &self,
        secret: &SecretRow,
        credential: &CredentialRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
                diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
                diesel::insert_into(credentials::table).values(credential).execute(conn).await?;
                Ok(())
        })
    }

    pub async fn get_credential(&self, id: &str) -> Result<Option<CredentialRow>> {
        with_conn!(self, conn => {
            Ok(credentials::table
                .find(id)
                .select(CredentialRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// Every credential matching `query`, ordered by id (label filters are applied by the
    /// caller).
    pub async fn list_credentials(&self, query: &CredentialQuery) -> Result<Vec<CredentialRow>> {
        with_conn!(self, conn => {
            let mut sql = credentials::table.into_boxed();
            if let Some(provider) = &query.provider {
                sql = sql.filter(credentials::provider.eq(provider.clone()));
            }
            if let Some(kind) = &query.kind {
                sql = sql.filter(credentials::kind.eq(kind.clone()));
            }
            Ok(sql
                .order(credentials::id.asc())
                .select(CredentialRow::as_select())
                .load(conn)
                .await?)
        })
    }

    /// Ids of clusters that use the credential.
    pub async fn clusters_using_credential(&self, id: &str) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            Ok(clusters::table
                .filter(clusters::credential_id.eq(id))
                .order(clusters::id.asc())
                .select(clusters::id)
                .load(conn)
                .await?)
        })
    }

    /// Swaps in a new secret (and principal) for a credential and deletes the old secret.
    pub async fn rotate_credential_secret(
        &self,
        id: &str,
        principal: &str,
        secret: &SecretRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
                let old: Option<String> = credentials::table
                    .find(id)
                    .select(credentials::secret_id)
                    .first(conn)
                    .await
                    .optional()?;
                let Some(old) = old else { return Err(Error::Conflict) };
                diesel::insert_into(secrets::table).values(secret).execute(conn).await?;
                diesel::update(credentials::table.find(id))
                    .set((
                        credentials::secret_id.eq(&secret.id),
                        credentials::principal.eq(principal),
                        credentials::rotate_time.eq(secret.create_time),
                    ))
                    .execute(conn)
                    .await?;
                diesel::delete(secrets::table.find(old)).execute(conn).await?;
                Ok(())
        })
    }

    /// Deletes a credential and its secret unless a cluster uses it. `Ok(Err(users))` names the
    /// users when it is in use; `Ok(Ok(false))` when it did not exist.
    pub async fn delete_unused_credential(
        &self,
        id: &str,
    ) -> Result<std::result::Result<bool, Vec<String>>> {
        write_transaction!(self, conn => {
                let users: Vec<String> = clusters::table
                    .filter(clusters::credential_id.eq(id))
                    .order(clusters::id.asc())
                    .select(clusters::id)
                    .load(conn)
                    .await?;
                if !users.is_empty() {
                    return Ok(Err(users));
                }
                let secret: Option<String> = credentials::table
                    .find(id)
                    .select(credentials::secret_id)
                    .first(conn)
                    .await
                    .optional()?;
                let Some(secret) = secret else { return Ok(Ok(false)) };
                diesel::delete(credentials::table.find(id)).execute(conn).await?;
                diesel::delete(secrets::table.find(secret)).execute(conn).await?;
                Ok(Ok(true))
        })
    }
}

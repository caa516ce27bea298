//! Registry rows: insert, get, list with filters and paging, update, delete. A registry holds
//! no secret of its own: its credential is a reference into `credentials`.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    Error, Result, Store,
    schema::{clusters, credentials, registries, secrets},
    with_conn, write_transaction,
};

/// What keeps a credential from being deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialUsers {
    pub clusters: Vec<String>,
    pub registries: Vec<String>,
}

impl CredentialUsers {
    pub fn is_empty(&self) -> bool {
        self.clusters.is_empty() && self.registries.is_empty()
    }
}

/// A registry as stored: identity and how to reach it. Observed status lives in memory.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = registries)]
pub struct RegistryRow {
    pub id: String,
    pub display_name: String,
    /// JSON object of label key → value.
    pub labels: String,
    pub provider: String,
    pub endpoint: String,
    pub region: String,
    pub vendor_instance_id: String,
    /// `None` for an anonymous registry.
    pub credential_id: Option<String>,
    /// PEM CA bundle for a registry with a private CA (public material, not a secret).
    pub ca_pem: Option<String>,
    /// Incremented on every change.
    pub version: i64,
    pub create_time: i64,
    pub update_time: i64,
}

/// What to list. Label conditions are matched after the SQL filters (labels are JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryQuery {
    pub provider: Option<String>,
    /// Every (key, value) must match; a value of `None` only requires the key.
    pub labels: Vec<(String, Option<String>)>,
}

/// One page of a registry list.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryPage {
    pub rows: Vec<RegistryRow>,
    /// Rows matching the query, over all pages.
    pub total: i64,
}

impl Store {
    pub async fn insert_registry(&self, row: &RegistryRow) -> Result<()> {
        with_conn!(self, conn => {
            diesel::insert_into(registries::table).values(row).execute(conn).await?;
            Ok(())
        })
    }

    pub async fn get_registry(&self, id: &str) -> Result<Option<RegistryRow>> {
        with_conn!(self, conn => {
            Ok(registries::table
                .find(id)
                .select(RegistryRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }

    /// One page of registries matching `query`, ordered by id, skipping `offset` rows.
    pub async fn list_registries(
        &self,
        query: &RegistryQuery,
        offset: i64,
        limit: i64,
    ) -> Result<RegistryPage> {
        let all: Vec<RegistryRow> = with_conn!(self, conn => {
            let mut sql = registries::table.into_boxed();
            if let Some(provider) = &query.provider {
                sql = sql.filter(registries::provider.eq(provider.clone()));
            }
            sql.order(registries::id.asc())
                .select(RegistryRow::as_select())
                .load(conn)
                .await?
        });
        // Labels are a JSON column whose query syntax differs per backend: matched here.
        let matching: Vec<RegistryRow> = all
            .into_iter()
            .filter(|row| labels_match(&row.labels, &query.labels))
            .collect();
        let total = matching.len() as i64;
        let rows = matching
            .into_iter()
            .skip(offset.max(0) as usize)
            .take(limit.max(0) as usize)
            .collect();
        Ok(RegistryPage { rows, total })
    }

    /// Every registry, for the prober. Ordered by id.
    pub async fn all_registries(&self) -> Result<Vec<RegistryRow>> {
        self.list_registries(&RegistryQuery::default(), 0, i64::MAX)
            .await
            .map(|page| page.rows)
    }

    /// Replaces a registry's changeable fields if its version is still `expected_version`;
    /// bumps the version.
    pub async fn update_registry(&self, row: &RegistryRow, expected_version: i64) -> Result<()> {
        with_conn!(self, conn => {
            let changed = diesel::update(
                registries::table
                    .filter(registries::id.eq(&row.id))
                    .filter(registries::version.eq(expected_version)),
            )
            .set((
                registries::display_name.eq(&row.display_name),
                registries::labels.eq(&row.labels),
                registries::credential_id.eq(&row.credential_id),
                registries::version.eq(expected_version + 1),
                registries::update_time.eq(row.update_time),
            ))
            .execute(conn)
            .await?;
            if changed == 1 { Ok(()) } else { Err(Error::Conflict) }
        })
    }

    /// Forgets a registry; true when it existed.
    pub async fn delete_registry(&self, id: &str) -> Result<bool> {
        with_conn!(self, conn => {
            let n = diesel::delete(registries::table.find(id)).execute(conn).await?;
            Ok(n == 1)
        })
    }

    /// Ids of registries that use the credential.
    pub async fn registries_using_credential(&self, id: &str) -> Result<Vec<String>> {
        with_conn!(self, conn => {
            Ok(registries::table
                .filter(registries::credential_id.eq(id))
                .order(registries::id.asc())
                .select(registries::id)
                .load(conn)
                .await?)
        })
    }
}

impl Store {
    /// Deletes a credential and its secret unless a cluster or a registry uses it, in one
    /// transaction (a registry created meanwhile cannot end up pointing at nothing).
    /// `Ok(Err(users))` names the users; `Ok(Ok(false))` when it did not exist.
    pub async fn delete_credential_unless_used(
        &self,
        id: &str,
    ) -> Result<std::result::Result<bool, CredentialUsers>> {
        write_transaction!(self, conn => {
                let users = CredentialUsers {
                    clusters: clusters::table
                        .filter(clusters::credential_id.eq(id))
                        .order(clusters::id.asc())
                        .select(clusters::id)
                        .load(conn)
                        .await?,
                    registries: registries::table
                        .filter(registries::credential_id.eq(id))
                        .order(registries::id.asc())
                        .select(registries::id)
                        .load(conn)
                        .await?,
                };
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

fn labels_match(json: &str, wanted: &[(String, Option<String>)]) -> bool {
    let Ok(labels) = serde_json::from_str::<std::collections::BTreeMap<String, String>>(json)
    else {
        return false;
    };
    wanted
        .iter()
        .all(|(key, value)| match (labels.get(key), value) {
            (Some(actual), Some(expected)) => actual == expected,
            (Some(_), None) => true,
            (None, _) => false,
        })
}

//! Clusters imported by agent: one-time registration tokens and the agent credential each
//! registration is exchanged for. Only SHA-256 hashes of either secret are stored. The exchange
//! is one write transaction, so a token is redeemed at most once even by racing agents.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{
    ClusterRow, Result, Store,
    schema::{agent_credentials, agent_registrations, clusters},
    with_conn, write_transaction,
};

/// A registration token of a cluster, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = agent_registrations)]
pub struct AgentRegistrationRow {
    pub token_hash: String,
    pub cluster_id: String,
    pub create_time: i64,
    pub expire_time: i64,
    /// Set when the token was exchanged; it is never accepted again.
    pub used_time: Option<i64>,
    /// What the registration's manifest is made from (empty in rows written before they were
    /// kept: those manifests are not served again).
    pub server_url: String,
    pub namespace: String,
    pub cluster_role: String,
    pub image: String,
}

/// The live agent credential of a cluster, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = agent_credentials)]
pub struct AgentCredentialRow {
    pub cluster_id: String,
    pub credential_hash: String,
    /// The kube-system namespace UID the agent reported when it registered.
    pub kube_system_uid: String,
    pub create_time: i64,
}

/// What redeeming a registration token came to. Only `Redeemed` changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    Redeemed {
        cluster_id: String,
    },
    Unknown,
    AlreadyUsed,
    Expired,
    /// Another cluster already has this kube-system UID.
    DuplicateCluster {
        existing_id: String,
    },
}

impl Store {
    /// Creates a cluster waiting for its agent together with its registration token.
    pub async fn insert_cluster_with_registration(
        &self,
        cluster: &ClusterRow,
        registration: &AgentRegistrationRow,
    ) -> Result<()> {
        write_transaction!(self, conn => {
            {
                diesel::insert_into(clusters::table).values(cluster).execute(conn).await?;
                diesel::insert_into(agent_registrations::table)
                    .values(registration)
                    .execute(conn)
                    .await?;
                Ok(())
            }
        })
    }

    /// Exchanges the registration token with hash `token_hash` for `credential`: marks the
    /// token used, replaces the cluster's credential, records the kube-system UID and sets the
    /// cluster's state to `running_state`. Nothing changes unless the token is known, unused
    /// and unexpired at `now` and the UID is not another cluster's.
    pub async fn redeem_agent_registration(
        &self,
        token_hash: &str,
        credential: &AgentCredentialRow,
        running_state: &str,
        now: i64,
    ) -> Result<Redemption> {
        write_transaction!(self, conn => {
            {
                let registration: Option<AgentRegistrationRow> = agent_registrations::table
                    .find(token_hash)
                    .select(AgentRegistrationRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let Some(registration) = registration else {
                    return Ok(Redemption::Unknown);
                };
                if registration.used_time.is_some() {
                    return Ok(Redemption::AlreadyUsed);
                }
                if registration.expire_time <= now {
                    return Ok(Redemption::Expired);
                }
                let cluster_id = registration.cluster_id;
                let other: Option<String> = clusters::table
                    .filter(clusters::kube_system_uid.eq(&credential.kube_system_uid))
                    .filter(clusters::id.ne(&cluster_id))
                    .select(clusters::id)
                    .first(conn)
                    .await
                    .optional()?;
                if let Some(existing_id) = other {
                    return Ok(Redemption::DuplicateCluster { existing_id });
                }
                diesel::update(agent_registrations::table.find(token_hash))
                    .set(agent_registrations::used_time.eq(Some(now)))
                    .execute(conn)
                    .await?;
                diesel::delete(agent_credentials::table.find(&cluster_id))
                    .execute(conn)
                    .await?;
                let row = AgentCredentialRow {
                    cluster_id: cluster_id.clone(),
                    ..credential.clone()
                };
                diesel::insert_into(agent_credentials::table)
                    .values(&row)
                    .execute(conn)
                    .await?;
                diesel::update(clusters::table.find(&cluster_id))
                    .set((
                        clusters::state.eq(running_state),
                        clusters::kube_system_uid.eq(Some(&credential.kube_system_uid)),
                        clusters::version.eq(clusters::version + 1),
                        clusters::update_time.eq(now),
                    ))
                    .execute(conn)
                    .await?;
                Ok(Redemption::Redeemed { cluster_id })
            }
        })
    }

    /// The agent credential with this hash, if it is live.
    pub async fn find_agent_credential(
        &self,
        credential_hash: &str,
    ) -> Result<Option<AgentCredentialRow>> {
        with_conn!(self, conn => {
            Ok(agent_credentials::table
                .filter(agent_credentials::credential_hash.eq(credential_hash))
                .select(AgentCredentialRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }
}

impl Store {
    /// The registration with this token hash while it can still be exchanged (unused and
    /// unexpired at `now`): its manifest may be served.
    pub async fn find_open_agent_registration(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<AgentRegistrationRow>> {
        with_conn!(self, conn => {
            Ok(agent_registrations::table
                .find(token_hash)
                .filter(agent_registrations::used_time.is_null())
                .filter(agent_registrations::expire_time.gt(now))
                .select(AgentRegistrationRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })
    }
}

impl Store {
    /// Moves every registration token of a cluster into the past (tests of expiry: the
    /// shortest TTL is a minute).
    #[doc(hidden)]
    pub async fn expire_agent_registrations_for_test(&self, cluster_id: &str) -> Result<()> {
        with_conn!(self, conn => {
            diesel::update(
                agent_registrations::table.filter(agent_registrations::cluster_id.eq(cluster_id)),
            )
            .set(agent_registrations::expire_time.eq(1))
            .execute(conn)
            .await?;
            Ok(())
        })
    }
}

impl Store {
    /// Whether the cluster has an agent credential (it was imported by agent).
    pub async fn has_agent_credential(&self, cluster_id: &str) -> Result<bool> {
        with_conn!(self, conn => {
            let found: Option<String> = agent_credentials::table
                .find(cluster_id)
                .select(agent_credentials::cluster_id)
                .first(conn)
                .await
                .optional()?;
            Ok(found.is_some())
        })
    }
}

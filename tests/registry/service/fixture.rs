//! The registry tests' fixture: a server with fake registry providers, credentials, clients,
//! and ways to look at what was written (rows counted from outside the server) and sent (the
//! fake's call counters).

use flotilla_test_support as support;

use flotilla::proto::{
    self as pb, credential_service_client::CredentialServiceClient,
    registry_service_client::RegistryServiceClient,
};
use support::{
    db::TestDb,
    registry_fake::FakeRegistry,
    server::{AuthedChannel, TestServer},
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub const USER: &str = "deployer";
pub const PASSWORD: &str = "s3cret-pass";
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// A server offering `fake` (id "fake", can do everything) and `ro` (id "fake-ro", read
/// only), on SQLite or on a fresh PostgreSQL database.
pub struct Fixture {
    pub server: TestServer,
    pub fake: FakeRegistry,
    pub ro: FakeRegistry,
    pub db: Option<TestDb>,
    _keys: Option<tempfile::TempDir>,
}

impl Fixture {
    pub async fn sqlite() -> Fixture {
        Self::start(None, HOUR).await
    }

    pub async fn postgres() -> Fixture {
        Self::start(Some(TestDb::postgres().await), HOUR).await
    }

    /// On SQLite, with the registry prober logging in every `interval`.
    pub async fn probing(interval: std::time::Duration) -> Fixture {
        Self::start(None, interval).await
    }

    async fn start(db: Option<TestDb>, probe_interval: std::time::Duration) -> Fixture {
        let fake = FakeRegistry::new("fake");
        let ro = FakeRegistry::read_only("fake-ro");
        fake.state().accept = Some((USER.into(), PASSWORD.into()));
        let providers = FakeRegistry::providers(&[&fake, &ro]);
        let keys = db.as_ref().map(|_| tempfile::tempdir().expect("tempdir"));
        let url = db.as_ref().map(|d| d.url.clone());
        let key_file = keys.as_ref().map(|k| k.path().join("master.keys"));
        let server = TestServer::start_with(move |s| {
            s.registries.extra_providers = providers;
            // By default the prober must not log in behind the tests' counters.
            s.registries.probe_interval = probe_interval;
            if let Some(url) = url {
                s.database_url = url;
                s.master_key_file = key_file;
            }
        })
        .await;
        Fixture {
            server,
            fake,
            ro,
            db,
            _keys: keys,
        }
    }

    pub async fn client(&self) -> RegistryServiceClient<AuthedChannel> {
        RegistryServiceClient::new(self.server.channel().await)
    }

    pub async fn client_as(&self, token: &str) -> RegistryServiceClient<AuthedChannel> {
        RegistryServiceClient::new(self.server.channel_as(Some(token)).await)
    }

    /// Creates a USERNAME_PASSWORD credential.
    pub async fn credential(&self, id: &str, username: &str, password: &str) {
        let mut credentials = CredentialServiceClient::new(self.server.channel().await);
        credentials
            .create_credential(pb::CreateCredentialRequest {
                credential_id: id.into(),
                provider: "harbor".into(),
                secret: Some(pb::CredentialSecret {
                    secret: Some(pb::credential_secret::Secret::UsernamePassword(
                        pb::UsernamePasswordSecret {
                            username: username.into(),
                            password: password.into(),
                        },
                    )),
                }),
                ..Default::default()
            })
            .await
            .expect("create credential");
    }

    /// Creates an ACCESS_KEY credential (a kind the fakes do not take).
    pub async fn access_key_credential(&self, id: &str) {
        let mut credentials = CredentialServiceClient::new(self.server.channel().await);
        credentials
            .create_credential(pb::CreateCredentialRequest {
                credential_id: id.into(),
                provider: "acr".into(),
                secret: Some(pb::CredentialSecret {
                    secret: Some(pb::credential_secret::Secret::AccessKey(
                        pb::AccessKeySecret {
                            access_key_id: "LTAI5t".into(),
                            access_key_secret: "key-secret".into(),
                        },
                    )),
                }),
                ..Default::default()
            })
            .await
            .expect("create access key credential");
    }

    /// Registers registry `id` of provider "fake" with credential `credential`.
    pub async fn registry(
        &self,
        id: &str,
        credential: &str,
        labels: &[(&str, &str)],
    ) -> pb::Registry {
        self.client()
            .await
            .create_registry(create(id, "fake", credential, labels))
            .await
            .unwrap_or_else(|s| panic!("create registry {id}: {s:?}"))
            .into_inner()
            .registry
            .expect("registry")
    }

    /// Registry rows, counted from outside the server: `sqlite3` on its file, or a store of
    /// our own on PostgreSQL.
    pub async fn registry_rows(&self) -> Vec<String> {
        match &self.db {
            None => {
                let file = self.server.settings.data_dir.join("flotilla.db");
                support::db::sqlite(
                    &file,
                    "SELECT id || '|' || COALESCE(credential_id, '') FROM registries ORDER BY id",
                )
            }
            Some(db) => {
                let store = flotilla::store::Store::open(&db.url).await.expect("store");
                store
                    .all_registries()
                    .await
                    .expect("rows")
                    .into_iter()
                    .map(|r| format!("{}|{}", r.id, r.credential_id.unwrap_or_default()))
                    .collect()
            }
        }
    }
}

pub fn create(
    id: &str,
    provider: &str,
    credential: &str,
    labels: &[(&str, &str)],
) -> pb::CreateRegistryRequest {
    pb::CreateRegistryRequest {
        registry: Some(pb::Registry {
            id: id.into(),
            provider: provider.into(),
            endpoint: format!("https://{id}.registry.test"),
            credential_id: credential.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The BadRequest fields of a status.
pub fn fields(status: &Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// Asserts INVALID_ARGUMENT on exactly `field`.
pub fn assert_invalid(status: &Status, field: &str, case: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
    assert_eq!(fields(status), [field], "{case}: {status:?}");
}

pub fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

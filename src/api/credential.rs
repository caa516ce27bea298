//! `flotilla.v1.CredentialService`: secrets go in, metadata comes out.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use zeroize::Zeroizing;

use super::{
    convert::timestamp,
    pb::{self, credential_service_server::CredentialService},
};
use crate::service::secrets::credentials::{
    Credential, CredentialSecret, CredentialVault, NewCredential,
};

pub struct CredentialApi {
    vault: Arc<CredentialVault>,
}

impl CredentialApi {
    pub fn new(vault: Arc<CredentialVault>) -> Self {
        CredentialApi { vault }
    }
}

#[tonic::async_trait]
impl CredentialService for CredentialApi {
    async fn create_credential(
        &self,
        request: Request<pb::CreateCredentialRequest>,
    ) -> Result<Response<pb::CreateCredentialResponse>, Status> {
        note_target(&request, &request.get_ref().credential_id);
        let r = request.into_inner();
        let credential = self
            .vault
            .create(NewCredential {
                id: r.credential_id,
                display_name: r.display_name,
                labels: r.labels.into_iter().collect(),
                provider: r.provider,
                secret: r.secret.and_then(secret),
            })
            .await?;
        Ok(Response::new(pb::CreateCredentialResponse {
            credential: Some(credential.into()),
        }))
    }

    async fn get_credential(
        &self,
        request: Request<pb::GetCredentialRequest>,
    ) -> Result<Response<pb::GetCredentialResponse>, Status> {
        let credential = self.vault.get(&request.get_ref().credential_id).await?;
        Ok(Response::new(pb::GetCredentialResponse {
            credential: Some(credential.into()),
        }))
    }

    async fn list_credentials(
        &self,
        request: Request<pb::ListCredentialsRequest>,
    ) -> Result<Response<pb::ListCredentialsResponse>, Status> {
        let r = request.into_inner();
        let list = self
            .vault
            .list(r.page_size, &r.page_token, &r.filter)
            .await?;
        Ok(Response::new(pb::ListCredentialsResponse {
            credentials: list.credentials.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn rotate_credential(
        &self,
        request: Request<pb::RotateCredentialRequest>,
    ) -> Result<Response<pb::RotateCredentialResponse>, Status> {
        note_target(&request, &request.get_ref().credential_id);
        let r = request.into_inner();
        let credential = self
            .vault
            .rotate(&r.credential_id, r.secret.and_then(secret))
            .await?;
        Ok(Response::new(pb::RotateCredentialResponse {
            credential: Some(credential.into()),
        }))
    }

    async fn delete_credential(
        &self,
        request: Request<pb::DeleteCredentialRequest>,
    ) -> Result<Response<pb::DeleteCredentialResponse>, Status> {
        note_target(&request, &request.get_ref().credential_id);
        self.vault.delete(&request.get_ref().credential_id).await?;
        Ok(Response::new(pb::DeleteCredentialResponse {}))
    }
}

/// Names the credential a changing call acts on, for the audit log.
fn note_target<T>(request: &Request<T>, credential_id: &str) {
    crate::auth::audit::note(request, "", &format!("credentials/{credential_id}"));
}

fn secret(s: pb::CredentialSecret) -> Option<CredentialSecret> {
    use pb::credential_secret::Secret;
    Some(match s.secret? {
        Secret::AccessKey(k) => CredentialSecret::AccessKey {
            access_key_id: k.access_key_id,
            access_key_secret: Zeroizing::new(k.access_key_secret),
        },
        Secret::ApiKey(k) => CredentialSecret::ApiKey {
            key_id: k.key_id,
            token: Zeroizing::new(k.token),
        },
        Secret::UsernamePassword(u) => CredentialSecret::UsernamePassword {
            username: u.username,
            password: Zeroizing::new(u.password),
        },
        Secret::RobotToken(r) => CredentialSecret::RobotToken {
            robot_name: r.robot_name,
            token: Zeroizing::new(r.token),
        },
    })
}

impl From<Credential> for pb::Credential {
    fn from(c: Credential) -> Self {
        let kind = match c.kind.as_str() {
            "ACCESS_KEY" => pb::CredentialType::AccessKey,
            "API_KEY" => pb::CredentialType::ApiKey,
            "USERNAME_PASSWORD" => pb::CredentialType::UsernamePassword,
            "ROBOT_TOKEN" => pb::CredentialType::RobotToken,
            _ => pb::CredentialType::Unspecified,
        };
        pb::Credential {
            id: c.id,
            display_name: c.display_name,
            labels: c.labels.into_iter().collect(),
            r#type: kind.into(),
            provider: c.provider,
            principal: c.principal,
            used_by: c.used_by,
            create_time: Some(timestamp(c.create_millis)),
            rotate_time: Some(timestamp(c.rotate_millis)),
        }
    }
}

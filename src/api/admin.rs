//! `flotilla.v1.AdminService`: API tokens and the audit log.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::timestamp,
    pb::{self, admin_service_server::AdminService},
};
use crate::{
    auth::{Principal, Role},
    service::{
        Error,
        admin::{
            Administration,
            audit_events::{AuditEvent, ListAuditEvents},
            tokens::{ApiToken, ListApiTokens, NewApiToken},
        },
    },
};

pub struct AdminApi {
    admin: Arc<Administration>,
}

impl AdminApi {
    pub fn new(admin: Arc<Administration>) -> Self {
        AdminApi { admin }
    }
}

fn caller<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<Principal>()
        .map(|p| p.name.clone())
        .unwrap_or_default()
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_api_token(
        &self,
        request: Request<pb::CreateApiTokenRequest>,
    ) -> Result<Response<pb::CreateApiTokenResponse>, Status> {
        let created_by = caller(&request);
        crate::auth::audit::note(&request, "", &format!("tokens/{}", request.get_ref().name));
        let new = NewApiToken::try_from(request.into_inner())?;
        let issued = self.admin.issue_token(new, &created_by).await?;
        Ok(Response::new(pb::CreateApiTokenResponse {
            token: Some(issued.token.into()),
            secret: issued.secret.to_string(),
        }))
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let list = self.admin.list_tokens(&request.into_inner().into()).await?;
        Ok(Response::new(pb::ListApiTokensResponse {
            tokens: list.tokens.into_iter().map(Into::into).collect(),
            next_page_token: list.next_page_token,
            total_size: list.total_size,
        }))
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        let id = request.get_ref().token_id.clone();
        crate::auth::audit::note(&request, "", &format!("tokens/{id}"));
        let token = self.admin.revoke_token(&id).await?;
        Ok(Response::new(pb::RevokeApiTokenResponse {
            token: Some(token.into()),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let list = self
            .admin
            .list_audit_events(&request.into_inner().into())
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: list.next_page_token,
            total_size: list.total_size,
            events: list.events.into_iter().map(Into::into).collect(),
        }))
    }
}

impl TryFrom<pb::CreateApiTokenRequest> for NewApiToken {
    type Error = Error;

    fn try_from(r: pb::CreateApiTokenRequest) -> Result<Self, Error> {
        let role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Viewer) => Role::Viewer,
            Ok(pb::Role::Operator) => Role::Operator,
            Ok(pb::Role::Admin) => Role::Admin,
            _ => {
                return Err(Error::invalid(
                    "role",
                    "choose ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN",
                ));
            }
        };
        let expire_millis = r
            .expire_time
            .map(|t| crate::auth::tokens::expire_from_timestamp(t.seconds, t.nanos))
            .transpose()?;
        Ok(NewApiToken {
            name: r.name,
            role,
            cluster_ids: r.cluster_ids,
            expire_millis,
        })
    }
}

impl From<pb::ListApiTokensRequest> for ListApiTokens {
    fn from(r: pb::ListApiTokensRequest) -> Self {
        ListApiTokens {
            page_size: r.page_size,
            page_token: r.page_token,
            show_revoked: r.show_revoked,
        }
    }
}

impl From<pb::ListAuditEventsRequest> for ListAuditEvents {
    fn from(r: pb::ListAuditEventsRequest) -> Self {
        ListAuditEvents {
            page_size: r.page_size,
            page_token: r.page_token,
            filter: r.filter,
        }
    }
}

impl From<ApiToken> for pb::ApiToken {
    fn from(t: ApiToken) -> Self {
        let role = match t.role {
            Some(Role::Viewer) => pb::Role::Viewer,
            Some(Role::Operator) => pb::Role::Operator,
            Some(Role::Admin) => pb::Role::Admin,
            None => pb::Role::Unspecified,
        };
        pb::ApiToken {
            id: t.id,
            name: t.name,
            role: role.into(),
            cluster_ids: t.cluster_ids,
            expire_time: t.expire_millis.map(timestamp),
            create_time: Some(timestamp(t.create_millis)),
            created_by: t.created_by,
            last_used_time: t.last_used_millis.map(timestamp),
            revoke_time: t.revoke_millis.map(timestamp),
        }
    }
}

impl From<AuditEvent> for pb::AuditEvent {
    fn from(e: AuditEvent) -> Self {
        pb::AuditEvent {
            id: e.id,
            time: Some(timestamp(e.time_millis)),
            token_name: e.token_name,
            method: e.method,
            cluster_id: e.cluster_id,
            target: e.target,
            result_code: e.result_code,
            request_id: e.request_id,
            peer_address: e.peer_address,
            message: e.message,
            call_count: e.call_count,
        }
    }
}

//! `flotilla.v1.AdminService`: API tokens and the audit log.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::timestamp,
    pb::{self, admin_service_server::AdminService},
};
use crate::{
    auth::{Principal, Role, audit::AuditLog, tokens::Tokens},
    service::{Error, admin::audit_events::AuditEvents, paging::Page},
    store::{ApiTokenRow, AuditRow, Store},
};

pub struct AdminApi {
    tokens: Arc<Tokens>,
    audit_events: AuditEvents,
}

impl AdminApi {
    pub fn new(tokens: Arc<Tokens>, audit: AuditLog, store: Store) -> Self {
        AdminApi {
            tokens,
            audit_events: AuditEvents::new(store, audit),
        }
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
        let r = request.into_inner();
        let role = match pb::Role::try_from(r.role) {
            Ok(pb::Role::Viewer) => Role::Viewer,
            Ok(pb::Role::Operator) => Role::Operator,
            Ok(pb::Role::Admin) => Role::Admin,
            _ => {
                return Err(Error::invalid(
                    "role",
                    "choose ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN",
                )
                .into());
            }
        };
        let expire = r
            .expire_time
            .map(|t| crate::auth::tokens::expire_from_timestamp(t.seconds, t.nanos))
            .transpose()?;
        let issued = self
            .tokens
            .issue(&r.name, role, r.cluster_ids, expire, &created_by)
            .await?;
        Ok(Response::new(pb::CreateApiTokenResponse {
            token: Some(token(issued.token)),
            secret: issued.secret.to_string(),
        }))
    }

    async fn list_api_tokens(
        &self,
        request: Request<pb::ListApiTokensRequest>,
    ) -> Result<Response<pb::ListApiTokensResponse>, Status> {
        let r = request.into_inner();
        let page = Page::parse(
            r.page_size,
            &r.page_token,
            &format!("tokens|{}", r.show_revoked),
        )?;
        let rows = self.tokens.list(r.show_revoked).await?;
        let total = rows.len() as i64;
        let tokens: Vec<pb::ApiToken> = rows
            .into_iter()
            .skip(page.offset as usize)
            .take(page.size as usize)
            .map(token)
            .collect();
        Ok(Response::new(pb::ListApiTokensResponse {
            next_page_token: page.next_token(tokens.len(), total),
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
            tokens,
        }))
    }

    async fn revoke_api_token(
        &self,
        request: Request<pb::RevokeApiTokenRequest>,
    ) -> Result<Response<pb::RevokeApiTokenResponse>, Status> {
        let id = request.get_ref().token_id.clone();
        crate::auth::audit::note(&request, "", &format!("tokens/{id}"));
        let row = self.tokens.revoke(&id).await?;
        Ok(Response::new(pb::RevokeApiTokenResponse {
            token: Some(token(row)),
        }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let r = request.into_inner();
        let list = self
            .audit_events
            .list(r.page_size, &r.page_token, &r.filter)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: list.next_page_token,
            total_size: list.total_size,
            events: list.events.into_iter().map(event).collect(),
        }))
    }
}

fn token(row: ApiTokenRow) -> pb::ApiToken {
    let role = match Role::parse(&row.role) {
        Some(Role::Viewer) => pb::Role::Viewer,
        Some(Role::Operator) => pb::Role::Operator,
        Some(Role::Admin) => pb::Role::Admin,
        None => pb::Role::Unspecified,
    };
    pb::ApiToken {
        id: row.id,
        name: row.name,
        role: role.into(),
        cluster_ids: serde_json::from_str(&row.cluster_ids).unwrap_or_default(),
        expire_time: row.expire_time.map(timestamp),
        create_time: Some(timestamp(row.create_time)),
        created_by: row.created_by,
        last_used_time: row.last_used_time.map(timestamp),
        revoke_time: row.revoke_time.map(timestamp),
    }
}

fn event(row: AuditRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: row.id,
        time: Some(timestamp(row.time)),
        token_name: row.token_name,
        method: row.method,
        cluster_id: row.cluster_id,
        target: row.target,
        result_code: row.result_code,
        request_id: row.request_id,
        peer_address: row.peer_address,
        message: row.message,
        call_count: row.call_count,
    }
}

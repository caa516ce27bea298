//! `flotilla.v1.AdminService`: API tokens and the audit log.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::{
    convert::timestamp,
    pb::{self, admin_service_server::AdminService},
};
use crate::{
    auth::{Principal, Role, audit::AuditLog, tokens::Tokens},
    service::{Error, filter, paging::Page},
    store::{ApiTokenRow, AuditQuery, AuditRow, Store},
};

pub struct AdminApi {
    tokens: Arc<Tokens>,
    audit: AuditLog,
    store: Store,
}

impl AdminApi {
    pub fn new(tokens: Arc<Tokens>, audit: AuditLog, store: Store) -> Self {
        AdminApi {
            tokens,
            audit,
            store,
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
        let query = audit_query(&r.filter)?;
        let page = Page::parse(r.page_size, &r.page_token, &format!("audit|{}", r.filter))?;
        // Include everything recorded before this call.
        self.audit.flush().await;
        let (rows, total) = self
            .store
            .list_audit_events(&query, page.offset, page.size)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: page.next_token(rows.len(), total),
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
            events: rows.into_iter().map(event).collect(),
        }))
    }
}

fn audit_query(text: &str) -> Result<AuditQuery, Error> {
    let mut query = AuditQuery::default();
    let bad_time = |v: &str| {
        Error::invalid(
            "filter",
            format!("{v:?} is not a time in milliseconds since the epoch"),
        )
    };
    for term in filter::parse(text)? {
        let filter::Term::Equals { field, value } = term else {
            return Err(Error::invalid(
                "filter",
                "only `field = value` comparisons are supported",
            ));
        };
        match field.as_str() {
            "token_name" => query.token_name = Some(value),
            "method" => query.method = Some(value),
            "cluster_id" => query.cluster_id = Some(value),
            "result_code" => query.result_code = Some(value.to_ascii_uppercase()),
            "since_millis" => query.since = Some(value.parse().map_err(|_| bad_time(&value))?),
            "before_millis" => query.before = Some(value.parse().map_err(|_| bad_time(&value))?),
            other => {
                return Err(Error::invalid(
                    "filter",
                    format!(
                        "cannot filter on {other:?}; use token_name, method, cluster_id, \
                         result_code, since_millis or before_millis"
                    ),
                ));
            }
        }
    }
    Ok(query)
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

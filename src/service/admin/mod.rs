//! Administration: API tokens and the audit log. The admin API's one service: it reads and
//! pages through the store and the token registry so the handlers only convert.

pub mod audit_events;
pub mod tokens;

use std::sync::Arc;

use crate::{
    auth::{audit::AuditLog, tokens::Tokens},
    service::{Result, paging::Page},
    store::Store,
};
use audit_events::{AuditEventList, AuditEvents, ListAuditEvents};
use tokens::{ApiToken, ApiTokenList, IssuedApiToken, ListApiTokens, NewApiToken};

pub struct Administration {
    tokens: Arc<Tokens>,
    audit_events: AuditEvents,
}

impl Administration {
    pub fn new(tokens: Arc<Tokens>, audit: AuditLog, store: Store) -> Self {
        Administration {
            tokens,
            audit_events: AuditEvents::new(store, audit),
        }
    }

    /// Issues a token for `created_by`; its secret is returned this once.
    pub async fn issue_token(&self, new: NewApiToken, created_by: &str) -> Result<IssuedApiToken> {
        let issued = self
            .tokens
            .issue(
                &new.name,
                new.role,
                new.cluster_ids,
                new.expire_millis,
                created_by,
            )
            .await?;
        Ok(IssuedApiToken {
            token: issued.token.into(),
            secret: issued.secret,
        })
    }

    pub async fn list_tokens(&self, request: &ListApiTokens) -> Result<ApiTokenList> {
        let page = Page::parse(request.page_size, &request.page_token, &request.query_key())?;
        let rows = self.tokens.list(request.show_revoked).await?;
        Ok(tokens::page_of(rows, &page))
    }

    /// Revokes a token by id or name.
    pub async fn revoke_token(&self, id_or_name: &str) -> Result<ApiToken> {
        Ok(self.tokens.revoke(id_or_name).await?.into())
    }

    pub async fn list_audit_events(&self, request: &ListAuditEvents) -> Result<AuditEventList> {
        self.audit_events.list(request).await
    }
}

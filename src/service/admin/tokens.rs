//! API tokens as an administrator sees them: what a token is (never its secret after issue),
//! and the pages of the token list.

use zeroize::Zeroizing;

use crate::{auth::Role, service::paging::Page, store::ApiTokenRow};

/// One API token. The secret is not here: it is shown once, in [`IssuedApiToken`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// `None` when the stored role is not one this server knows.
    pub role: Option<Role>,
    /// Empty: every cluster.
    pub cluster_ids: Vec<String>,
    pub expire_millis: Option<i64>,
    pub create_millis: i64,
    pub created_by: String,
    pub last_used_millis: Option<i64>,
    pub revoke_millis: Option<i64>,
}

impl From<ApiTokenRow> for ApiToken {
    fn from(row: ApiTokenRow) -> Self {
        ApiToken {
            role: Role::parse(&row.role),
            cluster_ids: serde_json::from_str(&row.cluster_ids).unwrap_or_default(),
            id: row.id,
            name: row.name,
            expire_millis: row.expire_time,
            create_millis: row.create_time,
            created_by: row.created_by,
            last_used_millis: row.last_used_time,
            revoke_millis: row.revoke_time,
        }
    }
}

/// A token to issue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiToken {
    pub name: String,
    pub role: Role,
    /// Empty: every cluster.
    pub cluster_ids: Vec<String>,
    pub expire_millis: Option<i64>,
}

/// A token just issued, with its secret (shown this once).
pub struct IssuedApiToken {
    pub token: ApiToken,
    pub secret: Zeroizing<String>,
}

/// A token-list request, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListApiTokens {
    pub page_size: i32,
    pub page_token: String,
    pub show_revoked: bool,
}

impl ListApiTokens {
    /// Tokens with and without revoked ones are different lists: a page token of one is refused
    /// by the other.
    pub fn query_key(&self) -> String {
        format!("tokens|{}", self.show_revoked)
    }
}

/// One page of tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiTokenList {
    pub tokens: Vec<ApiToken>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// The page `page` of every token row (there are few tokens, so the list is read whole).
pub fn page_of(rows: Vec<ApiTokenRow>, page: &Page) -> ApiTokenList {
    let total = rows.len() as i64;
    let tokens: Vec<ApiToken> = rows
        .into_iter()
        .skip(page.offset as usize)
        .take(page.size as usize)
        .map(ApiToken::from)
        .collect();
    ApiTokenList {
        next_page_token: page.next_token(tokens.len(), total),
        total_size: i32::try_from(total).unwrap_or(i32::MAX),
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> ApiTokenRow {
        ApiTokenRow {
            id: id.into(),
            name: format!("name-{id}"),
            role: "ROLE_OPERATOR".into(),
            cluster_ids: r#"["dev","prod"]"#.into(),
            secret_hash: "0123".into(),
            expire_time: Some(9),
            create_time: 1,
            created_by: "admin".into(),
            last_used_time: None,
            revoke_time: Some(5),
        }
    }

    #[test]
    fn a_row_becomes_a_token_without_its_hash() {
        let token = ApiToken::from(row("t1"));
        assert_eq!(
            token,
            ApiToken {
                id: "t1".into(),
                name: "name-t1".into(),
                role: Some(Role::Operator),
                cluster_ids: vec!["dev".into(), "prod".into()],
                expire_millis: Some(9),
                create_millis: 1,
                created_by: "admin".into(),
                last_used_millis: None,
                revoke_millis: Some(5),
            }
        );
        let odd = ApiToken::from(ApiTokenRow {
            role: "root".into(),
            cluster_ids: "not json".into(),
            ..row("t2")
        });
        assert_eq!((odd.role, odd.cluster_ids), (None, vec![]));
    }

    #[test]
    fn pages_walk_every_token_once() {
        let rows = || (0..5).map(|i| row(&format!("t{i}"))).collect::<Vec<_>>();
        let list = ListApiTokens {
            page_size: 2,
            ..Default::default()
        };
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = Page::parse(list.page_size, &token, &list.query_key()).unwrap();
            let got = page_of(rows(), &page);
            assert_eq!(got.total_size, 5);
            assert!(got.tokens.len() <= 2);
            seen.extend(got.tokens.into_iter().map(|t| t.id));
            if got.next_page_token.is_empty() {
                break;
            }
            token = got.next_page_token;
        }
        assert_eq!(seen, ["t0", "t1", "t2", "t3", "t4"]);
        // A token of the list without revoked tokens is refused by the one with them.
        let first = page_of(rows(), &Page::parse(2, "", &list.query_key()).unwrap());
        let with_revoked = ListApiTokens {
            show_revoked: true,
            ..list
        };
        assert!(Page::parse(2, &first.next_page_token, &with_revoked.query_key()).is_err());
    }
}

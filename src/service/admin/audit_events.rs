//! Reading the audit log: the filter of `ListAuditEvents` (the filter grammar every list
//! shares), turned into a query the store runs in SQL, and paging.

use k8s_openapi::jiff::Timestamp;

use crate::service::{Error, Result, filter, paging::Page};
use crate::{
    auth::audit::AuditLog,
    store::{AuditQuery, AuditRow, Store},
};

/// Fields `ListAuditEvents` filters on, as the proto documents them.
const FIELDS: &str = "token_name, method, cluster_id, result_code (with =) and time (with =, <, \
                      <=, > or >= and an RFC 3339 time)";

/// One audited call.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: String,
    pub time_millis: i64,
    pub token_name: String,
    pub method: String,
    pub cluster_id: String,
    pub target: String,
    pub result_code: String,
    pub request_id: String,
    pub peer_address: String,
    pub message: String,
    /// Calls this event stands for: 1, or a per-minute count of anonymous refusals.
    pub call_count: i64,
}

impl From<AuditRow> for AuditEvent {
    fn from(row: AuditRow) -> Self {
        AuditEvent {
            id: row.id,
            time_millis: row.time,
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
}

/// An audit-list request, as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListAuditEvents {
    pub page_size: i32,
    pub page_token: String,
    pub filter: String,
}

/// One page of audit events, newest first.
#[derive(Debug)]
pub struct AuditEventList {
    pub events: Vec<AuditEvent>,
    pub next_page_token: String,
    pub total_size: i32,
}

pub struct AuditEvents {
    store: Store,
    log: AuditLog,
}

impl AuditEvents {
    pub fn new(store: Store, log: AuditLog) -> Self {
        AuditEvents { store, log }
    }

    /// One page, paged by the store in SQL.
    pub async fn list(&self, request: &ListAuditEvents) -> Result<AuditEventList> {
        let query = parse_filter(&request.filter)?;
        let page = Page::parse(
            request.page_size,
            &request.page_token,
            &format!("audit|{}", request.filter),
        )?;
        // Include everything recorded before this call.
        self.log.flush().await;
        let (events, total) = self
            .store
            .list_audit_events(&query, page.offset, page.size)
            .await?;
        Ok(AuditEventList {
            next_page_token: page.next_token(events.len(), total),
            total_size: i32::try_from(total).unwrap_or(i32::MAX),
            events: events.into_iter().map(AuditEvent::from).collect(),
        })
    }
}

/// The store query for a `ListAuditEvents` filter. Bounds on `time` narrow each other: the
/// query keeps the latest lower and the earliest upper bound, in milliseconds.
pub fn parse_filter(text: &str) -> Result<AuditQuery> {
    let mut query = AuditQuery::default();
    for clause in filter::parse_clauses(text)? {
        let (field, op, value) = match clause {
            filter::Clause::Compare { field, op, value } => (field, op, value),
            filter::Clause::Present { field } => {
                return Err(Error::invalid(
                    "filter",
                    format!("{field:?} cannot be tested with :*; filter on {FIELDS}"),
                ));
            }
        };
        let text_field = match field.as_str() {
            "token_name" => Some(&mut query.token_name),
            "method" => Some(&mut query.method),
            "cluster_id" => Some(&mut query.cluster_id),
            "result_code" => Some(&mut query.result_code),
            "time" => None,
            other => {
                return Err(Error::invalid(
                    "filter",
                    format!("cannot filter on {other:?}; filter on {FIELDS}"),
                ));
            }
        };
        if let Some(slot) = text_field {
            if op != filter::Op::Eq {
                return Err(Error::invalid(
                    "filter",
                    format!("{field:?} takes only `=`, not {}", op.as_str()),
                ));
            }
            *slot = Some(if field == "result_code" {
                value.to_ascii_uppercase()
            } else {
                value
            });
            continue;
        }
        let millis = rfc3339_millis(&value)?;
        let (since, before) = match op {
            filter::Op::Eq => (Some(millis), Some(millis.saturating_add(1))),
            filter::Op::Ge => (Some(millis), None),
            filter::Op::Gt => (Some(millis.saturating_add(1)), None),
            filter::Op::Lt => (None, Some(millis)),
            filter::Op::Le => (None, Some(millis.saturating_add(1))),
        };
        if let Some(since) = since {
            query.since = Some(query.since.map_or(since, |s| s.max(since)));
        }
        if let Some(before) = before {
            query.before = Some(query.before.map_or(before, |b| b.min(before)));
        }
    }
    Ok(query)
}

/// Milliseconds since the epoch of an RFC 3339 time; finer digits are cut, as the log keeps
/// milliseconds.
fn rfc3339_millis(value: &str) -> Result<i64> {
    value
        .parse::<Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| {
            Error::invalid(
                "filter",
                format!(
                    "{value:?} is not an RFC 3339 time; write it like \"2026-01-31T08:00:00Z\""
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bad(filter: &str) -> String {
        match parse_filter(filter) {
            Err(Error::InvalidArgument { field, reason }) if field == "filter" => reason,
            other => panic!("{filter}: {other:?}"),
        }
    }

    #[test]
    fn documented_fields_become_the_query() {
        let q = parse_filter(
            r#"token_name = "ci" AND method = "/flotilla.v1.ClusterService/ListClusters" AND cluster_id = dev AND result_code = ok AND time >= "2026-01-01T00:00:00Z" AND time < "2026-01-01T00:00:01.5+01:00""#,
        )
        .unwrap();
        assert_eq!(q.token_name.as_deref(), Some("ci"));
        assert_eq!(
            q.method.as_deref(),
            Some("/flotilla.v1.ClusterService/ListClusters")
        );
        assert_eq!(q.cluster_id.as_deref(), Some("dev"));
        assert_eq!(q.result_code.as_deref(), Some("OK"));
        // 2026-01-01T00:00:00Z is 1767225600 s after the epoch (date -d ... +%s).
        assert_eq!(q.since, Some(1_767_225_600_000));
        assert_eq!(q.before, Some(1_767_225_600_000 - 3_600_000 + 1_500));
    }

    #[test]
    fn time_bounds_narrow() {
        let q = parse_filter(
            r#"time > "1970-01-01T00:00:01Z" AND time >= "1970-01-01T00:00:00Z" AND time <= "1970-01-01T00:00:09Z" AND time < "1970-01-01T00:00:10Z""#,
        )
        .unwrap();
        assert_eq!((q.since, q.before), (Some(1_001), Some(9_001)));
        let q = parse_filter(r#"time = "1970-01-01T00:00:02Z""#).unwrap();
        assert_eq!((q.since, q.before), (Some(2_000), Some(2_001)));
    }

    #[test]
    fn refusals_name_the_problem() {
        assert!(bad("since_millis = 5").contains("cannot filter on \"since_millis\""));
        assert!(bad(r#"time >= "yesterday""#).contains("RFC 3339"));
        assert!(bad("method < x").contains("only `=`"));
        assert!(bad("token_name:*").contains(":*"));
    }
}

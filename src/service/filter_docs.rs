//! Every filter the proto comments document is accepted by its list: the comments above each
//! `string filter` field are read from proto/flotilla/v1/*.proto at test time, their examples
//! and named fields turned into filters, and handed to that list's parser.

use std::path::Path;

use crate::service::{Result, admin::audit_events, clusters, secrets::credentials};

/// A list's filter parser, answering only whether it accepts a filter.
type FilterParser = fn(&str) -> Result<()>;

/// The filter parser of each list request with a `filter` field. `None`: the service is not
/// served (its RPCs answer UNIMPLEMENTED), so there is no parser to hold to the comment yet.
fn parser(request: &str) -> Option<Option<FilterParser>> {
    Some(match request {
        "ListClustersRequest" => Some(|f| clusters::parse_filter(f).map(drop)),
        "ListCredentialsRequest" => Some(|f| credentials::parse_filter(f).map(drop)),
        "ListAuditEventsRequest" => Some(|f| audit_events::parse_filter(f).map(drop)),
        "ListRegistriesRequest" => None,
        _ => return None,
    })
}

/// `(request message, comment above its filter field)` of every list request (`List*Request`)
/// with a `filter` field. (Other messages' `filter`s, such as a log line substring, are not
/// list filters.)
fn documented_filters(proto: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut message = String::new();
    let mut comment = Vec::new();
    for line in proto.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("message ") {
            message = rest.trim_end_matches('{').trim().to_string();
            comment.clear();
        } else if let Some(text) = line.strip_prefix("//") {
            comment.push(text.trim().to_string());
        } else {
            if line.starts_with("string filter =")
                && message.starts_with("List")
                && message.ends_with("Request")
            {
                found.push((message.clone(), comment.join(" ")));
            }
            comment.clear();
        }
    }
    found
}

/// The filters a comment documents: each `backquoted` example, and for each field after
/// "Fields:" a comparison with each operator the comment names for it (`=` when none).
/// `labels.<key>` stands for any key, tested for a value and for presence.
fn examples(comment: &str) -> Vec<String> {
    let mut filters: Vec<String> = comment
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let Some((_, fields)) = comment.split_once("Fields:") else {
        return filters;
    };
    for item in fields.split([',', ';']) {
        let item = item.trim().trim_end_matches('.');
        let item = item.strip_prefix("and ").unwrap_or(item);
        let mut words = item.split_whitespace();
        let Some(field) = words.next() else { continue };
        let operators: Vec<&str> = words
            .filter(|w| w.chars().all(|c| matches!(c, '<' | '>' | '=' | '!')))
            .collect();
        let value = if item.contains("RFC 3339") {
            "\"2026-01-31T08:00:00Z\"".to_string()
        } else {
            // A value the comment's own example gives the field, if any (enums need one).
            filters
                .iter()
                .find_map(|example| {
                    let (_, after) = example.split_once(&format!("{field} = "))?;
                    after.split_whitespace().next().map(str::to_string)
                })
                .unwrap_or_else(|| "\"x\"".to_string())
        };
        let field = field.replace("<key>", "team");
        for op in if operators.is_empty() {
            vec!["="]
        } else {
            operators
        } {
            filters.push(format!("{field} {op} {value}"));
        }
        if field.starts_with("labels.") {
            filters.push(format!("{field}:*"));
        }
    }
    filters
}

#[test]
fn every_documented_filter_is_accepted() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/flotilla/v1");
    let mut checked = 0;
    let mut failures = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("proto directory") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "proto") {
            continue;
        }
        let proto = std::fs::read_to_string(&path).expect("read proto");
        for (request, comment) in documented_filters(&proto) {
            let parse = parser(&request).unwrap_or_else(|| {
                panic!("{request} documents a filter but no parser is named for it in this test")
            });
            let Some(parse) = parse else { continue };
            let filters = examples(&comment);
            assert!(
                !filters.is_empty(),
                "{request}: its filter comment documents nothing: {comment:?}"
            );
            for filter in filters {
                checked += 1;
                if let Err(err) = parse(&filter) {
                    failures.push(format!("{request}: {filter:?}: {err}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "documented but refused:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 10, "only {checked} documented filters found");
}

#[test]
fn examples_follow_the_comment() {
    let got = examples(
        "such as `provider = \"acme\" AND state = RUNNING`. Fields: provider, state, labels.<key>; and time >= / < RFC 3339 timestamps.",
    );
    assert_eq!(
        got,
        [
            "provider = \"acme\" AND state = RUNNING",
            "provider = \"acme\"",
            "state = RUNNING",
            "labels.team = \"x\"",
            "labels.team:*",
            "time >= \"2026-01-31T08:00:00Z\"",
            "time < \"2026-01-31T08:00:00Z\"",
        ]
    );
}

//! The queries of `deploy/` (Prometheus alert rules, the Grafana dashboard) checked against the
//! series a server really exports: every metric name a query reads must be one the scrapes saw.

use std::collections::BTreeSet;

use serde_json::Value;

/// Metric names a PromQL expression reads: identifiers that are not functions, keywords,
/// label names (inside `{}` or `by (...)`), durations or strings.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    // Drop strings, label matchers, ranges, and grouping clauses.
    let mut text = String::new();
    let mut depth_brace = 0;
    let mut in_string = false;
    let mut in_range = false;
    for c in expr.chars() {
        match c {
            '"' if depth_brace == 0 => in_string = !in_string,
            _ if in_string => {}
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => in_range = true,
            ']' => in_range = false,
            _ if depth_brace > 0 || in_range => {}
            c => text.push(c),
        }
    }
    // Clauses whose parentheses hold label names, not metrics.
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Operators, literals and aggregations (which may be followed by `by (...)` rather than
    // their parenthesis, so they are not always calls).
    const KEYWORDS: &[&str] = &[
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    let mut names = BTreeSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut after_grouping = false;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j] == ' ' {
                j += 1;
            }
            let is_call = chars.get(j) == Some(&'(');
            let lower = word.to_ascii_lowercase();
            if GROUPING.contains(&lower.as_str()) {
                after_grouping = is_call;
            } else if after_grouping {
                // Inside a grouping clause's parentheses: label names until ')'.
            } else if !is_call && !KEYWORDS.contains(&lower.as_str()) {
                names.insert(word);
            }
            continue;
        }
        if c == ')' && after_grouping {
            after_grouping = false;
        }
        if c.is_ascii_digit() {
            // Numbers and durations (5m, 1h).
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    names
}

fn deploy_file(path: &str) -> String {
    let full = crate::workspace_dir().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Every `expr` in the alert rules and every `expr` in the dashboard's panels.
fn deploy_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rules: Value =
        serde_saphyr::from_str(&deploy_file("deploy/prometheus/flotilla-alerts.yaml"))
            .expect("the alert rules parse as YAML");
    let groups = rules["groups"].as_array().expect("groups");
    assert!(!groups.is_empty());
    for group in groups {
        for rule in group["rules"].as_array().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .expect("every rule is an alert")
                .to_string();
            let expr = rule["expr"].as_str().expect("expr").to_string();
            assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{name}: summary"
            );
            out.push((name, expr));
        }
    }
    let dashboard: Value =
        serde_json::from_str(&deploy_file("deploy/grafana/flotilla-dashboard.json"))
            .expect("the dashboard is JSON");
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                out.push((
                    panel["title"].as_str().unwrap_or("?").to_string(),
                    expr.to_string(),
                ));
            }
        }
    }
    out
}

/// Every deploy/ query reads only series in `exported` (gathered from real scrapes above).
pub fn deploy_queries_read_only(exported: &BTreeSet<String>) {
    let expressions = deploy_expressions();
    assert!(expressions.len() >= 10, "{} expressions", expressions.len());
    let mut read = BTreeSet::new();
    for (what, expr) in &expressions {
        let names = promql_metric_names(expr);
        assert!(!names.is_empty(), "{what}: no metric in {expr}");
        for name in names {
            assert!(
                exported.contains(&name),
                "{what}: {name} is not exported by the server (expr {expr}); exported: {exported:?}"
            );
            read.insert(name);
        }
    }
    // And the dashboard shows the families the issue asks for.
    for family in [
        "rpc_server_call_duration_seconds_count",
        "flotilla_rpc_server_open_streams",
        "flotilla_cluster_reachable",
        "flotilla_kube_request_duration_seconds_count",
        "flotilla_watch_cache_objects",
        "flotilla_vendor_calls_total",
        "flotilla_vendor_throttles_total",
        "flotilla_operations",
        "db_client_connection_count",
        "db_client_operation_duration_seconds_bucket",
        "flotilla_audit_queue_depth",
        "flotilla_runtime_alive_tasks",
        "process_resident_memory_bytes",
    ] {
        assert!(read.contains(family), "no deploy/ query reads {family}");
    }
}

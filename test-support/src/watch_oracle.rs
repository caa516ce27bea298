//! What the API server itself says about the requests it served: its audit log (written by the
//! first API server of the test control plane, FLOTILLA_KUBE_AUDIT_LOG) and its `/metrics`.

use std::{
    io::{Read, Seek, SeekFrom},
    path::PathBuf,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;

/// The audit log from the moment this tail was made (the file is shared and large).
pub struct AuditTail {
    path: PathBuf,
    seen: Mutex<(u64, Vec<Value>)>,
}

impl Default for AuditTail {
    fn default() -> AuditTail {
        AuditTail::new()
    }
}

impl AuditTail {
    pub fn new() -> AuditTail {
        // scripts/kube-env's env file names it; otherwise it sits in the work dir.
        let path = std::env::var_os("FLOTILLA_KUBE_AUDIT_LOG")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                std::env::var_os("FLOTILLA_KUBE_DIR")
                    .filter(|d| !d.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| crate::workspace_dir().join("target/kube-env"))
                    .join("logs/audit.log")
            });
        let start = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        AuditTail {
            path,
            seen: Mutex::new((start, Vec::new())),
        }
    }

    /// Every event written since the tail was made (complete lines only).
    pub fn events(&self) -> Vec<Value> {
        let mut seen = self.seen.lock().unwrap();
        let mut file = std::fs::File::open(&self.path).expect("audit log");
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < seen.0 {
            // Rotated: start over with the new file.
            seen.0 = 0;
        }
        file.seek(SeekFrom::Start(seen.0)).expect("seek");
        let mut text = String::new();
        file.read_to_string(&mut text).expect("read audit log");
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        for line in text[..complete].lines() {
            if let Ok(event) = serde_json::from_str::<Value>(line) {
                seen.1.push(event);
            }
        }
        seen.0 += complete as u64;
        seen.1.clone()
    }

    /// Completed requests matching `verb`, `resource`, a namespace (`Some("")`: none) and a user.
    pub fn count(
        &self,
        verb: &str,
        resource: &str,
        namespace: Option<&str>,
        user: Option<&str>,
        stage: &str,
    ) -> usize {
        self.events()
            .iter()
            .filter(|e| {
                e["stage"] == stage
                    && e["verb"] == verb
                    && e["objectRef"]["resource"] == resource
                    && e["objectRef"]["subresource"].is_null()
                    && namespace
                        .is_none_or(|ns| e["objectRef"]["namespace"].as_str().unwrap_or("") == ns)
                    && user.is_none_or(|u| e["user"]["username"] == u)
            })
            .count()
    }

    /// LISTs of pods in `namespace` answered so far.
    pub fn pod_lists(&self, namespace: &str) -> usize {
        self.lists("pods", namespace)
    }

    /// LISTs of `resource` (such as "events") in `namespace` answered so far.
    pub fn lists(&self, resource: &str, namespace: &str) -> usize {
        self.count("list", resource, Some(namespace), None, "ResponseComplete")
    }

    /// Waits (10 s at most) until at least `n` LISTs of pods in `namespace` were answered.
    pub async fn wait_for_pod_lists(&self, namespace: &str, n: usize) {
        self.wait_for_lists("pods", namespace, n).await
    }

    /// Waits (10 s at most) until at least `n` LISTs of `resource` in `namespace` were answered.
    pub async fn wait_for_lists(&self, resource: &str, namespace: &str, n: usize) {
        let started = Instant::now();
        while self.lists(resource, namespace) < n {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the API server logged {} LISTs of {resource} in {namespace}, expected {n}",
                self.lists(resource, namespace)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Repeats `query` until one is answered without the API server logging a LIST of pods in
    /// `namespace` (the cache has synced), and returns that answer. 20 s at most.
    pub async fn until_served_without_a_list<T, F, Fut>(&self, namespace: &str, query: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        self.until_served_without_a_list_of("pods", namespace, query)
            .await
    }

    /// Repeats `query` until one is answered without the API server logging a LIST of
    /// `resource` in `namespace` (the cache has synced), and returns that answer. 20 s at most.
    pub async fn until_served_without_a_list_of<T, F, Fut>(
        &self,
        resource: &str,
        namespace: &str,
        mut query: F,
    ) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let started = Instant::now();
        loop {
            let before = self.lists(resource, namespace);
            let answer = query().await;
            // The audit event of a request is written as its response completes; give it time.
            tokio::time::sleep(Duration::from_millis(400)).await;
            if self.lists(resource, namespace) == before {
                return answer;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "every query still reached the API server after 20 s: the cache never served"
            );
        }
    }
}

/// The sum of a metric's samples whose labels include every `(name, value)` given, read from
/// the API server's `/metrics` with `client` (the admin kubeconfig may read it).
pub async fn metric(client: &kube::Client, metric: (&str, &[(&str, &str)])) -> f64 {
    try_metric(client, metric).await.expect("GET /metrics")
}

/// [`metric`], or the error when `/metrics` cannot be read (benchmarks report that and go on).
pub async fn try_metric(
    client: &kube::Client,
    (name, labels): (&str, &[(&str, &str)]),
) -> Result<f64, kube::Error> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .expect("metrics request");
    let text = client.request_text(request).await?;
    Ok(sum_samples(&text, name, labels))
}

/// Watches of `resource` (such as "events") open on the API server now, from its own
/// `apiserver_longrunning_requests` gauge.
pub async fn open_watches(client: &kube::Client, resource: &str) -> i64 {
    metric(
        client,
        (
            "apiserver_longrunning_requests",
            &[("resource", resource), ("verb", "WATCH")],
        ),
    )
    .await as i64
}

fn sum_samples(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix('{')?;
            let (set, value) = rest.rsplit_once("} ")?;
            labels
                .iter()
                .all(|(k, v)| set.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
                .then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

#[test]
fn sums_the_matching_samples() {
    let text = "# HELP x\napiserver_request_total{code=\"200\",resource=\"pods\",scope=\"namespace\",verb=\"LIST\"} 3\napiserver_request_total{code=\"500\",resource=\"pods\",scope=\"namespace\",verb=\"LIST\"} 2\napiserver_request_total{code=\"200\",resource=\"pods\",scope=\"cluster\",verb=\"LIST\"} 7\n";
    assert_eq!(
        sum_samples(
            text,
            "apiserver_request_total",
            &[("resource", "pods"), ("scope", "namespace")]
        ),
        5.0
    );
}

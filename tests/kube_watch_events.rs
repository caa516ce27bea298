//! WatchEvents: a newest-first snapshot, then live events; many watchers share one upstream
//! watch that closes when the last leaves; a resume token continues without duplicates. And
//! ListEvents, served from the cluster's event cache once it has synced.

use flotilla_test_support as support;

use std::time::{Duration, Instant};

use flotilla::proto::{
    self as pb, cluster_service_client::ClusterServiceClient, log_stream_client::LogStreamClient,
    workload_service_client::WorkloadServiceClient,
};
use k8s_openapi::api::core::v1::Event;
use kube::api::{DeleteParams, PostParams};
use support::{
    kube::{self as kenv, TestNamespace},
    kubeconfigs,
    server::{AuthedChannel, TestServer},
    watch_oracle::AuditTail,
};
use tonic::Streaming;

/// The sharing test counts event watches on the API server, so the tests of this file (each
/// of which opens one) take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn create_event(ns: &TestNamespace, name: &str, reason: &str, second: u32, kind: &str) {
    let event: Event = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": ns.name()},
        "reason": reason, "message": format!("{reason} happened"), "type": kind,
        "firstTimestamp": format!("2026-01-01T00:00:{second:02}Z"),
        "lastTimestamp": format!("2026-01-01T00:00:{second:02}Z"),
        "source": {"component": "flotilla-test"}
    }))
    .expect("event");
    ns.api::<Event>()
        .create(&PostParams::default(), &event)
        .await
        .expect("create event");
}

async fn next(stream: &mut Streaming<pb::WatchEventsResponse>) -> pb::WatchEventsResponse {
    tokio::time::timeout(Duration::from_secs(15), stream.message())
        .await
        .expect("a message in time")
        .expect("stream ok")
        .expect("stream open")
}

/// Open upstream watches of events on the API server, from its metrics.
async fn event_watches() -> i64 {
    support::watch_oracle::open_watches(&kenv::client().await, "events").await
}

#[tokio::test]
async fn snapshot_live_sharing_and_resume() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::create(&kenv::client().await, "watchev").await;
    create_event(&ns, "e1", "First", 1, "Normal").await;
    create_event(&ns, "e2", "Second", 2, "Warning").await;
    create_event(&ns, "e3", "Third", 3, "Normal").await;
    let server = TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    let mut client = LogStreamClient::new(server.channel().await);
    let request = pb::WatchEventsRequest {
        cluster_id: "local".into(),
        namespace: ns.name().into(),
        ..Default::default()
    };
    let watches_before = event_watches().await;

    let mut first = client
        .watch_events(request.clone())
        .await
        .expect("watch")
        .into_inner();
    let mut reasons = Vec::new();
    loop {
        let message = next(&mut first).await;
        match message.r#type() {
            pb::WatchEventsResponseType::Snapshot => {
                reasons.push(message.event.expect("event").reason)
            }
            pb::WatchEventsResponseType::SnapshotEnd => break,
            other => panic!("unexpected {other:?} before the snapshot ended"),
        }
    }
    assert_eq!(reasons, ["Third", "Second", "First"], "newest first");

    // A second watcher of the same namespace shares the upstream watch.
    let mut second = client
        .watch_events(request.clone())
        .await
        .expect("second watch")
        .into_inner();
    while next(&mut second).await.r#type() != pb::WatchEventsResponseType::SnapshotEnd {}
    assert_eq!(
        event_watches().await,
        watches_before + 1,
        "one upstream watch for two watchers"
    );

    create_event(&ns, "e4", "Fourth", 4, "Normal").await;
    let live = next(&mut first).await;
    assert_eq!(live.r#type(), pb::WatchEventsResponseType::Added);
    assert_eq!(live.event.as_ref().unwrap().reason, "Fourth");
    let token = live.resume_token.clone();
    let seen_by_second = next(&mut second).await;
    assert_eq!(seen_by_second.event.unwrap().reason, "Fourth");

    // Disconnect, miss an event, resume: exactly the missed one, no snapshot, no duplicate.
    drop(first);
    create_event(&ns, "e5", "Fifth", 5, "Warning").await;
    let from_second = next(&mut second).await;
    assert_eq!(from_second.event.unwrap().reason, "Fifth");
    let mut resumed = client
        .watch_events(pb::WatchEventsRequest {
            resume_token: token,
            ..request.clone()
        })
        .await
        .expect("resume")
        .into_inner();
    let missed = next(&mut resumed).await;
    assert_eq!(missed.r#type(), pb::WatchEventsResponseType::Added);
    assert_eq!(missed.event.unwrap().reason, "Fifth");

    // Filters: warnings about one object.
    let mut warnings = client
        .watch_events(pb::WatchEventsRequest {
            r#type: "Warning".into(),
            involved_object: Some(pb::ObjectReference {
                kind: "Pod".into(),
                name: "web-0".into(),
                ..Default::default()
            }),
            ..request.clone()
        })
        .await
        .expect("filtered")
        .into_inner();
    let mut got = Vec::new();
    loop {
        let message = next(&mut warnings).await;
        if message.r#type() == pb::WatchEventsResponseType::SnapshotEnd {
            break;
        }
        got.push(message.event.unwrap().reason);
    }
    assert_eq!(got, ["Fifth", "Second"]);

    // Everyone leaves: the upstream watch closes.
    drop((second, resumed, warnings));
    let left = Instant::now();
    while event_watches().await != watches_before {
        assert!(
            left.elapsed() < Duration::from_secs(2),
            "upstream watch still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
    ns.cleanup().await;
}

#[tokio::test]
async fn a_watcher_that_does_not_read_is_told_how_many_it_missed() {
    use futures::StreamExt;
    const EVENTS: usize = 1500;
    let _turn = ONE_AT_A_TIME.lock().await;
    let ns = TestNamespace::create(&kenv::client().await, "lagged").await;
    let server = TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    let request = pb::WatchEventsRequest {
        cluster_id: "local".into(),
        namespace: ns.name().into(),
        ..Default::default()
    };
    // The slow watcher's HTTP/2 window is small, so what it does not read stays on the server
    // instead of in transport buffers.
    let slow_channel = tonic::transport::Endpoint::from_shared(server.url())
        .expect("url")
        .initial_stream_window_size(Some(8 * 1024))
        .connect()
        .await
        .expect("connect");
    let mut slow = LogStreamClient::new(tonic::service::interceptor::InterceptedService::new(
        slow_channel,
        support::server::Bearer::new(Some(&format!("Bearer {}", support::server::ADMIN_TOKEN))),
    ))
    .watch_events(request.clone())
    .await
    .expect("slow watch")
    .into_inner();
    assert_eq!(
        next(&mut slow).await.r#type(),
        pb::WatchEventsResponseType::SnapshotEnd
    );
    let mut eager = LogStreamClient::new(server.channel().await)
        .watch_events(request)
        .await
        .expect("eager watch")
        .into_inner();
    assert_eq!(
        next(&mut eager).await.r#type(),
        pb::WatchEventsResponseType::SnapshotEnd
    );

    // Many events while the slow watcher reads nothing.
    futures::stream::iter(0..EVENTS)
        .map(|i| {
            let ns = &ns;
            async move { create_event(ns, &format!("e{i}"), "Burst", (i % 60) as u32, "Normal").await }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    // The eager watcher sees every one: then the server has them all.
    let mut seen = 0;
    while seen < EVENTS {
        let message = next(&mut eager).await;
        assert_eq!(message.r#type(), pb::WatchEventsResponseType::Added);
        seen += 1;
    }

    // The slow one gets what fit, a LAGGED message counting what it missed, and the rest.
    let (mut added, mut dropped, mut lagged) = (0usize, 0usize, 0usize);
    while added + dropped < EVENTS {
        let message = next(&mut slow).await;
        match message.r#type() {
            pb::WatchEventsResponseType::Added => added += 1,
            pb::WatchEventsResponseType::Lagged => {
                assert!(message.dropped_count > 0);
                assert!(!message.resume_token.is_empty());
                lagged += 1;
                dropped += message.dropped_count as usize;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(lagged >= 1, "the slow watcher is told it lagged");
    assert_eq!(
        added + dropped,
        EVENTS,
        "every event is either sent or counted"
    );
    server.shutdown().await;
    ns.cleanup().await;
}

/// An event in the test's namespace at second `second` of 2026-01-01, about pod `object`.
fn event(ns: &str, name: &str, second: u32, warning: bool, object: &str) -> Event {
    let at = format!("2026-01-01T00:{:02}:{:02}Z", second / 60, second % 60);
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "name": object, "namespace": ns},
        "reason": "Tested", "message": format!("{name} happened"),
        "type": if warning { "Warning" } else { "Normal" },
        "firstTimestamp": at, "lastTimestamp": at,
        "source": {"component": "flotilla-test"}
    }))
    .expect("event")
}

/// Every page of a ListEvents walk (pages of 10): the names in order, and the total.
async fn event_walk(
    client: &mut WorkloadServiceClient<AuthedChannel>,
    request: &pb::ListEventsRequest,
) -> (Vec<String>, i32) {
    let (mut names, mut token, mut total) = (Vec::new(), String::new(), 0);
    loop {
        let reply = client
            .list_events(pb::ListEventsRequest {
                page_size: 10,
                page_token: token,
                ..request.clone()
            })
            .await
            .expect("list events")
            .into_inner();
        if names.is_empty() {
            total = reply.total_size;
        }
        names.extend(reply.events.into_iter().map(|e| e.name));
        if reply.next_page_token.is_empty() {
            return (names, total);
        }
        token = reply.next_page_token;
    }
}

/// The names of the events `keep` picks, as the API server holds them, newest lastTimestamp
/// first: the expected answers.
async fn newest_first(events: &kube::Api<Event>, keep: impl Fn(&Event) -> bool) -> Vec<String> {
    let mut listed = events.list(&Default::default()).await.expect("list").items;
    listed.retain(|e| keep(e));
    listed.sort_by(|a, b| b.last_timestamp.cmp(&a.last_timestamp));
    listed
        .into_iter()
        .map(|e| e.metadata.name.unwrap_or_default())
        .collect()
}

/// ListEvents comes from the cluster's event cache once it has synced: newest first in the
/// order of the events' own times as the API server holds them, filtered and paged like a
/// direct list, following new and deleted events, and with no LIST of events reaching the API
/// server (its audit log).
#[tokio::test]
async fn event_lists_come_from_the_event_cache() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let watches_before = event_watches().await;
    let ns = TestNamespace::create(&kenv::client().await, "evcache").await;
    let events = ns.api::<Event>();
    // 25 events created out of time order (7 × i mod 25 visits every second once); every third
    // a Warning; about two pods.
    for i in 0..25u32 {
        let e = event(
            ns.name(),
            &format!("ev-{i}"),
            (i * 7) % 25,
            i % 3 == 0,
            &format!("web-{}", i % 2),
        );
        events
            .create(&PostParams::default(), &e)
            .await
            .expect("event");
    }
    let server = TestServer::start().await;
    ClusterServiceClient::new(server.channel().await)
        .import_cluster(pb::ImportClusterRequest {
            cluster_id: "local".into(),
            source: Some(pb::import_cluster_request::Source::Kubeconfig(
                pb::KubeconfigSource {
                    kubeconfig: kubeconfigs::admin_kubeconfig().into_bytes(),
                    context: String::new(),
                },
            )),
            ..Default::default()
        })
        .await
        .expect("import");
    let mut workloads = WorkloadServiceClient::new(server.channel().await);
    let all = pb::ListEventsRequest {
        cluster_id: "local".into(),
        namespace: ns.name().into(),
        ..Default::default()
    };
    let audit = AuditTail::new();
    let (direct, direct_total) = event_walk(&mut workloads, &all).await;
    audit.wait_for_lists("events", ns.name(), 1).await;
    let (cached, cached_total) = audit
        .until_served_without_a_list_of("events", ns.name(), || {
            let (mut workloads, all) = (workloads.clone(), all.clone());
            async move { event_walk(&mut workloads, &all).await }
        })
        .await;
    let want = newest_first(&events, |_| true).await;
    assert_eq!(want.len(), 25);
    assert_eq!(
        (&cached, cached_total),
        (&want, 25),
        "the cache answers newest first"
    );
    assert_eq!((direct, direct_total), (want, 25), "as the direct list did");

    // Filters, and changes: all from the cache from now on. The expected answers are read
    // from the API server first, so that the test's own LISTs are not counted below.
    let want_warnings = newest_first(&events, |e| e.type_.as_deref() == Some("Warning")).await;
    let want_web_1 = newest_first(&events, |e| {
        e.involved_object.name.as_deref() == Some("web-1")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lists_before = audit.lists("events", ns.name());
    let warnings = pb::ListEventsRequest {
        r#type: "Warning".into(),
        ..all.clone()
    };
    assert_eq!(
        event_walk(&mut workloads, &warnings).await,
        (want_warnings, 9)
    );
    let about_web_1 = pb::ListEventsRequest {
        involved_object: Some(pb::ObjectReference {
            kind: "Pod".into(),
            name: "web-1".into(),
            ..Default::default()
        }),
        ..all.clone()
    };
    assert_eq!(
        event_walk(&mut workloads, &about_web_1).await,
        (want_web_1, 12)
    );

    events
        .create(
            &PostParams::default(),
            &event(ns.name(), "ev-newest", 3000, false, "web-0"),
        )
        .await
        .expect("event");
    events
        .delete("ev-0", &DeleteParams::default())
        .await
        .expect("delete");
    let deadline = Instant::now() + Duration::from_secs(10);
    let followed = loop {
        let (names, total) = event_walk(&mut workloads, &all).await;
        // A walk's total comes from its first page; a page may see the create and not yet
        // the delete, so the walk is taken once all three agree.
        if names.first().map(String::as_str) == Some("ev-newest")
            && !names.contains(&"ev-0".to_string())
            && total == 25
        {
            break (names, total);
        }
        assert!(
            Instant::now() < deadline,
            "the cache did not follow: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        audit.lists("events", ns.name()),
        lists_before,
        "a cached ListEvents reached the API server (audit log)"
    );
    assert_eq!(followed, (newest_first(&events, |_| true).await, 25));
    server.shutdown().await;
    // Nothing left behind: the cache's upstream watch ended with the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while event_watches().await > watches_before {
        assert!(
            Instant::now() < deadline,
            "the event cache's watch outlived the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ns.cleanup().await;
}

//! The tunnel against the agent's forwarder in one process, the API server replaced by a
//! function: multiplexing, flow control, newest-wins and keep-alives.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};

use super::{
    forward::{ForwardCounters, Forwarder},
    *,
};

fn upstream() -> ::kube::Client {
    let service = tower::service_fn(|request: Request<::kube::client::Body>| async move {
        let body: BoxBody<Bytes, Infallible> = match request.uri().path() {
            "/endless" => StreamBody::new(futures::stream::repeat_with(|| {
                Ok(http_body::Frame::data(Bytes::from(vec![b'x'; 8192])))
            }))
            .boxed(),
            path => Full::new(Bytes::from(format!("you asked for {path}"))).boxed(),
        };
        Ok::<_, Infallible>(Response::new(body))
    });
    ::kube::Client::new(service, "default")
}

/// Connects a tunnel of `registry` for `cluster` to a forwarder; returns the tunnel, the
/// forwarder's counters and the task pumping frames.
fn connect(
    registry: &Arc<TunnelRegistry>,
    cluster: &str,
) -> (
    Arc<Tunnel>,
    Arc<ForwardCounters>,
    tokio::task::JoinHandle<()>,
) {
    let (tunnel, mut to_agent) = registry.attach(cluster);
    let (agent_out, mut from_agent) = mpsc::unbounded_channel();
    let counters = Arc::new(ForwardCounters::default());
    let forwarder = Forwarder::new(upstream(), agent_out, counters.clone());
    let server_side = tunnel.clone();
    let pump = tokio::spawn(async move {
        loop {
            tokio::select! {
                frame = to_agent.recv() => match frame {
                    Some(frame) => forwarder.receive(frame),
                    None => break,
                },
                frame = from_agent.recv() => match frame {
                    Some(frame) => server_side.receive(frame),
                    None => break,
                },
                () = server_side.closed() => break,
            }
        }
        forwarder.shutdown();
    });
    (tunnel, counters, pump)
}

fn client(registry: &Arc<TunnelRegistry>, cluster: &str) -> ::kube::Client {
    ::kube::Client::new(
        TunnelService::new(registry.clone(), cluster, Duration::from_secs(5), None),
        "default",
    )
}

async fn get(
    client: &::kube::Client,
    path: &str,
) -> Result<Response<::kube::client::Body>, ::kube::Error> {
    client
        .send(
            Request::get(path)
                .body(::kube::client::Body::empty())
                .unwrap(),
        )
        .await
}

#[tokio::test]
async fn requests_go_through_and_an_unread_stream_does_not_block_others() {
    let registry = TunnelRegistry::new(Duration::from_secs(30));
    let (tunnel, counters, _pump) = connect(&registry, "c1");
    let client = client(&registry, "c1");

    // An endless answer nobody reads: the agent stops at the window.
    let endless = get(&client, "/endless").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = counters.response_bytes.load(Ordering::Relaxed);
    assert!(
        sent <= u64::from(INITIAL_WINDOW),
        "sent {sent} past the window"
    );
    assert!(sent > 0);

    // Others still pass.
    for n in 0..20 {
        let answer = get(&client, &format!("/n{n}")).await.unwrap();
        let bytes = answer.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes, format!("you asked for /n{n}").as_bytes());
    }
    assert_eq!(counters.requests.load(Ordering::Relaxed), 21);

    // Reading the endless one lets it go on past one window.
    let mut body = endless.into_body();
    let mut read = 0usize;
    while read < 4 * INITIAL_WINDOW as usize {
        read += body
            .frame()
            .await
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap()
            .len();
    }
    drop(body);
    // Dropping it resets the stream at both ends.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(tunnel.open_streams(), 0);
}

#[tokio::test]
async fn newest_tunnel_wins_and_detach_closes() {
    let registry = TunnelRegistry::new(Duration::from_secs(30));
    let mut changes = registry.subscribe();
    let (first, _, _p1) = connect(&registry, "c1");
    let (second, _, _p2) = connect(&registry, "c1");
    assert!(first.is_closed(), "the older tunnel is closed");
    assert!(!second.is_closed());
    // The older one's end does not disconnect the newer.
    registry.detach(&first, "stream ended");
    assert!(registry.is_connected("c1"));
    let body = get(&client(&registry, "c1"), "/x").await.unwrap();
    assert_eq!(body.status(), 200);

    // Another cluster's client never reaches this tunnel.
    let err = get(&client(&registry, "c2"), "/x").await.unwrap_err();
    assert!(
        err.to_string().contains(NOT_CONNECTED) || format!("{err:?}").contains("not connected")
    );

    registry.close_cluster("c1", "cluster detached");
    assert!(second.is_closed());
    assert!(!registry.is_connected("c1"));
    let mut seen = Vec::new();
    while let Ok(change) = changes.try_recv() {
        seen.push(change);
    }
    assert_eq!(seen.first(), Some(&TunnelChange::Connected("c1".into())));
    assert!(matches!(
        seen.last(),
        Some(TunnelChange::Disconnected { .. })
    ));
}

#[tokio::test]
async fn a_silent_agent_is_gone_after_one_keepalive() {
    let registry = TunnelRegistry::new(Duration::from_millis(300));
    // Attached, but nobody answers the pings.
    let (tunnel, _frames) = registry.attach("c1");
    let started = Instant::now();
    tunnel.clone().keep_alive().await;
    assert!(tunnel.is_closed());
    assert!(started.elapsed() < Duration::from_millis(600));
    assert!(tunnel.close_reason().unwrap().contains("keep-alive"));
}

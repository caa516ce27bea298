//! The soak (issue #18): two `flotilla serve` replicas (the release binary, or $FLOTILLA_BIN) on
//! one PostgreSQL database, under steady load for a long time, with one replica restarted every
//! few minutes:
//!
//! - followed StreamPodLogs streams of pods whose logs KWOK serves from files this bench appends
//!   to, and WatchEvents watchers shared over a few clusters while Events are created (and the
//!   oldest deleted) at a steady rate; both resume after every interruption;
//! - unary calls (GetCluster, ListClusters, ListPods, ListEvents) at a steady rate;
//! - clusters imported, read, and detached again;
//! - every `SOAK_RESTART_EVERY_SECS`, one replica gets SIGTERM and is started again.
//!
//! It samples RSS, open descriptors, threads and (when the binary has `--metrics-listen`) tokio's
//! alive tasks of each replica, writes a CSV time series and a summary, and exits non-zero when a
//! criterion fails. Run it through `bench/soak`, which prepares the environment and plots the CSV.
//!
//! Environment (defaults are the full soak): SOAK_DURATION_SECS (1800), SOAK_WARMUP_SECS (120),
//! SOAK_LOG_STREAMS (200), SOAK_LOG_PODS (20), SOAK_LOG_LINES_PER_SEC (per pod, 2),
//! SOAK_EVENT_WATCHERS (1000), SOAK_EVENT_NAMESPACES (3), SOAK_EVENTS_PER_SEC (total, 4),
//! SOAK_UNARY_PER_SEC (50), SOAK_CHURN_EVERY_SECS (10), SOAK_RESTART_EVERY_SECS (300),
//! SOAK_SAMPLE_SECS (5), SOAK_HOME_AFTER_SECS (15), SOAK_SETTLE_SECS
//! (2 × home-after + 30), SOAK_OUT (output path without extension, default
//! target/soak/soak-<time>), SOAK_DATABASE (flotilla_soak), FLOTILLA_BIN,
//! FLOTILLA_TEST_POSTGRES_URL (required).

mod soak_load;
mod soak_replica;
mod soak_report;
mod soak_setup;

use flotilla_test_support as support;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use soak_load::{Channels, Counters, StreamPlan, UnaryPlan};
use soak_replica::{Replica, ReplicaSetup, Restart};
use soak_report::{CsvWriter, Sample};
use tokio_util::sync::CancellationToken;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The knobs, so a three-minute run is the same program as the thirty-minute one.
#[derive(Debug, Clone)]
pub struct Knobs {
    pub duration: Duration,
    pub warmup: Duration,
    pub log_streams: usize,
    pub log_pods: usize,
    pub log_lines_per_sec: f64,
    pub event_watchers: usize,
    pub event_namespaces: usize,
    pub events_per_sec: f64,
    pub unary_per_sec: f64,
    pub churn_every: Duration,
    pub restart_every: Duration,
    pub sample_every: Duration,
    /// A stream resumed on the other replica goes back home after this (plus jitter).
    pub home_after: Duration,
    /// After the other replica's restart, a replica counts as warm again after this.
    pub settle: Duration,
}

impl Knobs {
    fn from_env() -> Knobs {
        Knobs {
            duration: Duration::from_secs(env_num("SOAK_DURATION_SECS", 1800)),
            warmup: Duration::from_secs(env_num("SOAK_WARMUP_SECS", 120)),
            log_streams: env_num("SOAK_LOG_STREAMS", 200) as usize,
            log_pods: env_num("SOAK_LOG_PODS", 20).max(1) as usize,
            log_lines_per_sec: env_f64("SOAK_LOG_LINES_PER_SEC", 2.0).max(0.1),
            event_watchers: env_num("SOAK_EVENT_WATCHERS", 1000) as usize,
            event_namespaces: env_num("SOAK_EVENT_NAMESPACES", 3).max(1) as usize,
            events_per_sec: env_f64("SOAK_EVENTS_PER_SEC", 4.0).max(0.1),
            unary_per_sec: env_f64("SOAK_UNARY_PER_SEC", 50.0).max(0.1),
            churn_every: Duration::from_secs(env_num("SOAK_CHURN_EVERY_SECS", 10).max(1)),
            restart_every: Duration::from_secs(env_num("SOAK_RESTART_EVERY_SECS", 300).max(1)),
            sample_every: Duration::from_secs(env_num("SOAK_SAMPLE_SECS", 5).max(1)),
            home_after: Duration::from_secs(env_num("SOAK_HOME_AFTER_SECS", 15).max(1)),
            settle: Duration::ZERO,
        }
        .with_settle()
    }

    /// Streams back home (within twice `home_after`) plus 30 s for the connections they used
    /// to close: `SOAK_SETTLE_SECS` overrides.
    fn with_settle(mut self) -> Knobs {
        let default = 2 * self.home_after.as_secs() + 30;
        self.settle = Duration::from_secs(env_num("SOAK_SETTLE_SECS", default));
        self
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let knobs = Knobs::from_env();
    let binary = support::process::release_binary();
    let out = std::env::var("SOAK_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let stamp = k8s_openapi::jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S");
            support::workspace_dir().join(format!("target/soak/soak-{stamp}"))
        });
    let run_dir = out.with_extension("run");
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).expect("run dir");
    println!("soak: {knobs:?}");
    println!(
        "soak: binary {binary}; output {}.{{csv,txt}}; server logs in {}",
        out.display(),
        run_dir.display()
    );

    // The Kubernetes side: namespaces on both API servers, pods whose logs KWOK serves.
    let kube = soak_setup::Kube::prepare(&knobs).await;

    // The replicas.
    let admin = support::db::postgres_admin_url();
    let database = std::env::var("SOAK_DATABASE").unwrap_or_else(|_| "flotilla_soak".into());
    let database_url = soak_replica::fresh_database(&admin, &database).await;
    let setup = ReplicaSetup::new(binary.clone(), database_url, &run_dir);
    let tasks_source = if setup.metrics {
        "tokio alive tasks from --metrics-listen"
    } else {
        "this binary has no --metrics-listen: OS threads from /proc/PID/status instead of tasks"
    };
    println!("soak: tasks: {tasks_source}");
    let replicas: Vec<Arc<Replica>> = ["a", "b"]
        .into_iter()
        .map(|name| Arc::new(Replica::new(name, setup.metrics)))
        .collect();
    for r in &replicas {
        let took = r.start(&setup).await;
        println!(
            "soak: replica {} serving on {} (pid {}) after {:.1} s",
            r.name,
            r.url(),
            r.pid(),
            took.as_secs_f64()
        );
    }
    let urls: Vec<String> = replicas.iter().map(|r| r.url()).collect();
    let channels = Arc::new(Channels::new(
        &urls,
        knobs.log_streams + knobs.event_watchers,
    ));
    kube.import_cluster(&channels).await;
    let stream_plan = Arc::new(StreamPlan {
        cluster: soak_setup::CLUSTER.into(),
        namespace: kube.namespace.clone(),
        log_pods: kube.pods.clone(),
        event_namespaces: kube.event_namespaces.clone(),
        stall: Duration::from_secs_f64((20.0 / knobs.log_lines_per_sec).max(30.0)),
        event_stall: Duration::from_secs_f64(
            (20.0 * knobs.event_namespaces as f64 / knobs.events_per_sec).max(30.0),
        ),
        resume_deadline: Duration::from_secs(60),
        home_after: knobs.home_after,
    });
    let unary_plan = Arc::new(UnaryPlan {
        cluster: soak_setup::CLUSTER.into(),
        pods_namespace: kube.namespace.clone(),
        events_namespace: kube.event_namespaces[kube.event_namespaces.len() - 1].clone(),
    });
    let counters = Arc::new(Counters::default());
    let stop = CancellationToken::new();
    let mut background = Vec::new();

    // Sources: log lines and events at steady rates.
    background.push(tokio::spawn(kube.write_logs(knobs.clone(), stop.clone())));
    for namespace in &kube.event_namespaces {
        background.push(tokio::spawn(soak_setup::create_events(
            kube.client(),
            namespace.clone(),
            knobs.events_per_sec / knobs.event_namespaces as f64,
            stop.clone(),
        )));
    }

    // Warm every replica's caches once, so minute 1 measures a warm server like the others.
    let warm_started = Instant::now();
    for call in 0..(4 * replicas.len() as u64) {
        soak_load::unary_call(
            call,
            unary_plan.clone(),
            channels.clone(),
            Arc::new(Counters::default()),
            warm_started,
        )
        .await;
    }

    // The streams, opened over a few seconds.
    let opening = Instant::now();
    let total = knobs.log_streams + knobs.event_watchers;
    for i in 0..total {
        let (plan, ch, co, st) = (
            stream_plan.clone(),
            channels.clone(),
            counters.clone(),
            stop.clone(),
        );
        background.push(if i < knobs.log_streams {
            tokio::spawn(soak_load::follow_logs(i, plan, ch, co, st))
        } else {
            tokio::spawn(soak_load::watch_events(
                i - knobs.log_streams,
                plan,
                ch,
                co,
                st,
            ))
        });
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let open_now = || {
        (counters.logs.open_now.load(Ordering::Relaxed)
            + counters.events.open_now.load(Ordering::Relaxed)) as usize
    };
    while open_now() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "soak: {} log streams and {} event watchers open after {:.1} s; load runs for {} s",
        counters.logs.open_now.load(Ordering::Relaxed),
        counters.events.open_now.load(Ordering::Relaxed),
        opening.elapsed().as_secs_f64(),
        knobs.duration.as_secs()
    );

    // The load, the restarts, the samples.
    let load_started = Instant::now();
    let unary_stop = stop.clone();
    let unary = {
        let (plan, ch, co) = (unary_plan.clone(), channels.clone(), counters.clone());
        let per_sec = knobs.unary_per_sec;
        tokio::spawn(async move {
            let mut call = 0u64;
            loop {
                let due = load_started + Duration::from_secs_f64(call as f64 / per_sec);
                tokio::select! {
                    () = unary_stop.cancelled() => return,
                    () = tokio::time::sleep_until(due.into()) => {}
                }
                tokio::spawn(soak_load::unary_call(
                    call,
                    plan.clone(),
                    ch.clone(),
                    co.clone(),
                    load_started,
                ));
                call += 1;
            }
        })
    };
    background.push(unary);
    let churn = {
        let (ch, co, st) = (channels.clone(), counters.clone(), stop.clone());
        // The second API server: the one cluster not imported for the streams.
        let kubeconfig = Arc::new(support::kubeconfigs::admin_kubeconfig_at(
            &support::kubeconfigs::second_server(),
        ));
        let every = knobs.churn_every;
        tokio::spawn(async move {
            let mut cycle = 0u64;
            loop {
                tokio::select! {
                    () = st.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                tokio::spawn(soak_load::churn_cycle(
                    cycle,
                    kubeconfig.clone(),
                    ch.clone(),
                    co.clone(),
                ));
                cycle += 1;
            }
        })
    };
    background.push(churn);
    let restarts: Arc<Mutex<Vec<Restart>>> = Arc::default();
    let restarter = {
        let (replicas, restarts, st) = (replicas.clone(), restarts.clone(), stop.clone());
        let (every, duration) = (knobs.restart_every, knobs.duration);
        let setup = Arc::new(setup);
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let due = every * (n as u32 + 1);
                if due >= duration {
                    st.cancelled().await;
                    return setup;
                }
                tokio::select! {
                    () = st.cancelled() => return setup,
                    () = tokio::time::sleep_until((load_started + due).into()) => {}
                }
                let replica = &replicas[n % replicas.len()];
                let at_secs = load_started.elapsed().as_secs_f64();
                let old_pid = replica.pid();
                let (stop_secs, graceful) = replica.stop(Duration::from_secs(30)).await;
                let ready = replica.start(&setup).await;
                let restart = Restart {
                    at_secs,
                    replica: replica.name,
                    old_pid,
                    new_pid: replica.pid(),
                    stop_secs,
                    graceful,
                    ready_secs: ready.as_secs_f64(),
                };
                println!("soak: restarted {restart:?}");
                restarts.lock().expect("lock").push(restart);
                n += 1;
            }
        })
    };

    let mut csv = CsvWriter::create(&out.with_extension("csv"));
    let http = reqwest::Client::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut seen_unary = 0usize;
    let mut seen_restarts = 0usize;
    let mut tick = tokio::time::interval(knobs.sample_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let at = load_started.elapsed();
        let mut procs = Vec::new();
        for r in &replicas {
            procs.push(r.sample(&http).await);
        }
        let (calls, errors, mut latencies) = {
            let unary = counters.unary.lock().expect("lock");
            let fresh = &unary[seen_unary.min(unary.len())..];
            seen_unary = unary.len();
            (
                fresh.len(),
                fresh.iter().filter(|s| !s.ok).count(),
                fresh
                    .iter()
                    .filter(|s| s.ok)
                    .map(|s| s.latency)
                    .collect::<Vec<_>>(),
            )
        };
        let restarted = {
            let all = restarts.lock().expect("lock");
            let names: Vec<&str> = all[seen_restarts..].iter().map(|r| r.replica).collect();
            seen_restarts = all.len();
            names.join("+")
        };
        let sample = Sample {
            at_secs: at.as_secs_f64(),
            load1: soak_setup::load_average(),
            replicas: procs,
            unary_calls: calls,
            unary_errors: errors,
            unary_p50_ms: soak_report::quantile_ms(&mut latencies, 0.50),
            unary_p99_ms: soak_report::quantile_ms(&mut latencies, 0.99),
            log_streams_open: counters.logs.open_now.load(Ordering::Relaxed),
            event_watchers_open: counters.events.open_now.load(Ordering::Relaxed),
            log_lines: counters.logs.items.load(Ordering::Relaxed),
            events_delivered: counters.events.items.load(Ordering::Relaxed),
            restarted,
        };
        csv.append(&sample);
        if samples
            .len()
            .is_multiple_of((60 / knobs.sample_every.as_secs().max(1) as usize).max(1))
        {
            println!("soak: {}", sample.csv_row());
        }
        samples.push(sample);
        if at >= knobs.duration {
            break;
        }
    }

    // Stop the load (a restart in progress finishes first), then judge.
    stop.cancel();
    let setup = restarter.await.expect("restarter");
    for task in background {
        let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unary_samples = counters.unary.lock().expect("lock").clone();
    let restarts = restarts.lock().expect("lock").clone();
    let commit = soak_setup::binary_commit(&binary);
    let (summary, pass) = soak_report::summarize(&soak_report::Inputs {
        title: format!(
            "Flotilla soak, {} s, finished {} UTC; binary {binary} ({commit})",
            knobs.duration.as_secs(),
            k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M"),
        ),
        samples: &samples,
        unary: &unary_samples,
        counters: &counters,
        restarts: &restarts,
        names: &["a", "b"],
        duration: knobs.duration,
        warmup: knobs.warmup,
        settle: knobs.settle,
        tasks_source,
        settings: format!(
            "load: {} followed log streams over {} pods ({} lines/s each), {} event watchers over \
             {} namespaces of one cluster ({} events/s in all), {} unary calls/s, a cluster \
             imported and detached every {} s, a replica restarted every {} s; 2 replicas on \
             PostgreSQL",
            knobs.log_streams,
            knobs.log_pods,
            knobs.log_lines_per_sec,
            knobs.event_watchers,
            knobs.event_namespaces,
            knobs.events_per_sec,
            knobs.unary_per_sec,
            knobs.churn_every.as_secs(),
            knobs.restart_every.as_secs()
        ),
    });
    println!("\n{summary}");
    std::fs::write(out.with_extension("txt"), &summary).expect("summary");
    for r in &replicas {
        r.stop(Duration::from_secs(15)).await;
    }
    drop(setup);
    kube.cleanup().await;
    if !pass {
        std::process::exit(1);
    }
}

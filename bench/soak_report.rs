//! The soak's time series (one CSV row per sample), the per-minute unary latencies, and the
//! pass criteria computed from them.

use std::{fmt::Write as _, io::Write, sync::atomic::Ordering, time::Duration};

use crate::{
    soak_load::{Counters, StreamCounters, UnarySample},
    soak_replica::{ProcSample, Restart},
};

/// One sample of everything, `at_secs` after the load began.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at_secs: f64,
    pub load1: f64,
    pub replicas: Vec<ProcSample>,
    pub unary_calls: usize,
    pub unary_errors: usize,
    pub unary_p50_ms: f64,
    pub unary_p99_ms: f64,
    pub log_streams_open: u64,
    pub event_watchers_open: u64,
    pub log_lines: u64,
    pub events_delivered: u64,
    /// Replicas restarted since the previous sample.
    pub restarted: String,
}

pub const CSV_HEADER: &str = "t_s,load1,a_pid,a_rss_mib,a_fds,a_threads,a_tasks,b_pid,b_rss_mib,\
b_fds,b_threads,b_tasks,unary_calls,unary_errors,unary_p50_ms,unary_p99_ms,log_streams_open,\
event_watchers_open,log_lines,events_delivered,restarted";

impl Sample {
    pub fn csv_row(&self) -> String {
        let mut row = format!("{:.1},{:.2}", self.at_secs, self.load1);
        for r in &self.replicas {
            let tasks = r.tasks.map_or(String::new(), |t| t.to_string());
            let _ = write!(
                row,
                ",{},{:.1},{},{},{}",
                r.pid,
                r.rss_kib as f64 / 1024.0,
                r.fds,
                r.threads,
                tasks
            );
        }
        let _ = write!(
            row,
            ",{},{},{:.2},{:.2},{},{},{},{},{}",
            self.unary_calls,
            self.unary_errors,
            self.unary_p50_ms,
            self.unary_p99_ms,
            self.log_streams_open,
            self.event_watchers_open,
            self.log_lines,
            self.events_delivered,
            self.restarted
        );
        row
    }
}

/// The `p`-quantile of latencies in milliseconds (0 when there are none).
pub fn quantile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort_unstable();
    let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
    latencies[index].as_secs_f64() * 1000.0
}

/// Per whole minute of the run: (minute number from 1, calls, errors, p99 ms).
pub fn per_minute(samples: &[UnarySample], duration: Duration) -> Vec<(usize, usize, usize, f64)> {
    let minutes = (duration.as_secs() / 60) as usize;
    (0..minutes)
        .map(|m| {
            let in_minute: Vec<&UnarySample> = samples
                .iter()
                .filter(|s| s.at_secs >= (m * 60) as f64 && s.at_secs < ((m + 1) * 60) as f64)
                .collect();
            let mut ok: Vec<Duration> = in_minute
                .iter()
                .filter(|s| s.ok)
                .map(|s| s.latency)
                .collect();
            let errors = in_minute.iter().filter(|s| !s.ok).count();
            (m + 1, in_minute.len(), errors, quantile_ms(&mut ok, 0.99))
        })
        .collect()
}

/// The median of a few values.
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// One process lifetime of one replica, after its warm-up.
pub struct Segment {
    pub replica: &'static str,
    pub pid: u32,
    pub from_secs: f64,
    pub to_secs: f64,
    /// (start, end) after warm-up: medians of the first and last three samples.
    pub rss_kib: (u64, u64),
    pub fds: (u64, u64),
    pub threads: (u64, u64),
    pub tasks: Option<(u64, u64)>,
    /// RSS over the whole life of the process: (first sample, highest sample).
    pub life_rss_kib: (u64, u64),
}

impl Segment {
    pub fn rss_change(&self) -> f64 {
        change(self.rss_kib)
    }
}

fn change((start, end): (u64, u64)) -> f64 {
    if start == 0 {
        return 0.0;
    }
    (end as f64 - start as f64) / start as f64
}

/// When a process counts as warmed up: `warmup` after it started, and, when the other replica
/// restarted during its life, `settle` after that restart. A replica takes over the other's
/// streams while it restarts: its RSS rises to a new high-water mark the allocator keeps, and
/// the API-server connections those streams used stay pooled (idle) for up to 90 s. Judging
/// from before that moment would call the first failover a leak.
pub struct WarmUp<'a> {
    pub warmup: Duration,
    pub settle: Duration,
    pub restarts: &'a [Restart],
}

impl WarmUp<'_> {
    fn warm_from(&self, replica: &str, born: f64, died: f64) -> f64 {
        let mut from = born + self.warmup.as_secs_f64();
        for r in self.restarts {
            if r.replica != replica && r.at_secs > born && r.at_secs < died {
                from = from.max(r.at_secs + self.settle.as_secs_f64());
            }
        }
        from
    }
}

/// Splits each replica's samples by process and keeps what follows each process's warm-up;
/// processes with less than `min_span` after it are left out (and listed as skipped).
pub fn segments(
    samples: &[Sample],
    names: &[&'static str],
    warm: &WarmUp,
    min_span: Duration,
) -> (Vec<Segment>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for (r, name) in names.iter().enumerate() {
        let mut runs: Vec<Vec<(f64, ProcSample)>> = Vec::new();
        for s in samples {
            let Some(p) = s.replicas.get(r) else { continue };
            if p.pid == 0 || p.rss_kib == 0 {
                continue;
            }
            match runs.last_mut() {
                Some(run) if run.last().is_some_and(|(_, q)| q.pid == p.pid) => {
                    run.push((s.at_secs, *p));
                }
                _ => runs.push(vec![(s.at_secs, *p)]),
            }
        }
        for run in runs {
            let born = run[0].0;
            let pid = run[0].1.pid;
            let warm_from = warm.warm_from(name, born, run[run.len() - 1].0);
            let after: Vec<&(f64, ProcSample)> =
                run.iter().filter(|(t, _)| *t >= warm_from).collect();
            let span = match (after.first(), after.last()) {
                (Some(a), Some(b)) => b.0 - a.0,
                _ => 0.0,
            };
            if after.len() < 4 || span < min_span.as_secs_f64() {
                skipped.push(format!(
                    "replica {name} pid {pid} ({born:.0}-{:.0} s): {:.0} s after warm-up (needs {} s)",
                    run[run.len() - 1].0,
                    span.max(0.0),
                    min_span.as_secs()
                ));
                continue;
            }
            let ends = |f: &dyn Fn(&ProcSample) -> u64| {
                let head = after.iter().take(3).map(|(_, p)| f(p)).collect();
                let tail = after.iter().rev().take(3).map(|(_, p)| f(p)).collect();
                (median(head), median(tail))
            };
            let tasks = after
                .iter()
                .all(|(_, p)| p.tasks.is_some())
                .then(|| ends(&|p| p.tasks.unwrap_or(0)));
            out.push(Segment {
                replica: name,
                pid,
                from_secs: after[0].0,
                to_secs: after[after.len() - 1].0,
                rss_kib: ends(&|p| p.rss_kib),
                fds: ends(&|p| p.fds),
                threads: ends(&|p| p.threads),
                tasks,
                life_rss_kib: (
                    run[0].1.rss_kib,
                    run.iter().map(|(_, p)| p.rss_kib).max().unwrap_or(0),
                ),
            });
        }
    }
    (out, skipped)
}

/// Growth a count may show over a segment and still be "no growth": 10 % or 8, whichever is
/// more (descriptors and tasks move with the churn and the streams moving between replicas).
fn grew((start, end): (u64, u64)) -> bool {
    end > start + (start / 10).max(8)
}

/// Everything the summary needs.
pub struct Inputs<'a> {
    pub title: String,
    pub samples: &'a [Sample],
    pub unary: &'a [UnarySample],
    pub counters: &'a Counters,
    pub restarts: &'a [Restart],
    pub names: &'a [&'static str],
    pub duration: Duration,
    pub warmup: Duration,
    pub settle: Duration,
    pub tasks_source: &'a str,
    pub settings: String,
}

fn stream_line(name: &str, c: &StreamCounters) -> String {
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    format!(
        "{name}: opened {} + resumed {} (+ {} moved back home) ; interrupted cleanly {} ; lost {} ; \
         not resumed within the deadline {} ; delivered {} ; missed on resume {} ; duplicates \
         dropped {}",
        get(&c.opened),
        get(&c.resumed),
        get(&c.moved_home),
        get(&c.interrupted_clean),
        get(&c.lost),
        get(&c.unresumed),
        get(&c.items),
        get(&c.missed),
        get(&c.duplicates)
    )
}

/// The summary text and whether every criterion passed.
pub fn summarize(inputs: &Inputs) -> (String, bool) {
    let mut out = String::new();
    let mut pass = true;
    let c = inputs.counters;
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let _ = writeln!(out, "{}", inputs.title);
    let _ = writeln!(out, "{}", inputs.settings);
    let loads: Vec<f64> = inputs.samples.iter().map(|s| s.load1).collect();
    let mean_load = loads.iter().sum::<f64>() / loads.len().max(1) as f64;
    let max_load = loads.iter().copied().fold(0.0, f64::max);
    let _ = writeln!(
        out,
        "machine: {} cores; load average (1 min) mean {mean_load:.2}, max {max_load:.2}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let _ = writeln!(out, "\nrestarts:");
    for r in inputs.restarts {
        let _ = writeln!(
            out,
            "  {:>6.0} s replica {} pid {} -> {}: stopped in {:.1} s ({}), serving {:.1} s later",
            r.at_secs,
            r.replica,
            r.old_pid,
            r.new_pid,
            r.stop_secs,
            if r.graceful {
                "graceful"
            } else {
                "KILLED after the timeout"
            },
            r.ready_secs
        );
    }

    // 1. Streams.
    let lost =
        get(&c.logs.lost) + get(&c.events.lost) + get(&c.logs.unresumed) + get(&c.events.unresumed);
    let ok = lost == 0;
    pass &= ok;
    let _ = writeln!(
        out,
        "\n[{}] no stream lost without a clean error: {lost} lost",
        verdict(ok)
    );
    let _ = writeln!(out, "  {}", stream_line("log streams", &c.logs));
    let _ = writeln!(out, "  {}", stream_line("event watchers", &c.events));
    let _ = writeln!(
        out,
        "  event resumes: {} replayed from the token, {} answered with a fresh snapshot (events \
         skipped by those snapshots: {}); events dropped as LAGGED: {}",
        get(&c.events.replayed),
        get(&c.events.resnapshotted),
        get(&c.events.missed_at_snapshot),
        get(&c.events.lagged)
    );
    let _ = writeln!(out, "  how streams ended:");
    for (label, n) in c.endings.lock().expect("lock").iter() {
        let _ = writeln!(out, "    {n:>7}  {label}");
    }
    for example in c.lost_examples.lock().expect("lock").iter() {
        let _ = writeln!(out, "    lost: {example}");
    }

    // 2–3. Memory, descriptors, tasks per process.
    let warm = WarmUp {
        warmup: inputs.warmup,
        settle: inputs.settle,
        restarts: inputs.restarts,
    };
    let (segs, skipped) = segments(
        inputs.samples,
        inputs.names,
        &warm,
        Duration::from_secs(60).min(inputs.duration / 6),
    );
    let rss_ok = !segs.is_empty() && segs.iter().all(|s| s.rss_change().abs() <= 0.10);
    let fds_ok = segs.iter().all(|s| !grew(s.fds));
    let tasks_ok = segs
        .iter()
        .all(|s| s.tasks.map_or(!grew(s.threads), |t| !grew(t)));
    pass &= rss_ok && fds_ok && tasks_ok;
    let _ = writeln!(
        out,
        "\n[{}] RSS flat within ±10 % after warm-up, per process (warm: {} s after start and \
         {} s after the other replica's restart)",
        verdict(rss_ok),
        inputs.warmup.as_secs(),
        inputs.settle.as_secs()
    );
    let _ = writeln!(
        out,
        "[{}] no file-descriptor growth (more than max(10 %, 8) is growth)",
        verdict(fds_ok)
    );
    let _ = writeln!(
        out,
        "[{}] no task growth ({})",
        verdict(tasks_ok),
        inputs.tasks_source
    );
    for s in &segs {
        let tasks = s.tasks.unwrap_or(s.threads);
        let _ = writeln!(
            out,
            "  replica {} pid {:>7} {:>5.0}-{:>5.0} s: RSS {:.1} -> {:.1} MiB ({:+.1} %), fds {} -> {}, \
             {} {} -> {} (whole life: RSS {:.1} MiB at start, peak {:.1} MiB)",
            s.replica,
            s.pid,
            s.from_secs,
            s.to_secs,
            s.rss_kib.0 as f64 / 1024.0,
            s.rss_kib.1 as f64 / 1024.0,
            s.rss_change() * 100.0,
            s.fds.0,
            s.fds.1,
            if s.tasks.is_some() {
                "tasks"
            } else {
                "threads"
            },
            tasks.0,
            tasks.1,
            s.life_rss_kib.0 as f64 / 1024.0,
            s.life_rss_kib.1 as f64 / 1024.0
        );
    }
    for s in &skipped {
        let _ = writeln!(out, "  skipped (too short to judge): {s}");
    }

    // 4. Unary latency.
    let minutes = per_minute(inputs.unary, inputs.duration);
    let calls = inputs.unary.len();
    let errors = inputs.unary.iter().filter(|s| !s.ok).count();
    let first = minutes.first().map_or(0.0, |m| m.3);
    let worst = minutes
        .iter()
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .copied()
        .unwrap_or((0, 0, 0, 0.0));
    let ratio = if first > 0.0 { worst.3 / first } else { 0.0 };
    let ok = !minutes.is_empty() && ratio <= 2.0;
    pass &= ok;
    let _ = writeln!(
        out,
        "\n[{}] unary p99 within 2x of the first minute: first {first:.1} ms, worst {:.1} ms \
         (minute {}), ratio {ratio:.2}",
        verdict(ok),
        worst.3,
        worst.0
    );
    let _ = writeln!(
        out,
        "  {calls} calls, {errors} failed, {} retried once on the other replica",
        get(&c.unary_retried)
    );
    for (label, n) in c.unary_errors.lock().expect("lock").iter() {
        let _ = writeln!(out, "    {n:>7}  {label}");
    }
    let _ = writeln!(out, "  per minute (calls, failed, p99 ms):");
    for (m, n, e, p99) in &minutes {
        let _ = writeln!(out, "    {m:>3}  {n:>6}  {e:>4}  {p99:>8.1}");
    }

    let churn_errors = c.churn_errors.lock().expect("lock");
    let _ = writeln!(
        out,
        "\nclusters imported {} and detached {} ({} cycles failed)",
        get(&c.churn_imported),
        get(&c.churn_detached),
        churn_errors.len()
    );
    for e in churn_errors.iter().take(10) {
        let _ = writeln!(out, "    {e}");
    }
    let _ = writeln!(out, "\nresult: {}", if pass { "PASS" } else { "FAIL" });
    (out, pass)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "pass" } else { "FAIL" }
}

/// The CSV file, written as the samples come.
pub struct CsvWriter(std::fs::File);

impl CsvWriter {
    pub fn create(path: &std::path::Path) -> CsvWriter {
        let mut file = std::fs::File::create(path).expect("csv");
        writeln!(file, "{CSV_HEADER}").expect("csv");
        CsvWriter(file)
    }

    pub fn append(&mut self, sample: &Sample) {
        writeln!(self.0, "{}", sample.csv_row()).expect("csv");
        let _ = self.0.flush();
    }
}

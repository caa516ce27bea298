//! The standard `process_*` metrics of Prometheus client libraries, read from /proc/self on
//! each scrape: resident and virtual memory, open and maximum file descriptors, CPU seconds and
//! start time. Elsewhere than Linux nothing is reported.

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
    registry::Unit,
};

/// Clock ticks per second in /proc's CPU times: USER_HZ, 100 on every Linux architecture we run
/// on (reading it needs sysconf, which is unsafe to call from Rust).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub struct ProcessCollector;

/// What /proc says about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessSample {
    pub resident_bytes: Option<i64>,
    pub virtual_bytes: Option<i64>,
    pub open_fds: Option<i64>,
    pub max_fds: Option<i64>,
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
}

impl ProcessSample {
    pub fn read() -> ProcessSample {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let boot = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as i64);
        let mut sample = parse(&status, &stat, &limits, &boot);
        sample.open_fds = open_fds;
        sample
    }
}

fn kib_field(status: &str, name: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok())
        .map(|kib| kib * 1024)
}

/// Parses the files /proc gives (pure, for tests).
pub fn parse(status: &str, stat: &str, limits: &str, proc_stat: &str) -> ProcessSample {
    // The command name in field 2 may hold spaces and parentheses: fields count from the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // After the name: state is field 3, so field n is fields[n - 3].
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let cpu_seconds = match (field(14), field(15)) {
        (Some(user), Some(system)) => Some((user + system) / TICKS_PER_SECOND),
        _ => None,
    };
    let boot_time = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    let start_time_seconds = match (boot_time, field(22)) {
        (Some(boot), Some(ticks)) => Some(boot + ticks / TICKS_PER_SECOND),
        _ => None,
    };
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|v| v.split_whitespace().next()?.parse::<i64>().ok());
    ProcessSample {
        resident_bytes: kib_field(status, "VmRSS:"),
        virtual_bytes: kib_field(status, "VmSize:"),
        open_fds: None,
        max_fds,
        cpu_seconds,
        start_time_seconds,
    }
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue + Copy + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: Option<N>,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let Some(value) = value else { return Ok(()) };
    let metric = ConstGauge::new(value);
    let metric_encoder = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
    metric.encode(metric_encoder)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = ProcessSample::read();
        gauge(
            &mut encoder,
            "process_resident_memory",
            "Resident memory size in bytes",
            Some(&Unit::Bytes),
            sample.resident_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory",
            "Virtual memory size in bytes",
            Some(&Unit::Bytes),
            sample.virtual_bytes,
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Open file descriptors",
            None,
            sample.open_fds,
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Most file descriptors the process may open",
            None,
            sample.max_fds,
        )?;
        gauge(
            &mut encoder,
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Some(&Unit::Seconds),
            sample.start_time_seconds,
        )?;
        if let Some(seconds) = sample.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let metric_encoder = encoder.encode_descriptor(
                "process_cpu",
                "User and system CPU time spent",
                Some(&Unit::Seconds),
                counter.metric_type(),
            )?;
            counter.encode(metric_encoder)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_procs_files() {
        let status = "Name:\tflotilla\nVmSize:\t  2048 kB\nVmRSS:\t    1024 kB\n";
        // A command name with a space and a parenthesis; utime 250, stime 50, starttime 1000.
        let stat = "42 (flo tilla) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 0";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n";
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\n";
        let sample = parse(status, stat, limits, proc_stat);
        assert_eq!(sample.resident_bytes, Some(1024 * 1024));
        assert_eq!(sample.virtual_bytes, Some(2048 * 1024));
        assert_eq!(sample.max_fds, Some(1024));
        assert_eq!(sample.cpu_seconds, Some(3.0));
        assert_eq!(sample.start_time_seconds, Some(1_700_000_010.0));
    }
}

//! The one place vendor requests are sent: a per-(vendor, account, region) rate limiter, bounded
//! timeouts, and retries with full-jitter exponential backoff on throttling and transient
//! failures only. Adapters build and sign requests; they never loop or sleep themselves.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use tokio::time::Instant;

use super::error::{ErrorClass, Result, VendorError};
use crate::telemetry::metrics::{VendorLabels, VendorOperationLabels};

/// How vendor calls behave; the same for every vendor.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportSettings {
    /// Most requests sent per second to one (vendor, account, region).
    pub rate_per_second: u32,
    /// Bound on one HTTP exchange, connection included.
    pub timeout: Duration,
    /// Attempts per call, the first included, before the error goes to the caller.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Where calls, attempts, retries and throttles are counted; `None`: nowhere.
    pub metrics: Option<crate::telemetry::metrics::Metrics>,
}

impl Default for TransportSettings {
    fn default() -> Self {
        TransportSettings {
            rate_per_second: 10,
            timeout: Duration::from_secs(30),
            max_attempts: 6,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(20),
            metrics: None,
        }
    }
}

/// The rate-limit bucket a request counts against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey {
    pub vendor: &'static str,
    /// The access key id or API key name: vendors throttle per account.
    pub account: String,
    pub region: String,
}

/// Whether repeating a call can do harm. Non-idempotent calls (creates) are retried only on
/// throttling, which guarantees the vendor did nothing; the operation engine's look-up-by-name
/// covers everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    Idempotent,
    NotIdempotent,
}

/// A vendor's HTTP response, whole.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl RawResponse {
    pub fn json<T: serde::de::DeserializeOwned>(
        &self,
        vendor: &'static str,
        operation: &'static str,
    ) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| {
            VendorError::new(
                ErrorClass::Unknown,
                vendor,
                operation,
                "MalformedResponse",
                format!("the vendor's response does not parse: {err}"),
            )
            .with_status(self.status)
        })
    }
}

/// Sends vendor requests. Cheap to clone; clones share the limiter and the connection pool.
#[derive(Clone)]
pub struct VendorHttp {
    client: reqwest::Client,
    limiter: Arc<RateLimiter>,
    settings: TransportSettings,
}

impl VendorHttp {
    /// `extra_root_pem`: a CA bundle trusted in addition to the public roots (self-hosted
    /// Rancher). Certificates are always verified.
    pub fn new(settings: TransportSettings, extra_root_pem: Option<&[u8]>) -> Result<VendorHttp> {
        let mut builder = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flotilla/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_root_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem).map_err(|err| {
                VendorError::new(
                    ErrorClass::InvalidConfiguration,
                    "transport",
                    "configure",
                    "BadCaBundle",
                    format!("the CA bundle does not parse: {err}"),
                )
            })? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|err| {
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                "transport",
                "configure",
                "",
                err.to_string(),
            )
        })?;
        Ok(VendorHttp {
            client,
            limiter: Arc::new(RateLimiter::new(settings.rate_per_second)),
            settings,
        })
    }

    /// Around a client the caller built (a registry adapter's, with a resolver that applies the
    /// outbound address policy and the registry's CA); same limiter and retries as [`Self::new`].
    pub fn from_client(settings: TransportSettings, client: reqwest::Client) -> VendorHttp {
        VendorHttp {
            client,
            limiter: Arc::new(RateLimiter::new(settings.rate_per_second)),
            settings,
        }
    }

    pub fn settings(&self) -> &TransportSettings {
        &self.settings
    }

    /// Sends the request `build` makes (called again for every attempt, so each is signed
    /// afresh) and returns the response unless `parse_error` finds an error in it.
    pub async fn send<B, P>(
        &self,
        key: &LimitKey,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
        parse_error: P,
    ) -> Result<RawResponse>
    where
        B: Fn() -> Result<http::Request<Vec<u8>>>,
        P: Fn(&RawResponse, &'static str) -> Option<VendorError>,
    {
        use tracing::Instrument;
        let span = crate::telemetry::traces::vendor_span(key.vendor, operation);
        self.send_attempts(key, operation, idempotency, build, parse_error)
            .instrument(span)
            .await
    }

    async fn send_attempts<B, P>(
        &self,
        key: &LimitKey,
        operation: &'static str,
        idempotency: Idempotency,
        build: B,
        parse_error: P,
    ) -> Result<RawResponse>
    where
        B: Fn() -> Result<http::Request<Vec<u8>>>,
        P: Fn(&RawResponse, &'static str) -> Option<VendorError>,
    {
        let observe = CallObserver::new(self.settings.metrics.as_ref(), key.vendor, operation);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.limiter.acquire(key).await;
            let request = build()?;
            let started = Instant::now();
            let exchanged = self.exchange(request, key.vendor, operation).await;
            observe.attempt(started.elapsed());
            let err = match exchanged {
                Ok(raw) => match parse_error(&raw, operation) {
                    None => {
                        observe.done("OK");
                        return Ok(raw);
                    }
                    Some(err) => err,
                },
                Err(err) => err,
            };
            if err.class == ErrorClass::RateLimited {
                observe.throttled();
            }
            let may_retry = match idempotency {
                Idempotency::Idempotent => err.class.retry_in_call(),
                Idempotency::NotIdempotent => err.class == ErrorClass::RateLimited,
            };
            if !may_retry || attempt >= self.settings.max_attempts {
                observe.done(err.class.as_str());
                return Err(err);
            }
            observe.retried();
            let delay = backoff_delay(&self.settings, attempt, err.retry_after);
            tracing::debug!(
                vendor = key.vendor,
                operation,
                attempt,
                code = %err.code,
                delay_ms = delay.as_millis() as u64,
                "vendor call failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn exchange(
        &self,
        request: http::Request<Vec<u8>>,
        vendor: &'static str,
        operation: &'static str,
    ) -> Result<RawResponse> {
        let request = reqwest::Request::try_from(request).map_err(|err| {
            VendorError::new(
                ErrorClass::InvalidConfiguration,
                vendor,
                operation,
                "BadRequest",
                err.to_string(),
            )
        })?;
        let network = |err: reqwest::Error| {
            // reqwest's messages name the URL but never headers, so no credential leaks here.
            let class = if err.is_timeout() {
                ErrorClass::Timeout
            } else {
                ErrorClass::VendorUnavailable
            };
            VendorError::new(class, vendor, operation, "NetworkError", with_causes(&err))
        };
        let response = self.client.execute(request).await.map_err(network)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(network)?;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

/// Counts one vendor call in the metrics, when they are on.
struct CallObserver<'a> {
    metrics: Option<&'a crate::telemetry::metrics::Metrics>,
    labels: VendorOperationLabels,
}

impl<'a> CallObserver<'a> {
    fn new(
        metrics: Option<&'a crate::telemetry::metrics::Metrics>,
        vendor: &'static str,
        operation: &'static str,
    ) -> Self {
        CallObserver {
            metrics,
            labels: VendorOperationLabels { vendor, operation },
        }
    }

    fn attempt(&self, took: Duration) {
        if let Some(m) = self.metrics {
            m.vendor_attempt_duration
                .get_or_create(&self.labels)
                .observe(took.as_secs_f64());
        }
    }

    fn throttled(&self) {
        if let Some(m) = self.metrics {
            m.vendor_throttles.get_or_create(&self.labels).inc();
        }
    }

    fn retried(&self) {
        if let Some(m) = self.metrics {
            m.vendor_retries.get_or_create(&self.labels).inc();
        }
    }

    /// The call's outcome: `OK` or the error class's stable name.
    fn done(&self, outcome: &'static str) {
        crate::telemetry::traces::end_vendor_span(outcome);
        if let Some(m) = self.metrics {
            m.vendor_calls
                .get_or_create(&VendorLabels {
                    vendor: self.labels.vendor,
                    operation: self.labels.operation,
                    outcome,
                })
                .inc();
        }
    }
}

/// An error and its causes ("error sending request for url (…): client error (Connect):
/// invalid peer certificate: UnknownIssuer"): reqwest's own message stops at the URL, and the
/// reason — refused connection, TLS certificate, DNS — is in the causes.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        let part = next.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = next.source();
    }
    text
}

/// Full jitter: a uniform delay in [0, min(cap, base * 2^attempt)), but never shorter than the
/// vendor's own retry hint.
pub fn backoff_delay(
    settings: &TransportSettings,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    let ceiling = settings
        .backoff_base
        .saturating_mul(1u32 << attempt.min(20))
        .min(settings.backoff_cap);
    let jittered = ceiling.mul_f64(fastrand::f64());
    match retry_after {
        Some(hint) => jittered.max(hint.min(settings.backoff_cap)),
        None => jittered,
    }
}

/// At most `limit` requests in any one-second window per key (a sliding-window log, so bursts
/// can never exceed the limit either).
pub struct RateLimiter {
    limit: usize,
    sent: Mutex<HashMap<LimitKey, VecDeque<Instant>>>,
}

/// Added to the window so jitter between our clock and the vendor's arrival times cannot push
/// two windows' worth of requests into one of the vendor's seconds.
const WINDOW_MARGIN: Duration = Duration::from_millis(50);
const WINDOW: Duration = Duration::from_secs(1);

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            limit: per_second.max(1) as usize,
            sent: Mutex::default(),
        }
    }

    /// Waits until one more request fits in the window, and counts it.
    pub async fn acquire(&self, key: &LimitKey) {
        loop {
            let wait = {
                let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
                let log = sent.entry(key.clone()).or_default();
                let now = Instant::now();
                while log
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= WINDOW + WINDOW_MARGIN)
                {
                    log.pop_front();
                }
                if log.len() < self.limit {
                    log.push_back(now);
                    return;
                }
                (log[0] + WINDOW + WINDOW_MARGIN).saturating_duration_since(now)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> LimitKey {
        LimitKey {
            vendor: "ack",
            account: "AK".into(),
            region: "cn-hangzhou".into(),
        }
    }

    #[test]
    fn network_errors_keep_their_causes() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let outer = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, inner);
        assert_eq!(
            with_causes(&outer),
            "invalid peer certificate: UnknownIssuer"
        );
        #[derive(Debug)]
        struct Sending(std::io::Error);
        impl std::fmt::Display for Sending {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("error sending request for url (https://r.example/v2/)")
            }
        }
        impl std::error::Error for Sending {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let err = Sending(std::io::Error::other("certificate expired"));
        assert_eq!(
            with_causes(&err),
            "error sending request for url (https://r.example/v2/): certificate expired"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_never_lets_more_than_the_limit_into_a_second() {
        let limiter = RateLimiter::new(5);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..23 {
            limiter.acquire(&key()).await;
            times.push(start.elapsed());
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_secs(1))
                .count();
            assert!(in_window <= 5, "{in_window} requests within 1 s of {t:?}");
        }
        // …and it does not wait longer than it must: 23 requests take 4 windows.
        assert!(times[22] < Duration::from_millis(4 * 1050 + 10));
    }

    #[tokio::test(start_paused = true)]
    async fn limiter_keys_are_independent() {
        let limiter = RateLimiter::new(1);
        let start = Instant::now();
        limiter.acquire(&key()).await;
        let other = LimitKey {
            region: "cn-beijing".into(),
            ..key()
        };
        limiter.acquire(&other).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[test]
    fn backoff_is_bounded_and_honours_hints() {
        let settings = TransportSettings::default();
        for attempt in 1..30 {
            assert!(backoff_delay(&settings, attempt, None) <= settings.backoff_cap);
        }
        let hint = Duration::from_secs(3);
        assert!(backoff_delay(&settings, 1, Some(hint)) >= hint);
        assert!(
            backoff_delay(&settings, 1, Some(Duration::from_secs(3600))) <= settings.backoff_cap
        );
    }
}

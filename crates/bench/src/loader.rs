//! A small built-in concurrent HTTP loader: N workers, each with its own keep-alive connection,
//! send requests (GETs, or any method with a JSON body) to loopback servers for a fixed time or a
//! fixed number of requests (whichever ends first), and record every request's latency.
//!
//! Built in rather than an external tool (wrk, oha) so `medicus bench` needs nothing installed;
//! it runs in the same tokio runtime as the server, so on a 2-core machine the loader competes
//! with the server for CPU, and the `/healthz` run in the same invocation shows that floor.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::BenchError;
use crate::stats::percentile;

/// Latency samples kept per worker at most, so a long run cannot grow memory without bound
/// (64 workers × 200k × 8 bytes ≈ 100 MB worst case; a 10 s run at 20k req/s keeps all).
const MAX_SAMPLES_PER_WORKER: usize = 200_000;

/// How much load to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    /// Concurrent workers (= connections), at least 1.
    pub concurrency: usize,
    /// Stop starting requests after this long.
    pub duration: Duration,
    /// Stop after this many requests in total (`None`: only the duration bounds the run).
    pub max_requests: Option<u64>,
}

/// What a load run measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadResult {
    /// Requests answered with a 2xx status.
    pub ok: u64,
    /// Requests that failed (transport error or non-2xx status).
    pub errors: u64,
    /// Wall time from the first request to the last answer.
    pub elapsed: Duration,
    /// Latency of the successful requests, in seconds (capped per worker, see above).
    pub latencies: Vec<f64>,
    /// The first error seen, to make a failing run explainable.
    pub first_error: Option<String>,
}

impl LoadResult {
    /// Successful requests per second of wall time.
    pub fn req_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ok as f64 / s } else { 0.0 }
    }

    /// Median latency in milliseconds.
    pub fn p50_ms(&self) -> f64 {
        percentile(&self.latencies, 50.0) * 1e3
    }

    /// 99th-percentile latency in milliseconds.
    pub fn p99_ms(&self) -> f64 {
        percentile(&self.latencies, 99.0) * 1e3
    }

    fn merge(&mut self, other: WorkerResult) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.latencies.extend(other.latencies);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[derive(Default)]
struct WorkerResult {
    ok: u64,
    errors: u64,
    latencies: Vec<f64>,
    first_error: Option<String>,
}

/// A cheap per-worker pseudo-random sequence (xorshift64*), so workers pick different ids
/// without a shared lock or an extra dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero forever.
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n` > 0; 0 otherwise).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// An HTTP client whose pool keeps one idle keep-alive connection per worker.
pub fn client(concurrency: usize) -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// One request of a load run.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: String,
    /// A FHIR JSON body (sent as `application/fhir+json`).
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn get(url: String) -> Request {
        Request {
            method: reqwest::Method::GET,
            url,
            body: None,
        }
    }

    pub fn put(url: String, body: Vec<u8>) -> Request {
        Request {
            method: reqwest::Method::PUT,
            url,
            body: Some(body),
        }
    }
}

/// Runs `spec` against the URLs that `url_for(rng)` picks, one GET per request.
pub async fn run<F>(
    client: &reqwest::Client,
    spec: &LoadSpec,
    url_for: F,
) -> Result<LoadResult, BenchError>
where
    F: Fn(&mut XorShift) -> String + Send + Sync + 'static,
{
    run_requests(client, spec, move |rng| Request::get(url_for(rng))).await
}

/// Runs `spec` with the requests that `request_for(rng)` makes, one per request.
pub async fn run_requests<F>(
    client: &reqwest::Client,
    spec: &LoadSpec,
    request_for: F,
) -> Result<LoadResult, BenchError>
where
    F: Fn(&mut XorShift) -> Request + Send + Sync + 'static,
{
    let request_for = Arc::new(request_for);
    let issued = Arc::new(AtomicU64::new(0));
    let limit = spec.max_requests.unwrap_or(u64::MAX);
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut tasks = Vec::with_capacity(spec.concurrency.max(1));
    for w in 0..spec.concurrency.max(1) {
        let client = client.clone();
        let request_for = Arc::clone(&request_for);
        let issued = Arc::clone(&issued);
        tasks.push(tokio::spawn(async move {
            let mut rng = XorShift::new(w as u64 + 1);
            let mut out = WorkerResult::default();
            // The ticket counter bounds the total; the deadline bounds the time.
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < limit {
                let request = request_for(&mut rng);
                let t = Instant::now();
                match send(&client, request).await {
                    Ok(()) => {
                        out.ok += 1;
                        if out.latencies.len() < MAX_SAMPLES_PER_WORKER {
                            out.latencies.push(t.elapsed().as_secs_f64());
                        }
                    }
                    Err(e) => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            out.first_error = Some(e);
                        }
                    }
                }
            }
            out
        }));
    }
    let mut result = LoadResult::default();
    for task in tasks {
        let worker = task
            .await
            .map_err(|e| BenchError::Unexpected(format!("load worker failed: {e}")))?;
        result.merge(worker);
    }
    result.elapsed = start.elapsed();
    Ok(result)
}

/// One request whose answer is read completely (the server's work includes sending it).
async fn send(client: &reqwest::Client, request: Request) -> Result<(), String> {
    let Request { method, url, body } = request;
    let mut builder = client.request(method.clone(), &url);
    if let Some(body) = body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/fhir+json")
            .body(body);
    }
    let resp = builder.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let answer = resp.bytes().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        // The start of the answer (an OperationOutcome) says why.
        Err(format!(
            "{method} {url} answered {status}: {}",
            String::from_utf8_lossy(&answer[..answer.len().min(300)])
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_statistics() {
        let r = LoadResult {
            ok: 100,
            errors: 2,
            elapsed: Duration::from_secs(4),
            latencies: (1..=100).map(|ms| f64::from(ms) / 1e3).collect(),
            first_error: None,
        };
        assert_eq!(r.req_per_sec(), 25.0);
        assert!((r.p50_ms() - 50.0).abs() < 1e-9);
        assert!((r.p99_ms() - 99.0).abs() < 1e-9);
        let empty = LoadResult::default();
        assert_eq!(empty.req_per_sec(), 0.0);
        assert_eq!(empty.p50_ms(), 0.0);
    }

    #[test]
    fn merge_keeps_first_error_and_all_samples() {
        let mut r = LoadResult::default();
        r.merge(WorkerResult {
            ok: 2,
            errors: 1,
            latencies: vec![0.1, 0.2],
            first_error: Some("a".into()),
        });
        r.merge(WorkerResult {
            ok: 1,
            errors: 1,
            latencies: vec![0.3],
            first_error: Some("b".into()),
        });
        assert_eq!((r.ok, r.errors, r.latencies.len()), (3, 2, 3));
        assert_eq!(r.first_error.as_deref(), Some("a"));
    }

    #[test]
    fn xorshift_stays_in_range_and_varies() {
        let mut rng = XorShift::new(0);
        let picks: Vec<usize> = (0..1000).map(|_| rng.below(10)).collect();
        assert!(picks.iter().all(|&p| p < 10));
        assert!((0..10).all(|v| picks.contains(&v)));
        assert_eq!(XorShift::new(1).below(0), 0);
    }

    #[test]
    fn request_limit_bounds_the_run() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let app = axum::Router::new()
                .route("/ok", axum::routing::get(|| async { "ok" }))
                .route(
                    "/echo",
                    axum::routing::put(|headers: axum::http::HeaderMap, body: String| async move {
                        let fhir = headers
                            .get("content-type")
                            .is_some_and(|v| v == "application/fhir+json");
                        if fhir && body == "{}" {
                            axum::http::StatusCode::CREATED
                        } else {
                            axum::http::StatusCode::BAD_REQUEST
                        }
                    }),
                );
            let server = tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
            let spec = LoadSpec {
                concurrency: 4,
                duration: Duration::from_secs(30),
                max_requests: Some(50),
            };
            let c = client(4).expect("client");
            let r = run(&c, &spec, move |_| format!("http://{addr}/ok"))
                .await
                .expect("load");
            assert_eq!((r.ok, r.errors), (50, 0));
            assert_eq!(r.latencies.len(), 50);
            let bad = run(&c, &spec, move |_| format!("http://{addr}/missing"))
                .await
                .expect("load");
            assert_eq!((bad.ok, bad.errors), (0, 50));
            assert!(bad.first_error.is_some());
            // Bodies arrive with the FHIR content type.
            let r = run_requests(&c, &spec, move |_| {
                Request::put(format!("http://{addr}/echo"), b"{}".to_vec())
            })
            .await
            .expect("load");
            assert_eq!((r.ok, r.errors), (50, 0), "{:?}", r.first_error);
            server.abort();
        });
    }
}

//! `medicus bench s3`: the S3 listener in this process on a loopback port, over a fresh SQLite
//! store, driven by a small built-in SigV4 client (keep-alive HTTP/1.1 connections, header
//! signatures over `UNSIGNED-PAYLOAD`). In the same run the same bytes go to plain files
//! (`write_all` + `fsync`, then a read), the raw-disk baseline.
//!
//! Cases: large objects PUT and GET one at a time (throughput against the baseline); 4 KiB PUT
//! and GET with concurrent connections (operations per second).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medicus_objects::access::{self, Permission};
use medicus_objects::{KeyProvider, LocalMasterKey, Objects};
use medicus_server::s3::S3Options;
use medicus_store::{SqliteStore, Store};
use ring::{digest, hmac};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::error::CliError;

#[derive(Debug, Clone)]
pub struct S3BenchOptions {
    pub large_mib: usize,
    pub large_count: usize,
    pub small_secs: u64,
    pub concurrency: usize,
    pub work_dir: Option<PathBuf>,
}

fn io(context: &'static str) -> impl Fn(std::io::Error) -> CliError {
    move |source| CliError::Io { context, source }
}

fn other(context: &'static str, e: impl std::fmt::Display) -> CliError {
    CliError::Io {
        context,
        source: std::io::Error::other(e.to_string()),
    }
}

/// A SigV4 signer for path-style requests with unsigned payloads.
#[derive(Clone)]
struct Signer {
    host: String,
    id: String,
    secret: String,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` of now.
fn amz_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Signer {
    fn headers(&self, method: &str, path: &str) -> String {
        let date = amz_date();
        let day = &date[..8];
        let canonical = format!(
            "{method}\n{path}\n\nhost:{}\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:{date}\n\nhost;x-amz-content-sha256;x-amz-date\nUNSIGNED-PAYLOAD",
            self.host
        );
        let scope = format!("{day}/us-east-1/s3/aws4_request");
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
        );
        let mac = |key: &[u8], data: &[u8]| {
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
                .as_ref()
                .to_vec()
        };
        let k = mac(format!("AWS4{}", self.secret).as_bytes(), day.as_bytes());
        let k = mac(&k, b"us-east-1");
        let k = mac(&k, b"s3");
        let k = mac(&k, b"aws4_request");
        let sig = hex(&mac(&k, to_sign.as_bytes()));
        format!(
            "Host: {}\r\nx-amz-content-sha256: UNSIGNED-PAYLOAD\r\nx-amz-date: {date}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={sig}\r\n",
            self.host, self.id
        )
    }
}

/// One keep-alive connection.
struct Conn {
    stream: BufReader<TcpStream>,
    signer: Signer,
}

impl Conn {
    async fn open(addr: std::net::SocketAddr, signer: Signer) -> Result<Conn, CliError> {
        let s = TcpStream::connect(addr)
            .await
            .map_err(io("bench: connect"))?;
        s.set_nodelay(true).map_err(io("bench: nodelay"))?;
        Ok(Conn {
            stream: BufReader::with_capacity(256 * 1024, s),
            signer,
        })
    }

    /// Sends a request with `body` (streamed from `body_source` in pieces when large) and
    /// returns (status, response body length), reading the body into `sink`.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
        sink: &mut Vec<u8>,
    ) -> Result<u16, CliError> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\n{}Content-Length: {}\r\n\r\n",
            self.signer.headers(method, path),
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes())
            .await
            .map_err(io("bench: send"))?;
        for piece in body.chunks(1 << 20) {
            s.write_all(piece).await.map_err(io("bench: send"))?;
        }
        // Response head.
        let mut headv = Vec::with_capacity(1024);
        loop {
            let b = self.stream.read_u8().await.map_err(io("bench: receive"))?;
            headv.push(b);
            if headv.ends_with(b"\r\n\r\n") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&headv);
        let status: u16 = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| other("bench: response", "no status"))?;
        let len: usize = text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        sink.clear();
        sink.resize(len, 0);
        self.stream
            .read_exact(sink)
            .await
            .map_err(io("bench: receive body"))?;
        Ok(status)
    }
}

struct Running {
    addr: std::net::SocketAddr,
    signer: Signer,
}

async fn start(dir: &Path) -> Result<Running, CliError> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("db"))?);
    store.create_tenant("bench")?;
    let master: Arc<dyn KeyProvider> = Arc::new(
        LocalMasterKey::load_or_create(&dir.join("master.key"))
            .map_err(|e| other("bench: master key", e))?,
    );
    let (id, secret) = tokio::task::block_in_place(|| {
        access::create_key(
            store.as_ref(),
            master.as_ref(),
            "bench",
            [("*".to_owned(), Permission::Admin)].into_iter().collect(),
            0,
        )
    })
    .map_err(|e| other("bench: key", e))?;
    let objects =
        Arc::new(Objects::open(dir, store, master.clone()).map_err(|e| other("bench: open", e))?);
    let service =
        medicus_server::s3::service(objects.clone(), master, &S3Options { domains: vec![] });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(io("bench: bind"))?;
    let addr = listener.local_addr().map_err(io("bench: bind"))?;
    tokio::spawn(medicus_server::s3::serve(
        listener,
        service,
        medicus_server::s3::Cors::new(objects, &S3Options { domains: vec![] }),
        std::future::pending(),
    ));
    Ok(Running {
        addr,
        signer: Signer {
            host: addr.to_string(),
            id,
            secret,
        },
    })
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

/// Runs the cases and returns a Markdown report.
pub fn run(opts: &S3BenchOptions) -> Result<String, CliError> {
    let (dir, remove) = match &opts.work_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("medicus-bench-s3-{}", std::process::id())),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(io("bench: work dir"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("bench: runtime"))?;
    let result = runtime.block_on(run_cases(opts, &dir));
    drop(runtime);
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

async fn run_cases(opts: &S3BenchOptions, dir: &Path) -> Result<String, CliError> {
    let server = start(dir).await?;
    let mut conn = Conn::open(server.addr, server.signer.clone()).await?;
    let mut sink = Vec::new();
    let status = conn.request("PUT", "/bench", b"", &mut sink).await?;
    if status != 200 {
        return Err(other("bench: create bucket", status));
    }
    let size = opts.large_mib * 1024 * 1024;
    let data: Vec<u8> = (0..size)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761) as u8)
        .collect();
    let mut rows = Vec::new();

    // Large objects: S3 PUT, raw write+fsync; S3 GET, raw read.
    let raw_dir = dir.join("raw");
    std::fs::create_dir_all(&raw_dir).map_err(io("bench: raw dir"))?;
    let (mut s3_put, mut raw_put, mut s3_get, mut raw_get) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for i in 0..opts.large_count {
        let t = Instant::now();
        let st = conn
            .request("PUT", &format!("/bench/large-{i}"), &data, &mut sink)
            .await?;
        s3_put += t.elapsed();
        if st != 200 {
            return Err(other("bench: large PUT", st));
        }
        let path = raw_dir.join(format!("large-{i}"));
        let d = data.clone();
        raw_put += tokio::task::spawn_blocking(move || -> std::io::Result<Duration> {
            use std::io::Write;
            let t = Instant::now();
            let mut f = std::fs::File::create(&path)?;
            f.write_all(&d)?;
            f.sync_all()?;
            Ok(t.elapsed())
        })
        .await
        .map_err(|e| other("bench: raw write", e))?
        .map_err(io("bench: raw write"))?;
    }
    for i in 0..opts.large_count {
        let t = Instant::now();
        let st = conn
            .request("GET", &format!("/bench/large-{i}"), b"", &mut sink)
            .await?;
        s3_get += t.elapsed();
        if st != 200 || sink.len() != size || sink != data {
            return Err(other("bench: large GET", st));
        }
        let path = raw_dir.join(format!("large-{i}"));
        raw_get += tokio::task::spawn_blocking(move || -> std::io::Result<Duration> {
            let t = Instant::now();
            let b = std::fs::read(&path)?;
            std::hint::black_box(b);
            Ok(t.elapsed())
        })
        .await
        .map_err(|e| other("bench: raw read", e))?
        .map_err(io("bench: raw read"))?;
    }
    let total = (size * opts.large_count) as u64;
    rows.push((
        format!("{} MiB PUT", opts.large_mib),
        mib_s(total, s3_put),
        mib_s(total, raw_put),
        "MiB/s",
    ));
    rows.push((
        format!("{} MiB GET", opts.large_mib),
        mib_s(total, s3_get),
        mib_s(total, raw_get),
        "MiB/s",
    ));

    // 4 KiB objects with concurrent connections.
    let small: Arc<Vec<u8>> = Arc::new((0..4096).map(|i| (i % 251) as u8).collect());
    let written: Arc<Vec<AtomicU64>> =
        // Per worker: how many 4 KiB objects its PUT wrote, through S3 and then as plain files.
        Arc::new((0..2 * opts.concurrency).map(|_| AtomicU64::new(0)).collect());
    let (put_ops, raw_small_put) = small_case(opts, &server, &small, dir, "PUT", &written).await?;
    rows.push(("4 KiB PUT".into(), put_ops, raw_small_put, "ops/s"));
    let (get_ops, raw_small_get) = small_case(opts, &server, &small, dir, "GET", &written).await?;
    rows.push(("4 KiB GET".into(), get_ops, raw_small_get, "ops/s"));

    let mut out = String::new();
    out.push_str(
        "| case | medicus S3 | raw disk (same bytes, plain files) | ratio |\n|---|---|---|---|\n",
    );
    for (case, s3, raw, unit) in rows {
        out.push_str(&format!(
            "| {case} | {s3:.0} {unit} | {raw:.0} {unit} | {:.2} |\n",
            s3 / raw
        ));
    }
    out.push_str(&format!(
        "\n{} × {} MiB objects one at a time; 4 KiB: {} connections for {} s each; encryption on (AES-256-GCM chunks), `fsync` before every acknowledgement on both sides; SQLite metadata.\n",
        opts.large_count, opts.large_mib, opts.concurrency, opts.small_secs
    ));
    Ok(out)
}

/// Runs 4 KiB `method` requests on `concurrency` connections for `small_secs`; returns
/// (S3 ops/s, raw-file ops/s with the same concurrency: create+write+fsync+rename+dir fsync for
/// PUT, read for GET).
async fn small_case(
    opts: &S3BenchOptions,
    server: &Running,
    small: &Arc<Vec<u8>>,
    dir: &Path,
    method: &'static str,
    written: &Arc<Vec<AtomicU64>>,
) -> Result<(f64, f64), CliError> {
    let count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(opts.small_secs);
    let mut tasks = Vec::new();
    for w in 0..opts.concurrency {
        let (count, small, signer) = (count.clone(), small.clone(), server.signer.clone());
        let written = written.clone();
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr, signer).await?;
            let mut sink = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                // GET reads the objects the PUT phase wrote (worker w, up to its first 100).
                let have = written[w].load(Ordering::Relaxed).clamp(1, 100);
                let (path, body) = if method == "PUT" {
                    (format!("/bench/s-{w}-{i}"), small.as_slice())
                } else {
                    (format!("/bench/s-{w}-{}", i % have), &[][..])
                };
                let st = conn.request(method, &path, body, &mut sink).await?;
                if st != 200 {
                    return Err(other("bench: small request", st));
                }
                i += 1;
                count.fetch_add(1, Ordering::Relaxed);
                if method == "PUT" {
                    written[w].store(i, Ordering::Relaxed);
                }
            }
            Ok::<_, CliError>(())
        }));
    }
    for t in tasks {
        t.await.map_err(|e| other("bench: worker", e))??;
    }
    let s3_ops = count.load(Ordering::Relaxed) as f64 / opts.small_secs as f64;

    // The baseline: the same number of threads doing the file operations.
    let raw_dir = dir.join("raw-small");
    std::fs::create_dir_all(&raw_dir).map_err(io("bench: raw dir"))?;
    let raw_count = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(opts.small_secs);
    let mut threads = Vec::new();
    for w in 0..opts.concurrency {
        let (raw_count, small, raw_dir) = (raw_count.clone(), small.clone(), raw_dir.clone());
        let (written, opts_concurrency) = (written.clone(), opts.concurrency);
        threads.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                use std::io::Write;
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let have = written[opts_concurrency + w]
                        .load(Ordering::Relaxed)
                        .clamp(1, 100);
                    let path = raw_dir.join(format!(
                        "s-{w}-{}",
                        if method == "PUT" { i } else { i % have }
                    ));
                    if method == "PUT" {
                        let tmp = raw_dir.join(format!("tmp-{w}"));
                        let mut f = std::fs::File::create(&tmp)?;
                        f.write_all(&small)?;
                        f.sync_all()?;
                        std::fs::rename(&tmp, &path)?;
                        std::fs::File::open(&raw_dir)?.sync_all()?;
                    } else {
                        std::hint::black_box(std::fs::read(&path)?);
                    }
                    i += 1;
                    raw_count.fetch_add(1, Ordering::Relaxed);
                    if method == "PUT" {
                        written[opts_concurrency + w].store(i, Ordering::Relaxed);
                    }
                }
                Ok(())
            },
        ));
    }
    for t in threads {
        t.await
            .map_err(|e| other("bench: raw worker", e))?
            .map_err(io("bench: raw small"))?;
    }
    let raw_ops = raw_count.load(Ordering::Relaxed) as f64 / opts.small_secs as f64;
    Ok((s3_ops, raw_ops))
}

//! The S3 listener: a separate address (`medicus serve --s3-listen`) speaking the S3 protocol
//! over the object store (`medicus_objects`).
//!
//! The `s3s` crate carries the protocol: routing of path-style and virtual-hosted-style
//! requests, SigV4 in headers and presigned URLs (including `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
//! and `UNSIGNED-PAYLOAD`), the 15-minute clock-skew limit, XML in and out. Storage, keys,
//! permissions and limits are ours:
//! - `auth.rs`: access keys of a tenant (secrets sealed under the master key, cached briefly),
//!   per-bucket permissions;
//! - `host.rs`: which `Host` headers name a bucket;
//! - `service.rs`: the S3 operations over the engine, run on blocking threads, bodies streamed
//!   through bounded channels;
//! - `errors.rs`: engine errors as S3 error codes.

mod auth;
mod body;
mod cors;
mod errors;
mod host;
mod service;

use std::sync::Arc;

use medicus_objects::{KeyProvider, Objects};
use tokio::net::TcpListener;

pub use host::Domains;

/// What the listener needs.
pub struct S3Options {
    /// Base domains for virtual-hosted-style requests (`BUCKET.DOMAIN`); `localhost` is always
    /// one. Any other `Host` is path-style.
    pub domains: Vec<String>,
}

/// The S3 service as a tower service (an axum fallback).
pub fn service(
    objects: Arc<Objects>,
    master: Arc<dyn KeyProvider>,
    options: &S3Options,
) -> s3s::service::S3Service {
    let keys = Arc::new(auth::KeyCache::new(objects.clone(), master));
    let mut builder =
        s3s::service::S3ServiceBuilder::new(service::MedicusS3::new(objects, keys.clone()));
    builder.set_auth(auth::KeyAuth(keys));
    builder.set_host(Domains::new(&options.domains));
    builder.build()
}

/// Applies the lifecycle rules of every bucket that has some, every `every`, on a blocking
/// thread; a failure is logged and the next pass tries again.
pub fn spawn_lifecycle(objects: Arc<Objects>, every: std::time::Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let objects = objects.clone();
            let pass =
                tokio::task::spawn_blocking(move || -> Result<(), medicus_objects::ObjectError> {
                    for b in objects.store().bucket_list(None)? {
                        if Objects::bucket_config(&b).is_ok_and(|c| !c.lifecycle.is_empty()) {
                            let r =
                                objects.apply_lifecycle(&b, medicus_objects::engine::now_us())?;
                            if r != medicus_objects::lifecycle::LifecycleReport::default() {
                                tracing::info!(
                                    expired = r.expired,
                                    noncurrent = r.noncurrent_removed,
                                    uploads = r.uploads_aborted,
                                    locked_kept = r.locked_kept,
                                    "lifecycle pass"
                                );
                            }
                        }
                    }
                    Ok(())
                })
                .await;
            match pass {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "lifecycle pass failed"),
                Err(e) => tracing::warn!(error = %e, "lifecycle pass panicked"),
            }
        }
    });
}

/// What the CORS layer needs: the buckets' rules and which hosts name a bucket.
pub struct Cors {
    objects: Arc<Objects>,
    domains: Domains,
}

impl Cors {
    pub fn new(objects: Arc<Objects>, options: &S3Options) -> Cors {
        Cors {
            objects,
            domains: Domains::new(&options.domains),
        }
    }
}

/// Serves S3 on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    service: s3s::service::S3Service,
    cors: Cors,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new()
        .fallback_service(axum::error_handling::HandleError::new(
            service,
            |e: s3s::HttpError| async move {
                tracing::error!(error = ?e, "S3 request failed");
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            },
        ))
        .layer(axum::middleware::from_fn(close_after_unread_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(cors),
            cors::handle,
        ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// An error answered before the request body was read (a refused upload) leaves the body's
/// bytes on the connection, or a client waiting on `Expect: 100-continue` that never sends them:
/// either way the next request on that connection would be parsed from the wrong place. Such
/// responses close the connection.
async fn close_after_unread_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header;
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let mut resp = next.run(req).await;
    let status = resp.status();
    if has_body && (status.is_client_error() || status.is_server_error()) {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    resp
}

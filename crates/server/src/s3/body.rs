//! Bodies between the async edge and the blocking engine, through bounded channels: an upload
//! is written chunk by chunk on a blocking thread while the request streams in, a download
//! decrypted chunk by chunk while the response streams out. Memory per request stays at a few
//! chunks whatever the object's size.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures_util::{Stream, StreamExt};
use medicus_objects::blob::{BlobWriter, RangeReader};
use medicus_objects::{ObjectError, Objects};
use s3s::checksum::ChecksumHasher;
use s3s::crypto::Checksum as _;
use s3s::dto::StreamingBlob;
use s3s::{S3Error, S3Result, s3_error};
use tokio::sync::mpsc;

use super::errors::to_s3;

/// Pieces in flight between the edge and the blocking thread.
const IN_FLIGHT: usize = 4;

/// Which checksums to compute while an upload streams in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Wanted {
    pub crc32: bool,
    pub crc32c: bool,
    pub crc64nvme: bool,
    pub sha1: bool,
    pub sha256: bool,
}

impl Wanted {
    fn hasher(self) -> ChecksumHasher {
        ChecksumHasher {
            crc32: self.crc32.then(s3s::crypto::Crc32::new),
            crc32c: self.crc32c.then(s3s::crypto::Crc32c::new),
            sha1: self.sha1.then(s3s::crypto::Sha1::new),
            sha256: self.sha256.then(s3s::crypto::Sha256::new),
            crc64nvme: self.crc64nvme.then(s3s::crypto::Crc64Nvme::new),
        }
    }
}

enum Piece {
    Data(Bytes),
    End,
}

/// A fully received upload: the unfinished blob (nothing visible yet), its computed checksums.
pub struct Received {
    pub writer: BlobWriter,
    pub checksums: s3s::dto::Checksum,
}

/// Streams `body` into a new blob on a blocking thread. Fails with `IncompleteBody` when the
/// stream breaks or its length is not `expected_len`, `EntityTooLarge` past `max`.
pub async fn receive(
    objects: Arc<Objects>,
    body: Option<StreamingBlob>,
    expected_len: Option<i64>,
    max: u64,
    wanted: Wanted,
) -> S3Result<Received> {
    let (tx, mut rx) = mpsc::channel::<Piece>(IN_FLIGHT);
    let writer = tokio::task::spawn_blocking(move || -> Result<Received, ObjectError> {
        let mut writer = objects.writer()?;
        let mut hasher = wanted.hasher();
        loop {
            match rx.blocking_recv() {
                Some(Piece::Data(b)) => {
                    hasher.update(&b);
                    writer.write(&b)?;
                }
                Some(Piece::End) => {
                    return Ok(Received {
                        writer,
                        checksums: hasher.finalize(),
                    });
                }
                // The edge gave up (a broken body): the writer drops its temporary file.
                None => return Err(ObjectError::IncompleteBody),
            }
        }
    });
    let mut size: u64 = 0;
    let sent: S3Result<()> = async {
        if let Some(mut body) = body {
            while let Some(piece) = body.next().await {
                let piece = piece.map_err(|e| {
                    let mut err = s3_error!(
                        IncompleteBody,
                        "the request body ended early or was malformed"
                    );
                    err.set_source(e);
                    err
                })?;
                size += piece.len() as u64;
                if size > max {
                    return Err(s3_error!(EntityTooLarge));
                }
                if tx.send(Piece::Data(piece)).await.is_err() {
                    // The writer failed; its error is reported below.
                    return Ok(());
                }
            }
        }
        if let Some(n) = expected_len
            && u64::try_from(n).ok() != Some(size)
        {
            return Err(s3_error!(
                IncompleteBody,
                "the body is not as long as its Content-Length"
            ));
        }
        let _ = tx.send(Piece::End).await;
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        drop(tx);
        let _ = writer.await;
        return Err(e);
    }
    drop(tx);
    writer
        .await
        .map_err(|_| s3_error!(InternalError, "upload writer failed"))?
        .map_err(to_s3)
}

/// A response body fed by a blocking reader.
struct ChannelStream(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl Stream for ChannelStream {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Streams what `reader` yields. Small objects (one chunk) are read before answering, so a
/// missing or corrupt file is an error response rather than a cut body.
pub async fn send(mut reader: RangeReader, len: u64) -> S3Result<StreamingBlob> {
    if len <= medicus_objects::crypto::CHUNK as u64 {
        let data = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ObjectError> {
            let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            while let Some(c) = reader.next_chunk()? {
                out.extend_from_slice(&c);
            }
            Ok(out)
        })
        .await
        .map_err(|_| s3_error!(InternalError, "reader failed"))?
        .map_err(to_s3)?;
        return Ok(StreamingBlob::from(s3s::Body::from(Bytes::from(data))));
    }
    // The first chunk is read before answering, for the same reason.
    let (tx, rx) = mpsc::channel(2);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<(), S3Error>>();
    tokio::task::spawn_blocking(move || {
        let mut first = Some(first_tx);
        loop {
            match reader.next_chunk() {
                Ok(Some(c)) => {
                    if let Some(f) = first.take() {
                        let _ = f.send(Ok(()));
                    }
                    if tx.blocking_send(Ok(Bytes::from(c))).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let err = to_s3(e);
                    match first.take() {
                        Some(f) => {
                            let _ = f.send(Err(err));
                        }
                        None => {
                            // Mid-stream: the client sees a cut body (its length check fails).
                            let _ = tx.blocking_send(Err(std::io::Error::other(
                                "object data unreadable",
                            )));
                        }
                    }
                    return;
                }
            }
        }
    });
    match first_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(s3_error!(InternalError, "reader failed")),
    }
    Ok(StreamingBlob::wrap(ChannelStream(rx)))
}

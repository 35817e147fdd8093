//! Data files ("blobs"): the sealed chunks of one object or part, under `DATA/objects`.
//!
//! A blob is written to `tmp/`, fsync'd, renamed to `data/<2 hex>/<id>` and its directory
//! fsync'd before the caller commits the metadata row that names it: a committed row always
//! names a complete file. A crash before the commit leaves a file no row names (an orphan),
//! which [`BlobStore::collect_orphans`] removes at the next start, with whatever `tmp/` holds.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use md5::{Digest as _, Md5};
use medicus_store::ObjectRecords;

use crate::crypto::{self, CHUNK, ChunkCipher, SEALED_CHUNK, SecretKey, TAG};
use crate::error::ObjectError;

/// fsyncs a directory, so that a rename or a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A finished blob: its id, plaintext size, MD5 and data key.
pub struct SealedBlob {
    pub id: String,
    pub size: u64,
    pub md5: [u8; 16],
    pub key: SecretKey,
}

impl BlobStore {
    /// Opens (creating) `root` with its `tmp/` and `data/` directories.
    pub fn open(root: &Path) -> Result<BlobStore, ObjectError> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("data"))?;
        Ok(BlobStore {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self, id: &str) -> Result<PathBuf, ObjectError> {
        // Ids are ours (hex); anything else in a row is corruption, never a path to follow.
        if id.len() < 3 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ObjectError::Corrupt(format!("bad blob id {id:?}")));
        }
        Ok(self.root.join("data").join(&id[..2]).join(id))
    }

    /// Starts a new blob with a fresh data key.
    pub fn writer(&self) -> Result<BlobWriter, ObjectError> {
        let id = crypto::random_id()?;
        let tmp = self.root.join("tmp").join(&id);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        let key = SecretKey::random()?;
        Ok(BlobWriter {
            cipher: ChunkCipher::new(&key)?,
            key: Some(key),
            final_path: self.path(&id)?,
            id,
            tmp,
            file: Some(file),
            pending: Vec::with_capacity(CHUNK + TAG),
            index: 0,
            size: 0,
            md5: Md5::new(),
        })
    }

    /// Deletes blobs whose rows are gone. Best effort: a file left behind is an orphan that the
    /// next start collects.
    pub fn remove(&self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            if let Ok(p) = self.path(&id)
                && let Err(e) = std::fs::remove_file(&p)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(error = %e, "could not delete a data file; it is collected at the next start");
            }
        }
    }

    /// Removes everything in `tmp/`, and every blob older than `older_than` that no row
    /// references. Returns how many files it removed.
    pub fn collect_orphans(
        &self,
        records: &dyn ObjectRecords,
        older_than: SystemTime,
    ) -> Result<usize, ObjectError> {
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            if entry.metadata()?.modified()? < older_than {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        let mut batch = Vec::new();
        for dir in std::fs::read_dir(self.root.join("data"))? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(dir.path())? {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if entry.metadata()?.modified()? < older_than && self.path(&name).is_ok() {
                    batch.push(name);
                }
                if batch.len() >= 500 {
                    removed += self.drop_unreferenced(records, std::mem::take(&mut batch))?;
                }
            }
        }
        removed += self.drop_unreferenced(records, batch)?;
        Ok(removed)
    }

    fn drop_unreferenced(
        &self,
        records: &dyn ObjectRecords,
        batch: Vec<String>,
    ) -> Result<usize, ObjectError> {
        if batch.is_empty() {
            return Ok(0);
        }
        let referenced = records.blobs_referenced(&batch)?;
        let orphans: Vec<String> = batch
            .into_iter()
            .filter(|b| !referenced.contains(b))
            .collect();
        let n = orphans.len();
        self.remove(orphans);
        Ok(n)
    }
}

/// Writes one blob: plaintext in, sealed chunks out; nothing of it is visible before
/// [`BlobWriter::finish`] and a writer dropped unfinished deletes its temporary file.
pub struct BlobWriter {
    id: String,
    tmp: PathBuf,
    final_path: PathBuf,
    file: Option<File>,
    key: Option<SecretKey>,
    cipher: ChunkCipher,
    /// Plaintext of the chunk being filled; the last full chunk stays here until more data
    /// arrives, because only then is it known not to be the last.
    pending: Vec<u8>,
    index: u64,
    size: u64,
    md5: Md5,
}

impl BlobWriter {
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), ObjectError> {
        self.md5.update(data);
        self.size += data.len() as u64;
        while !data.is_empty() {
            if self.pending.len() == CHUNK {
                self.flush_chunk(false)?;
            }
            let take = (CHUNK - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    fn flush_chunk(&mut self, last: bool) -> Result<(), ObjectError> {
        self.cipher.seal(self.index, last, &mut self.pending)?;
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| ObjectError::Corrupt("blob writer used after finish".into()))?;
        file.write_all(&self.pending)?;
        self.pending.clear();
        self.index += 1;
        Ok(())
    }

    /// Seals the last chunk, makes the file durable under its final name and returns it.
    pub fn finish(mut self) -> Result<SealedBlob, ObjectError> {
        self.flush_chunk(true)?;
        let file = self
            .file
            .take()
            .ok_or_else(|| ObjectError::Corrupt("blob writer finished twice".into()))?;
        file.sync_all()?;
        drop(file);
        let dir = self
            .final_path
            .parent()
            .ok_or_else(|| ObjectError::Corrupt("blob path without a directory".into()))?;
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        std::fs::rename(&self.tmp, &self.final_path)?;
        sync_dir(dir)?;
        let key = self
            .key
            .take()
            .ok_or_else(|| ObjectError::Corrupt("blob writer finished twice".into()))?;
        let md5: [u8; 16] = std::mem::take(&mut self.md5).finalize().into();
        Ok(SealedBlob {
            id: std::mem::take(&mut self.id),
            size: self.size,
            md5,
            key,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// One data file of an object, ready to read.
pub struct Segment {
    pub path: PathBuf,
    pub size: u64,
    pub key: SecretKey,
}

/// Reads the plaintext of `[start, end]` (inclusive) over a list of segments, one chunk at a
/// time: memory stays at one chunk whatever the object's size.
pub struct RangeReader {
    segments: Vec<(Segment, ChunkCipher)>,
    /// Object offset of the next byte to return, and the last byte to return.
    pos: u64,
    end: u64,
    /// The segment holding `pos`, its object offset, and its open file.
    current: Option<(usize, u64, File)>,
    done: bool,
}

impl RangeReader {
    /// `end` is inclusive; an empty read (of an empty object) is `start > end`.
    pub fn new(segments: Vec<Segment>, start: u64, end: u64) -> Result<RangeReader, ObjectError> {
        let segments = segments
            .into_iter()
            .map(|s| {
                let c = ChunkCipher::new(&s.key)?;
                Ok((s, c))
            })
            .collect::<Result<Vec<_>, ObjectError>>()?;
        Ok(RangeReader {
            segments,
            pos: start,
            end,
            current: None,
            done: start > end,
        })
    }

    /// The next piece of plaintext (at most one chunk), `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ObjectError> {
        if self.done || self.pos > self.end {
            self.done = true;
            return Ok(None);
        }
        // Find the segment holding pos.
        let (idx, base) = match &self.current {
            Some((i, base, _)) if self.pos < base + self.segments[*i].0.size => (*i, *base),
            _ => {
                let mut base = 0;
                let mut found = None;
                for (i, (s, _)) in self.segments.iter().enumerate() {
                    if self.pos < base + s.size {
                        found = Some(i);
                        break;
                    }
                    base += s.size;
                }
                let i = found.ok_or_else(|| {
                    ObjectError::Corrupt("read past the end of the object's data".into())
                })?;
                let file = File::open(&self.segments[i].0.path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        ObjectError::Corrupt("a data file of the object is missing".into())
                    } else {
                        e.into()
                    }
                })?;
                self.current = Some((i, base, file));
                (i, base)
            }
        };
        let (seg, cipher) = &self.segments[idx];
        let Some((_, _, file)) = &self.current else {
            return Err(ObjectError::Corrupt("no open segment".into()));
        };
        let offset = self.pos - base;
        let chunk = offset / CHUNK as u64;
        let chunks = crypto::chunk_count(seg.size);
        let last = chunk + 1 == chunks;
        let plain_len = if last {
            (seg.size - chunk * CHUNK as u64) as usize
        } else {
            CHUNK
        };
        let mut buf = vec![0u8; plain_len + TAG];
        read_exact_at(file, &mut buf, chunk * SEALED_CHUNK as u64).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                ObjectError::Corrupt("a data file is shorter than its object".into())
            } else {
                e.into()
            }
        })?;
        let n = cipher.open(chunk, last, &mut buf)?;
        buf.truncate(n);
        let from = (offset - chunk * CHUNK as u64) as usize;
        let segment_end = base + seg.size - 1;
        let to_obj = self
            .end
            .min(segment_end)
            .min(base + chunk * CHUNK as u64 + n as u64 - 1);
        let to = (to_obj - base - chunk * CHUNK as u64) as usize;
        let out = buf[from..=to].to_vec();
        self.pos = to_obj + 1;
        Ok(Some(out))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(store: &BlobStore, data: &[u8], pieces: usize) -> SealedBlob {
        let mut w = store.writer().unwrap();
        for piece in data.chunks(pieces.max(1)) {
            w.write(piece).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(
        store: &BlobStore,
        blobs: &[(&SealedBlob, &[u8])],
        start: u64,
        end: u64,
    ) -> Vec<u8> {
        let segs = blobs
            .iter()
            .map(|(b, _)| Segment {
                path: store.path(&b.id).unwrap(),
                size: b.size,
                key: SecretKey::from_bytes(b.key.bytes()).unwrap(),
            })
            .collect();
        let mut r = RangeReader::new(segs, start, end).unwrap();
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            assert!(c.len() <= CHUNK);
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn round_trip_ranges_across_chunks_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a: Vec<u8> = (0..(2 * CHUNK + 100)).map(|i| (i % 251) as u8).collect();
        let b: Vec<u8> = (0..CHUNK).map(|i| (i % 13) as u8).collect();
        let ba = write(&store, &a, 1000);
        let bb = write(&store, &b, CHUNK);
        assert_eq!(ba.size, a.len() as u64);
        assert_eq!(
            std::fs::metadata(store.path(&ba.id).unwrap())
                .unwrap()
                .len(),
            crypto::sealed_size(a.len() as u64)
        );
        let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
        let segs = [(&ba, a.as_slice()), (&bb, b.as_slice())];
        let n = whole.len() as u64;
        assert_eq!(read_all(&store, &segs, 0, n - 1), whole);
        for (s, e) in [
            (0, 0),
            (5, CHUNK as u64),
            (CHUNK as u64 - 1, CHUNK as u64 * 2 + 200),
            (n - 1, n - 1),
            (a.len() as u64 - 3, a.len() as u64 + 2),
        ] {
            assert_eq!(
                read_all(&store, &segs, s, e),
                whole[s as usize..=e as usize],
                "{s}-{e}"
            );
        }
        // The md5 is of the plaintext.
        assert_eq!(ba.md5, <[u8; 16]>::from(Md5::digest(&a)));
        // Empty blob.
        let empty = write(&store, b"", 1);
        assert!(read_all(&store, &[(&empty, b"")], 1, 0).is_empty());
        assert!(tmp_is_empty(dir.path()));
    }

    fn tmp_is_empty(root: &Path) -> bool {
        std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn tampering_and_truncation_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = vec![7u8; 2 * CHUNK];
        let blob = write(&store, &data, CHUNK);
        let path = store.path(&blob.id).unwrap();
        let seg = |size| Segment {
            path: path.clone(),
            size,
            key: SecretKey::from_bytes(blob.key.bytes()).unwrap(),
        };
        // Cut after the first chunk and claim the object was one chunk long: the first chunk
        // was not sealed as the last one.
        let mut r = RangeReader::new(vec![seg(CHUNK as u64)], 0, CHUNK as u64 - 1).unwrap();
        assert!(matches!(r.next_chunk(), Err(ObjectError::Corrupt(_))));
        // A flipped byte.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[SEALED_CHUNK + 10] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut r = RangeReader::new(vec![seg(2 * CHUNK as u64)], 0, 2 * CHUNK as u64 - 1).unwrap();
        assert!(r.next_chunk().unwrap().is_some());
        assert!(matches!(r.next_chunk(), Err(ObjectError::Corrupt(_))));
        // A truncated file.
        std::fs::write(&path, &bytes[..SEALED_CHUNK + 5]).unwrap();
        let mut r = RangeReader::new(
            vec![seg(2 * CHUNK as u64)],
            CHUNK as u64,
            2 * CHUNK as u64 - 1,
        )
        .unwrap();
        assert!(matches!(r.next_chunk(), Err(ObjectError::Corrupt(_))));
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut w = store.writer().unwrap();
        w.write(b"abc").unwrap();
        drop(w);
        assert!(tmp_is_empty(dir.path()));
    }
}

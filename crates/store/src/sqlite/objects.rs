//! Object storage metadata on SQLite (`crate::objects`). Writes run in a `BEGIN IMMEDIATE`
//! transaction on the single writer, so moving the latest flag of a key, replacing its `null`
//! version or completing an upload sees no concurrent change; reads go to the reader pool.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, lock};
use crate::error::StoreError;
use crate::objects::{
    BUCKET_COLUMNS, BucketDeleted, BucketRecord, Completed, ListFrom, ObjectRecords, PART_COLUMNS,
    PartRecord, UPLOAD_COLUMNS, UploadChange, UploadRecord, VERSION_COLUMNS, VersionRecord,
    prefix_upper,
};

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn bucket_at(r: &Row<'_>) -> rusqlite::Result<BucketRecord> {
    Ok(BucketRecord {
        name: r.get(0)?,
        tenant: r.get(1)?,
        created_us: r.get(2)?,
        versioning: r.get(3)?,
        config: r.get(4)?,
    })
}

fn version_at(r: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        bucket: r.get(0)?,
        key: r.get(1)?,
        version_id: r.get(2)?,
        seq: r.get(3)?,
        latest: r.get::<_, i64>(4)? != 0,
        delete_marker: r.get::<_, i64>(5)? != 0,
        size: r.get(6)?,
        etag: r.get(7)?,
        created_us: r.get(8)?,
        blob: r.get(9)?,
        segments: Vec::new(),
        meta: r.get(10)?,
    })
}

fn upload_at(r: &Row<'_>) -> rusqlite::Result<UploadRecord> {
    Ok(UploadRecord {
        upload_id: r.get(0)?,
        bucket: r.get(1)?,
        key: r.get(2)?,
        created_us: r.get(3)?,
        meta: r.get(4)?,
    })
}

fn part_at(r: &Row<'_>) -> rusqlite::Result<PartRecord> {
    Ok(PartRecord {
        upload_id: r.get(0)?,
        part_number: r.get(1)?,
        size: r.get(2)?,
        etag: r.get(3)?,
        created_us: r.get(4)?,
        blob: r.get(5)?,
        meta: r.get(6)?,
    })
}

/// Rolls back the writer's open transaction when dropped without a commit.
struct RollbackOpen<'c>(&'c Connection);

impl Drop for RollbackOpen<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteStore {
    fn objects_write<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = lock(&self.writer);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let _open = RollbackOpen(&conn);
        let value = f(&conn)?;
        conn.execute_batch("COMMIT")?;
        Ok(value)
    }
}

/// Removes a version row and its segment rows; returns it.
fn remove_version(
    conn: &Connection,
    bucket: &str,
    key: &str,
    version_id: &str,
    expect_meta: Option<&[u8]>,
) -> Result<Option<VersionRecord>, StoreError> {
    let removed = conn
        .prepare_cached(&format!(
            "DELETE FROM obj_version WHERE bucket = ?1 AND key = ?2 AND version_id = ?3
               AND (?4 IS NULL OR meta = ?4)
             RETURNING {VERSION_COLUMNS}"
        ))?
        .query_row(params![bucket, key, version_id, expect_meta], version_at)
        .optional()?;
    if let Some(v) = &removed {
        conn.prepare_cached("DELETE FROM obj_segment WHERE owner = ?1")?
            .execute(params![v.seq])?;
        if v.latest {
            conn.prepare_cached(
                "UPDATE obj_version SET latest = 1 WHERE seq =
                   (SELECT max(seq) FROM obj_version WHERE bucket = ?1 AND key = ?2)",
            )?
            .execute(params![bucket, key])?;
        }
    }
    Ok(removed)
}

/// Inserts `v` as the latest version of its key, removing `replace` first.
fn insert_version(
    conn: &Connection,
    v: &VersionRecord,
    replace: Option<&str>,
) -> Result<Vec<VersionRecord>, StoreError> {
    let mut removed = Vec::new();
    if let Some(id) = replace
        && let Some(old) = remove_version(conn, &v.bucket, &v.key, id, None)?
    {
        removed.push(old);
    }
    conn.prepare_cached(
        "UPDATE obj_version SET latest = 0 WHERE bucket = ?1 AND key = ?2 AND latest = 1",
    )?
    .execute(params![v.bucket, v.key])?;
    let seq: i64 = conn
        .prepare_cached(
            "INSERT INTO obj_version
               (bucket, key, version_id, latest, delete_marker, size, etag, created_us, blob, meta)
             VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING seq",
        )?
        .query_row(
            params![
                v.bucket,
                v.key,
                v.version_id,
                i64::from(v.delete_marker),
                v.size,
                v.etag,
                v.created_us,
                v.blob,
                v.meta
            ],
            |r| r.get(0),
        )?;
    let mut segment =
        conn.prepare_cached("INSERT INTO obj_segment (owner, idx, blob) VALUES (?1, ?2, ?3)")?;
    for (i, blob) in v.segments.iter().enumerate() {
        segment.execute(params![seq, limit(i), blob])?;
    }
    Ok(removed)
}

impl ObjectRecords for SqliteStore {
    fn bucket_create(&self, b: &BucketRecord) -> Result<bool, StoreError> {
        self.objects_write(|conn| {
            let n = conn
                .prepare_cached(
                    "INSERT INTO obj_bucket (name, tenant, created_us, versioning, config)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![
                    b.name,
                    b.tenant,
                    b.created_us,
                    b.versioning,
                    b.config
                ])?;
            Ok(n == 1)
        })
    }

    fn bucket_get(&self, name: &str) -> Result<Option<BucketRecord>, StoreError> {
        let reader = self.reader()?;
        reader
            .conn()
            .prepare_cached(&format!(
                "SELECT {BUCKET_COLUMNS} FROM obj_bucket WHERE name = ?1"
            ))?
            .query_row(params![name], bucket_at)
            .optional()
            .map_err(Into::into)
    }

    fn bucket_list(&self, tenant: Option<&str>) -> Result<Vec<BucketRecord>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&format!(
            "SELECT {BUCKET_COLUMNS} FROM obj_bucket
             WHERE ?1 IS NULL OR tenant = ?1 ORDER BY name"
        ))?;
        let rows = stmt.query_map(params![tenant], bucket_at)?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    fn bucket_update(
        &self,
        name: &str,
        versioning: i32,
        config: &[u8],
    ) -> Result<bool, StoreError> {
        self.objects_write(|conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE obj_bucket SET versioning = ?2, config = ?3 WHERE name = ?1",
                )?
                .execute(params![name, versioning, config])?;
            Ok(n == 1)
        })
    }

    fn bucket_delete(&self, name: &str) -> Result<BucketDeleted, StoreError> {
        self.objects_write(|conn| {
            let used: bool = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM obj_version WHERE bucket = ?1)
                         OR EXISTS (SELECT 1 FROM obj_upload WHERE bucket = ?1)",
                )?
                .query_row(params![name], |r| r.get(0))?;
            if used {
                return Ok(BucketDeleted::NotEmpty);
            }
            let n = conn
                .prepare_cached("DELETE FROM obj_bucket WHERE name = ?1")?
                .execute(params![name])?;
            Ok(if n == 1 {
                BucketDeleted::Deleted
            } else {
                BucketDeleted::NotFound
            })
        })
    }

    fn version_put(
        &self,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.objects_write(|conn| insert_version(conn, version, replace))
    }

    fn version_get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Option<VersionRecord>, StoreError> {
        let reader = self.reader()?;
        let conn = reader.conn();
        let found = match version_id {
            Some(id) => conn
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM obj_version
                     WHERE bucket = ?1 AND key = ?2 AND version_id = ?3"
                ))?
                .query_row(params![bucket, key, id], version_at)
                .optional()?,
            None => conn
                .prepare_cached(&format!(
                    "SELECT {VERSION_COLUMNS} FROM obj_version
                     WHERE bucket = ?1 AND key = ?2 AND latest = 1"
                ))?
                .query_row(params![bucket, key], version_at)
                .optional()?,
        };
        Ok(found)
    }

    fn version_delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.objects_write(|conn| remove_version(conn, bucket, key, version_id, None))
    }

    fn version_delete_if(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.objects_write(|conn| remove_version(conn, bucket, key, version_id, Some(expect_meta)))
    }

    fn version_set_meta(
        &self,
        bucket: &str,
        key: &str,
        version_id: &str,
        expect_meta: &[u8],
        meta: &[u8],
    ) -> Result<bool, StoreError> {
        self.objects_write(|conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE obj_version SET meta = ?5
                     WHERE bucket = ?1 AND key = ?2 AND version_id = ?3 AND meta = ?4",
                )?
                .execute(params![bucket, key, version_id, expect_meta, meta])?;
            Ok(n == 1)
        })
    }

    fn list_latest(
        &self,
        bucket: &str,
        prefix: &str,
        from: ListFrom<'_>,
        n: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let (op, start) = match from {
            ListFrom::After(k) if k >= prefix => (">", k),
            ListFrom::AtOrAfter(k) if k >= prefix => (">=", k),
            _ => (">=", prefix),
        };
        let upper = prefix_upper(prefix);
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM obj_version INDEXED BY obj_version_latest
             WHERE bucket = ?1 AND latest = 1 AND key {op} ?2 {}
               AND delete_marker = 0
             ORDER BY key LIMIT ?4",
            if upper.is_some() {
                "AND key < ?3"
            } else {
                "AND ?3 IS NULL"
            }
        );
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params![bucket, start, upper, limit(n)], version_at)?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, i64)>,
        n: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        let upper = prefix_upper(prefix);
        let (after_key, after_seq) = match after {
            Some((k, s)) if k >= prefix => (Some(k), s),
            _ => (None, 0),
        };
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM obj_version
             WHERE bucket = ?1 AND key >= ?2 {}
               AND (?4 IS NULL OR key > ?4 OR (key = ?4 AND seq < ?5))
             ORDER BY key, seq DESC LIMIT ?6",
            if upper.is_some() {
                "AND key < ?3"
            } else {
                "AND ?3 IS NULL"
            }
        );
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![bucket, prefix, upper, after_key, after_seq, limit(n)],
            version_at,
        )?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    fn upload_create(&self, u: &UploadRecord) -> Result<(), StoreError> {
        self.objects_write(|conn| {
            conn.prepare_cached(
                "INSERT INTO obj_upload (upload_id, bucket, key, created_us, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![u.upload_id, u.bucket, u.key, u.created_us, u.meta])?;
            Ok(())
        })
    }

    fn upload_get(&self, upload_id: &str) -> Result<Option<UploadRecord>, StoreError> {
        let reader = self.reader()?;
        reader
            .conn()
            .prepare_cached(&format!(
                "SELECT {UPLOAD_COLUMNS} FROM obj_upload WHERE upload_id = ?1"
            ))?
            .query_row(params![upload_id], upload_at)
            .optional()
            .map_err(Into::into)
    }

    fn upload_list(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, &str)>,
        n: usize,
    ) -> Result<Vec<UploadRecord>, StoreError> {
        let upper = prefix_upper(prefix);
        let (after_key, after_id) = match after {
            Some((k, id)) => (Some(k), id),
            None => (None, ""),
        };
        let sql = format!(
            "SELECT {UPLOAD_COLUMNS} FROM obj_upload
             WHERE bucket = ?1 AND key >= ?2 {}
               AND (?4 IS NULL OR key > ?4 OR (key = ?4 AND upload_id > ?5))
             ORDER BY key, upload_id LIMIT ?6",
            if upper.is_some() {
                "AND key < ?3"
            } else {
                "AND ?3 IS NULL"
            }
        );
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![bucket, prefix, upper, after_key, after_id, limit(n)],
            upload_at,
        )?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    fn upload_abort(&self, upload_id: &str) -> Result<Option<Vec<PartRecord>>, StoreError> {
        self.objects_write(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM obj_upload WHERE upload_id = ?1")?
                .execute(params![upload_id])?;
            if n == 0 {
                return Ok(None);
            }
            let mut stmt = conn.prepare_cached(&format!(
                "DELETE FROM obj_part WHERE upload_id = ?1 RETURNING {PART_COLUMNS}"
            ))?;
            let parts = stmt
                .query_map(params![upload_id], part_at)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(parts))
        })
    }

    fn part_put(&self, p: &PartRecord) -> Result<UploadChange<Option<PartRecord>>, StoreError> {
        self.objects_write(|conn| {
            let exists = conn
                .prepare_cached("SELECT 1 FROM obj_upload WHERE upload_id = ?1")?
                .query_row(params![p.upload_id], |_| Ok(()))
                .optional()?
                .is_some();
            if !exists {
                return Ok(UploadChange::NoSuchUpload);
            }
            let old = conn
                .prepare_cached(&format!(
                    "DELETE FROM obj_part WHERE upload_id = ?1 AND part_number = ?2
                     RETURNING {PART_COLUMNS}"
                ))?
                .query_row(params![p.upload_id, p.part_number], part_at)
                .optional()?;
            conn.prepare_cached(
                "INSERT INTO obj_part (upload_id, part_number, size, etag, created_us, blob, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                p.upload_id,
                p.part_number,
                p.size,
                p.etag,
                p.created_us,
                p.blob,
                p.meta
            ])?;
            Ok(UploadChange::Done(old))
        })
    }

    fn part_list(
        &self,
        upload_id: &str,
        after: i32,
        n: usize,
    ) -> Result<Vec<PartRecord>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&format!(
            "SELECT {PART_COLUMNS} FROM obj_part WHERE upload_id = ?1 AND part_number > ?2
             ORDER BY part_number LIMIT ?3"
        ))?;
        let rows = stmt.query_map(params![upload_id, after, limit(n)], part_at)?;
        rows.collect::<Result<_, _>>().map_err(Into::into)
    }

    fn upload_complete(
        &self,
        upload_id: &str,
        version: &VersionRecord,
        replace: Option<&str>,
    ) -> Result<UploadChange<Completed>, StoreError> {
        self.objects_write(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM obj_upload WHERE upload_id = ?1")?
                .execute(params![upload_id])?;
            if n == 0 {
                return Ok(UploadChange::NoSuchUpload);
            }
            let parts = conn
                .prepare_cached(&format!(
                    "DELETE FROM obj_part WHERE upload_id = ?1 RETURNING {PART_COLUMNS}"
                ))?
                .query_map(params![upload_id], part_at)?
                .collect::<Result<Vec<_>, _>>()?;
            let unused = parts
                .into_iter()
                .filter(|p| !version.segments.contains(&p.blob))
                .collect();
            let removed = insert_version(conn, version, replace)?;
            Ok(UploadChange::Done((removed, unused)))
        })
    }

    fn blobs_referenced(&self, blobs: &[String]) -> Result<Vec<String>, StoreError> {
        let reader = self.reader()?;
        let conn = reader.conn();
        let mut found = Vec::new();
        let mut in_version =
            conn.prepare_cached("SELECT 1 FROM obj_version WHERE blob = ?1 LIMIT 1")?;
        let mut in_segment =
            conn.prepare_cached("SELECT 1 FROM obj_segment WHERE blob = ?1 LIMIT 1")?;
        let mut in_part = conn.prepare_cached("SELECT 1 FROM obj_part WHERE blob = ?1 LIMIT 1")?;
        for b in blobs {
            if in_version.exists(params![b])?
                || in_segment.exists(params![b])?
                || in_part.exists(params![b])?
            {
                found.push(b.clone());
            }
        }
        Ok(found)
    }
}

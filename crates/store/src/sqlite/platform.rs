//! Platform records on SQLite (`crate::platform`): documents and audit chains.
//!
//! Every write runs in a `BEGIN IMMEDIATE` transaction on the single writer connection, as a
//! write session does: the writer mutex orders the threads of this process, SQLite's write lock
//! other processes on the same file, so a compare-and-set, a take or an append sees no concurrent
//! change between its read and its write. Each commits before returning (`synchronous=FULL`).
//! Reads go to the reader pool.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::session::now_us;
use super::{SqliteStore, lock};
use crate::error::StoreError;
use crate::platform::{
    AUDIT_CHAINS_SQL, Arg, AuditBuilder, AuditEntry, AuditLink, AuditQuery, Doc, DocExpect,
    PlatformRecords, audit_query_sql, check_continues, decode_subjects, encode_subjects,
    list_start, prefix_upper,
};

/// A create or unconditional write: a new document (or one in place of an expired one) starts
/// at version 1, an existing one goes up by one. `?5` is now.
const UPSERT_ANY: &str = "
INSERT INTO doc (ns, key, version, value, expires_us) VALUES (?1, ?2, 1, ?3, ?4)
ON CONFLICT (ns, key) DO UPDATE SET
  version = CASE WHEN doc.expires_us < ?5 THEN 1 ELSE doc.version + 1 END,
  value = excluded.value, expires_us = excluded.expires_us
RETURNING version";

/// Create-only: replaces an existing row only when it has expired; no row returned otherwise.
const UPSERT_ABSENT: &str = "
INSERT INTO doc (ns, key, version, value, expires_us) VALUES (?1, ?2, 1, ?3, ?4)
ON CONFLICT (ns, key) DO UPDATE SET
  version = 1, value = excluded.value, expires_us = excluded.expires_us
  WHERE doc.expires_us < ?5
RETURNING version";

/// Write over exactly version `?6` of an unexpired document.
const UPDATE_VERSION: &str = "
UPDATE doc SET version = version + 1, value = ?3, expires_us = ?4
WHERE ns = ?1 AND key = ?2 AND version = ?6 AND (expires_us IS NULL OR expires_us >= ?5)
RETURNING version";

fn conflict(ns: &str, key: &str) -> StoreError {
    StoreError::DocConflict {
        ns: ns.to_owned(),
        key: key.to_owned(),
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A document from columns `key, version, value, expires_us` starting at `at`.
fn doc_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Doc> {
    Ok(Doc {
        key: r.get(at)?,
        version: r.get(at + 1)?,
        value: r.get(at + 2)?,
        expires_us: r.get(at + 3)?,
    })
}

/// The version of the unexpired document under `(ns, key)`.
fn live_version(
    conn: &Connection,
    ns: &str,
    key: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached(
        "SELECT version FROM doc
         WHERE ns = ?1 AND key = ?2 AND (expires_us IS NULL OR expires_us >= ?3)",
    )?
    .query_row(params![ns, key, now], |r| r.get(0))
    .optional()
    .map_err(Into::into)
}

fn head(conn: &Connection, chain: &str) -> Result<Option<AuditLink>, StoreError> {
    conn.prepare_cached("SELECT seq, hash FROM audit WHERE chain = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![chain], |r| {
            Ok(AuditLink {
                seq: r.get(0)?,
                hash: r.get(1)?,
            })
        })
        .optional()
        .map_err(Into::into)
}

/// Rolls back the writer's open transaction when dropped: after an error, and when a builder
/// panics (the writer stays usable by the next session).
struct RollbackOpen<'c>(&'c Connection);

impl Drop for RollbackOpen<'_> {
    fn drop(&mut self) {
        if !self.0.is_autocommit() {
            let _ = self.0.execute_batch("ROLLBACK");
        }
    }
}

impl SqliteStore {
    /// Runs `f` in a write transaction on the writer connection and commits; rolls back on error.
    fn platform_write<T>(
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

impl PlatformRecords for SqliteStore {
    fn doc_get(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(
            "SELECT key, version, value, expires_us FROM doc
             WHERE ns = ?1 AND key = ?2 AND (expires_us IS NULL OR expires_us >= ?3)",
        )?;
        stmt.query_row(params![ns, key, now_us()], |r| doc_at(r, 0))
            .optional()
            .map_err(Into::into)
    }

    fn doc_put(
        &self,
        ns: &str,
        key: &str,
        value: &[u8],
        expires_us: Option<i64>,
        expect: DocExpect,
    ) -> Result<i64, StoreError> {
        let now = now_us();
        self.platform_write(|conn| {
            let version: Option<i64> = match expect {
                DocExpect::Any => conn
                    .prepare_cached(UPSERT_ANY)?
                    .query_row(params![ns, key, value, expires_us, now], |r| r.get(0))
                    .optional()?,
                DocExpect::Absent => conn
                    .prepare_cached(UPSERT_ABSENT)?
                    .query_row(params![ns, key, value, expires_us, now], |r| r.get(0))
                    .optional()?,
                DocExpect::Version(v) => conn
                    .prepare_cached(UPDATE_VERSION)?
                    .query_row(params![ns, key, value, expires_us, now, v], |r| r.get(0))
                    .optional()?,
            };
            version.ok_or_else(|| conflict(ns, key))
        })
    }

    fn doc_delete(&self, ns: &str, key: &str, expect: DocExpect) -> Result<bool, StoreError> {
        let now = now_us();
        self.platform_write(|conn| {
            let Some(current) = live_version(conn, ns, key, now)? else {
                return Ok(false);
            };
            match expect {
                DocExpect::Any => {}
                DocExpect::Version(v) if v == current => {}
                DocExpect::Version(_) | DocExpect::Absent => return Err(conflict(ns, key)),
            }
            conn.prepare_cached("DELETE FROM doc WHERE ns = ?1 AND key = ?2")?
                .execute(params![ns, key])?;
            Ok(true)
        })
    }

    fn doc_take(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let now = now_us();
        self.platform_write(|conn| {
            conn.prepare_cached(
                "DELETE FROM doc
                 WHERE ns = ?1 AND key = ?2 AND (expires_us IS NULL OR expires_us >= ?3)
                 RETURNING key, version, value, expires_us",
            )?
            .query_row(params![ns, key, now], |r| doc_at(r, 0))
            .optional()
            .map_err(Into::into)
        })
    }

    fn doc_list(
        &self,
        ns: &str,
        prefix: &str,
        after: Option<&str>,
        n: usize,
    ) -> Result<Vec<Doc>, StoreError> {
        let (op, from) = list_start(prefix, after);
        let upper = prefix_upper(prefix);
        let sql = format!(
            "SELECT key, version, value, expires_us FROM doc
             WHERE ns = ?1 AND key {op} ?2 AND (expires_us IS NULL OR expires_us >= ?3) {}
             ORDER BY key LIMIT ?4",
            if upper.is_some() { "AND key < ?5" } else { "" }
        );
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&sql)?;
        let now = now_us();
        let docs = match &upper {
            Some(u) => stmt
                .query_map(params![ns, from, now, limit(n), u], |r| doc_at(r, 0))?
                .collect::<Result<Vec<_>, _>>()?,
            None => stmt
                .query_map(params![ns, from, now, limit(n)], |r| doc_at(r, 0))?
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(docs)
    }

    fn doc_purge_expired(&self, now_us: i64) -> Result<u64, StoreError> {
        self.platform_write(|conn| {
            let n = conn
                .prepare_cached("DELETE FROM doc WHERE expires_us < ?1")?
                .execute(params![now_us])?;
            Ok(n as u64)
        })
    }

    fn doc_scan(
        &self,
        after: Option<(&str, &str)>,
        n: usize,
    ) -> Result<Vec<(String, Doc)>, StoreError> {
        let reader = self.reader()?;
        let now = now_us();
        let each = |r: &Row<'_>| Ok((r.get::<_, String>(0)?, doc_at(r, 1)?));
        let docs = match after {
            Some((ns, key)) => reader
                .conn()
                .prepare_cached(
                    "SELECT ns, key, version, value, expires_us FROM doc
                     WHERE (ns, key) > (?1, ?2) AND (expires_us IS NULL OR expires_us >= ?3)
                     ORDER BY ns, key LIMIT ?4",
                )?
                .query_map(params![ns, key, now, limit(n)], each)?
                .collect::<Result<Vec<_>, _>>()?,
            None => reader
                .conn()
                .prepare_cached(
                    "SELECT ns, key, version, value, expires_us FROM doc
                     WHERE expires_us IS NULL OR expires_us >= ?1
                     ORDER BY ns, key LIMIT ?2",
                )?
                .query_map(params![now, limit(n)], each)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(docs)
    }

    fn audit_append(&self, chain: &str, build: &mut AuditBuilder<'_>) -> Result<(), StoreError> {
        self.platform_write(|conn| {
            let head = head(conn, chain)?;
            let entries = build(head.as_ref())?;
            check_continues(chain, head.as_ref(), &entries)?;
            let mut entry = conn.prepare_cached(
                "INSERT INTO audit (chain, seq, at_us, hash, subjects, record)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            // OR IGNORE: an entry that names a subject twice has one row for it.
            let mut subject = conn.prepare_cached(
                "INSERT OR IGNORE INTO audit_subject (chain, subject, seq) VALUES (?1, ?2, ?3)",
            )?;
            for e in &entries {
                entry.execute(params![
                    chain,
                    e.seq,
                    e.at_us,
                    e.hash,
                    encode_subjects(&e.subjects),
                    e.record
                ])?;
                for s in &e.subjects {
                    subject.execute(params![chain, s, e.seq])?;
                }
            }
            Ok(())
        })
    }

    fn audit_head(&self, chain: &str) -> Result<Option<AuditLink>, StoreError> {
        let reader = self.reader()?;
        head(reader.conn(), chain)
    }

    fn audit_query(&self, chain: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, args) = audit_query_sql(chain, query, |n| format!("?{n}"));
        let args: Vec<&dyn rusqlite::ToSql> = args
            .iter()
            .map(|a| match a {
                Arg::Text(s) => s as &dyn rusqlite::ToSql,
                Arg::Int(i) => i as &dyn rusqlite::ToSql,
            })
            .collect();
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query(&*args)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let subjects: String = r.get(3)?;
            out.push(AuditEntry {
                seq,
                at_us: r.get(1)?,
                hash: r.get(2)?,
                subjects: decode_subjects(chain, seq, &subjects)?,
                record: r.get(4)?,
            });
        }
        Ok(out)
    }

    fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        let reader = self.reader()?;
        let mut stmt = reader.conn().prepare_cached(AUDIT_CHAINS_SQL)?;
        let chains = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(chains)
    }
}

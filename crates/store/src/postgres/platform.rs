//! Platform records on PostgreSQL (`crate::platform`): documents and audit chains, shared by
//! every medicus process on the database.
//!
//! Document writes are single statements whose conditions PostgreSQL re-checks on the row it
//! locked (`INSERT … ON CONFLICT DO UPDATE … WHERE`, `UPDATE … WHERE version = …`,
//! `DELETE … RETURNING`), so a compare-and-set or a take holds across processes without an
//! explicit transaction. An append locks its chain with a transaction-scoped advisory lock,
//! reads the head, and writes the whole batch with one `INSERT … SELECT FROM unnest(…)` per
//! table pipelined with the `COMMIT`: three round trips whatever the batch size.

use deadpool_postgres::Object;
use futures_util::future::try_join3;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use xxhash_rust::xxh3::xxh3_64;

use super::PostgresStore;
use super::session::now_us;
use crate::error::StoreError;
use crate::platform::{
    AUDIT_CHAINS_SQL, Arg, AuditBuilder, AuditEntry, AuditLink, AuditQuery, Doc, DocExpect,
    PlatformRecords, audit_query_sql, check_continues, decode_subjects, encode_subjects,
    list_start, prefix_upper,
};

/// The class of the chain locks: advisory locks with two `int4` keys (class, hash of the chain
/// name) live apart from the single-`bigint` locks of `schema.rs` ("med" + 4).
const AUDIT_LOCK_CLASS: i32 = 0x6d65_6404;

/// A create or unconditional write: a new document (or one in place of an expired one) starts
/// at version 1, an existing one goes up by one. `$5` is now.
const UPSERT_ANY: &str = "
INSERT INTO doc (ns, key, version, value, expires_us) VALUES ($1, $2, 1, $3, $4)
ON CONFLICT (ns, key) DO UPDATE SET
  version = CASE WHEN doc.expires_us < $5 THEN 1 ELSE doc.version + 1 END,
  value = excluded.value, expires_us = excluded.expires_us
RETURNING version";

/// Create-only: replaces an existing row only when it has expired; no row returned otherwise.
const UPSERT_ABSENT: &str = "
INSERT INTO doc (ns, key, version, value, expires_us) VALUES ($1, $2, 1, $3, $4)
ON CONFLICT (ns, key) DO UPDATE SET
  version = 1, value = excluded.value, expires_us = excluded.expires_us
  WHERE doc.expires_us < $5
RETURNING version";

/// Write over exactly version `$6` of an unexpired document.
const UPDATE_VERSION: &str = "
UPDATE doc SET version = version + 1, value = $3, expires_us = $4
WHERE ns = $1 AND key = $2 AND version = $6 AND (expires_us IS NULL OR expires_us >= $5)
RETURNING version";

const LIVE_VERSION: &str = "
SELECT version FROM doc WHERE ns = $1 AND key = $2 AND (expires_us IS NULL OR expires_us >= $3)";

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
fn doc_at(r: &Row, at: usize) -> Result<Doc, StoreError> {
    Ok(Doc {
        key: r.try_get(at)?,
        version: r.try_get(at + 1)?,
        value: r.try_get(at + 2)?,
        expires_us: r.try_get(at + 3)?,
    })
}

/// Ends a transaction that failed: rolls back, or keeps a connection in an unknown state out of
/// the pool. (After a failed pipelined `COMMIT` the transaction is over already; `ROLLBACK` then
/// only warns.)
async fn abandon(conn: Object) {
    if conn.batch_execute("ROLLBACK").await.is_err() {
        drop(Object::take(conn));
    }
}

/// A pooled connection inside a transaction. Dropped while it holds one (a builder panicked),
/// it closes the connection rather than hand an open transaction and a held chain lock to the
/// pool's next user; the server then rolls back and releases the lock.
struct Transaction(Option<Object>);

impl Drop for Transaction {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}

/// Appends under the chain's lock on `conn` (module documentation).
async fn append(
    conn: &Object,
    chain: &str,
    build: &mut AuditBuilder<'_>,
) -> Result<(), StoreError> {
    let lock = conn
        .prepare_cached("SELECT pg_advisory_xact_lock($1::int4, $2::int4)")
        .await?;
    let head_stmt = conn
        .prepare_cached("SELECT seq, hash FROM audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1")
        .await?;
    // Collisions of the 32-bit key only make two chains wait for each other.
    let key = xxh3_64(chain.as_bytes()) as i32;
    let (_, _, head) = try_join3(
        async { conn.batch_execute("BEGIN").await.map_err(StoreError::from) },
        async {
            conn.execute(&lock, &[&AUDIT_LOCK_CLASS, &key])
                .await
                .map_err(StoreError::from)
        },
        async {
            conn.query_opt(&head_stmt, &[&chain])
                .await
                .map_err(StoreError::from)
        },
    )
    .await?;
    let head = head
        .map(|r| {
            Ok::<_, StoreError>(AuditLink {
                seq: r.try_get(0)?,
                hash: r.try_get(1)?,
            })
        })
        .transpose()?;
    let entries = build(head.as_ref())?;
    check_continues(chain, head.as_ref(), &entries)?;
    if entries.is_empty() {
        conn.batch_execute("COMMIT").await?;
        return Ok(());
    }
    let insert_entries = conn
        .prepare_cached(
            "INSERT INTO audit (chain, seq, at_us, hash, subjects, record)
             SELECT $1::text, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[], $5::text[], $6::bytea[])",
        )
        .await?;
    let insert_subjects = conn
        .prepare_cached(
            "INSERT INTO audit_subject (chain, subject, seq)
             SELECT $1::text, * FROM unnest($2::text[], $3::bigint[])
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
    let ats: Vec<i64> = entries.iter().map(|e| e.at_us).collect();
    let hashes: Vec<&[u8]> = entries.iter().map(|e| e.hash.as_slice()).collect();
    let subjects: Vec<String> = entries
        .iter()
        .map(|e| encode_subjects(&e.subjects))
        .collect();
    let records: Vec<&[u8]> = entries.iter().map(|e| e.record.as_slice()).collect();
    let (mut subject_names, mut subject_seqs) = (Vec::<&str>::new(), Vec::<i64>::new());
    for e in &entries {
        for s in &e.subjects {
            subject_names.push(s);
            subject_seqs.push(e.seq);
        }
    }
    // Sent together; should an insert fail, the `COMMIT` behind it rolls back and the insert's
    // error is what this returns.
    try_join3(
        async {
            conn.execute(
                &insert_entries,
                &[&chain, &seqs, &ats, &hashes, &subjects, &records],
            )
            .await
            .map_err(StoreError::from)
        },
        async {
            conn.execute(&insert_subjects, &[&chain, &subject_names, &subject_seqs])
                .await
                .map_err(StoreError::from)
        },
        async { conn.batch_execute("COMMIT").await.map_err(StoreError::from) },
    )
    .await?;
    Ok(())
}

impl PlatformRecords for PostgresStore {
    fn doc_get(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached(
                    "SELECT key, version, value, expires_us FROM doc
                     WHERE ns = $1 AND key = $2 AND (expires_us IS NULL OR expires_us >= $3)",
                )
                .await?;
            let row = conn.query_opt(&stmt, &[&ns, &key, &now_us()]).await?;
            row.map(|r| doc_at(&r, 0)).transpose()
        })
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
        self.block_on(async {
            let conn = self.connection().await?;
            let row = match expect {
                DocExpect::Any | DocExpect::Absent => {
                    let sql = if expect == DocExpect::Any {
                        UPSERT_ANY
                    } else {
                        UPSERT_ABSENT
                    };
                    let stmt = conn.prepare_cached(sql).await?;
                    conn.query_opt(&stmt, &[&ns, &key, &value, &expires_us, &now])
                        .await?
                }
                DocExpect::Version(v) => {
                    let stmt = conn.prepare_cached(UPDATE_VERSION).await?;
                    conn.query_opt(&stmt, &[&ns, &key, &value, &expires_us, &now, &v])
                        .await?
                }
            };
            match row {
                Some(r) => Ok(r.try_get(0)?),
                None => Err(conflict(ns, key)),
            }
        })
    }

    fn doc_delete(&self, ns: &str, key: &str, expect: DocExpect) -> Result<bool, StoreError> {
        let now = now_us();
        self.block_on(async {
            let conn = self.connection().await?;
            let version = match expect {
                DocExpect::Any => None,
                DocExpect::Version(v) => Some(v),
                DocExpect::Absent => {
                    // Holds only when there is nothing to delete.
                    let stmt = conn.prepare_cached(LIVE_VERSION).await?;
                    return match conn.query_opt(&stmt, &[&ns, &key, &now]).await? {
                        Some(_) => Err(conflict(ns, key)),
                        None => Ok(false),
                    };
                }
            };
            let delete = conn
                .prepare_cached(
                    "DELETE FROM doc
                     WHERE ns = $1 AND key = $2 AND (expires_us IS NULL OR expires_us >= $3)
                       AND ($4::bigint IS NULL OR version = $4)",
                )
                .await?;
            if conn.execute(&delete, &[&ns, &key, &now, &version]).await? > 0 {
                return Ok(true);
            }
            if version.is_none() {
                return Ok(false);
            }
            // Not deleted: a document of another version, or none at all.
            let stmt = conn.prepare_cached(LIVE_VERSION).await?;
            match conn.query_opt(&stmt, &[&ns, &key, &now]).await? {
                Some(_) => Err(conflict(ns, key)),
                None => Ok(false),
            }
        })
    }

    fn doc_take(&self, ns: &str, key: &str) -> Result<Option<Doc>, StoreError> {
        let now = now_us();
        self.block_on(async {
            let conn = self.connection().await?;
            // Concurrent takers: the row lock makes the others wait, and they find it deleted.
            let stmt = conn
                .prepare_cached(
                    "DELETE FROM doc
                     WHERE ns = $1 AND key = $2 AND (expires_us IS NULL OR expires_us >= $3)
                     RETURNING key, version, value, expires_us",
                )
                .await?;
            let row = conn.query_opt(&stmt, &[&ns, &key, &now]).await?;
            row.map(|r| doc_at(&r, 0)).transpose()
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
             WHERE ns = $1 AND key {op} $2 AND (expires_us IS NULL OR expires_us >= $3) {}
             ORDER BY key LIMIT $4",
            if upper.is_some() { "AND key < $5" } else { "" }
        );
        let now = now_us();
        let count = limit(n);
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn.prepare_cached(&sql).await?;
            let rows = match &upper {
                Some(u) => conn.query(&stmt, &[&ns, &from, &now, &count, u]).await?,
                None => conn.query(&stmt, &[&ns, &from, &now, &count]).await?,
            };
            rows.iter().map(|r| doc_at(r, 0)).collect()
        })
    }

    fn doc_purge_expired(&self, now_us: i64) -> Result<u64, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached("DELETE FROM doc WHERE expires_us < $1")
                .await?;
            Ok(conn.execute(&stmt, &[&now_us]).await?)
        })
    }

    fn doc_scan(
        &self,
        after: Option<(&str, &str)>,
        n: usize,
    ) -> Result<Vec<(String, Doc)>, StoreError> {
        let now = now_us();
        let count = limit(n);
        self.block_on(async {
            let conn = self.connection().await?;
            let rows = match after {
                Some((ns, key)) => {
                    let stmt = conn
                        .prepare_cached(
                            "SELECT ns, key, version, value, expires_us FROM doc
                             WHERE (ns, key) > ($1, $2) AND (expires_us IS NULL OR expires_us >= $3)
                             ORDER BY ns, key LIMIT $4",
                        )
                        .await?;
                    conn.query(&stmt, &[&ns, &key, &now, &count]).await?
                }
                None => {
                    let stmt = conn
                        .prepare_cached(
                            "SELECT ns, key, version, value, expires_us FROM doc
                             WHERE expires_us IS NULL OR expires_us >= $1
                             ORDER BY ns, key LIMIT $2",
                        )
                        .await?;
                    conn.query(&stmt, &[&now, &count]).await?
                }
            };
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, doc_at(r, 1)?)))
                .collect()
        })
    }

    fn audit_append(&self, chain: &str, build: &mut AuditBuilder<'_>) -> Result<(), StoreError> {
        self.block_on(async {
            let mut open = Transaction(None);
            let conn = open.0.insert(self.connection().await?);
            let result = append(conn, chain, build).await;
            if let (Err(_), Some(conn)) = (&result, open.0.take()) {
                abandon(conn).await;
            }
            // Committed, or rolled back: back to the pool.
            drop(open.0.take());
            result
        })
    }

    fn audit_head(&self, chain: &str) -> Result<Option<AuditLink>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn
                .prepare_cached(
                    "SELECT seq, hash FROM audit WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
                )
                .await?;
            let row = conn.query_opt(&stmt, &[&chain]).await?;
            row.map(|r| {
                Ok(AuditLink {
                    seq: r.try_get(0)?,
                    hash: r.try_get(1)?,
                })
            })
            .transpose()
        })
    }

    fn audit_query(&self, chain: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, args) = audit_query_sql(chain, query, |n| format!("${n}"));
        let args: Vec<&(dyn ToSql + Sync)> = args
            .iter()
            .map(|a| match a {
                Arg::Text(s) => s as &(dyn ToSql + Sync),
                Arg::Int(i) => i as &(dyn ToSql + Sync),
            })
            .collect();
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn.prepare_cached(&sql).await?;
            let rows = conn.query(&stmt, &args).await?;
            rows.iter()
                .map(|r| {
                    let seq: i64 = r.try_get(0)?;
                    let subjects: &str = r.try_get(3)?;
                    Ok(AuditEntry {
                        seq,
                        at_us: r.try_get(1)?,
                        hash: r.try_get(2)?,
                        subjects: decode_subjects(chain, seq, subjects)?,
                        record: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    fn audit_chains(&self) -> Result<Vec<String>, StoreError> {
        self.block_on(async {
            let conn = self.connection().await?;
            let stmt = conn.prepare_cached(AUDIT_CHAINS_SQL).await?;
            let rows = conn.query(&stmt, &[]).await?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(StoreError::from))
                .collect()
        })
    }
}

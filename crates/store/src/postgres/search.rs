//! The shared SQL search engine (`crate::sql_search`) on a PostgreSQL connection.
//!
//! Statements run unnamed with declared parameter types (`query_typed_raw`): one round trip, no
//! per-connection statement cache to grow with the many distinct texts a search writes (values
//! the store computes, such as hashes, are part of the text), and a plan made for the actual
//! values.

use std::task::Poll;

use deadpool_postgres::ClientWrapper;
use futures_util::{FutureExt, StreamExt, pin_mut};
use tokio_postgres::types::{ToSql, Type};

use super::PostgresStore;
use super::index_rows::fold_text;
use crate::error::StoreError;
use crate::search::SortValue;
use crate::sql_search::{self, Arg, Db, Dialect, FullTextQuery, Row};

pub(crate) static DIALECT: Dialect = Dialect {
    placeholder,
    live: |alias| format!("NOT {alias}.deleted"),
    ordered_join: "JOIN",
    tenant_on_rid_lookups: true,
    order_after_join: true,
    check_fence: " OFFSET 0",
    checked_count_limit: CHECKED_COUNT_LIMIT,
    batch_probes: true,
    total_in_page: true,
    version_by_type: "",
    fulltext_rows,
    fulltext_check,
};

/// About 5 µs per candidate with two checks (1M resources): a default total costs at most
/// ~20 ms; a larger one needs `_total=accurate`.
const CHECKED_COUNT_LIMIT: u64 = 4_096;

/// A NULL argument (a missing sort value) is written as `NULL`: a typed placeholder could not be
/// compared with every column type.
fn placeholder(n: usize, arg: &Arg) -> String {
    match arg {
        Arg::Null => "NULL".to_owned(),
        _ => format!("${n}"),
    }
}

/// The tsquery of the words, folded like the stored text (`fold_text`), all required.
fn tsquery(sql: &mut sql_search::Sql, q: &FullTextQuery<'_>) -> String {
    let words = sql.arg(fold_text(&q.words.join(" ")));
    format!("plainto_tsquery('simple', {words})")
}

/// `_text` searches the narrative; `_content` every string (the content column holds the
/// narrative's words too).
fn column(q: &FullTextQuery<'_>) -> &'static str {
    if q.narrative_only {
        "narrative"
    } else {
        "content"
    }
}

fn fulltext_rows(
    sql: &mut sql_search::Sql,
    tenant: i64,
    rtype: Option<i64>,
    q: &FullTextQuery<'_>,
) -> String {
    let query = tsquery(sql, q);
    let ty = rtype.map_or(String::new(), |code| format!(" AND fr.rtype = {code}"));
    format!(
        "SELECT f.rid FROM fts f JOIN resource fr ON fr.tenant = f.tenant AND fr.rid = f.rid
         WHERE f.tenant = {tenant} AND f.{} @@ {query} AND fr.tenant = {tenant}{ty} AND NOT fr.deleted",
        column(q)
    )
}

fn fulltext_check(
    sql: &mut sql_search::Sql,
    tenant: i64,
    alias: &str,
    q: &FullTextQuery<'_>,
) -> String {
    let query = tsquery(sql, q);
    format!(
        "EXISTS (SELECT 1 FROM fts f WHERE f.tenant = {tenant} AND f.rid = {alias}.rid AND f.{} @@ {query})",
        column(q)
    )
}

/// One connection of the store, inside the caller's transaction or snapshot.
pub(crate) struct PgDb<'a> {
    pub store: &'a PostgresStore,
    pub conn: &'a ClientWrapper,
}

impl Row for tokio_postgres::Row {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        let ty = self
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Database(format!("no column {i}")))?;
        Ok(match ty {
            Type::INT2 => i64::from(self.try_get::<_, i16>(i)?),
            Type::INT4 => i64::from(self.try_get::<_, i32>(i)?),
            _ => self.try_get::<_, i64>(i)?,
        })
    }

    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn blob(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        Ok(self.try_get(i)?)
    }

    fn sort_value(&self, i: usize) -> Result<SortValue, StoreError> {
        let ty = self
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| StoreError::Database(format!("no column {i}")))?;
        let v = match ty {
            Type::FLOAT8 => self.try_get::<_, Option<f64>>(i)?.map(SortValue::Real),
            Type::FLOAT4 => self
                .try_get::<_, Option<f32>>(i)?
                .map(|f| SortValue::Real(f64::from(f))),
            Type::INT2 | Type::INT4 | Type::INT8 => {
                match self.try_get::<_, Option<i64>>(i).ok().flatten() {
                    Some(n) => Some(SortValue::Int(n)),
                    None => self
                        .try_get::<_, Option<i32>>(i)
                        .ok()
                        .flatten()
                        .map(|n| SortValue::Int(i64::from(n))),
                }
            }
            _ => self.try_get::<_, Option<String>>(i)?.map(SortValue::Text),
        };
        Ok(v.unwrap_or(SortValue::Missing))
    }
}

/// A bound argument with its declared type.
fn typed(a: &Arg) -> (Box<dyn ToSql + Sync + Send>, Type) {
    match a {
        Arg::Int(i) => (Box::new(*i), Type::INT8),
        Arg::Real(f) => (Box::new(*f), Type::FLOAT8),
        // Stored text has its NULs removed (PostgreSQL text cannot hold them): so has the query's.
        Arg::Text(t) => (Box::new(t.replace('\0', "")), Type::TEXT),
        Arg::Null => (Box::new(None::<String>), Type::TEXT),
    }
}

impl Db for PgDb<'_> {
    fn dialect(&self) -> &'static Dialect {
        &DIALECT
    }

    fn type_code(&self, resource_type: &str) -> Option<i64> {
        self.store.type_code(resource_type).map(i64::from)
    }

    fn type_name(&self, code: i64) -> Result<&'static str, StoreError> {
        let code = i32::try_from(code)
            .map_err(|_| StoreError::Corrupt(format!("unknown type code {code}")))?;
        self.store.type_name(code)
    }

    fn query(
        &self,
        sql: &str,
        args: &[Arg],
        each: &mut dyn FnMut(&dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let params: Vec<(Box<dyn ToSql + Sync + Send>, Type)> = args.iter().map(typed).collect();
        self.store.block_on(async {
            let stream = self
                .conn
                .query_typed_raw(
                    sql,
                    params
                        .iter()
                        .map(|(v, t)| (v.as_ref() as &(dyn ToSql + Sync), t.clone())),
                )
                .await?;
            pin_mut!(stream);
            while let Some(row) = stream.next().await {
                if !each(&row?)? {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Pipelined: every statement's request is handed to the connection before the first
    /// answer is awaited, and the answers are then read statement by statement, in the order
    /// the server sends them (reading them in any other order could stall the connection on a
    /// full response channel).
    fn query_all(
        &self,
        statements: &[(&str, &[Arg])],
        each: &mut dyn FnMut(usize, &dyn Row) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let params: Vec<Vec<(Box<dyn ToSql + Sync + Send>, Type)>> = statements
            .iter()
            .map(|(_, args)| args.iter().map(typed).collect())
            .collect();
        self.store.block_on(async {
            let mut pending: Vec<_> = statements
                .iter()
                .zip(&params)
                .map(|((sql, _), params)| {
                    Box::pin(
                        self.conn.query_typed_raw(
                            sql,
                            params
                                .iter()
                                .map(|(v, t)| (v.as_ref() as &(dyn ToSql + Sync), t.clone())),
                        ),
                    )
                })
                .collect();
            // The first poll of each sends its request; none can be ready before any answer.
            let mut ready = Vec::with_capacity(pending.len());
            for f in &mut pending {
                let polled = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx))).await;
                ready.push(match polled {
                    Poll::Ready(r) => Some(r),
                    Poll::Pending => None,
                });
            }
            for (i, (f, ready)) in pending.into_iter().zip(ready).enumerate() {
                let stream = match ready {
                    Some(r) => r?,
                    None => f.await?,
                };
                pin_mut!(stream);
                while let Some(row) = stream.next().await {
                    if !each(i, &row?)? {
                        break;
                    }
                }
            }
            Ok(())
        })
    }
}

/// Runs `f` in a read-only snapshot, so that the planner's probes and the page see the same data.
///
/// `BEGIN` and `COMMIT` cost no round trip of their own: `BEGIN` goes out in the same write as
/// the first statement, and the answer to `COMMIT` is read by whoever uses the connection next
/// (statements on a connection run in order, so nothing can overtake it). A failed `BEGIN`
/// cannot go unnoticed: the connection is then broken, and so is the first statement.
pub(crate) fn in_snapshot<T>(
    db: &PgDb<'_>,
    f: impl FnOnce(&PgDb<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    db.send_only(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL statement_timeout = {}",
        db.store.search_timeout_ms
    ));
    let result = f(db);
    db.send_only(if result.is_ok() { "COMMIT" } else { "ROLLBACK" });
    // Hands the queued end to the connection task now, so an idle connection does not hold
    // its snapshot (and with it vacuum's horizon) until its next use.
    db.store.block_on(tokio::task::yield_now());
    result
}

impl PgDb<'_> {
    /// Queues a statement whose answer nobody needs (the ends of a read-only snapshot) without
    /// waiting for it: the request is handed to the connection at the first poll, and the
    /// connection reads and drops the answer of a request whose receiver is gone.
    fn send_only(&self, sql: &str) {
        let _ = FutureExt::now_or_never(self.conn.batch_execute(sql));
    }
}

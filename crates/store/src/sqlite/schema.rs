//! The SQLite schema. Index tables are clustered on (tenant, param, value, resource) and
//! `WITHOUT ROWID`, so a search is a range scan of one B-tree; version bodies are large and
//! live in an ordinary rowid table.

/// Version 2: resources carry the hash of their id (`idh`) for chained and reverse-chained search;
/// token and reference rows are clustered `(value, rid)` so a criterion can be checked by a seek;
/// range-searched tables have a by-resource index for the same purpose.
/// Version 3: platform records (`doc`, `audit`, `audit_subject`); only new tables, which
/// `SCHEMA` creates in a store of version 2.
/// Version 4: object storage metadata (`obj_*`, `crate::objects`); only new tables.
pub const SCHEMA_VERSION: i64 = 4;

pub use crate::index::INDEX_VERSION;

pub const PRAGMAS: &str = "
PRAGMA journal_mode = WAL;
-- FULL: a commit is on disk before it is acknowledged, also across power loss.
PRAGMA synchronous = FULL;
PRAGMA foreign_keys = OFF;
PRAGMA temp_store = MEMORY;
PRAGMA cache_size = -65536;
PRAGMA busy_timeout = 10000;
";

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- Progress markers committed together with data (resumable imports).
CREATE TABLE IF NOT EXISTS checkpoint (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tenant (tid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rtype (code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- The change feed: one row per committed write transaction, in commit order.
CREATE TABLE IF NOT EXISTS tx_log (tx INTEGER PRIMARY KEY, tenant INTEGER NOT NULL, at_us INTEGER NOT NULL);
-- Current state of each logical resource; rid is the surrogate key the indexes point to.
CREATE TABLE IF NOT EXISTS resource (
  rid INTEGER PRIMARY KEY,
  tenant INTEGER NOT NULL,
  rtype INTEGER NOT NULL,
  id TEXT NOT NULL,
  -- keys::hash(id): the value reference rows hold for this resource as a target.
  idh INTEGER NOT NULL,
  version INTEGER NOT NULL,
  tx INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  deleted INTEGER NOT NULL
);
-- By id hash first: a chained search joins reference targets (hashes) to resources through it.
CREATE UNIQUE INDEX IF NOT EXISTS resource_by_id ON resource (tenant, rtype, idh, id);
-- (tenant, rtype) + the implicit rowid: a type's resources in rid order, so a page of a type
-- scan (`rtype = ? AND rid > cursor ORDER BY rid LIMIT n`) is a range scan that stops after n
-- rows instead of reading and sorting the whole type for every page.
CREATE INDEX IF NOT EXISTS resource_by_type ON resource (tenant, rtype);
-- Every version; body is zstd-compressed JSON, NULL for a deletion.
CREATE TABLE IF NOT EXISTS version (
  vid INTEGER PRIMARY KEY,
  rid INTEGER NOT NULL,
  version INTEGER NOT NULL,
  tenant INTEGER NOT NULL,
  rtype INTEGER NOT NULL,
  tx INTEGER NOT NULL,
  updated_us INTEGER NOT NULL,
  body BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS version_by_rid ON version (rid, version);
CREATE INDEX IF NOT EXISTS version_by_tx ON version (tenant, tx);
CREATE INDEX IF NOT EXISTS version_by_type ON version (tenant, rtype, tx);

CREATE TABLE IF NOT EXISTS idx_token (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, code INTEGER NOT NULL, system INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, code, rid, system)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_string (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, value TEXT NOT NULL, rid INTEGER NOT NULL, exact TEXT,
  PRIMARY KEY (tenant, param, value, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_date (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, lo, hi, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_number (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, value REAL NOT NULL, rid INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
  PRIMARY KEY (tenant, param, value, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_quantity (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, code INTEGER NOT NULL, system INTEGER NOT NULL, value REAL NOT NULL,
  rid INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
  PRIMARY KEY (tenant, param, code, system, value, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_reference (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, target INTEGER NOT NULL, target_type INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, target, rid, target_type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_uri (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, value INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, value, rid)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idx_composite (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, key INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, key, rid)) WITHOUT ROWID;
-- Composites ending in a number, quantity or date: the other components hashed, the last as a range.
CREATE TABLE IF NOT EXISTS idx_composite_range (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, key INTEGER NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, key, lo, hi, rid)) WITHOUT ROWID;
-- URIs under each of their path prefixes (`:below`): a dictionary of distinct URIs, never pruned
-- (a stale row names a URI no resource has any more, which matches nothing).
CREATE TABLE IF NOT EXISTS uri_below (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, prefix INTEGER NOT NULL, value INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, prefix, value)) WITHOUT ROWID;
-- Dates per code of the type's `code` parameter (`index::code_date`): `code=…&_sort=date` walks one code's dates.
CREATE TABLE IF NOT EXISTS idx_code_date (
  tenant INTEGER NOT NULL, param INTEGER NOT NULL, code INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, rid INTEGER NOT NULL,
  PRIMARY KEY (tenant, param, code, lo, hi, rid)) WITHOUT ROWID;
-- Range-searched values by resource: the planner checks a criterion on a candidate by a seek.
CREATE INDEX IF NOT EXISTS idx_string_by_rid ON idx_string (rid, param);
CREATE INDEX IF NOT EXISTS idx_date_by_rid ON idx_date (rid, param);
CREATE INDEX IF NOT EXISTS idx_number_by_rid ON idx_number (rid, param);
CREATE INDEX IF NOT EXISTS idx_quantity_by_rid ON idx_quantity (rid, param);
CREATE INDEX IF NOT EXISTS idx_composite_range_by_rid ON idx_composite_range (rid, param);
-- Full text for _text (narrative) and _content (all strings): contentless (the words only), rowid
-- = resource rid; per-column detail so `_text` can be restricted to the narrative.
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
  narrative, content, content = '', contentless_delete = 1, detail = column,
  tokenize = 'unicode61 remove_diacritics 2');
-- References by source: reverse chaining (`_has`) goes from the matching sources to their targets.
CREATE INDEX IF NOT EXISTS idx_reference_by_rid ON idx_reference (rid, param);

-- Platform records (crate::platform). Documents: versioned, optionally expiring.
CREATE TABLE IF NOT EXISTS doc (
  ns TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL, value BLOB NOT NULL, expires_us INTEGER,
  PRIMARY KEY (ns, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS doc_by_expiry ON doc (expires_us) WHERE expires_us IS NOT NULL;
-- Audit chains: gapless seq per chain. Records are larger than a WITHOUT ROWID row should be;
-- subjects are a JSON list kept with the entry, so reading an entry is one lookup.
CREATE TABLE IF NOT EXISTS audit (
  chain TEXT NOT NULL, seq INTEGER NOT NULL, at_us INTEGER NOT NULL, hash BLOB NOT NULL,
  subjects TEXT NOT NULL, record BLOB NOT NULL,
  PRIMARY KEY (chain, seq));
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (chain, at_us);
-- A patient's access log: the entries of a chain that concern one subject.
CREATE TABLE IF NOT EXISTS audit_subject (
  chain TEXT NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (chain, subject, seq)) WITHOUT ROWID;
-- Append-only, as defence in depth below the API (which has no way to change an entry).
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_subject_no_update BEFORE UPDATE ON audit_subject
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_subject_no_delete BEFORE DELETE ON audit_subject
  BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- Object storage metadata (crate::objects): buckets (global names, an owning tenant), every
-- version of every key (seq orders a key's versions; exactly one row per key is latest),
-- multipart uploads and parts, and the data files (blobs) each row references.
CREATE TABLE IF NOT EXISTS obj_bucket (
  name TEXT PRIMARY KEY, tenant TEXT NOT NULL, created_us INTEGER NOT NULL,
  versioning INTEGER NOT NULL, config BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS obj_bucket_by_tenant ON obj_bucket (tenant, name);
CREATE TABLE IF NOT EXISTS obj_version (
  seq INTEGER PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, version_id TEXT NOT NULL,
  latest INTEGER NOT NULL, delete_marker INTEGER NOT NULL, size INTEGER NOT NULL,
  etag TEXT NOT NULL, created_us INTEGER NOT NULL, blob TEXT, meta BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS obj_version_by_id ON obj_version (bucket, key, version_id);
CREATE INDEX IF NOT EXISTS obj_version_by_key ON obj_version (bucket, key, seq);
CREATE INDEX IF NOT EXISTS obj_version_latest ON obj_version (bucket, key) WHERE latest = 1;
CREATE INDEX IF NOT EXISTS obj_version_by_blob ON obj_version (blob) WHERE blob IS NOT NULL;
-- The data files of a multipart object (owner = its version's seq).
CREATE TABLE IF NOT EXISTS obj_segment (
  owner INTEGER NOT NULL, idx INTEGER NOT NULL, blob TEXT NOT NULL,
  PRIMARY KEY (owner, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS obj_segment_by_blob ON obj_segment (blob);
CREATE TABLE IF NOT EXISTS obj_upload (
  upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
  created_us INTEGER NOT NULL, meta BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS obj_upload_by_key ON obj_upload (bucket, key, upload_id);
CREATE TABLE IF NOT EXISTS obj_part (
  upload_id TEXT NOT NULL, part_number INTEGER NOT NULL, size INTEGER NOT NULL,
  etag TEXT NOT NULL, created_us INTEGER NOT NULL, blob TEXT NOT NULL, meta BLOB NOT NULL,
  PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS obj_part_by_blob ON obj_part (blob);
";

/// The index tables, dropped and recreated by a reindex.
pub const INDEX_TABLES: &[&str] = &[
    "idx_token",
    "idx_string",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_composite",
    "idx_composite_range",
    "idx_code_date",
    "uri_below",
];

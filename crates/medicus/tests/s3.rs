//! The S3 listener of the real binary, driven by real clients: `aws s3`/`aws s3api` (awscli),
//! boto3 and s3cmd (pinned in scripts/test-requirements.txt). Uploads, multipart, versioning,
//! presigned GET and PUT, listings, virtual-hosted-style requests, cross-tenant denial and the
//! S3 errors of bad input.
//!
//! In CI (`CI=true`) a missing client fails the test; elsewhere the test says so and skips.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Options, Server, TestDir, medicus};

/// A server with its S3 listener on a free port.
struct S3 {
    dir: TestDir,
    server: Server,
    endpoint: String,
}

fn start() -> S3 {
    let dir = TestDir::new();
    let server = Server::start_with(
        &dir,
        Options {
            args: vec!["--s3-listen".into(), "127.0.0.1:0".into()],
            ..Options::default()
        },
    );
    let endpoint = server
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("medicus: S3 endpoint "))
        .expect("the S3 endpoint is printed")
        .to_owned();
    S3 {
        dir,
        server,
        endpoint,
    }
}

impl S3 {
    fn tenant(&self, id: &str) {
        common::create_tenant(&self.dir, id);
    }

    /// Creates an access key: `(id, secret)`.
    fn key(&self, tenant: &str, grants: &[&str]) -> (String, String) {
        let data = self.dir.data();
        let mut args = vec![
            "admin",
            "s3-key",
            "create",
            "--tenant",
            tenant,
            "--data",
            data.to_str().unwrap(),
        ];
        for g in grants {
            args.push("--bucket");
            args.push(g);
        }
        let out = medicus(&args);
        assert!(
            out.status.success(),
            "s3-key create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
                .expect("key printed")
        };
        let (id, secret) = (field("access key id:"), field("secret access key:"));
        // The secret is stored sealed, never as given.
        assert!(!self.stored_bytes_contain(secret.as_bytes()));
        // The creation is an admin change in the tenant's audit trail, without the secret.
        let changes = common::audit_descriptions(&self.dir, tenant, "admin-change");
        assert!(changes.iter().any(|d| d.contains(&id)), "{changes:?}");
        assert!(!changes.iter().any(|d| d.contains(&secret)), "{changes:?}");
        (id, secret)
    }

    fn stored_bytes_contain(&self, needle: &[u8]) -> bool {
        if self.dir.database().is_some() {
            return false;
        }
        let db = self.dir.data().join("medicus.db");
        let mut found = false;
        for f in [db.clone(), db.with_extension("db-wal")] {
            if let Ok(bytes) = std::fs::read(&f) {
                found |= bytes.windows(needle.len()).any(|w| w == needle);
            }
        }
        found
    }
}

/// Whether the client is installed; in CI its absence is a failure.
fn have(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed (scripts/test-requirements.txt)"
        );
        eprintln!(
            "note: {program} is not installed; skipping (pip install -r scripts/test-requirements.txt)"
        );
    }
    ok
}

/// Runs a Python script with the given environment; panics with its output when it fails.
fn python(dir: &Path, name: &str, script: &str, env: &[(&str, &str)]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, script).unwrap();
    let out = Command::new("python3")
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{name} failed:\n{text}");
    text
}

const BOTO3: &str = r#"
import base64, hashlib, http.client, io, os, socket, sys, urllib.parse, urllib.request, zlib
import datetime
import boto3, botocore
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ
def client(key, secret, style="path", sig="s3v4"):
    # Virtual-hosted style needs a name under which BUCKET.NAME is formed.
    endpoint = E["ENDPOINT"].replace("127.0.0.1", "localhost") if style == "virtual" else E["ENDPOINT"]
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(s3={"addressing_style": style}, signature_version=sig,
                      retries={"max_attempts": 1}))
s3 = client(E["KEY"], E["SECRET"])

def code(f, *a, **kw):
    try:
        f(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"expected an error from {f.__name__}")

# Buckets.
s3.create_bucket(Bucket="docs")
s3.create_bucket(Bucket="archive")
assert {b["Name"] for b in s3.list_buckets()["Buckets"]} >= {"docs", "archive"}
s3.head_bucket(Bucket="docs")
assert code(s3.create_bucket, Bucket="docs")[0] == "BucketAlreadyOwnedByYou"

# Objects with metadata, content headers, tags.
body = os.urandom(200_000)
put = s3.put_object(Bucket="docs", Key="reports/2024/a.bin", Body=body,
    ContentType="application/x-test", ContentEncoding="identity",
    ContentDisposition="attachment; filename=a.bin", Metadata={"ward": "7b"},
    Tagging="kind=report&year=2024")
assert put["ETag"] == '"' + hashlib.md5(body).hexdigest() + '"'
got = s3.get_object(Bucket="docs", Key="reports/2024/a.bin")
assert got["Body"].read() == body
assert got["ContentType"] == "application/x-test"
assert got["ContentDisposition"] == "attachment; filename=a.bin"
assert got["ContentEncoding"] == "identity"
assert got["Metadata"] == {"ward": "7b"}
tags = s3.get_object_tagging(Bucket="docs", Key="reports/2024/a.bin")["TagSet"]
assert sorted((t["Key"], t["Value"]) for t in tags) == [("kind", "report"), ("year", "2024")]
s3.put_object_tagging(Bucket="docs", Key="reports/2024/a.bin", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
assert s3.get_object_tagging(Bucket="docs", Key="reports/2024/a.bin")["TagSet"] == [{"Key": "k", "Value": "v"}]

# Ranges.
r = s3.get_object(Bucket="docs", Key="reports/2024/a.bin", Range="bytes=65530-65545")
assert r["Body"].read() == body[65530:65546] and r["ContentRange"] == "bytes 65530-65545/200000"
r = s3.get_object(Bucket="docs", Key="reports/2024/a.bin", Range="bytes=-10")
assert r["Body"].read() == body[-10:]
assert code(s3.get_object, Bucket="docs", Key="reports/2024/a.bin", Range="bytes=300000-")[0] == "InvalidRange"

# Conditional requests.
etag = put["ETag"]
assert code(s3.get_object, Bucket="docs", Key="reports/2024/a.bin", IfNoneMatch=etag)[1] == 304
assert code(s3.get_object, Bucket="docs", Key="reports/2024/a.bin", IfMatch='"nope"')[0] == "PreconditionFailed"
s3.get_object(Bucket="docs", Key="reports/2024/a.bin", IfMatch=etag)
future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
assert code(s3.get_object, Bucket="docs", Key="reports/2024/a.bin", IfModifiedSince=future)[1] == 304
assert code(s3.get_object, Bucket="docs", Key="reports/2024/a.bin", IfUnmodifiedSince=past)[0] == "PreconditionFailed"

# Checksums: the right ones are kept, a wrong one refused.
crc = base64.b64encode(zlib.crc32(b"checked").to_bytes(4, "big")).decode()
p = s3.put_object(Bucket="docs", Key="checked", Body=b"checked", ChecksumCRC32=crc)
assert p.get("ChecksumCRC32") == crc
sha = base64.b64encode(hashlib.sha256(b"checked").digest()).decode()
s3.put_object(Bucket="docs", Key="checked2", Body=b"checked", ChecksumSHA256=sha)
assert s3.head_object(Bucket="docs", Key="checked2", ChecksumMode="ENABLED").get("ChecksumSHA256") == sha
s3.put_object(Bucket="docs", Key="checked3", Body=b"checked", ChecksumAlgorithm="SHA1")
sha1 = base64.b64encode(hashlib.sha1(b"checked").digest()).decode()
assert s3.head_object(Bucket="docs", Key="checked3", ChecksumMode="ENABLED").get("ChecksumSHA1") == sha1
assert code(s3.put_object, Bucket="docs", Key="bad", Body=b"checked", ChecksumCRC32="AAAAAA==")[0] == "BadDigest"
assert code(s3.put_object, Bucket="docs", Key="bad", Body=b"checked",
            ContentMD5=base64.b64encode(hashlib.md5(b"other").digest()).decode())[0] == "BadDigest"
s3.put_object(Bucket="docs", Key="md5", Body=b"checked",
              ContentMD5=base64.b64encode(hashlib.md5(b"checked").digest()).decode())
assert code(s3.head_object, Bucket="docs", Key="bad")[1] == 404

# Copy, with and without replaced metadata.
s3.copy_object(Bucket="archive", Key="copy.bin", CopySource={"Bucket": "docs", "Key": "reports/2024/a.bin"})
c = s3.get_object(Bucket="archive", Key="copy.bin")
assert c["Body"].read() == body and c["Metadata"] == {"ward": "7b"}
s3.copy_object(Bucket="archive", Key="copy2.bin", CopySource="docs/reports/2024/a.bin",
    MetadataDirective="REPLACE", Metadata={"x": "y"}, ContentType="text/plain")
h = s3.head_object(Bucket="archive", Key="copy2.bin")
assert h["Metadata"] == {"x": "y"} and h["ContentType"] == "text/plain"

# Listings: v2 with delimiter, pages, start-after; v1 with marker.
for i in range(7):
    s3.put_object(Bucket="archive", Key=f"list/{i}", Body=b"x")
s3.put_object(Bucket="archive", Key="list/sub/deep", Body=b"x")
l = s3.list_objects_v2(Bucket="archive", Prefix="list/", Delimiter="/")
assert [o["Key"] for o in l["Contents"]] == [f"list/{i}" for i in range(7)]
assert [p["Prefix"] for p in l["CommonPrefixes"]] == ["list/sub/"]
keys, token = [], None
while True:
    kw = {"ContinuationToken": token} if token else {}
    page = s3.list_objects_v2(Bucket="archive", Prefix="list/", MaxKeys=3, **kw)
    keys += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert keys == [f"list/{i}" for i in range(7)] + ["list/sub/deep"], keys
assert [o["Key"] for o in s3.list_objects_v2(Bucket="archive", Prefix="list/", StartAfter="list/5")["Contents"]] == ["list/6", "list/sub/deep"]
v1 = s3.list_objects(Bucket="archive", Prefix="list/", Marker="list/4", MaxKeys=2)
assert [o["Key"] for o in v1["Contents"]] == ["list/5", "list/6"] and v1["IsTruncated"]
paginator = s3.get_paginator("list_objects_v2")
assert sum(len(p.get("Contents", [])) for p in paginator.paginate(Bucket="archive", PaginationConfig={"PageSize": 2})) == 10

# DeleteObjects.
d = s3.delete_objects(Bucket="archive", Delete={"Objects": [{"Key": f"list/{i}"} for i in range(7)]})
assert len(d["Deleted"]) == 7
assert [o["Key"] for o in s3.list_objects_v2(Bucket="archive", Prefix="list/")["Contents"]] == ["list/sub/deep"]

# Versioning with delete markers.
s3.create_bucket(Bucket="versions")
s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Enabled"})
assert s3.get_bucket_versioning(Bucket="versions")["Status"] == "Enabled"
v1 = s3.put_object(Bucket="versions", Key="k", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket="versions", Key="k", Body=b"two")["VersionId"]
assert v1 != v2
assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"two"
assert s3.get_object(Bucket="versions", Key="k", VersionId=v1)["Body"].read() == b"one"
dm = s3.delete_object(Bucket="versions", Key="k")
assert dm["DeleteMarker"]
assert code(s3.get_object, Bucket="versions", Key="k")[0] == "NoSuchKey"
lv = s3.list_object_versions(Bucket="versions")
assert [v["VersionId"] for v in lv["Versions"]] == [v2, v1]
assert lv["DeleteMarkers"][0]["VersionId"] == dm["VersionId"] and lv["DeleteMarkers"][0]["IsLatest"]
s3.delete_object(Bucket="versions", Key="k", VersionId=dm["VersionId"])
assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"two"
s3.delete_object(Bucket="versions", Key="k", VersionId=v2)
assert s3.get_object(Bucket="versions", Key="k")["Body"].read() == b"one"
s3.put_bucket_versioning(Bucket="versions", VersioningConfiguration={"Status": "Suspended"})
assert s3.put_object(Bucket="versions", Key="k", Body=b"null").get("VersionId") == "null"

# Multipart: parts, upload part copy, list parts and uploads, complete, abort.
part1 = os.urandom(5 * 1024 * 1024)
mp = s3.create_multipart_upload(Bucket="docs", Key="big.bin", ContentType="application/x-big")
uid = mp["UploadId"]
e1 = s3.upload_part(Bucket="docs", Key="big.bin", UploadId=uid, PartNumber=1, Body=part1)["ETag"]
e2 = s3.upload_part_copy(Bucket="docs", Key="big.bin", UploadId=uid, PartNumber=2,
    CopySource={"Bucket": "docs", "Key": "reports/2024/a.bin"}, CopySourceRange="bytes=0-99")["CopyPartResult"]["ETag"]
assert [p["PartNumber"] for p in s3.list_parts(Bucket="docs", Key="big.bin", UploadId=uid)["Parts"]] == [1, 2]
assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket="docs")["Uploads"]] == [uid]
done = s3.complete_multipart_upload(Bucket="docs", Key="big.bin", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
assert done["ETag"].endswith('-2"')
g = s3.get_object(Bucket="docs", Key="big.bin")
assert g["Body"].read() == part1 + body[:100] and g["ContentType"] == "application/x-big"
assert s3.head_object(Bucket="docs", Key="big.bin")["ContentLength"] == len(part1) + 100
# A part below 5 MiB that is not the last one.
uid = s3.create_multipart_upload(Bucket="docs", Key="small.bin")["UploadId"]
ps = [s3.upload_part(Bucket="docs", Key="small.bin", UploadId=uid, PartNumber=n, Body=b"tiny")["ETag"] for n in (1, 2)]
assert code(s3.complete_multipart_upload, Bucket="docs", Key="small.bin", UploadId=uid,
    MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": e} for n, e in enumerate(ps)]})[0] == "EntityTooSmall"
s3.abort_multipart_upload(Bucket="docs", Key="small.bin", UploadId=uid)
assert code(s3.list_parts, Bucket="docs", Key="small.bin", UploadId=uid)[0] == "NoSuchUpload"
# The managed transfer (threshold lowered) goes multipart too.
from boto3.s3.transfer import TransferConfig
blob = os.urandom(11 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(blob), "docs", "managed.bin", Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
assert s3.head_object(Bucket="docs", Key="managed.bin")["ETag"].endswith('-3"')
out = io.BytesIO()
s3.download_fileobj("docs", "managed.bin", out)
assert out.getvalue() == blob

# Presigned GET and PUT (query-string SigV4).
url = s3.generate_presigned_url("get_object", Params={"Bucket": "docs", "Key": "checked"}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == b"checked"
url = s3.generate_presigned_url("put_object", Params={"Bucket": "docs", "Key": "presigned-put"}, ExpiresIn=300)
urllib.request.urlopen(urllib.request.Request(url, data=b"via presigned PUT", method="PUT")).read()
assert s3.get_object(Bucket="docs", Key="presigned-put")["Body"].read() == b"via presigned PUT"
tampered = url.replace("presigned-put", "presigned-other")
try:
    urllib.request.urlopen(urllib.request.Request(tampered, data=b"x", method="PUT"))
    raise AssertionError("a tampered presigned URL was accepted")
except urllib.error.HTTPError as e:
    assert e.code == 403 and b"SignatureDoesNotMatch" in e.read()

# Virtual-hosted style: the bucket in the Host header (bucket.localhost resolves nowhere here,
# so connect to the listener and send that Host).
vs3 = client(E["KEY"], E["SECRET"], style="virtual")
vurl = vs3.generate_presigned_url("get_object", Params={"Bucket": "docs", "Key": "checked"}, ExpiresIn=300)
u = urllib.parse.urlsplit(vurl)
assert u.hostname == "docs.localhost", u.hostname
port = urllib.parse.urlsplit(E["ENDPOINT"]).port
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("GET", u.path + "?" + u.query, headers={"Host": u.netloc})
resp = conn.getresponse()
assert resp.status == 200 and resp.read() == b"checked", resp.status

# Unsigned payload (header signature over UNSIGNED-PAYLOAD), as some clients send.
us3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path", "payload_signing_enabled": False}))
us3.put_object(Bucket="docs", Key="unsigned", Body=b"unsigned payload")
assert us3.get_object(Bucket="docs", Key="unsigned")["Body"].read() == b"unsigned payload"

# Deleting a non-empty bucket fails; an emptied one goes.
assert code(s3.delete_bucket, Bucket="archive")[0] == "BucketNotEmpty"
for o in s3.list_objects_v2(Bucket="archive")["Contents"]:
    s3.delete_object(Bucket="archive", Key=o["Key"])
s3.delete_bucket(Bucket="archive")
assert code(s3.head_bucket, Bucket="archive")[1] == 404
print("boto3 ok")
"#;

#[test]
fn boto3_objects_versions_multipart_presigned_and_virtual_hosts() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let out = python(
        s3.dir.path(),
        "boto3_client.py",
        BOTO3,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
        ],
    );
    assert!(out.contains("boto3 ok"), "{out}");
    // Nothing of the plaintext is on disk: the objects directory holds only sealed chunks.
    assert!(!dir_contains(
        &s3.dir.data().join("objects"),
        b"via presigned PUT"
    ));
    assert!(!dir_contains(
        &s3.dir.data().join("objects"),
        b"unsigned payload"
    ));
    drop(s3.server);
}

fn dir_contains(root: &Path, needle: &[u8]) -> bool {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                return true;
            }
        }
    }
    false
}

const BAD_INPUT: &str = r#"
import datetime, http.client, os, socket, urllib.parse
import boto3, botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ
def client(key, secret):
    return boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=key,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3 = client(E["KEY"], E["SECRET"])

def code(f, *a, **kw):
    try:
        f(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"expected an error from {f.__name__} {kw}")

s3.create_bucket(Bucket="inputs")
s3.put_object(Bucket="inputs", Key="ok", Body=b"ok")

# Bad signatures: a wrong secret, an unknown key.
assert code(client(E["KEY"], "wrong" + E["SECRET"][5:]).get_object, Bucket="inputs", Key="ok") == "SignatureDoesNotMatch"
assert code(client("MKUNKNOWNKEY0000000", "x" * 40).list_buckets) == "InvalidAccessKeyId"

# Clock skew beyond 15 minutes.
real = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
assert code(s3.get_object, Bucket="inputs", Key="ok") == "RequestTimeTooSkewed"
botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=10)
s3.get_object(Bucket="inputs", Key="ok")
botocore.auth.get_current_datetime = real

# Keys with '..', NUL, over 1024 bytes.
assert code(s3.put_object, Bucket="inputs", Key="a/../b", Body=b"x") == "InvalidArgument"
assert code(s3.put_object, Bucket="inputs", Key="a\x00b", Body=b"x") == "InvalidArgument"
assert code(s3.put_object, Bucket="inputs", Key="k" * 1025, Body=b"x") == "KeyTooLongError"
s3.put_object(Bucket="inputs", Key="k" * 1024, Body=b"x")

# Bucket names that break the rules.
for name in ["Bad_Name", "ab", "a..b", "-abc", "192.168.1.1"]:
    assert code(s3.create_bucket, Bucket=name) == "InvalidBucketName", name

# Unknown bucket and key.
assert code(s3.get_object, Bucket="no-such-bucket", Key="ok") == "NoSuchBucket"
assert code(s3.get_object, Bucket="inputs", Key="missing") == "NoSuchKey"
assert code(s3.list_objects_v2, Bucket="no-such-bucket") == "NoSuchBucket"

# A part too small, a wrong checksum.
uid = s3.create_multipart_upload(Bucket="inputs", Key="mp")["UploadId"]
es = [s3.upload_part(Bucket="inputs", Key="mp", UploadId=uid, PartNumber=n, Body=b"small")["ETag"] for n in (1, 2)]
assert code(s3.complete_multipart_upload, Bucket="inputs", Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": es[0]}, {"PartNumber": 2, "ETag": es[1]}]}) == "EntityTooSmall"
assert code(s3.complete_multipart_upload, Bucket="inputs", Key="mp", UploadId=uid,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"0123"'}]}) == "InvalidPart"
assert code(s3.upload_part, Bucket="inputs", Key="mp", UploadId="nope", PartNumber=1, Body=b"x") == "NoSuchUpload"
assert code(s3.put_object, Bucket="inputs", Key="crc", Body=b"data", ChecksumCRC32C="AAAAAA==") == "BadDigest"

# A Content-Length the body does not have: the presigned PUT announces 100 bytes and sends 10.
url = s3.generate_presigned_url("put_object", Params={"Bucket": "inputs", "Key": "short"}, ExpiresIn=300)
u = urllib.parse.urlsplit(url)
sock = socket.create_connection(("127.0.0.1", u.port))
sock.sendall(f"PUT {u.path}?{u.query} HTTP/1.1\r\nHost: {u.netloc}\r\nContent-Length: 100\r\n\r\n".encode() + b"0123456789")
sock.shutdown(socket.SHUT_WR)
reply = b""
while True:
    chunk = sock.recv(65536)
    if not chunk:
        break
    reply += chunk
assert reply == b"" or b"IncompleteBody" in reply or b" 400 " in reply.split(b"\r\n")[0], reply[:300]
assert code(s3.head_object, Bucket="inputs", Key="short") in ("404", "NoSuchKey")

# Anonymous requests are refused.
conn = http.client.HTTPConnection("127.0.0.1", u.port)
conn.request("GET", "/inputs/ok")
r = conn.getresponse()
assert r.status == 403 and b"AccessDenied" in r.read()
print("bad input ok")
"#;

#[test]
fn bad_input_answers_s3_errors() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let out = python(
        s3.dir.path(),
        "bad_input.py",
        BAD_INPUT,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
        ],
    );
    assert!(out.contains("bad input ok"), "{out}");
}

const TENANTS: &str = r#"
import os
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ
def client(key, secret):
    return boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=key,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
a = client(E["A_KEY"], E["A_SECRET"])          # tenant a, admin on every bucket
b = client(E["B_KEY"], E["B_SECRET"])          # tenant b, admin on every bucket, and on "a-data" by name
reader = client(E["R_KEY"], E["R_SECRET"])     # tenant a, read on "a-data" only

def code(f, *a, **kw):
    try:
        f(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"expected an error from {f.__name__}")

a.create_bucket(Bucket="a-data")
a.put_object(Bucket="a-data", Key="secret.txt", Body=b"tenant a only")
b.create_bucket(Bucket="b-data")

# Tenant b's key reaches nothing of tenant a's bucket, whatever its grants name.
assert code(b.get_object, Bucket="a-data", Key="secret.txt") == "NoSuchBucket"
assert code(b.put_object, Bucket="a-data", Key="x", Body=b"x") == "NoSuchBucket"
assert code(b.list_objects_v2, Bucket="a-data") == "NoSuchBucket"
assert code(b.head_bucket, Bucket="a-data") in ("404", "NoSuchBucket")
assert code(b.delete_object, Bucket="a-data", Key="secret.txt") == "NoSuchBucket"
assert code(b.delete_bucket, Bucket="a-data") == "NoSuchBucket"
assert code(b.copy_object, Bucket="b-data", Key="stolen", CopySource="a-data/secret.txt") == "NoSuchBucket"
assert code(b.create_bucket, Bucket="a-data") == "BucketAlreadyExists"
assert [x["Name"] for x in b.list_buckets()["Buckets"]] == ["b-data"]
assert "b-data" not in [x["Name"] for x in a.list_buckets()["Buckets"]]
assert code(a.get_object, Bucket="b-data", Key="x") == "NoSuchBucket"

# Per-bucket permissions within a tenant.
assert reader.get_object(Bucket="a-data", Key="secret.txt")["Body"].read() == b"tenant a only"
assert code(reader.put_object, Bucket="a-data", Key="x", Body=b"x") == "AccessDenied"
assert code(reader.delete_object, Bucket="a-data", Key="secret.txt") == "AccessDenied"
assert code(reader.create_bucket, Bucket="a-new") == "AccessDenied"
assert code(reader.put_bucket_versioning, Bucket="a-data", VersioningConfiguration={"Status": "Enabled"}) == "AccessDenied"
assert [x["Name"] for x in reader.list_buckets()["Buckets"]] == ["a-data"]
print("tenants ok")
"#;

#[test]
fn no_key_of_one_tenant_reaches_another_tenants_bucket() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    s3.tenant("a");
    s3.tenant("b");
    let (ak, asec) = s3.key("a", &["*:admin"]);
    let (bk, bsec) = s3.key("b", &["*:admin", "a-data:admin"]);
    let (rk, rsec) = s3.key("a", &["a-data:read"]);
    let out = python(
        s3.dir.path(),
        "tenants.py",
        TENANTS,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("A_KEY", &ak),
            ("A_SECRET", &asec),
            ("B_KEY", &bk),
            ("B_SECRET", &bsec),
            ("R_KEY", &rk),
            ("R_SECRET", &rsec),
        ],
    );
    assert!(out.contains("tenants ok"), "{out}");
}

fn aws(s3: &S3, key: &(String, String), args: &[&str]) -> String {
    let out = Command::new("aws")
        .args(["--endpoint-url", &s3.endpoint])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", &key.0)
        .env("AWS_SECRET_ACCESS_KEY", &key.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", s3.dir.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            s3.dir.path().join("aws-credentials"),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn aws_cli_copies_syncs_lists_versions_and_presigns() {
    if !have("aws", &["--version"]) {
        return;
    }
    let s3 = start();
    let key = s3.key("default", &["*:admin"]);
    let work = s3.dir.path().join("aws");
    std::fs::create_dir_all(work.join("tree/sub")).unwrap();
    let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(work.join("big.bin"), &big).unwrap();
    std::fs::write(work.join("tree/a.txt"), b"a").unwrap();
    std::fs::write(work.join("tree/sub/b.txt"), b"b").unwrap();
    let p = |name: &str| work.join(name).to_str().unwrap().to_owned();

    aws(&s3, &key, &["s3", "mb", "s3://cli"]);
    // 20 MiB: the CLI uploads in 8 MiB parts.
    aws(&s3, &key, &["s3", "cp", &p("big.bin"), "s3://cli/big.bin"]);
    let head = aws(
        &s3,
        &key,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "cli",
            "--key",
            "big.bin",
        ],
    );
    assert!(head.contains("-3\\\""), "a multipart ETag: {head}");
    aws(&s3, &key, &["s3", "cp", "s3://cli/big.bin", &p("big.copy")]);
    assert!(std::fs::read(work.join("big.copy")).unwrap() == big);
    aws(&s3, &key, &["s3", "sync", &p("tree"), "s3://cli/tree"]);
    let ls = aws(&s3, &key, &["s3", "ls", "--recursive", "s3://cli/tree/"]);
    assert!(
        ls.contains("tree/a.txt") && ls.contains("tree/sub/b.txt"),
        "{ls}"
    );
    let ls = aws(&s3, &key, &["s3", "ls", "s3://cli/tree/"]);
    assert!(ls.contains("PRE sub/") && ls.contains("a.txt"), "{ls}");

    // Versioning through s3api.
    aws(
        &s3,
        &key,
        &[
            "s3api",
            "put-bucket-versioning",
            "--bucket",
            "cli",
            "--versioning-configuration",
            "Status=Enabled",
        ],
    );
    aws(&s3, &key, &["s3", "cp", &p("tree/a.txt"), "s3://cli/v.txt"]);
    aws(
        &s3,
        &key,
        &["s3", "cp", &p("tree/sub/b.txt"), "s3://cli/v.txt"],
    );
    aws(&s3, &key, &["s3", "rm", "s3://cli/v.txt"]);
    let versions = aws(
        &s3,
        &key,
        &[
            "s3api",
            "list-object-versions",
            "--bucket",
            "cli",
            "--prefix",
            "v.txt",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&versions).unwrap();
    assert_eq!(v["Versions"].as_array().unwrap().len(), 2, "{versions}");
    assert_eq!(
        v["DeleteMarkers"].as_array().unwrap().len(),
        1,
        "{versions}"
    );

    // A presigned GET fetched without credentials.
    let url = aws(
        &s3,
        &key,
        &[
            "s3",
            "presign",
            "s3://cli/tree/a.txt",
            "--expires-in",
            "300",
        ],
    );
    let body = reqwest::blocking::get(url.trim()).unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().unwrap().as_ref(), b"a");

    aws(&s3, &key, &["s3", "rm", "--recursive", "s3://cli/tree"]);
    let left = aws(
        &s3,
        &key,
        &[
            "s3api",
            "list-objects-v2",
            "--bucket",
            "cli",
            "--prefix",
            "tree/",
        ],
    );
    assert!(!left.contains("tree/a.txt"), "{left}");
}

#[test]
fn s3cmd_puts_gets_lists_and_deletes() {
    if !have("s3cmd", &["--version"]) {
        return;
    }
    let s3 = start();
    let (id, secret) = s3.key("default", &["*:admin"]);
    let host = s3.endpoint.trim_start_matches("http://").to_owned();
    let cfg = s3.dir.path().join("s3cmd.cfg");
    std::fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {id}\nsecret_key = {secret}\nhost_base = {host}\nhost_bucket = {host}\nuse_https = False\nsignature_v2 = False\nbucket_location = us-east-1\n"
        ),
    )
    .unwrap();
    let work = s3.dir.path().join("s3cmd");
    std::fs::create_dir_all(&work).unwrap();
    let data: Vec<u8> = (0..7 * 1024 * 1024u32).map(|i| (i % 13) as u8).collect();
    std::fs::write(work.join("f.bin"), &data).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("s3cmd")
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "s3cmd {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let f = work.join("f.bin");
    let back = work.join("back.bin");
    run(&["mb", "s3://tool"]);
    // 7 MiB with 5 MiB chunks: a multipart upload.
    run(&[
        "put",
        "--multipart-chunk-size-mb=5",
        f.to_str().unwrap(),
        "s3://tool/dir/f.bin",
    ]);
    let ls = run(&["ls", "-r", "s3://tool"]);
    assert!(ls.contains("s3://tool/dir/f.bin"), "{ls}");
    run(&["get", "s3://tool/dir/f.bin", back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == data);
    let info = run(&["info", "s3://tool/dir/f.bin"]);
    assert!(info.contains("7340032"), "{info}");
    run(&["del", "s3://tool/dir/f.bin"]);
    run(&["rb", "s3://tool"]);
}

const LOCK: &str = r#"
import datetime, os
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

E = os.environ
def client(key, secret):
    return boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=key,
        aws_secret_access_key=secret, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
admin = client(E["KEY"], E["SECRET"])
writer = client(E["W_KEY"], E["W_SECRET"])   # rw on vault: no bypass right

def code(f, *a, **kw):
    try:
        f(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"expected an error from {f.__name__} {kw}")

now = datetime.datetime.now(datetime.timezone.utc)
admin.create_bucket(Bucket="vault", ObjectLockEnabledForBucket=True)
assert admin.get_bucket_versioning(Bucket="vault")["Status"] == "Enabled"
assert code(admin.put_bucket_versioning, Bucket="vault", VersioningConfiguration={"Status": "Suspended"}) == "InvalidBucketState"

# COMPLIANCE (30 years): no path deletes the version, not even admin with the bypass header.
c = writer.put_object(Bucket="vault", Key="c", Body=b"record", ObjectLockMode="COMPLIANCE",
                      ObjectLockRetainUntilDate=now + datetime.timedelta(days=30 * 365))["VersionId"]
h = admin.head_object(Bucket="vault", Key="c")
assert h["ObjectLockMode"] == "COMPLIANCE" and h["ObjectLockRetainUntilDate"] > now
assert code(admin.delete_object, Bucket="vault", Key="c", VersionId=c, BypassGovernanceRetention=True) == "AccessDenied"
d = admin.delete_objects(Bucket="vault", BypassGovernanceRetention=True, Delete={"Objects": [{"Key": "c", "VersionId": c}]})
assert d["Errors"][0]["Code"] == "AccessDenied"
assert code(admin.put_object_retention, Bucket="vault", Key="c", VersionId=c, BypassGovernanceRetention=True,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + datetime.timedelta(days=1)}) == "AccessDenied"
assert code(admin.put_object_retention, Bucket="vault", Key="c", VersionId=c, BypassGovernanceRetention=True,
            Retention={"Mode": "GOVERNANCE", "RetainUntilDate": now + datetime.timedelta(days=40 * 365)}) == "AccessDenied"
admin.put_object_retention(Bucket="vault", Key="c", VersionId=c,
    Retention={"Mode": "COMPLIANCE", "RetainUntilDate": now + datetime.timedelta(days=31 * 365)})
assert admin.get_object_retention(Bucket="vault", Key="c", VersionId=c)["Retention"]["Mode"] == "COMPLIANCE"
# Overwriting makes a new version; the locked one stays readable.
writer.put_object(Bucket="vault", Key="c", Body=b"newer")
assert admin.get_object(Bucket="vault", Key="c", VersionId=c)["Body"].read() == b"record"

# GOVERNANCE: the bypass needs the admin permission and the header.
g = writer.put_object(Bucket="vault", Key="g", Body=b"x", ObjectLockMode="GOVERNANCE",
                      ObjectLockRetainUntilDate=now + datetime.timedelta(days=10 * 365))["VersionId"]
assert code(writer.delete_object, Bucket="vault", Key="g", VersionId=g, BypassGovernanceRetention=True) == "AccessDenied"
assert code(admin.delete_object, Bucket="vault", Key="g", VersionId=g) == "AccessDenied"
admin.delete_object(Bucket="vault", Key="g", VersionId=g, BypassGovernanceRetention=True)
assert code(admin.head_object, Bucket="vault", Key="g", VersionId=g) in ("404", "NoSuchVersion")

# Legal hold.
l = writer.put_object(Bucket="vault", Key="l", Body=b"x", ObjectLockLegalHoldStatus="ON")["VersionId"]
assert admin.get_object_legal_hold(Bucket="vault", Key="l", VersionId=l)["LegalHold"]["Status"] == "ON"
assert code(admin.delete_object, Bucket="vault", Key="l", VersionId=l, BypassGovernanceRetention=True) == "AccessDenied"
admin.put_object_legal_hold(Bucket="vault", Key="l", VersionId=l, LegalHold={"Status": "OFF"})
admin.delete_object(Bucket="vault", Key="l", VersionId=l)

# The bucket's default retention.
admin.put_object_lock_configuration(Bucket="vault", ObjectLockConfiguration={"ObjectLockEnabled": "Enabled",
    "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}}})
conf = admin.get_object_lock_configuration(Bucket="vault")["ObjectLockConfiguration"]
assert conf["Rule"]["DefaultRetention"]["Mode"] == "COMPLIANCE"
dv = writer.put_object(Bucket="vault", Key="d", Body=b"x")["VersionId"]
assert admin.head_object(Bucket="vault", Key="d")["ObjectLockMode"] == "COMPLIANCE"
assert code(admin.delete_object, Bucket="vault", Key="d", VersionId=dv, BypassGovernanceRetention=True) == "AccessDenied"
# A bucket without object lock refuses lock headers.
admin.create_bucket(Bucket="plain")
assert code(admin.put_object, Bucket="plain", Key="k", Body=b"x", ObjectLockLegalHoldStatus="ON") == "InvalidRequest"
# Lifecycle configuration round trip (the rules themselves are tested in the engine, where time
# can be moved forward).
admin.put_bucket_lifecycle_configuration(Bucket="plain", LifecycleConfiguration={"Rules": [
    {"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 7}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2}}]})
rules = admin.get_bucket_lifecycle_configuration(Bucket="plain")["Rules"]
assert rules[0]["ID"] == "logs" and rules[0]["Expiration"]["Days"] == 30 and rules[0]["Filter"]["Prefix"] == "logs/", rules
assert code(writer.put_bucket_lifecycle_configuration, Bucket="plain", LifecycleConfiguration={"Rules": [
    {"ID": "x", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]}) == "AccessDenied"
admin.delete_bucket_lifecycle(Bucket="plain")
assert code(admin.get_bucket_lifecycle_configuration, Bucket="plain") == "NoSuchLifecycleConfiguration"
# CORS: rules per bucket; a preflight is answered from them without a signature.
import http.client, urllib.parse
admin.put_bucket_cors(Bucket="plain", CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": ["https://*.example.org"], "AllowedMethods": ["GET", "PUT"],
     "AllowedHeaders": ["content-type", "x-amz-*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]})
assert admin.get_bucket_cors(Bucket="plain")["CORSRules"][0]["AllowedMethods"] == ["GET", "PUT"]
port = urllib.parse.urlsplit(E["ENDPOINT"]).port
def options(origin, method, headers=""):
    c = http.client.HTTPConnection("127.0.0.1", port)
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    c.request("OPTIONS", "/plain/k", headers=h)
    r = c.getresponse(); r.read()
    return r.status, dict(r.getheaders())
st, h = options("https://app.example.org", "PUT", "Content-Type, X-Amz-Date")
assert st == 200 and h["access-control-allow-origin"] == "https://app.example.org", (st, h)
assert "PUT" in h["access-control-allow-methods"] and h["access-control-max-age"] == "600", h
assert options("https://evil.test", "GET")[0] == 403
assert options("https://app.example.org", "DELETE")[0] == 403
admin.put_object(Bucket="plain", Key="k", Body=b"x")
url = admin.generate_presigned_url("get_object", Params={"Bucket": "plain", "Key": "k"}, ExpiresIn=300)
u = urllib.parse.urlsplit(url)
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("GET", u.path + "?" + u.query, headers={"Origin": "https://app.example.org", "Host": u.netloc})
r = c.getresponse(); assert r.read() == b"x"
assert r.getheader("access-control-allow-origin") == "https://app.example.org" and r.getheader("access-control-expose-headers") == "ETag"
admin.delete_bucket_cors(Bucket="plain")
assert code(admin.get_bucket_cors, Bucket="plain") == "NoSuchCORSConfiguration"
assert options("https://app.example.org", "GET")[0] == 403
print("lock ok")
"#;

#[test]
fn object_lock_governance_compliance_and_legal_hold() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let (wk, ws) = s3.key("default", &["vault:rw", "plain:rw"]);
    let out = python(
        s3.dir.path(),
        "lock.py",
        LOCK,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
            ("W_KEY", &wk),
            ("W_SECRET", &ws),
        ],
    );
    assert!(out.contains("lock ok"), "{out}");
}

const CRASH_WRITER: &str = r#"
import hashlib, json, os, sys
import boto3
from botocore.config import Config
E = os.environ
s3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
    connect_timeout=2, read_timeout=10))
s3.create_bucket(Bucket="crash")
s3.put_bucket_versioning(Bucket="crash", VersioningConfiguration={"Status": "Enabled"})
attempts = open(E["ATTEMPTS"], "a")
acked = open(E["ACKED"], "a")
def note(f, **kw):
    f.write(json.dumps(kw) + "\n"); f.flush(); os.fsync(f.fileno())
print("ready", flush=True)
i = 0
try:
    while True:
        if i % 3 == 0:
            key = f"mp-{i}"
            parts = [os.urandom(5 * 1024 * 1024), os.urandom(1024 * 1024)]
            note(attempts, sha=hashlib.sha256(b"".join(parts)).hexdigest())
            uid = s3.create_multipart_upload(Bucket="crash", Key=key)["UploadId"]
            tags = [s3.upload_part(Bucket="crash", Key=key, UploadId=uid, PartNumber=n + 1, Body=p)["ETag"] for n, p in enumerate(parts)]
            v = s3.complete_multipart_upload(Bucket="crash", Key=key, UploadId=uid,
                MultipartUpload={"Parts": [{"PartNumber": n + 1, "ETag": t} for n, t in enumerate(tags)]})["VersionId"]
            note(acked, key=key, version=v, sha=hashlib.sha256(b"".join(parts)).hexdigest())
        else:
            key = f"ow-{i % 5}"
            body = os.urandom(300_000)
            note(attempts, sha=hashlib.sha256(body).hexdigest())
            v = s3.put_object(Bucket="crash", Key=key, Body=body)["VersionId"]
            note(acked, key=key, version=v, sha=hashlib.sha256(body).hexdigest())
        i += 1
except Exception as e:
    print(f"stopped after {i} operations: {type(e).__name__}", flush=True)
"#;

const CRASH_CHECK: &str = r#"
import hashlib, json, os
import boto3
from botocore.config import Config
E = os.environ
s3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
attempted = {json.loads(l)["sha"] for l in open(E["ATTEMPTS"]) if l.strip()}
acked = [json.loads(l) for l in open(E["ACKED"]) if l.strip()]
assert len(acked) >= 3, f"only {len(acked)} acknowledged writes before the kill"
for a in acked:
    body = s3.get_object(Bucket="crash", Key=a["key"], VersionId=a["version"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == a["sha"], f"acknowledged {a['key']} {a['version']} changed"
# Nothing visible is torn: every listed version reads whole and is one of the bodies sent.
seen = 0
for page in s3.get_paginator("list_object_versions").paginate(Bucket="crash"):
    for v in page.get("Versions", []):
        body = s3.get_object(Bucket="crash", Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
        assert len(body) == v["Size"]
        assert hashlib.sha256(body).hexdigest() in attempted, f"{v['Key']} {v['VersionId']} is not a body that was sent"
        seen += 1
# Uploads cut by the kill can be aborted; their parts go.
for u in s3.list_multipart_uploads(Bucket="crash").get("Uploads", []):
    s3.abort_multipart_upload(Bucket="crash", Key=u["Key"], UploadId=u["UploadId"])
print(f"crash ok: {len(acked)} acknowledged, {seen} visible")
"#;

/// SIGKILL while multipart uploads and overwrites run, then a restart: every acknowledged
/// version is intact, nothing torn is visible, and what the kill left in `tmp/` is collected.
#[test]
fn sigkill_during_uploads_loses_nothing_acknowledged() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let mut s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let dir = s3.dir.path().to_path_buf();
    let (attempts, acked) = (dir.join("attempts.jsonl"), dir.join("acked.jsonl"));
    std::fs::write(dir.join("crash_writer.py"), CRASH_WRITER).unwrap();
    let writer = Command::new("python3")
        .arg(dir.join("crash_writer.py"))
        .env("ENDPOINT", &s3.endpoint)
        .env("KEY", &key)
        .env("SECRET", &secret)
        .env("ATTEMPTS", &attempts)
        .env("ACKED", &acked)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let writes run until a few are acknowledged and one is surely in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&acked)
        .map(|t| t.lines().count())
        .unwrap_or(0)
        < 6
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no writes acknowledged"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    s3.server.kill();
    let out = writer.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    s3.server.restart();
    s3.endpoint = s3
        .server
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("medicus: S3 endpoint "))
        .expect("the S3 endpoint is printed")
        .to_owned();
    // The restart collected what the kill left half-written.
    let tmp = s3.dir.data().join("objects/tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    let out = python(
        &dir,
        "crash_check.py",
        CRASH_CHECK,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
            ("ATTEMPTS", attempts.to_str().unwrap()),
            ("ACKED", acked.to_str().unwrap()),
        ],
    );
    assert!(out.contains("crash ok"), "{out}");
}

const ROUND_TRIP: &str = r#"
import os, boto3
from botocore.config import Config
E = os.environ
s3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
if E["STEP"] == "put":
    s3.create_bucket(Bucket="rotate")
    s3.put_object(Bucket="rotate", Key="k", Body=b"kept across the rotation" * 5000)
assert s3.get_object(Bucket="rotate", Key="k")["Body"].read() == b"kept across the rotation" * 5000
print("round trip ok")
"#;

fn data_files(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A new master key re-wraps the tenant keys and the access-key secrets; no data file changes,
/// and the server started with the new key reads what was written under the old one.
#[test]
fn master_key_rotation_rewraps_without_rewriting_data() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let mut s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let run = |endpoint: &str, step: &str| {
        python(
            s3.dir.path(),
            "round_trip.py",
            ROUND_TRIP,
            &[
                ("ENDPOINT", endpoint),
                ("KEY", &key),
                ("SECRET", &secret),
                ("STEP", step),
            ],
        )
    };
    assert!(run(&s3.endpoint, "put").contains("round trip ok"));
    s3.server.kill();
    let before = data_files(&s3.dir.data().join("objects/data"));
    let new_key = s3.dir.path().join("new-master.key");
    let data = s3.dir.data();
    let out = medicus(&[
        "admin",
        "s3-key",
        "rotate-master",
        "--new-key-file",
        new_key.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("re-wrapped 1 tenant keys and 1 access keys")
    );
    assert_eq!(before, data_files(&s3.dir.data().join("objects/data")));
    let server = Server::start_with(
        &s3.dir,
        Options {
            args: vec![
                "--s3-listen".into(),
                "127.0.0.1:0".into(),
                "--master-key-file".into(),
                new_key.to_str().unwrap().into(),
            ],
            ..Options::default()
        },
    );
    let endpoint = server
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("medicus: S3 endpoint "))
        .expect("the S3 endpoint is printed")
        .to_owned();
    assert!(run(&endpoint, "get").contains("round trip ok"));
}

const SSE_C: &str = r#"
import io, os
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
E = os.environ
s3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def code(f, *a, **kw):
    try:
        f(*a, **kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"expected an error from {f.__name__}")
key, other = os.urandom(32), os.urandom(32)
sse = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}
s3.create_bucket(Bucket="ssec")
p = s3.put_object(Bucket="ssec", Key="k", Body=b"customer encrypted", **sse)
assert p["SSECustomerAlgorithm"] == "AES256"
assert s3.get_object(Bucket="ssec", Key="k", **sse)["Body"].read() == b"customer encrypted"
assert s3.head_object(Bucket="ssec", Key="k", **sse)["SSECustomerKeyMD5"] == p["SSECustomerKeyMD5"]
assert code(s3.get_object, Bucket="ssec", Key="k")[1] == 400
assert code(s3.get_object, Bucket="ssec", Key="k", SSECustomerAlgorithm="AES256", SSECustomerKey=other)[1] == 403
assert code(s3.head_object, Bucket="ssec", Key="k")[1] == 400
r = s3.get_object(Bucket="ssec", Key="k", Range="bytes=9-17", **sse)
assert r["Body"].read() == b"encrypted"
# Copy: the source key opens it, the copy can have a key of its own.
s3.copy_object(Bucket="ssec", Key="copy", CopySource="ssec/k", CopySourceSSECustomerAlgorithm="AES256",
               CopySourceSSECustomerKey=key, SSECustomerAlgorithm="AES256", SSECustomerKey=other)
assert s3.get_object(Bucket="ssec", Key="copy", SSECustomerAlgorithm="AES256", SSECustomerKey=other)["Body"].read() == b"customer encrypted"
assert code(s3.copy_object, Bucket="ssec", Key="copy2", CopySource="ssec/k")[1] == 400
# Multipart with the key on every part.
blob = os.urandom(11 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(blob), "ssec", "big", ExtraArgs=sse,
                  Config=TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024))
out = io.BytesIO()
s3.download_fileobj("ssec", "big", out, ExtraArgs=sse)
assert out.getvalue() == blob
print("sse-c ok")
"#;

#[test]
fn sse_c_objects_need_their_key() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let out = python(
        s3.dir.path(),
        "sse_c.py",
        SSE_C,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
        ],
    );
    assert!(out.contains("sse-c ok"), "{out}");
}

const FIFTY: &str = r#"
import os
from concurrent.futures import ThreadPoolExecutor
import boto3
from botocore.config import Config
E = os.environ
s3 = boto3.client("s3", endpoint_url=E["ENDPOINT"], aws_access_key_id=E["KEY"], aws_secret_access_key=E["SECRET"],
    region_name="us-east-1", config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
    max_pool_connections=50, read_timeout=300))
s3.create_bucket(Bucket="many")
body = os.urandom(16 * 1024 * 1024)
def put(i):
    s3.put_object(Bucket="many", Key=f"o{i}", Body=body)
with ThreadPoolExecutor(50) as pool:
    list(pool.map(put, range(50)))
assert s3.list_objects_v2(Bucket="many")["KeyCount"] == 50
assert s3.get_object(Bucket="many", Key="o7")["Body"].read() == body
print("fifty ok")
"#;

/// Peak resident memory of a process, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 50 uploads of 16 MiB at once (800 MiB in flight): bodies stream to disk in chunks, so the
/// server's peak memory stays far below what buffering them would take.
#[test]
fn fifty_concurrent_uploads_keep_memory_bounded() {
    if !have("python3", &["-c", "import boto3"]) {
        return;
    }
    let s3 = start();
    let (key, secret) = s3.key("default", &["*:admin"]);
    let out = python(
        s3.dir.path(),
        "fifty.py",
        FIFTY,
        &[
            ("ENDPOINT", &s3.endpoint),
            ("KEY", &key),
            ("SECRET", &secret),
        ],
    );
    assert!(out.contains("fifty ok"), "{out}");
    let peak = peak_rss_kib(s3.server.pid());
    assert!(peak > 0, "no VmHWM");
    assert!(
        peak < 300 * 1024,
        "peak RSS {} MiB for 800 MiB of concurrent uploads",
        peak / 1024
    );
    eprintln!(
        "peak RSS during 50 concurrent 16 MiB uploads: {} MiB",
        peak / 1024
    );
}

//! The binary's command line: exit codes, configuration precedence, tenants, signals, demo banner.

mod common;

use std::io::Write;
use std::net::TcpListener;

use common::{Options, Server, TestDir, create_tenant, medicus, medicus_command, patient};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A user error is one line on stderr, no panic, no backtrace.
#[track_caller]
fn assert_one_line_error(out: &std::process::Output, code: i32, needle: &str) {
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert_eq!(
        err.trim_end()
            .lines()
            .filter(|l| l.starts_with("medicus: error:"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn help_and_version_exit_zero() {
    let out = medicus(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    for cmd in ["serve", "demo", "admin"] {
        assert!(stdout(&out).contains(cmd), "{}", stdout(&out));
    }
    let out = medicus(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("medicus "), "{}", stdout(&out));
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        &["frobnicate"][..],
        &["serve", "--no-such-flag"],
        &["admin", "tenant"],
        &[],
    ] {
        let out = medicus(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"));
    }
    let out = medicus_command()
        .args(["serve"])
        .env("MEDICUS_MAX_BODY_BYTES", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn invalid_tenant_ids_exit_two_and_write_nothing() {
    let dir = TestDir::new();
    let data = dir.data();
    for id in ["a/b", "", "tenant with space", "ü", &"x".repeat(65)] {
        let out = medicus(&[
            "admin",
            "tenant",
            "create",
            id,
            "--data",
            data.to_str().unwrap(),
        ]);
        assert_one_line_error(&out, 2, "invalid tenant id");
    }
    assert!(
        !data.exists(),
        "an invalid id must not create the data directory"
    );
}

#[test]
fn tenant_create_and_list() {
    let dir = TestDir::new();
    let data = dir.data();
    let data = data.to_str().unwrap();

    // SQLite: nothing has created the data directory yet (PostgreSQL has an empty list).
    if dir.database().is_none() {
        let out = medicus(&["admin", "tenant", "list", "--data", data]);
        assert_one_line_error(&out, 1, "no data directory");
    }

    let out = medicus(&["admin", "tenant", "create", "b", "--data", data]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("created tenant b"),
        "{}",
        stdout(&out)
    );
    let out = medicus(&["admin", "tenant", "create", "b", "--data", data]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("already exists"), "{}", stdout(&out));
    create_tenant(&dir, "uk-freiburg_2");

    // The data directory can also come from MEDICUS_DATA.
    let out = medicus_command()
        .args(["admin", "tenant", "list"])
        .args(dir.database_args())
        .env("MEDICUS_DATA", data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut listed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(listed, ["b", "uk-freiburg_2"]);

    // The first start of the server adds `default`.
    let server = Server::start(&dir);
    drop(server);
    let out = medicus(&["admin", "tenant", "list", "--data", data]);
    let mut listed: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    listed.sort();
    assert_eq!(listed, ["b", "default", "uk-freiburg_2"]);
}

#[test]
fn config_file_errors_exit_two() {
    let dir = TestDir::new();
    let path = dir.path().join("medicus.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nlisten_address = \"x\"\n").unwrap();
    let out = medicus(&["serve", "--config", path.to_str().unwrap()]);
    assert_one_line_error(&out, 2, "unknown field");
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));

    std::fs::write(&path, "[fhir]\nmax_body_bytes = -5\n").unwrap();
    let out = medicus_command()
        .args(["serve"])
        .env("MEDICUS_CONFIG", &path)
        .output()
        .unwrap();
    assert_one_line_error(&out, 2, "medicus.toml");

    let missing = dir.path().join("missing.toml");
    let out = medicus(&[
        "admin",
        "tenant",
        "list",
        "--config",
        missing.to_str().unwrap(),
    ]);
    assert_one_line_error(&out, 2, "cannot read config file");
    assert!(!dir.data().exists());
}

#[test]
fn bad_listen_address_exits_two_and_busy_port_exits_one() {
    let dir = TestDir::new();
    let data = dir.data();
    let out = medicus(&[
        "serve",
        "--data",
        data.to_str().unwrap(),
        "--listen",
        "no port here",
    ]);
    assert_one_line_error(&out, 2, "invalid listen address");
    assert!(
        !data.exists(),
        "a bad address must not touch the data directory"
    );

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = medicus(&["serve", "--data", data.to_str().unwrap(), "--listen", &addr]);
    assert_one_line_error(&out, 1, "cannot listen on");
}

#[test]
fn invalid_log_filter_exits_two() {
    let out = medicus_command()
        .args(["admin", "tenant", "list"])
        .env("MEDICUS_LOG", "info,[[[")
        .output()
        .unwrap();
    assert_one_line_error(&out, 2, "invalid log filter");
}

#[test]
fn serve_creates_default_tenant_and_answers() {
    let dir = TestDir::new();
    let server = Server::start(&dir);
    assert!(
        server
            .stdout()
            .contains(&format!("http://{}/fhir/default", server.addr))
    );
    let resp = server.fhir().get("metadata");
    resp.expect(200);
    assert_eq!(resp.body["resourceType"], "CapabilityStatement");
    let health = reqwest::blocking::get(format!("{}/healthz", server.origin())).unwrap();
    assert!(health.status().is_success());
    server.tenant("nobody").get("Patient").expect_outcome(404);
}

#[test]
fn sigterm_and_sigint_stop_gracefully_and_data_survives() {
    let dir = TestDir::new();
    let mut server = Server::start(&dir);
    let created = server.fhir().create(&patient("Graceful", "Grete"));
    let id = created["id"].as_str().unwrap().to_owned();

    let status = server.signal_and_wait(libc::SIGTERM);
    assert!(
        status.success(),
        "SIGTERM exit: {status}; log:\n{}",
        server.log()
    );
    server.restart();
    let read = server.fhir().get(&format!("Patient/{id}"));
    read.expect(200);
    assert_eq!(read.body["name"], created["name"]);

    let status = server.signal_and_wait(libc::SIGINT);
    assert!(
        status.success(),
        "SIGINT exit: {status}; log:\n{}",
        server.log()
    );
}

#[test]
fn env_overrides_config_file_and_flag_overrides_env() {
    let dir = TestDir::new();
    let path = dir.path().join("medicus.toml");
    // The file's address is unusable: the harness's --listen flag must win over it.
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "listen = \"not an address\"\n[fhir]\nmax_body_bytes = 200"
    )
    .unwrap();
    drop(f);
    let config = path.to_str().unwrap().to_owned();

    // File alone: a ~1 KiB Patient is over its 200-byte limit.
    let mut big = patient("Limit", "Lotte");
    big["text"] = serde_json::json!({"status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", "x".repeat(1000))});
    let server = Server::start_with(&dir, Options::default().env("MEDICUS_CONFIG", &config));
    server.fhir().post("Patient", &big).expect_outcome(413);
    drop(server);

    // The environment variable overrides the file.
    let server = Server::start_with(
        &dir,
        Options::default()
            .env("MEDICUS_CONFIG", &config)
            .env("MEDICUS_MAX_BODY_BYTES", "100000"),
    );
    server.fhir().post("Patient", &big).expect(201);
    drop(server);

    // The flag overrides the environment variable.
    let mut options = Options::default()
        .env("MEDICUS_CONFIG", &config)
        .env("MEDICUS_MAX_BODY_BYTES", "100000");
    options.args = vec!["--max-body-bytes".into(), "300".into()];
    let server = Server::start_with(&dir, options);
    server.fhir().post("Patient", &big).expect_outcome(413);
}

#[test]
fn logs_hold_no_personal_data() {
    let dir = TestDir::new();
    let server = Server::start_with(&dir, Options::default().env("MEDICUS_LOG", "debug"));
    let fhir = server.fhir();
    let created = fhir.create(&patient("Zqxjkvbwpf", "Yvonnequa"));
    let id = created["id"].as_str().unwrap();
    fhir.get("Patient?family=Zqxjkvbwpf&given=Yvonnequa")
        .expect(200);
    fhir.get(&format!("Patient/{id}")).expect(200);
    let log = server.log();
    assert!(!log.is_empty(), "debug logging produced nothing");
    assert!(
        !log.contains("Zqxjkvbwpf") && !log.contains("Yvonnequa"),
        "personal data in the log:\n{log}"
    );
}

#[test]
fn closed_stdout_is_not_a_panic() {
    let dir = TestDir::new();
    create_tenant(&dir, "b");
    let mut child = medicus_command()
        .args([
            "admin",
            "tenant",
            "list",
            "--data",
            dir.data().to_str().unwrap(),
        ])
        .args(dir.database_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

//! `medicus admin user|client|token`: identities and clients land in the store's platform
//! records, secrets are never stored in plain text, and `admin token` prints a service token
//! the auth crate verifies with the same server key.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;

use common::{TestDir, create_tenant, database_of, medicus, medicus_command};
use medicus_auth::policy::{Access, Interaction, decide};
use medicus_auth::users::LoginOutcome;
use medicus_auth::{Auth, AuthConfig, Records, Role, ServerKey, SystemClock};
use medicus_store::{PostgresOptions, PostgresStore, SqliteStore, Store};

fn run_ok(args: &[&str]) -> String {
    let out = medicus(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn open(dir: &TestDir) -> Auth {
    let data = dir.data();
    let store: Arc<dyn Store> = match database_of(&data) {
        Some(url) => Arc::new(PostgresStore::connect(&url, PostgresOptions::default()).unwrap()),
        None => Arc::new(SqliteStore::open(&data).unwrap()),
    };
    let key =
        ServerKey::from_base64(&std::fs::read_to_string(data.join("server.key")).unwrap()).unwrap();
    let records: Records = store;
    Auth::new(
        records,
        key,
        AuthConfig::new("https://m.example/auth", "https://m.example/fhir"),
        Arc::new(SystemClock),
    )
}

#[test]
fn users_clients_and_tokens() {
    let dir = TestDir::new();
    create_tenant(&dir, "clinic");
    let data = dir.data();
    let data = data.to_str().unwrap();
    let base = ["--data", data, "--base-url", "https://m.example"];

    // A clinician, password from standard input.
    let mut cmd = medicus_command();
    cmd.args([
        "admin",
        "user",
        "create",
        "--login",
        "Alice",
        "--name",
        "Dr. Alice",
        "--tenant",
        "clinic",
        "--role",
        "clinician",
        "--fhir-user",
        "Practitioner/a1",
        "--password-stdin",
    ])
    .args(base)
    .args(dir.database_args())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse battery\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created user alice"));
    let key_file = std::fs::metadata(dir.data().join("server.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key_file.permissions().mode() & 0o777, 0o600);
    }

    // An admin gets a TOTP enrolment URI.
    let mut args = vec![
        "admin",
        "user",
        "create",
        "--login",
        "boss",
        "--name",
        "Boss",
        "--tenant",
        "clinic",
        "--role",
        "tenant-admin",
    ];
    args.extend(base);
    assert!(run_ok(&args).contains("otpauth://totp/medicus:boss?secret="));

    // Unknown role and unknown tenant are refused.
    let mut args = vec![
        "admin", "user", "create", "--login", "x", "--name", "X", "--tenant", "clinic", "--role",
        "root",
    ];
    args.extend(base);
    assert_eq!(medicus(&args).status.code(), Some(2));
    let mut args = vec![
        "admin",
        "user",
        "create",
        "--login",
        "x",
        "--name",
        "X",
        "--tenant",
        "nowhere",
        "--role",
        "clinician",
    ];
    args.extend(base);
    assert!(!medicus(&args).status.success());

    let mut args = vec![
        "admin",
        "user",
        "role",
        "--login",
        "alice",
        "--tenant",
        "clinic",
        "--role",
        "clinician,researcher",
    ];
    args.extend(base);
    assert!(run_ok(&args).contains("roles in clinic: clinician, researcher"));

    let auth = open(&dir);
    let alice = auth.user_by_login("alice").unwrap().unwrap();
    assert_eq!(
        alice.roles_in("clinic"),
        vec![Role::Clinician, Role::Researcher]
    );
    assert!(matches!(
        auth.login("alice", "correct horse battery", None).unwrap(),
        LoginOutcome::Success(_)
    ));

    let mut args = vec!["admin", "user", "disable", "--login", "alice"];
    args.extend(base);
    assert!(run_ok(&args).contains("user alice disabled"));
    assert!(auth.user_by_login("alice").unwrap().unwrap().disabled);

    // Clients.
    let mut args = vec![
        "admin",
        "client",
        "create",
        "--tenant",
        "clinic",
        "--id",
        "app",
        "--name",
        "App",
        "--kind",
        "public",
        "--redirect-uri",
        "https://app.example/cb",
        "--scopes",
        "openid launch/patient patient/*.rs",
    ];
    args.extend(base);
    assert!(run_ok(&args).contains("created client app"));
    let mut args = vec![
        "admin",
        "client",
        "create",
        "--tenant",
        "clinic",
        "--id",
        "backend",
        "--name",
        "Backend",
        "--kind",
        "secret",
        "--scopes",
        "system/*.rs",
    ];
    args.extend(base);
    let out = run_ok(&args);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret (shown once): "))
        .unwrap()
        .to_owned();
    let backend = auth.client("backend").unwrap().unwrap();
    assert!(
        !serde_json::to_string(&backend).unwrap().contains(&secret),
        "secret stored in plain text"
    );
    let app = auth.client("app").unwrap().unwrap();
    assert_eq!(app.redirect_uris, vec!["https://app.example/cb".to_owned()]);

    // A service token for scripts, verified with the server key by the auth crate.
    let mut args = vec![
        "admin",
        "token",
        "--tenant",
        "clinic",
        "--scopes",
        "system/Observation.rs",
    ];
    args.extend(base);
    let token = run_ok(&args).trim().to_owned();
    let principal = auth.verify_access_token(&token).unwrap();
    assert_eq!(principal.tenant, "clinic");
    assert_eq!(principal.roles, vec![Role::Service]);
    let read = |ty, tenant| {
        decide(
            &principal,
            &Access {
                tenant,
                interaction: Interaction::Read,
                resource_type: Some(ty),
                resource: None,
            },
        )
        .is_allowed()
    };
    assert!(read("Observation", "clinic"));
    assert!(!read("Patient", "clinic"));
    assert!(!read("Observation", "other"));
    // Only system scopes, only known tenants.
    let mut args = vec![
        "admin",
        "token",
        "--tenant",
        "clinic",
        "--scopes",
        "user/*.rs",
    ];
    args.extend(base);
    assert_eq!(medicus(&args).status.code(), Some(2));
    let mut args = vec![
        "admin",
        "token",
        "--tenant",
        "nowhere",
        "--scopes",
        "system/*.rs",
    ];
    args.extend(base);
    assert!(!medicus(&args).status.success());

    // Every change and every token above is in the tenant's audit chain (user creation, role
    // change and client registration in `clinic`, the disabling on the platform chain).
    let kinds = |chain: &str, kind: &str| common::audit_descriptions(&dir, chain, kind);
    let changes = kinds("clinic", "admin-change");
    assert!(
        changes.iter().any(|d| d.contains("created with roles")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|d| d.contains("roles set to")),
        "{changes:?}"
    );
    assert!(
        changes.iter().any(|d| d.contains("registered")),
        "{changes:?}"
    );
    assert!(
        kinds("_platform", "admin-change")
            .iter()
            .any(|d| d.contains("disabled")),
        "the disabling is audited"
    );
    let tokens = kinds("clinic", "token-issued");
    assert!(!tokens.is_empty(), "the service token is audited");
    // The passwords and secrets never reach the trail.
    let everything = format!("{changes:?}{tokens:?}");
    assert!(!everything.contains("correct horse"), "{everything}");
}

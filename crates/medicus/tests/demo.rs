//! `medicus demo` through the real binary: the pilot is seeded once, every request the banner
//! prints works as pasted, and a restart keeps the data without seeding again.

mod common;

use common::{Options, Server, TestDir};
use serde_json::Value;

fn small_pilot() -> Options {
    Options {
        command: "demo",
        args: ["--patients", "12", "--resources-per-patient", "30"]
            .map(String::from)
            .to_vec(),
        ..Options::default()
    }
}

/// The `curl -s …` GET examples of the banner, as URLs.
fn banner_gets(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("curl -s "))
        .filter(|r| !r.starts_with("-X"))
        .map(|r| {
            r.trim_start_matches("-H \"Authorization: Bearer $TOKEN\" ")
                .trim_matches('\'')
                .to_owned()
        })
        .collect()
}

/// The banner's `export TOKEN=$(medicus admin token …)` command, run as printed.
fn banner_token(out: &str, var: &str, database: Option<String>) -> String {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("export {var}=$(medicus ")))
        .unwrap_or_else(|| panic!("no {var} command in banner:\n{out}"));
    let line = line.strip_suffix(')').expect("command in $(…)");
    // The banner leaves the database URL (it may hold a password) to the shell's variable.
    let words: Vec<String> = line
        .split(' ')
        .map(|w| w.trim_matches('\'').to_owned())
        .map(|w| match (&database, w.as_str()) {
            (Some(url), "\"$MEDICUS_DATABASE\"") => url.clone(),
            _ => w,
        })
        .collect();
    let output = common::medicus_command().args(&words).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn seeds_the_pilot_once_and_every_banner_example_works() {
    let dir = TestDir::new();
    let mut server = Server::start_with(&dir, small_pilot());
    let out = server.stdout();
    for tenant in ["uk-nord", "klinikum-mitte", "kreisklinik-sued"] {
        assert!(
            out.contains(&format!("http://{}/fhir/{tenant}", server.addr)),
            "{out}"
        );
        let patients = server
            .tenant(tenant)
            .get("Patient?_summary=count")
            .expect(200)
            .body
            .clone();
        assert!(
            patients["total"].as_u64().unwrap() > 0,
            "{tenant} has no patients"
        );
    }

    let gets = banner_gets(&out);
    assert!(gets.len() >= 4, "{out}");
    let client = reqwest::blocking::Client::new();
    let token = banner_token(&out, "TOKEN", common::database_of(&dir.data()));
    for url in &gets {
        let resp = client.get(url).bearer_auth(&token).send().unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{url}");
        let body: Value = resp.json().unwrap();
        assert!(
            matches!(
                body["resourceType"].as_str(),
                Some("Bundle" | "CapabilityStatement")
            ),
            "{url}"
        );
    }

    // The POST example, as printed, creates a Patient in the empty tenant.
    let payload = out
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("-d '")
                .and_then(|r| r.strip_suffix('\''))
        })
        .unwrap_or_else(|| panic!("no -d payload in banner:\n{out}"));
    let payload: Value = serde_json::from_str(payload).unwrap();
    let admin = banner_token(&out, "ADMIN_TOKEN", common::database_of(&dir.data()));
    common::Fhir::new(server.fhir().base.clone())
        .with_token(admin)
        .create(&payload);

    server.restart();
    let out = server.stdout();
    assert!(out.contains("pilot data already loaded"), "{out}");
    let total = server
        .tenant("kreisklinik-sued")
        .get("Patient?_summary=count")
        .expect(200)
        .body["total"]
        .clone();
    assert!(total.as_u64().unwrap() > 0);
    assert_eq!(
        server.fhir().get("Patient?_summary=count").expect(200).body["total"],
        1
    );
}

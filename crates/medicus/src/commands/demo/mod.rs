//! `medicus demo`: `serve`, seeded on first start with a synthetic pilot of several hospitals
//! (one tenant each), and a banner of requests to paste.

mod pilot;

use medicus_store::tenant::DEFAULT_TENANT;

use super::serve::{Listening, Server};
use crate::cli::DemoArgs;
use crate::config::{Database, FileConfig, ServeSettings};
use crate::error::CliError;

pub fn run(args: &DemoArgs, file: &FileConfig) -> Result<(), CliError> {
    let settings = ServeSettings::resolve(&args.serve, file)?;
    let server = Server::open(&settings)?;
    let size = pilot::PilotSize {
        patients: args.patients,
        resources_per_patient: args.resources_per_patient,
    };
    let tenants = pilot::ensure(&server.store, &settings.data, size)?;
    let token_cmd = token_command(&settings);
    server.run(|listening| super::say(format_args!("{}", banner(listening, &tenants, &token_cmd))))
}

/// The `medicus admin token` command line (without tenant and scopes) for this server's
/// store and server key: every FHIR request needs a token.
fn token_command(settings: &ServeSettings) -> String {
    let quote =
        |p: &std::path::Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let mut cmd = format!("medicus admin token --data {}", quote(&settings.data));
    if let Database::Postgres(_) = settings.database {
        // The URL may carry a password: the reader supplies it, we do not print it.
        cmd.push_str(" --database \"$MEDICUS_DATABASE\"");
    }
    if settings.server_key_file != settings.data.join("server.key") {
        cmd.push_str(&format!(
            " --server-key-file {}",
            quote(&settings.server_key_file)
        ));
    }
    cmd
}

fn banner(listening: &Listening, tenants: &[&str], token_cmd: &str) -> String {
    let base = listening.fhir_base(DEFAULT_TENANT);
    let first = tenants.first().copied().unwrap_or(DEFAULT_TENANT);
    let hospital = listening.fhir_base(first);
    let origin = format!("http://{}", listening.addr);
    let default = DEFAULT_TENANT;
    let list: String = tenants
        .iter()
        .map(|t| format!("  {}\n", listening.fhir_base(t)))
        .collect();
    format!(
        r#"
medicus demo is running. The synthetic pilot hospitals (one tenant each):
{list}  {base}   (empty, for your own data)

Every FHIR request needs an access token (only /metadata is public). In another terminal,
get one for the first hospital (read-only, valid for an hour) and one for the empty tenant:

  export TOKEN=$({token_cmd} --base-url {origin} --tenant {first} --scopes 'system/*.rs' --lifetime 3600)
  export ADMIN_TOKEN=$({token_cmd} --base-url {origin} --tenant {default} --scopes 'system/*.cruds' --lifetime 3600)

Then try:

  # what the server can do (CapabilityStatement; public)
  curl -s {hospital}/metadata

  # diabetics (ICD-10-GM E11.*): how many, then the first page
  curl -s -H "Authorization: Bearer $TOKEN" '{hospital}/Condition?code=http://fhir.de/CodeSystem/bfarm/icd-10-gm|E11.90&_summary=count'
  curl -s -H "Authorization: Bearer $TOKEN" '{hospital}/Condition?code=E11.90&_count=5'

  # HbA1c above 7 % since 2024
  curl -s -H "Authorization: Bearer $TOKEN" '{hospital}/Observation?code=http://loinc.org|4548-4&value-quantity=gt7&date=ge2024&_count=5'

  # a patient by name (starts-with, case- and accent-insensitive), and one record's history
  curl -s -H "Authorization: Bearer $TOKEN" '{hospital}/Patient?name=mül&_count=3'

  # create a Patient in the empty tenant
  curl -s -X POST {base}/Patient \
    -H "Authorization: Bearer $ADMIN_TOKEN" \
    -H 'Content-Type: application/fhir+json' \
    -d '{{"resourceType":"Patient","name":[{{"family":"Mustermann","given":["Erika"]}}],"birthDate":"1964-08-12"}}'

Stop with Ctrl-C. Data stays in the data directory; the next start skips seeding.
"#
    )
}

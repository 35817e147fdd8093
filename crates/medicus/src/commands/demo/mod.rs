//! `medicus demo`: `serve`, seeded on first start with a synthetic pilot of several hospitals
//! (one tenant each), and a banner of requests to paste.

mod pilot;

use medicus_store::tenant::DEFAULT_TENANT;

use super::serve::{Listening, Server};
use crate::cli::DemoArgs;
use crate::config::{FileConfig, ServeSettings};
use crate::error::CliError;

pub fn run(args: &DemoArgs, file: &FileConfig) -> Result<(), CliError> {
    let settings = ServeSettings::resolve(&args.serve, file)?;
    let server = Server::open(&settings)?;
    let size = pilot::PilotSize {
        patients: args.patients,
        resources_per_patient: args.resources_per_patient,
    };
    let tenants = pilot::ensure(&server.store, &settings.data, size)?;
    server.run(|listening| super::say(format_args!("{}", banner(listening, &tenants))))
}

fn banner(listening: &Listening, tenants: &[&str]) -> String {
    let base = listening.fhir_base(DEFAULT_TENANT);
    let first = tenants.first().copied().unwrap_or(DEFAULT_TENANT);
    let hospital = listening.fhir_base(first);
    let list: String = tenants
        .iter()
        .map(|t| format!("  {}\n", listening.fhir_base(t)))
        .collect();
    format!(
        r#"
medicus demo is running. The synthetic pilot hospitals (one tenant each):
{list}  {base}   (empty, for your own data)

Try, in another terminal:

  # what the server can do (CapabilityStatement)
  curl -s {hospital}/metadata

  # diabetics (ICD-10-GM E11.*): how many, then the first page
  curl -s '{hospital}/Condition?code=http://fhir.de/CodeSystem/bfarm/icd-10-gm|E11.90&_summary=count'
  curl -s '{hospital}/Condition?code=E11.90&_count=5'

  # HbA1c above 7 % since 2024
  curl -s '{hospital}/Observation?code=http://loinc.org|4548-4&value-quantity=gt7&date=ge2024&_count=5'

  # a patient by name (starts-with, case- and accent-insensitive), and one record's history
  curl -s '{hospital}/Patient?name=mül&_count=3'

  # create a Patient in the empty tenant
  curl -s -X POST {base}/Patient \
    -H 'Content-Type: application/fhir+json' \
    -d '{{"resourceType":"Patient","name":[{{"family":"Mustermann","given":["Erika"]}}],"birthDate":"1964-08-12"}}'

Stop with Ctrl-C. Data stays in the data directory; the next start skips seeding.
"#
    )
}

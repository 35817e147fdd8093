//! `medicus demo`: `serve` with the `default` tenant and a banner of requests to paste.
//! (The synthetic pilot will be seeded between `Server::open` and `Server::run`.)

use medicus_store::tenant::DEFAULT_TENANT;

use super::serve::{Listening, Server};
use crate::cli::ServeArgs;
use crate::config::{FileConfig, ServeSettings};
use crate::error::CliError;

pub fn run(args: &ServeArgs, file: &FileConfig) -> Result<(), CliError> {
    let settings = ServeSettings::resolve(args, file)?;
    let server = Server::open(&settings)?;
    server.run(|listening| super::say(format_args!("{}", banner(listening))))
}

fn banner(listening: &Listening) -> String {
    let base = listening.fhir_base(DEFAULT_TENANT);
    format!(
        r#"
medicus demo is running. Try, in another terminal:

  # what the server can do (CapabilityStatement)
  curl -s {base}/metadata

  # create a Patient
  curl -s -X POST {base}/Patient \
    -H 'Content-Type: application/fhir+json' \
    -d '{{"resourceType":"Patient","name":[{{"family":"Mustermann","given":["Erika"]}}],"birthDate":"1964-08-12"}}'

  # search for it (starts-with, case- and accent-insensitive)
  curl -s '{base}/Patient?name=muster'

Stop with Ctrl-C.
"#
    )
}

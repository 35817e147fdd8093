//! The Bulk Data completion manifest.

use medicus_store::index::datetime::format_instant_us;
use serde_json::{Value, json};

use super::writer::OutputFile;

/// The manifest of a finished export. `file_base_url` is where the job's files are served
/// (`{base}/$export-file/{job id}`); file URLs go through the same auth layer as the FHIR API,
/// hence `requiresAccessToken`.
pub fn manifest(
    transaction_time_us: i64,
    request: &str,
    file_base_url: &str,
    files: &[OutputFile],
) -> Value {
    let output: Vec<Value> = files
        .iter()
        .map(|f| {
            json!({
                "type": f.resource_type,
                "url": format!("{}/{}", file_base_url.trim_end_matches('/'), f.file_name),
                "count": f.count,
            })
        })
        .collect();
    json!({
        "transactionTime": format_instant_us(transaction_time_us),
        "request": request,
        "requiresAccessToken": true,
        "output": output,
        "error": [],
    })
}

/// The file names a manifest lists (the only names the file endpoint serves).
pub fn file_names(manifest: &Value) -> impl Iterator<Item = &str> {
    manifest
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| o.get("url").and_then(Value::as_str))
        .filter_map(|url| url.rsplit('/').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_shape() {
        let files = vec![
            OutputFile {
                resource_type: "Patient".into(),
                file_name: "Patient.ndjson".into(),
                count: 3,
            },
            OutputFile {
                resource_type: "Observation".into(),
                file_name: "Observation-2.ndjson".into(),
                count: 7,
            },
        ];
        let m = manifest(
            1_704_067_200_000_000,
            "http://h/fhir/t/$export?_type=Patient",
            "http://h/fhir/t/$export-file/j1/",
            &files,
        );
        assert_eq!(m["transactionTime"], "2024-01-01T00:00:00.000Z");
        assert_eq!(m["request"], "http://h/fhir/t/$export?_type=Patient");
        assert_eq!(m["requiresAccessToken"], true);
        assert_eq!(m["error"], json!([]));
        assert_eq!(
            m["output"][1],
            json!({"type": "Observation", "url": "http://h/fhir/t/$export-file/j1/Observation-2.ndjson", "count": 7})
        );
        assert_eq!(
            file_names(&m).collect::<Vec<_>>(),
            ["Patient.ndjson", "Observation-2.ndjson"]
        );
    }
}

//! Group-level export: the Patient members of a Group.

use medicus_store::ReadSession;
use serde_json::Value;

use super::ExportError;

/// The ids of the Group's Patient members (`member.entity`), sorted and without duplicates.
/// Members marked `inactive` are left out; members that are not Patients (a Group may list
/// devices or other groups) have no Patient compartment and are skipped.
pub fn group_patients(
    session: &mut dyn ReadSession,
    group_id: &str,
) -> Result<Vec<String>, ExportError> {
    let group = session
        .read("Group", group_id)?
        .and_then(|v| v.body)
        .ok_or_else(|| ExportError::UnknownGroup(group_id.to_owned()))?;
    let mut ids: Vec<String> = group
        .get("member")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|m| m.get("inactive").and_then(Value::as_bool) != Some(true))
        .filter_map(|m| m.pointer("/entity/reference").and_then(Value::as_str))
        .filter_map(patient_id)
        .map(str::to_owned)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// `Patient/123`, `https://host/fhir/Patient/123` or `Patient/123/_history/2` → `123`.
fn patient_id(reference: &str) -> Option<&str> {
    let path = match reference.find("/_history/") {
        Some(i) => &reference[..i],
        None => reference,
    };
    let mut segments = path.rsplit('/');
    let id = segments.next()?;
    (segments.next()? == "Patient" && !id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn patient_references() {
        use super::patient_id;
        assert_eq!(patient_id("Patient/1"), Some("1"));
        assert_eq!(patient_id("http://x/fhir/Patient/a-b"), Some("a-b"));
        assert_eq!(patient_id("Patient/1/_history/3"), Some("1"));
        assert_eq!(patient_id("Device/1"), None);
        assert_eq!(patient_id("#contained"), None);
        assert_eq!(patient_id("Patient/"), None);
    }
}

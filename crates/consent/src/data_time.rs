//! Which days a resource's data belongs to, for the data window (TORCH's `type_to_consent`
//! mapping: one date element per type; types without one are always in the window).

use serde_json::Value;

use crate::{Day, Period};

/// The time of a resource's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataTime {
    /// The type has no consent-relevant date (Patient, Organization, Medication, …): always in.
    Undated,
    /// The days the data belongs to.
    Dated(Period),
    /// The type has a date element but this resource has none readable: never in (fails closed).
    Missing,
}

impl DataTime {
    /// Whether the data may be used under `window`.
    pub fn within(&self, window: &crate::Periods) -> bool {
        match self {
            DataTime::Undated => true,
            DataTime::Dated(p) => window.overlaps(p),
            DataTime::Missing => false,
        }
    }
}

/// The date elements per type, tried in order: `(element, is a Period)`.
fn elements(resource_type: &str) -> Option<&'static [(&'static str, bool)]> {
    Some(match resource_type {
        "Observation" | "DiagnosticReport" => &[
            ("effectiveDateTime", false),
            ("effectivePeriod", true),
            ("effectiveInstant", false),
            ("issued", false),
        ],
        "Condition" => &[
            ("recordedDate", false),
            ("onsetDateTime", false),
            ("onsetPeriod", true),
        ],
        "Procedure" => &[("performedDateTime", false), ("performedPeriod", true)],
        "Encounter" => &[("period", true)],
        "MedicationAdministration" | "MedicationStatement" => &[
            ("effectiveDateTime", false),
            ("effectivePeriod", true),
            ("dateAsserted", false),
        ],
        "MedicationRequest" => &[("authoredOn", false)],
        "ImagingStudy" => &[("started", false)],
        "Specimen" => &[("receivedTime", false)],
        "DocumentReference" => &[("date", false)],
        "ServiceRequest" => &[("authoredOn", false)],
        _ => return None,
    })
}

/// The time of `resource`'s data.
pub fn data_time(resource: &Value) -> DataTime {
    let Some(rtype) = resource.get("resourceType").and_then(Value::as_str) else {
        return DataTime::Missing;
    };
    let Some(candidates) = elements(rtype) else {
        return DataTime::Undated;
    };
    if rtype == "Specimen"
        && let Some(p) = day_or_period(resource.pointer("/collection/collectedDateTime"), false)
            .or_else(|| day_or_period(resource.pointer("/collection/collectedPeriod"), true))
    {
        return DataTime::Dated(p);
    }
    for (element, is_period) in candidates {
        if let Some(p) = day_or_period(resource.get(*element), *is_period) {
            return DataTime::Dated(p);
        }
    }
    DataTime::Missing
}

fn day_or_period(v: Option<&Value>, is_period: bool) -> Option<Period> {
    let v = v?;
    if is_period {
        let start = v
            .get("start")
            .and_then(Value::as_str)
            .and_then(Day::parse_fhir);
        let end = v
            .get("end")
            .and_then(Value::as_str)
            .and_then(Day::parse_fhir);
        match (start, end) {
            (Some(s), Some(e)) => Period::new(s.min(e), e.max(s)),
            // An open period: the data belongs to its known day(s) onwards / up to it.
            (Some(s), None) => Some(Period {
                start: s,
                end: Day::MAX,
            }),
            (None, Some(e)) => Some(Period {
                start: Day::MIN,
                end: e,
            }),
            (None, None) => None,
        }
    } else {
        let d = Day::parse_fhir(v.as_str()?)?;
        Some(Period { start: d, end: d })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Periods;

    fn d(s: &str) -> Day {
        Day::parse_fhir(s).unwrap_or(Day(0))
    }

    #[test]
    fn types_with_and_without_dates() {
        let window = Periods::of([Period {
            start: d("2024-01-01"),
            end: d("2024-12-31"),
        }]);
        let obs = json!({ "resourceType": "Observation", "effectiveDateTime": "2024-05-01T10:00:00+02:00" });
        assert_eq!(
            data_time(&obs),
            DataTime::Dated(Period {
                start: d("2024-05-01"),
                end: d("2024-05-01")
            })
        );
        assert!(data_time(&obs).within(&window));
        let old = json!({ "resourceType": "Observation", "effectiveDateTime": "2023-12-31" });
        assert!(!data_time(&old).within(&window));
        // An encounter overlapping the window's start is in.
        let enc = json!({ "resourceType": "Encounter", "period": { "start": "2023-12-20", "end": "2024-01-02" } });
        assert!(data_time(&enc).within(&window));
        assert_eq!(
            data_time(&json!({ "resourceType": "Patient" })),
            DataTime::Undated
        );
        assert!(!data_time(&json!({ "resourceType": "Condition" })).within(&Periods::all()));
        let spec = json!({ "resourceType": "Specimen", "collection": { "collectedDateTime": "2024-02-02" } });
        assert!(data_time(&spec).within(&window));
    }
}

//! The kick-off parameters of `$export` (FHIR Bulk Data Access 2.0), parsed and checked before a
//! job exists, so that bad input is a 400 and never a failed job.

use medicus_fhir::Definitions;
use medicus_store::search::{SearchQuery, parse_search};
use percent_encoding::percent_decode_str;

use super::ExportError;

/// Which resources an export covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `[base]/$export`: every resource of the tenant.
    System,
    /// `[base]/Patient/$export`: the compartments of all patients.
    Patient,
    /// `[base]/Group/[id]/$export`: the compartments of the group's Patient members.
    Group(String),
}

/// The only output format there is: one resource per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Ndjson,
}

impl OutputFormat {
    pub fn media_type(self) -> &'static str {
        "application/fhir+ndjson"
    }
}

/// A checked export request.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRequest {
    pub level: ExportLevel,
    /// `_type`: the types to export, in the order given; `None` for all of the level's types.
    pub types: Option<Vec<String>>,
    /// `_since`: only resources changed after this instant (µs since the epoch).
    pub since_us: Option<i64>,
    /// `_typeFilter`: per type, queries whose results are OR-ed. Types without a filter are
    /// exported unfiltered.
    pub type_filters: Vec<TypeFilter>,
    pub output_format: OutputFormat,
}

/// One `_typeFilter` query, parsed against the search-parameter registry.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeFilter {
    pub resource_type: String,
    pub query: SearchQuery,
}

impl ExportRequest {
    pub fn new(level: ExportLevel) -> Self {
        ExportRequest {
            level,
            types: None,
            since_us: None,
            type_filters: Vec::new(),
            output_format: OutputFormat::Ndjson,
        }
    }

    /// Parses the kick-off query parameters (already URL-decoded once, as the HTTP layer does,
    /// so an unencoded `+` may arrive as a space). Unknown parameters are rejected: the Bulk
    /// Data specification asks servers to fail on parameters they do not support rather than
    /// export more than was asked for.
    pub fn parse(
        defs: &Definitions,
        level: ExportLevel,
        params: &[(String, String)],
    ) -> Result<Self, ExportError> {
        let mut request = ExportRequest::new(level);
        for (name, value) in params {
            match name.as_str() {
                "_outputFormat" => request.output_format = output_format(value)?,
                "_type" => {
                    let types = request.types.get_or_insert_with(Vec::new);
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        if !defs.is_resource_type(t) {
                            return Err(invalid(format!("_type: '{t}' is not a resource type")));
                        }
                        if !types.iter().any(|x| x == t) {
                            types.push(t.to_owned());
                        }
                    }
                }
                "_since" => request.since_us = Some(parse_instant(value)?),
                "_typeFilter" => {
                    for q in split_type_filters(value) {
                        request.type_filters.push(parse_type_filter(defs, q)?);
                    }
                }
                // Response-format parameters, handled by the HTTP layer.
                "_format" | "_pretty" => {}
                other => {
                    return Err(invalid(format!(
                        "parameter '{other}' is not supported by $export"
                    )));
                }
            }
        }
        if request.types.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid("_type names no resource type"));
        }
        Ok(request)
    }

    /// The types this export writes, in order: `_type`, else every type of the level.
    pub fn resource_types(&self, defs: &Definitions) -> Vec<String> {
        if let Some(types) = &self.types {
            return types.clone();
        }
        defs.resource_types()
            .iter()
            .filter(|t| match self.level {
                ExportLevel::System => true,
                ExportLevel::Patient | ExportLevel::Group(_) => {
                    **t == "Patient" || !defs.patient_compartment_params(t).is_empty()
                }
            })
            .map(|t| (*t).to_owned())
            .collect()
    }

    /// The `_typeFilter` queries of one type.
    pub fn filters_of<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a SearchQuery> {
        self.type_filters
            .iter()
            .filter(move |f| f.resource_type == resource_type)
            .map(|f| &f.query)
    }
}

fn invalid(message: impl Into<String>) -> ExportError {
    ExportError::InvalidRequest(message.into())
}

fn output_format(value: &str) -> Result<OutputFormat, ExportError> {
    let v = value.trim().replace(' ', "+").to_ascii_lowercase();
    match v.as_str() {
        "application/fhir+ndjson" | "application/ndjson" | "ndjson" => Ok(OutputFormat::Ndjson),
        _ => Err(invalid(format!(
            "_outputFormat '{value}' is not supported; use application/fhir+ndjson"
        ))),
    }
}

/// A FHIR instant (`2024-01-02T03:04:05.678+01:00`): seconds and a time zone are required.
pub fn parse_instant(value: &str) -> Result<i64, ExportError> {
    // An unencoded `+` of the offset arrives as a space.
    let v = value.trim().replace(' ', "+");
    let t = time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            invalid(format!(
                "_since '{value}' is not a FHIR instant (e.g. 2024-01-31T12:00:00Z)"
            ))
        })?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).map_err(|_| invalid("_since is out of range"))
}

/// Splits a `_typeFilter` value into its queries. Queries are separated by commas, but a
/// query's own values may be comma-separated (OR), so only a comma followed by `Type?` starts
/// a new query.
fn split_type_filters(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in value.match_indices(',') {
        let rest = &value[i + 1..];
        let starts_query = rest.split_once('?').is_some_and(|(t, _)| {
            !t.is_empty()
                && t.chars().all(|c| c.is_ascii_alphanumeric())
                && t.starts_with(|c: char| c.is_ascii_uppercase())
        });
        if starts_query {
            out.push(&value[start..i]);
            start = i + 1;
        }
    }
    out.push(&value[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .collect()
}

/// `Type?name=value&…`; the query part may itself still be percent-encoded.
fn parse_type_filter(defs: &Definitions, filter: &str) -> Result<TypeFilter, ExportError> {
    let (rt, query) = filter.split_once('?').ok_or_else(|| {
        invalid(format!(
            "_typeFilter '{filter}' is not of the form Type?query"
        ))
    })?;
    if !defs.is_resource_type(rt) {
        return Err(invalid(format!(
            "_typeFilter: '{rt}' is not a resource type"
        )));
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (n, v) = s.split_once('=').unwrap_or((s, ""));
            (decode(n), decode(v))
        })
        .collect();
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| matches!(n.as_str(), "_count" | "_cursor" | "_total" | "_sort"))
    {
        return Err(invalid(format!(
            "_typeFilter: '{name}' cannot be used in an export"
        )));
    }
    let query = parse_search(defs, Some(rt), &pairs)
        .map_err(|e| invalid(format!("_typeFilter '{filter}': {e}")))?;
    // An ignored parameter would silently export more than was asked for.
    if let Some(name) = query
        .ignored
        .iter()
        .chain(query.result_params.iter().map(|(n, _)| n))
        .next()
    {
        return Err(invalid(format!(
            "_typeFilter '{filter}': parameter '{name}' is not supported"
        )));
    }
    Ok(TypeFilter {
        resource_type: rt.to_owned(),
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn parse(p: &[(&str, &str)]) -> Result<ExportRequest, ExportError> {
        ExportRequest::parse(medicus_fhir::r4(), ExportLevel::System, &pairs(p))
    }

    #[test]
    fn types_since_and_format() {
        let r = parse(&[
            ("_type", "Patient,Observation"),
            ("_type", "Patient"),
            ("_since", "2024-01-02T03:04:05.5 01:00"),
            ("_outputFormat", "application/fhir ndjson"),
        ])
        .unwrap();
        assert_eq!(r.types, Some(vec!["Patient".into(), "Observation".into()]));
        assert_eq!(r.since_us, Some(1_704_161_045_500_000));
        assert_eq!(
            r.resource_types(medicus_fhir::r4()),
            ["Patient", "Observation"]
        );
        for f in ["ndjson", "application/ndjson", "application/fhir+ndjson"] {
            assert!(parse(&[("_outputFormat", f)]).is_ok());
        }
    }

    #[test]
    fn bad_input_is_rejected() {
        for p in [
            ("_type", "Patient,Nope"),
            ("_type", ","),
            ("_since", "2024-01-02"),
            ("_since", "yesterday"),
            ("_outputFormat", "text/csv"),
            ("_typeFilter", "Observation"),
            ("_typeFilter", "Nope?x=1"),
            ("_typeFilter", "Observation?nonsense=1"),
            ("_typeFilter", "Observation?_include=Observation:subject"),
            ("_typeFilter", "Observation?_count=5"),
            ("_elements", "id"),
            ("patient", "Patient/1"),
        ] {
            let e = parse(&[p]).unwrap_err();
            assert!(matches!(e, ExportError::InvalidRequest(_)), "{p:?}: {e}");
        }
    }

    #[test]
    fn type_filters_split_on_queries_not_on_values() {
        assert_eq!(
            split_type_filters(
                "Observation?code=a,b&status=final,Condition?clinical-status=active"
            ),
            [
                "Observation?code=a,b&status=final",
                "Condition?clinical-status=active"
            ]
        );
        let r = parse(&[
            (
                "_typeFilter",
                "Observation?status=final,Observation?status=amended",
            ),
            ("_typeFilter", "Condition?code=http%3A%2F%2Fx%7C1"),
        ])
        .unwrap();
        assert_eq!(r.type_filters.len(), 3);
        assert_eq!(r.filters_of("Observation").count(), 2);
        assert_eq!(r.filters_of("Condition").count(), 1);
    }

    #[test]
    fn compartment_levels_default_to_compartment_types() {
        let r = ExportRequest::new(ExportLevel::Patient);
        let types = r.resource_types(medicus_fhir::r4());
        assert!(types.iter().any(|t| t == "Patient"));
        assert!(types.iter().any(|t| t == "Observation"));
        assert!(!types.iter().any(|t| t == "Organization"));
        let all = ExportRequest::new(ExportLevel::System).resource_types(medicus_fhir::r4());
        assert!(all.iter().any(|t| t == "Organization"));
    }
}

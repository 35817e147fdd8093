//! Parsing and rendering of the FHIR-relevant HTTP headers, on plain strings so it is testable
//! without a server.

use medicus_store::api::Precondition;

use super::error::FhirError;

/// `Prefer: return=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReturnPreference {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// `Prefer: handling=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    #[default]
    Lenient,
    Strict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    pub return_: ReturnPreference,
    pub handling: Handling,
}

/// Parses every `Prefer` header value (several headers or comma-separated preferences);
/// unknown preferences are ignored as RFC 7240 asks.
pub fn parse_prefer<'a>(values: impl IntoIterator<Item = &'a str>) -> Prefer {
    let mut prefer = Prefer::default();
    for value in values {
        for pref in value.split([',', ';']) {
            let Some((key, val)) = pref.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"');
            match key.trim().to_ascii_lowercase().as_str() {
                "return" => {
                    prefer.return_ = match val.to_ascii_lowercase().as_str() {
                        "minimal" => ReturnPreference::Minimal,
                        "operationoutcome" => ReturnPreference::OperationOutcome,
                        "representation" => ReturnPreference::Representation,
                        _ => prefer.return_,
                    }
                }
                "handling" => {
                    prefer.handling = match val.to_ascii_lowercase().as_str() {
                        "strict" => Handling::Strict,
                        "lenient" => Handling::Lenient,
                        _ => prefer.handling,
                    }
                }
                _ => {}
            }
        }
    }
    prefer
}

/// Parses a version from an ETag (`W/"3"`, `"3"`, or a bare `3` as some clients send in
/// Bundle `request.ifMatch`).
pub fn parse_etag_version(value: &str) -> Option<i64> {
    let v = value.trim();
    let v = v
        .strip_prefix("W/")
        .or_else(|| v.strip_prefix("w/"))
        .unwrap_or(v);
    let v = v.trim().trim_matches('"');
    let version: i64 = v.parse().ok()?;
    (version >= 1).then_some(version)
}

/// `If-Match` → the store precondition; `None` header → no precondition; `*` → no precondition.
pub fn parse_if_match(value: Option<&str>) -> Result<Precondition, FhirError> {
    match value.map(str::trim) {
        None | Some("") | Some("*") => Ok(Precondition::None),
        Some(v) => parse_etag_version(v)
            .map(Precondition::VersionIs)
            .ok_or_else(|| FhirError::bad_request("If-Match must be a version ETag like W/\"3\"")),
    }
}

/// The weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The media type of a `Content-Type` value, lower-cased and without parameters.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a `Content-Type` denotes FHIR JSON (resource bodies).
pub fn is_fhir_json_content_type(content_type: &str) -> bool {
    matches!(
        media_type(content_type).as_str(),
        "application/fhir+json" | "application/json" | "application/json+fhir"
    )
}

/// Requires a FHIR JSON `Content-Type` on a resource write.
pub fn require_fhir_json(content_type: Option<&str>) -> Result<(), FhirError> {
    match content_type {
        Some(ct) if is_fhir_json_content_type(ct) => Ok(()),
        Some(ct) => Err(FhirError::UnsupportedMediaType(format!(
            "Content-Type '{}' is not supported; use application/fhir+json",
            media_type(ct)
        ))),
        None => Err(FhirError::UnsupportedMediaType(
            "Content-Type is missing; use application/fhir+json".into(),
        )),
    }
}

/// Requires `application/json-patch+json` on PATCH.
pub fn require_json_patch(content_type: Option<&str>) -> Result<(), FhirError> {
    match content_type.map(media_type).as_deref() {
        Some("application/json-patch+json") => Ok(()),
        Some("application/fhir+json") | Some("application/json") => {
            Err(FhirError::UnsupportedMediaType(
                "FHIRPath Patch is not supported; use JSON Patch (application/json-patch+json)"
                    .into(),
            ))
        }
        Some(other) => Err(FhirError::UnsupportedMediaType(format!(
            "Content-Type '{other}' is not supported for PATCH; use application/json-patch+json"
        ))),
        None => Err(FhirError::UnsupportedMediaType(
            "Content-Type is missing; use application/json-patch+json".into(),
        )),
    }
}

/// The response media type a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseMediaType {
    #[default]
    FhirJson,
    Json,
}

impl ResponseMediaType {
    pub fn content_type(self) -> &'static str {
        match self {
            ResponseMediaType::FhirJson => "application/fhir+json; charset=utf-8",
            ResponseMediaType::Json => "application/json; charset=utf-8",
        }
    }
}

/// Negotiates the response format from `_format` (which wins) and `Accept`.
/// We only speak JSON: XML, Turtle or anything else explicitly asked for → 406.
pub fn negotiate_format(
    format_param: Option<&str>,
    accept: Option<&str>,
) -> Result<ResponseMediaType, FhirError> {
    if let Some(format) = format_param {
        // An unencoded `+` in a query string arrives as a space.
        let format = format.trim().replace(' ', "+").to_ascii_lowercase();
        let format = media_type(&format);
        return match format.as_str() {
            "json" | "application/fhir+json" | "fhir+json" | "application/json+fhir" => {
                Ok(ResponseMediaType::FhirJson)
            }
            "application/json" => Ok(ResponseMediaType::Json),
            other => Err(FhirError::NotAcceptable(format!(
                "_format '{other}' is not supported; this server speaks JSON only"
            ))),
        };
    }
    let Some(accept) = accept else {
        return Ok(ResponseMediaType::FhirJson);
    };
    let mut saw_any = false;
    let mut best: Option<ResponseMediaType> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if media.is_empty() {
            continue;
        }
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        if refused {
            continue;
        }
        saw_any = true;
        match media.as_str() {
            "application/fhir+json" | "application/json+fhir" => {
                return Ok(ResponseMediaType::FhirJson);
            }
            "application/json" => best = best.or(Some(ResponseMediaType::Json)),
            "*/*" | "application/*" => best = best.or(Some(ResponseMediaType::FhirJson)),
            _ => {}
        }
    }
    match best {
        Some(found) => Ok(found),
        None if !saw_any => Ok(ResponseMediaType::FhirJson),
        None => Err(FhirError::NotAcceptable(
            "none of the accepted media types is supported; this server speaks application/fhir+json".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parsing() {
        assert_eq!(
            parse_if_match(Some("W/\"3\"")).unwrap(),
            Precondition::VersionIs(3)
        );
        assert_eq!(
            parse_if_match(Some("\"12\"")).unwrap(),
            Precondition::VersionIs(12)
        );
        assert_eq!(
            parse_if_match(Some(" W/\"1\" ")).unwrap(),
            Precondition::VersionIs(1)
        );
        assert_eq!(parse_if_match(None).unwrap(), Precondition::None);
        assert_eq!(parse_if_match(Some("*")).unwrap(), Precondition::None);
        assert_eq!(parse_if_match(Some("W/\"x\"")).unwrap_err().status(), 400);
        assert_eq!(parse_if_match(Some("W/\"0\"")).unwrap_err().status(), 400);
        assert_eq!(
            parse_if_match(Some("W/\"99999999999999999999\""))
                .unwrap_err()
                .status(),
            400
        );
    }

    #[test]
    fn prefer_parsing() {
        assert_eq!(
            parse_prefer(["return=minimal"]).return_,
            ReturnPreference::Minimal
        );
        assert_eq!(
            parse_prefer(["return=OperationOutcome"]).return_,
            ReturnPreference::OperationOutcome
        );
        let p = parse_prefer(["handling=strict, return=representation"]);
        assert_eq!(p.handling, Handling::Strict);
        assert_eq!(p.return_, ReturnPreference::Representation);
        assert_eq!(
            parse_prefer(["respond-async", "return=bogus"]),
            Prefer::default()
        );
        assert_eq!(
            parse_prefer(["return=\"minimal\"; handling=strict"]).handling,
            Handling::Strict
        );
    }

    #[test]
    fn content_types() {
        assert!(require_fhir_json(Some("application/fhir+json; charset=utf-8")).is_ok());
        assert!(require_fhir_json(Some("Application/JSON")).is_ok());
        assert_eq!(
            require_fhir_json(Some("application/xml"))
                .unwrap_err()
                .status(),
            415
        );
        assert_eq!(require_fhir_json(None).unwrap_err().status(), 415);
        assert!(require_json_patch(Some("application/json-patch+json")).is_ok());
        assert_eq!(
            require_json_patch(Some("application/fhir+json"))
                .unwrap_err()
                .status(),
            415
        );
    }

    #[test]
    fn format_negotiation() {
        assert_eq!(
            negotiate_format(None, None).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(Some("json"), None).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(Some("application/fhir json"), None).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(Some("application/json"), None).unwrap(),
            ResponseMediaType::Json
        );
        assert_eq!(
            negotiate_format(Some("xml"), None).unwrap_err().status(),
            406
        );
        assert_eq!(
            negotiate_format(Some("application/fhir+xml"), None)
                .unwrap_err()
                .status(),
            406
        );
        assert_eq!(
            negotiate_format(None, Some("*/*")).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(None, Some("application/json")).unwrap(),
            ResponseMediaType::Json
        );
        assert_eq!(
            negotiate_format(None, Some("text/html,application/xhtml+xml,*/*;q=0.8")).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(None, Some("application/fhir+xml"))
                .unwrap_err()
                .status(),
            406
        );
        // What the HAPI client sends.
        let hapi = "application/fhir+xml;q=1.0, application/json+fhir;q=1.0, application/fhir+json;q=1.0, \
                    application/xml+fhir;q=0.9, application/json;q=0.9";
        assert_eq!(
            negotiate_format(None, Some(hapi)).unwrap(),
            ResponseMediaType::FhirJson
        );
        assert_eq!(
            negotiate_format(None, Some("application/fhir+json;q=0, application/json")).unwrap(),
            ResponseMediaType::Json
        );
        // `_format` overrides Accept.
        assert_eq!(
            negotiate_format(Some("json"), Some("application/fhir+xml")).unwrap(),
            ResponseMediaType::FhirJson
        );
    }
}

//! The forms a `Reference.reference` may take (R4 §2.3.0 "Literal references").

use super::primitives::{is_id, is_oid, is_uuid};
use crate::definitions::TypeTable;

/// `Err` carries the reason.
pub(crate) fn check(reference: &str, types: &TypeTable) -> Result<(), &'static str> {
    if reference.chars().any(char::is_whitespace) {
        return Err("a reference must not contain whitespace");
    }
    if let Some(local) = reference.strip_prefix('#') {
        // `#` alone points at the containing resource.
        return if local.is_empty() || is_id(local) {
            Ok(())
        } else {
            Err("a local reference must be '#' followed by a valid id")
        };
    }
    if reference.starts_with("urn:uuid:") {
        return if is_uuid(reference, true) {
            Ok(())
        } else {
            Err("not a valid urn:uuid reference")
        };
    }
    if reference.starts_with("urn:oid:") {
        return if is_oid(reference) {
            Ok(())
        } else {
            Err("not a valid urn:oid reference")
        };
    }
    if has_scheme(reference) {
        return Ok(()); // an absolute URL: the type and id are the remote server's business
    }
    // A conditional reference, resolved by the server in a transaction: `Patient?identifier=x|1`.
    if let Some((ty, query)) = reference.split_once('?') {
        return if types.concrete_resource(ty).is_none() {
            Err("a conditional reference must start with a known resource type")
        } else if query.is_empty() {
            Err("a conditional reference needs search criteria after '?'")
        } else {
            Ok(())
        };
    }
    let mut parts = reference.split('/');
    let (ty, id, history, version, extra) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    );
    let (Some(ty), Some(id)) = (ty, id) else {
        return Err("a relative reference must be Type/id");
    };
    if types.concrete_resource(ty).is_none() {
        return Err("the reference's resource type is not a known R4 resource type");
    }
    if !is_id(id) {
        return Err("the reference's id is not a valid id");
    }
    match (history, version, extra) {
        (None, _, _) => Ok(()),
        (Some("_history"), Some(v), None) if is_id(v) => Ok(()),
        _ => Err("a relative reference must be Type/id or Type/id/_history/version"),
    }
}

/// `scheme:rest` with an RFC 3986 scheme and a non-empty rest.
fn has_scheme(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::r4;

    #[test]
    fn reference_forms() {
        let t = &r4().types;
        for ok in [
            "Patient/123",
            "Patient/a.b-c",
            "Observation/1/_history/2",
            "http://example.org/fhir/Patient/1",
            "https://x",
            "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
            "urn:oid:1.2.3",
            "#",
            "#p1",
            "Patient?identifier=http://x|1",
        ] {
            assert_eq!(check(ok, t), Ok(()), "{ok}");
        }
        for bad in [
            "Patient",
            "Patient/",
            "Foo/1",
            "patient/1",
            "Patient/1/2",
            "Patient/1/_history",
            "Patient/1/_history/2/3",
            "Patient/a_b",
            "urn:uuid:123",
            "urn:oid:x",
            "#a b",
            "#a_b",
            "Patient?",
            "Foo?x=1",
            "Patient/1 ",
            "",
        ] {
            assert!(check(bad, t).is_err(), "{bad}");
        }
    }
}

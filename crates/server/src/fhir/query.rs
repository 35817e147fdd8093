//! Query strings: decoding into ordered `(name, value)` pairs and re-encoding for paging links.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Parses `a=1&b=x%7Cy` (form encoding: `+` is a space) into pairs, keeping order and repeats.
/// Empty segments are skipped; a name without `=` gets an empty value.
pub fn parse_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    percent_decode_str(&s).decode_utf8_lossy().into_owned()
}

/// Characters left unencoded in links we produce: unreserved plus a few that FHIR search
/// values use a lot and that are safe in a query component.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b':')
    .remove(b'|')
    .remove(b',')
    .remove(b'/');

/// Encodes pairs back into a query string.
pub fn encode_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .into_iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(n, QUERY_VALUE),
                utf8_percent_encode(v, QUERY_VALUE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The first value of parameter `name`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs = parse_pairs("identifier=http%3A%2F%2Fx%7C1&name=Jo+Ann&&flag&date=ge2020");
        assert_eq!(
            pairs,
            vec![
                ("identifier".to_string(), "http://x|1".to_string()),
                ("name".to_string(), "Jo Ann".to_string()),
                ("flag".to_string(), String::new()),
                ("date".to_string(), "ge2020".to_string()),
            ]
        );
        let encoded = encode_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        assert_eq!(
            encoded,
            "identifier=http://x|1&name=Jo%20Ann&flag=&date=ge2020"
        );
        assert_eq!(parse_pairs(&encoded), pairs);
        assert_eq!(first(&pairs, "name"), Some("Jo Ann"));
    }

    #[test]
    fn bad_percent_encoding_does_not_panic() {
        assert_eq!(
            parse_pairs("a=%ZZ%"),
            vec![("a".to_string(), "%ZZ%".to_string())]
        );
        assert_eq!(parse_pairs("a=%FF")[0].1, "\u{FFFD}");
    }
}

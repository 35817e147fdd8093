//! Full-text rows for `_text` (the narrative) and `_content` (every string of the resource).

use serde_json::Value;

use super::IndexEntry;

/// Text kept per resource and column: enough for any clinical note, bounded for the index.
const MAX_CHARS: usize = 64 * 1024;

/// Elements whose strings are identifiers or machine values, not content anyone searches words in.
const SKIPPED: &[&str] = &[
    "id",
    "reference",
    "system",
    "url",
    "fullUrl",
    "versionId",
    "lastUpdated",
    "profile",
    "div",
    "status",
    "resourceType",
    "data",
];

/// The full-text entry of a resource; `None` when it has no text at all.
pub fn fulltext_entry(resource: &Value) -> Option<IndexEntry> {
    let narrative = resource
        .get("text")
        .and_then(|t| t.get("div"))
        .and_then(Value::as_str)
        .map(strip_markup)
        .unwrap_or_default();
    let mut content = String::new();
    collect_strings(resource, &mut content);
    if !narrative.is_empty() {
        push_bounded(&mut content, &narrative);
    }
    if narrative.is_empty() && content.is_empty() {
        return None;
    }
    Some(IndexEntry::FullText { narrative, content })
}

fn push_bounded(out: &mut String, s: &str) {
    if out.len() >= MAX_CHARS {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    let room = MAX_CHARS - out.len();
    if s.len() <= room {
        out.push_str(s);
    } else {
        let mut end = room;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        out.push_str(&s[..end]);
    }
}

fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => push_bounded(out, s),
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if !SKIPPED.contains(&k.as_str()) && !k.starts_with('_') {
                    collect_strings(v, out);
                }
            }
        }
        _ => {}
    }
}

/// The text of an XHTML narrative: tags removed, the common entities decoded.
fn strip_markup(div: &str) -> String {
    let mut out = String::with_capacity(div.len().min(MAX_CHARS));
    let mut in_tag = false;
    for c in div.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
        if out.len() >= MAX_CHARS {
            break;
        }
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The words of a search value: its runs of letters and digits.
pub fn query_words(value: &str) -> Vec<String> {
    value
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The FTS5 query of a search value: its words, each quoted (so no FTS syntax from the client
/// reaches the engine), all required. `None` when the value has no word.
pub fn match_query(value: &str, column: Option<&str>) -> Option<String> {
    fts5_query(&query_words(value), column)
}

/// The FTS5 query of words: each quoted, all required, in `column` when given.
pub fn fts5_query(words: &[String], column: Option<&str>) -> Option<String> {
    let words: Vec<String> = words
        .iter()
        .map(|w| {
            let quoted = format!("\"{}\"", w.replace('"', "\"\""));
            match column {
                Some(col) => format!("{col} : {quoted}"),
                None => quoted,
            }
        })
        .collect();
    (!words.is_empty()).then(|| words.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn narrative_and_content() {
        let r = json!({"resourceType": "Condition", "id": "x",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Diabetes &amp; <b>Neuropathie</b></p></div>"},
            "code": {"text": "Typ-2-Diabetes", "coding": [{"system": "http://x", "code": "E11.9", "display": "Diabetes mellitus"}]},
            "subject": {"reference": "Patient/1"}});
        let Some(IndexEntry::FullText { narrative, content }) = fulltext_entry(&r) else {
            panic!("no entry");
        };
        assert_eq!(narrative, "Diabetes & Neuropathie");
        assert!(content.contains("Typ-2-Diabetes") && content.contains("Diabetes mellitus"));
        assert!(content.contains("Neuropathie"));
        assert!(!content.contains("Patient/1") && !content.contains("http://x"));
        assert!(fulltext_entry(&json!({"resourceType": "Basic", "id": "1"})).is_none());
    }

    #[test]
    fn queries_quote_every_word() {
        assert_eq!(
            match_query("heart failure", None).unwrap(),
            "\"heart\" AND \"failure\""
        );
        assert_eq!(
            match_query("x\" OR 1=1 --", Some("narrative")).unwrap(),
            "narrative : \"x\" AND narrative : \"OR\" AND narrative : \"1\" AND narrative : \"1\""
        );
        assert!(match_query(" ,; ", None).is_none());
        let long = "ä".repeat(MAX_CHARS);
        let mut out = String::new();
        push_bounded(&mut out, &long);
        assert!(out.len() <= MAX_CHARS);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = match_query(&s, Some("content"));
            let _ = strip_markup(&s);
        }
    }
}

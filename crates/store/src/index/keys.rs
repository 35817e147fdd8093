//! Hashed keys of the search index. Long values become 64-bit keys (as in HAPI and Blaze) so
//! index rows stay small and fixed-width; the query side hashes its values the same way.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use xxhash_rust::xxh3::xxh3_64;

/// The key of "no value" (e.g. a token without a system).
pub const NONE: i64 = 0;

/// The system of a token from a `code` element, whose code system is implied by its binding
/// (`Patient.gender`): such a token answers `code` and `system|code` searches. The generated
/// definitions do not carry bindings yet, so any system is accepted for these tokens.
pub const IMPLICIT_SYSTEM: i64 = 2;

/// Index strings longer than this are cut: prefix search on longer prefixes is post-filtered.
pub const MAX_STRING_CHARS: usize = 128;

pub fn hash(s: &str) -> i64 {
    match xxh3_64(s.as_bytes()) as i64 {
        // Keep NONE and IMPLICIT_SYSTEM free for their meanings.
        NONE | IMPLICIT_SYSTEM => 1,
        h => h,
    }
}

/// A 31-bit key for values from small, known sets (parameters, resource types, code systems):
/// SQLite stores it in 4 bytes instead of 8, and index rows carry several of them. Uniqueness
/// over all R4 parameters and types is checked by a test; a code-system collision alone cannot
/// produce a false match because the code keeps its full 64-bit hash.
pub fn short_hash(s: &str) -> i64 {
    match (xxh3_64(s.as_bytes()) >> 33) as i64 {
        h if h <= IMPLICIT_SYSTEM => h + IMPLICIT_SYSTEM + 1,
        h => h,
    }
}

/// The key of a search parameter of a resource type: parameters of different types never share rows.
pub fn param_key(resource_type: &str, code: &str) -> i64 {
    let mut buf = String::with_capacity(resource_type.len() + code.len() + 1);
    buf.push_str(resource_type);
    buf.push('.');
    buf.push_str(code);
    short_hash(&buf)
}

/// The key of derived rows of a parameter, which answer one modifier from the same index tables:
/// `text` (token `:text`, string rows of displays and texts), `of-type` (identifier type + value),
/// `below` (hierarchy ancestors of codes and URIs), `identifier` (reference `:identifier`),
/// `canonical` (quantities converted to UCUM canonical units).
pub fn derived_param_key(resource_type: &str, code: &str, facet: &str) -> i64 {
    short_hash(&format!("{resource_type}.{code}:{facet}"))
}

/// The key of a resource type in reference rows.
pub fn type_key(resource_type: &str) -> i64 {
    short_hash(resource_type)
}

/// The key of a code system (or unit system) in token and quantity rows.
pub fn system_key(system: &str) -> i64 {
    short_hash(system)
}

/// Case- and accent-insensitive form for string search (`Müller` → `muller`), whitespace folded.
pub fn normalize_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for c in s.nfd().filter(|c| !is_combining_mark(*c)) {
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
            continue;
        }
        last_space = false;
        for l in c.to_lowercase() {
            out.push(l);
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    truncate_chars(out, MAX_STRING_CHARS)
}

pub fn truncate_chars(mut s: String, max: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_accents_and_space() {
        assert_eq!(
            normalize_string("  Müller-Lüdenscheidt  Jörg "),
            "muller-ludenscheidt jorg"
        );
        assert_eq!(normalize_string("ÉCOLE"), "ecole");
        assert_eq!(normalize_string(&"a".repeat(500)).len(), MAX_STRING_CHARS);
    }

    #[test]
    fn short_keys_are_unique_over_r4() {
        let defs = medicus_fhir::r4();
        let mut params = std::collections::HashSet::new();
        let mut types = std::collections::HashSet::new();
        for rt in defs.resource_types() {
            assert!(types.insert(type_key(rt)), "type key collision: {rt}");
            for p in defs.search_params(rt) {
                let k = param_key(rt, p.code);
                assert!(k > IMPLICIT_SYSTEM && k < (1 << 31));
                assert!(params.insert(k), "parameter key collision: {rt}.{}", p.code);
                for facet in ["text", "of-type", "below", "identifier", "canonical"] {
                    let k = derived_param_key(rt, p.code, facet);
                    assert!(k > IMPLICIT_SYSTEM && k < (1 << 31));
                    assert!(
                        params.insert(k),
                        "derived key collision: {rt}.{}:{facet}",
                        p.code
                    );
                }
            }
        }
    }

    #[test]
    fn hash_never_none() {
        assert_ne!(hash(""), NONE);
        assert_ne!(
            param_key("Patient", "name"),
            param_key("Practitioner", "name")
        );
    }
}

//! `encode`/`decode` (base64, urlbase64, hex) and `escape`/`unescape` (html, json).

use crate::eval::functions::FnName;

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Applies the codec function `f` in `format` to `s`; `None` for unknown formats or bad input.
pub(crate) fn apply(f: FnName, s: &str, format: &str) -> Option<String> {
    match (f, format) {
        (FnName::Encode, "base64") => Some(base64_encode(s.as_bytes(), STD)),
        (FnName::Encode, "urlbase64") => Some(base64_encode(s.as_bytes(), URL)),
        (FnName::Encode, "hex") => Some(s.bytes().map(|b| format!("{b:02x}")).collect()),
        (FnName::Decode, "base64") => String::from_utf8(base64_decode(s, STD)?).ok(),
        (FnName::Decode, "urlbase64") => String::from_utf8(base64_decode(s, URL)?).ok(),
        (FnName::Decode, "hex") => String::from_utf8(hex_decode(s)?).ok(),
        (FnName::Escape, "html") => Some(escape_html(s)),
        (FnName::Escape, "json") => Some(escape_json(s)),
        (FnName::Unescape, "html") => Some(unescape_html(s)),
        (FnName::Unescape, "json") => unescape_json(s),
        _ => None,
    }
}

fn base64_encode(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str, alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = alphabet.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_html(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn escape_json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn unescape_json(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(next) = chars.next() else {
            out.push('\\');
            break;
        };
        match next {
            '"' | '\\' | '/' => out.push(next),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            // Not a JSON escape: keep it as written.
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for (f, g, fmt) in [
            (FnName::Encode, FnName::Decode, "base64"),
            (FnName::Encode, FnName::Decode, "urlbase64"),
            (FnName::Encode, FnName::Decode, "hex"),
            (FnName::Escape, FnName::Unescape, "html"),
            (FnName::Escape, FnName::Unescape, "json"),
        ] {
            for s in [
                "",
                "t",
                "te",
                "tes",
                "test",
                "subjects?_d",
                "\"1<2\" & 'x'\n",
            ] {
                let enc = apply(f, s, fmt).unwrap_or_default();
                assert_eq!(
                    apply(g, &enc, fmt).as_deref(),
                    Some(s),
                    "{fmt} {s:?} -> {enc:?}"
                );
            }
        }
        assert_eq!(
            apply(FnName::Encode, "test", "base64").as_deref(),
            Some("dGVzdA==")
        );
        assert_eq!(
            apply(FnName::Encode, "subjects?_d", "urlbase64").as_deref(),
            Some("c3ViamVjdHM_X2Q=")
        );
        assert_eq!(
            apply(FnName::Encode, "test", "hex").as_deref(),
            Some("74657374")
        );
        assert_eq!(apply(FnName::Decode, "zz", "hex"), None);
    }
}

//! Tokeniser for FHIRPath source text.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// Identifier; `quoted` when written with backticks (never a keyword then).
    Ident {
        name: String,
        quoted: bool,
    },
    Str(String),
    /// Integer or decimal literal text.
    Number(String),
    /// `@2014-01-25`, `@2014-01-25T14:30`, `@T14:30` (text without `@`, with the `T` for times).
    DateTime(String),
    /// `%name`, `%'string'` or %`name`.
    External(String),
    /// `$this`, `$index`, `$total`.
    Special(String),
    Sym(&'static str),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

fn err(pos: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        position: pos,
        message: message.into(),
    }
}

const SYMBOLS: &[&str] = &[
    "<=", ">=", "!=", "!~", ".", ",", "(", ")", "[", "]", "{", "}", "+", "-", "*", "/", "&", "|",
    "=", "~", "<", ">",
];

pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") {
            i = src[i..].find('\n').map_or(bytes.len(), |n| i + n);
            continue;
        }
        if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .ok_or_else(|| err(i, "unterminated comment"))?;
            i += 2 + end + 2;
            continue;
        }
        let start = i;
        let tok = match c {
            b'\'' => {
                let (s, next) = read_quoted(src, i, b'\'')?;
                i = next;
                Tok::Str(s)
            }
            b'`' => {
                let (s, next) = read_quoted(src, i, b'`')?;
                i = next;
                Tok::Ident {
                    name: s,
                    quoted: true,
                }
            }
            b'0'..=b'9' => {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                // Only take the point when a digit follows: `1.abs()` is a call on 1.
                if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                let text = src[i..j].to_string();
                // `1L` long literal: accepted and treated as an integer.
                if j < bytes.len() && bytes[j] == b'L' && !text.contains('.') {
                    j += 1;
                }
                i = j;
                Tok::Number(text)
            }
            b'@' => {
                let j = scan_temporal(bytes, i + 1);
                let text = &src[i + 1..j];
                if text.is_empty() {
                    return Err(err(i, "invalid date/time literal"));
                }
                i = j;
                Tok::DateTime(text.to_string())
            }
            b'%' => {
                let next = bytes.get(i + 1).copied();
                match next {
                    Some(b'\'') => {
                        let (s, n) = read_quoted(src, i + 1, b'\'')?;
                        i = n;
                        Tok::External(s)
                    }
                    Some(b'`') => {
                        let (s, n) = read_quoted(src, i + 1, b'`')?;
                        i = n;
                        Tok::External(s)
                    }
                    _ => {
                        let n = ident_len(&src[i + 1..]);
                        if n == 0 {
                            return Err(err(i, "expected a name after '%'"));
                        }
                        // Names like `%vs-name` and `%ext-name` are allowed to contain '-'.
                        let mut j = i + 1 + n;
                        while j < bytes.len()
                            && bytes[j] == b'-'
                            && bytes.get(j + 1).is_some_and(|b| b.is_ascii_alphanumeric())
                        {
                            j += 1 + src[j + 1..]
                                .bytes()
                                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                                .count();
                        }
                        let name = src[i + 1..j].to_string();
                        i = j;
                        Tok::External(name)
                    }
                }
            }
            b'$' => {
                let n = ident_len(&src[i + 1..]);
                let name = &src[i + 1..i + 1 + n];
                if !matches!(name, "this" | "index" | "total") {
                    return Err(err(i, format!("unknown special variable ${name}")));
                }
                i += 1 + n;
                Tok::Special(name.to_string())
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let n = ident_len(&src[i..]);
                let name = src[i..i + n].to_string();
                i += n;
                Tok::Ident {
                    name,
                    quoted: false,
                }
            }
            _ => {
                let Some(sym) = SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) else {
                    let ch = src[i..].chars().next().unwrap_or('?');
                    return Err(err(i, format!("unexpected character '{ch}'")));
                };
                i += sym.len();
                Tok::Sym(sym)
            }
        };
        out.push(Token { tok, pos: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
    });
    Ok(out)
}

/// Length of a date/time literal after `@`, following the grammar exactly so that operators
/// written without spaces (`@2015-01-01+1 'd'`) are not swallowed:
/// `YYYY[-MM[-DD]][T[hh[:mm[:ss[.fff]]]][Z|±hh:mm]]` or `Thh[:mm[:ss[.fff]]]`.
fn scan_temporal(b: &[u8], start: usize) -> usize {
    let digits =
        |p: usize, n: usize| p + n <= b.len() && b[p..p + n].iter().all(u8::is_ascii_digit);
    let time = |mut p: usize| {
        if !digits(p, 2) {
            return p;
        }
        p += 2;
        if b.get(p) == Some(&b':') && digits(p + 1, 2) {
            p += 3;
            if b.get(p) == Some(&b':') && digits(p + 1, 2) {
                p += 3;
                if b.get(p) == Some(&b'.') && digits(p + 1, 1) {
                    p += 1;
                    while digits(p, 1) {
                        p += 1;
                    }
                }
            }
        }
        p
    };
    let mut p = start;
    if b.get(p) == Some(&b'T') {
        return time(p + 1);
    }
    if !digits(p, 4) {
        return p;
    }
    p += 4;
    if b.get(p) == Some(&b'-') && digits(p + 1, 2) {
        p += 3;
        if b.get(p) == Some(&b'-') && digits(p + 1, 2) {
            p += 3;
        }
    }
    if b.get(p) == Some(&b'T') {
        p += 1;
        if digits(p, 2) {
            p = time(p);
            match b.get(p) {
                Some(b'Z') => p += 1,
                Some(b'+' | b'-')
                    if digits(p + 1, 2) && b.get(p + 3) == Some(&b':') && digits(p + 4, 2) =>
                {
                    p += 6;
                }
                _ => {}
            }
        }
    }
    p
}

fn ident_len(s: &str) -> usize {
    s.bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count()
}

/// Reads a quoted string or backticked identifier starting at `start` (the quote), handling
/// FHIRPath escapes. Returns the unescaped text and the index after the closing quote.
fn read_quoted(src: &str, start: usize, quote: u8) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let pos = start + 1 + off;
        if ch as u32 == u32::from(quote) {
            return Ok((out, pos + 1));
        }
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        let Some((_, esc)) = chars.next() else { break };
        match esc {
            '\'' | '"' | '`' | '\\' | '/' => out.push(esc),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                let mut code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
                // A UTF-16 high surrogate must be followed by `\uXXXX` with the low half.
                if let Some(high) = code.filter(|c| (0xD800..0xDC00).contains(c)) {
                    let rest: String = chars.by_ref().take(6).map(|(_, c)| c).collect();
                    let low = rest
                        .strip_prefix("\\u")
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                        .filter(|l| (0xDC00..0xE000).contains(l));
                    code = low.map(|low| 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00));
                }
                let Some(ch) = code.and_then(char::from_u32) else {
                    return Err(err(pos, "invalid \\u escape"));
                };
                out.push(ch);
            }
            other => return Err(err(pos, format!("invalid escape \\{other}"))),
        }
    }
    Err(err(start, "unterminated string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_literals_and_symbols() {
        assert_eq!(
            toks("1.5 'a\\'b' @2014-01T `x y` %ucum $this <= 1.abs()"),
            vec![
                Tok::Number("1.5".into()),
                Tok::Str("a'b".into()),
                Tok::DateTime("2014-01T".into()),
                Tok::Ident {
                    name: "x y".into(),
                    quoted: true
                },
                Tok::External("ucum".into()),
                Tok::Special("this".into()),
                Tok::Sym("<="),
                Tok::Number("1".into()),
                Tok::Sym("."),
                Tok::Ident {
                    name: "abs".into(),
                    quoted: false
                },
                Tok::Sym("("),
                Tok::Sym(")"),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn comments_and_errors() {
        assert_eq!(toks("2 // x\n/* y */ + 2").len(), 4);
        assert!(tokenize("2 /* open").is_err());
        assert!(tokenize("'open").is_err());
        assert!(tokenize("#").is_err());
        assert_eq!(
            toks("%`vs-x`"),
            vec![Tok::External("vs-x".into()), Tok::Eof]
        );
        assert_eq!(
            toks("%vs-administrative-gender"),
            vec![Tok::External("vs-administrative-gender".into()), Tok::Eof]
        );
        assert_eq!(toks("'\\u0041'"), vec![Tok::Str("A".into()), Tok::Eof]);
    }
}

#[cfg(test)]
mod temporal_scan_tests {
    use super::*;

    fn first(s: &str) -> Tok {
        tokenize(s).map(|t| t[0].tok.clone()).unwrap_or(Tok::Eof)
    }

    #[test]
    fn date_literals_stop_at_the_grammar() {
        assert_eq!(
            first("@2015-01-01+1 'd'"),
            Tok::DateTime("2015-01-01".into())
        );
        assert_eq!(
            first("@2015-01-01T10:00:00.123+10:00.x"),
            Tok::DateTime("2015-01-01T10:00:00.123+10:00".into())
        );
        assert_eq!(first("@2015T"), Tok::DateTime("2015T".into()));
        assert_eq!(first("@T10:30-1"), Tok::DateTime("T10:30".into()));
        assert_eq!(
            first("@2015-02-04T14:34:28Z"),
            Tok::DateTime("2015-02-04T14:34:28Z".into())
        );
        assert!(tokenize("@x").is_err());
    }
}

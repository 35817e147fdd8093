//! String functions, including regex matching and the `encode`/`escape` codecs.

use crate::eval::value::{Val, val};
use crate::eval::{Coll, err};
use crate::{EvalError, Item};

use super::{Call, FnName, boolean, input_str};

pub(super) fn call<'a>(
    c: &Call<'_, 'a, '_>,
    f: FnName,
    input: &[Item<'a>],
) -> Result<Coll<'a>, EvalError> {
    use FnName as F;
    let func = c.func;
    Ok(match f {
        F::IndexOf | F::StartsWith | F::EndsWith | F::Contains | F::LastIndexOf => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let Some(arg) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            match f {
                F::IndexOf => {
                    let idx = s
                        .find(arg.as_str())
                        .map_or(-1, |b| s[..b].chars().count() as i64);
                    vec![Item::Integer(idx)]
                }
                F::LastIndexOf => {
                    let idx = s
                        .rfind(arg.as_str())
                        .map_or(-1, |b| s[..b].chars().count() as i64);
                    vec![Item::Integer(idx)]
                }
                F::StartsWith => boolean(s.starts_with(arg.as_str())),
                F::EndsWith => boolean(s.ends_with(arg.as_str())),
                _ => boolean(s.contains(arg.as_str())),
            }
        }
        F::Substring => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let Some(start) = c.int_arg(0)? else {
                return Ok(Vec::new());
            };
            let len = c.int_arg(1)?;
            let n = s.chars().count() as i64;
            if start < 0 || start >= n {
                return Ok(Vec::new());
            }
            let take = len.map_or(n, |l| l.max(0));
            let sub: String = s
                .chars()
                .skip(start as usize)
                .take(usize::try_from(take).unwrap_or(0))
                .collect();
            vec![Item::String(sub)]
        }
        F::Upper | F::Lower | F::Trim | F::Length | F::ToChars => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            match f {
                F::Upper => vec![Item::String(s.to_uppercase())],
                F::Lower => vec![Item::String(s.to_lowercase())],
                F::Trim => vec![Item::String(s.trim().to_string())],
                F::Length => vec![Item::Integer(s.chars().count() as i64)],
                _ => s.chars().map(|ch| Item::String(ch.to_string())).collect(),
            }
        }
        F::Replace => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let (Some(pat), Some(rep)) = (c.str_arg(0)?, c.str_arg(1)?) else {
                return Ok(Vec::new());
            };
            vec![Item::String(s.replace(pat.as_str(), &rep))]
        }
        F::Matches | F::ReplaceMatches | F::MatchesFull => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let compiled;
            let re = match &func.regex {
                Some(re) => re.as_ref(),
                None => {
                    let Some(p) = c.str_arg(0)? else {
                        return Ok(Vec::new());
                    };
                    let flags = if f == F::ReplaceMatches {
                        None
                    } else {
                        c.str_arg(1)?
                    };
                    compiled = crate::parser::compile_regex(
                        &p,
                        f == F::MatchesFull,
                        flags.as_deref().unwrap_or(""),
                    )
                    .map_err(err)?;
                    &compiled
                }
            };
            if matches!(f, F::Matches | F::MatchesFull) {
                boolean(re.is_match(&s))
            } else {
                let Some(rep) = c.str_arg(1)? else {
                    return Ok(Vec::new());
                };
                if re.as_str().is_empty() {
                    // An empty pattern would match between every character; FHIRPath leaves
                    // the input unchanged.
                    vec![Item::String(s.into_owned())]
                } else {
                    vec![Item::String(re.replace_all(&s, rep.as_str()).into_owned())]
                }
            }
        }
        F::Split => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let Some(sep) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            s.split(sep.as_str())
                .map(|p| Item::String(p.to_string()))
                .collect()
        }
        F::Join => {
            if input.is_empty() {
                return Ok(Vec::new());
            }
            let sep = c.str_arg(0)?.unwrap_or_default();
            let mut parts = Vec::with_capacity(input.len());
            for item in input {
                match val(item) {
                    Some(Val::Str(s)) => parts.push(s.into_owned()),
                    // Primitives with only extensions have no text to join.
                    None => {}
                    _ => return Err(err("join() expects strings")),
                }
            }
            vec![Item::String(parts.join(&sep))]
        }
        F::Encode | F::Decode | F::Escape | F::Unescape => {
            let Some(s) = input_str(input, f)? else {
                return Ok(Vec::new());
            };
            let Some(format) = c.str_arg(0)? else {
                return Ok(Vec::new());
            };
            match crate::codec::apply(f, &s, &format) {
                Some(out) => vec![Item::String(out)],
                // Malformed input to decode() is an error; an unknown format is simply empty.
                None if f == F::Decode
                    && matches!(format.as_str(), "base64" | "urlbase64" | "hex") =>
                {
                    return Err(err(format!("decode(): input is not valid {format}")));
                }
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    })
}

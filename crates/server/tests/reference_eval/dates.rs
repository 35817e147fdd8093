//! FHIR date, dateTime and instant text as the interval of microseconds its precision covers
//! (FHIR R4 search §3.1.1.4.3: "2013-01-14" is the whole day). Written from the spec, not
//! shared with the store: values without a time zone are UTC (medicus documents this choice).

/// An inclusive interval of microseconds since the Unix epoch; open ends are `i64::MIN`/`MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub lo: i64,
    pub hi: i64,
}

const US_PER_SEC: i64 = 1_000_000;
const US_PER_DAY: i64 = 86_400 * US_PER_SEC;

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // Days since 1970-01-01 in the proleptic Gregorian calendar.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn num(s: &str, len: usize) -> Option<i64> {
    (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The interval a FHIR date/dateTime/instant (or a date search value without prefix) covers.
pub fn parse(s: &str) -> Option<Range> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.split('-');
    let y = num(parts.next()?, 4)?;
    let m = match parts.next() {
        Some(p) => Some(num(p, 2)?),
        None => None,
    };
    let d = match parts.next() {
        Some(p) => Some(num(p, 2)?),
        None => None,
    };
    if parts.next().is_some() {
        return None;
    }
    if let Some(m) = m
        && !(1..=12).contains(&m)
    {
        return None;
    }
    if let (Some(m), Some(d)) = (m, d)
        && !(1..=days_in_month(y, m)).contains(&d)
    {
        return None;
    }
    let Some(time) = time else {
        let (lo, next) = match (m, d) {
            (None, _) => (days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1)),
            (Some(m), None) => {
                let lo = days_from_civil(y, m, 1);
                (lo, lo + days_in_month(y, m))
            }
            (Some(m), Some(d)) => {
                let lo = days_from_civil(y, m, d);
                (lo, lo + 1)
            }
        };
        return Some(Range {
            lo: lo * US_PER_DAY,
            hi: next * US_PER_DAY - 1,
        });
    };
    let (m, d) = (m?, d?);
    // Time zone: Z, +hh:mm, -hh:mm, or none (UTC).
    let (clock, offset_s) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, tz) = time.split_at(i);
        let sign = if tz.starts_with('-') { -1 } else { 1 };
        let (hh, mm) = tz[1..].split_once(':')?;
        let (hh, mm) = (num(hh, 2)?, num(mm, 2)?);
        if hh > 14 || mm > 59 {
            return None;
        }
        (c, sign * (hh * 3600 + mm * 60))
    } else {
        (time, 0)
    };
    let mut fields = clock.split(':');
    let hh = num(fields.next()?, 2)?;
    let mi = num(fields.next()?, 2)?;
    let sec = fields.next();
    if fields.next().is_some() || hh > 23 || mi > 59 {
        return None;
    }
    let base =
        days_from_civil(y, m, d) * US_PER_DAY + (hh * 3600 + mi * 60 - offset_s) * US_PER_SEC;
    let Some(sec) = sec else {
        return Some(Range {
            lo: base,
            hi: base + 60 * US_PER_SEC - 1,
        });
    };
    let (whole, frac) = match sec.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (sec, None),
    };
    let ss = num(whole, 2)?;
    if ss > 59 {
        return None;
    }
    let lo = base + ss * US_PER_SEC;
    let Some(frac) = frac else {
        return Some(Range {
            lo,
            hi: lo + US_PER_SEC - 1,
        });
    };
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The fraction's digits give the precision; beyond microseconds the interval is one µs.
    let digits = frac.len().min(6);
    let unit = 10i64.pow(6 - digits as u32);
    let value: i64 = frac[..digits].parse().ok()?;
    let lo = lo + value * unit;
    Some(Range {
        lo,
        hi: lo + unit - 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_ranges() {
        let y = parse("2020").unwrap();
        assert_eq!(y.lo, days_from_civil(2020, 1, 1) * US_PER_DAY);
        assert_eq!(y.hi + 1, days_from_civil(2021, 1, 1) * US_PER_DAY);
        let f = parse("2020-02").unwrap();
        assert_eq!((f.hi + 1 - f.lo) / US_PER_DAY, 29);
        let t = parse("2020-01-01T01:00:00+01:00").unwrap();
        assert_eq!(t.lo, y.lo);
        assert_eq!(t.hi - t.lo, US_PER_SEC - 1);
        let ms = parse("2020-01-01T00:00:00.250Z").unwrap();
        assert_eq!((ms.lo - y.lo, ms.hi - ms.lo), (250_000, 999));
        assert!(parse("2020-13").is_none() && parse("2021-02-29").is_none());
        assert!(parse("2020-01-01T24:00:00Z").is_none());
    }
}

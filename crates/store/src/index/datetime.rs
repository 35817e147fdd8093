//! FHIR date/dateTime/instant text to an inclusive range of epoch milliseconds.
//!
//! A FHIR date stands for the whole interval its precision covers: `2020` is all of 2020,
//! `2020-03-01T10:00` is the whole minute. Search compares these intervals, so both the index and
//! the query keep the pair (low, high). Values without a time zone are taken as UTC.

/// Inclusive interval in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MillisRange {
    pub lo: i64,
    pub hi: i64,
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a FHIR date, dateTime or instant into the interval it covers.
pub fn parse_range(s: &str) -> Option<MillisRange> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut parts = date.splitn(3, '-');
    let ys = parts.next()?;
    if ys.len() != 4 {
        return None;
    }
    let y = i64::from(digits(ys)?);
    let month = parts.next();
    let day = parts.next();
    let Some(ms) = month else {
        let lo = days_from_civil(y, 1, 1) * MS_PER_DAY;
        let hi = days_from_civil(y + 1, 1, 1) * MS_PER_DAY - 1;
        return time.is_none().then_some(MillisRange { lo, hi });
    };
    if ms.len() != 2 {
        return None;
    }
    let m = digits(ms)?;
    if !(1..=12).contains(&m) {
        return None;
    }
    let Some(ds) = day else {
        let lo = days_from_civil(y, m, 1) * MS_PER_DAY;
        let hi = lo + i64::from(days_in_month(y, m)) * MS_PER_DAY - 1;
        return time.is_none().then_some(MillisRange { lo, hi });
    };
    if ds.len() != 2 {
        return None;
    }
    let d = digits(ds)?;
    if d == 0 || d > days_in_month(y, m) {
        return None;
    }
    let day_start = days_from_civil(y, m, d) * MS_PER_DAY;
    let Some(time) = time else {
        return Some(MillisRange {
            lo: day_start,
            hi: day_start + MS_PER_DAY - 1,
        });
    };
    parse_time(time).map(|(offset_ms, len_ms)| {
        let lo = day_start + offset_ms;
        MillisRange {
            lo,
            hi: lo + len_ms - 1,
        }
    })
}

/// Parses `hh:mm[:ss[.fff…]][Z|±hh:mm]` into (ms since midnight UTC, length of the precision in ms).
fn parse_time(t: &str) -> Option<(i64, i64)> {
    let (clock, zone_ms) = split_zone(t)?;
    let mut it = clock.splitn(3, ':');
    let h = digits(it.next().filter(|s| s.len() == 2)?)?;
    let mi = digits(it.next().filter(|s| s.len() == 2)?)?;
    if h > 23 || mi > 59 {
        return None;
    }
    let mut ms = (i64::from(h) * 3600 + i64::from(mi) * 60) * 1000;
    let len = match it.next() {
        None => 60_000,
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            if whole.len() != 2 {
                return None;
            }
            let s = digits(whole)?;
            if s > 60 {
                return None;
            }
            ms += i64::from(s.min(59)) * 1000;
            match frac {
                None => 1000,
                Some(f) => {
                    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let first3: String = f.chars().chain("000".chars()).take(3).collect();
                    ms += i64::from(digits(&first3)?);
                    if f.len() >= 3 {
                        1
                    } else {
                        10_i64.pow(3 - f.len() as u32)
                    }
                }
            }
        }
    };
    Some((ms - zone_ms, len))
}

/// Splits off a time zone suffix and returns its offset from UTC in ms.
fn split_zone(t: &str) -> Option<(&str, i64)> {
    if let Some(c) = t.strip_suffix('Z') {
        return Some((c, 0));
    }
    if let Some(pos) = t.rfind(['+', '-']) {
        let (clock, zone) = t.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = zone[1..].split_once(':')?;
        if zh.len() != 2 || zm.len() != 2 {
            return None;
        }
        let (zh, zm) = (digits(zh)?, digits(zm)?);
        if zh > 14 || zm > 59 {
            return None;
        }
        return Some((clock, sign * (i64::from(zh) * 60 + i64::from(zm)) * 60_000));
    }
    Some((t, 0))
}

/// Renders epoch microseconds as a FHIR instant (UTC, microsecond precision trimmed to millis
/// when the sub-millisecond part is zero).
pub fn format_instant_us(us: i64) -> String {
    let days = us.div_euclid(86_400_000_000);
    let rem = us.rem_euclid(86_400_000_000);
    let (y, m, d) = civil_from_days(days);
    let secs = rem / 1_000_000;
    let frac = rem % 1_000_000;
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac % 1000 == 0 {
        format!("{base}.{:03}Z", frac / 1000)
    } else {
        format!("{base}.{frac:06}Z")
    }
}

/// Renders epoch microseconds as an HTTP date (RFC 7231 IMF-fixdate) for `Last-Modified`.
pub fn format_http_date_us(us: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = us.div_euclid(86_400_000_000);
    let secs = us.rem_euclid(86_400_000_000) / 1_000_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {d:02} {} {y:04} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_month_day_ranges() {
        let y = parse_range("2020").unwrap();
        assert_eq!(y.lo, 1_577_836_800_000);
        assert_eq!(y.hi, 1_609_459_200_000 - 1);
        let m = parse_range("2020-02").unwrap();
        assert_eq!(m.hi - m.lo + 1, 29 * MS_PER_DAY);
        let d = parse_range("2020-02-29").unwrap();
        assert_eq!(d.hi - d.lo + 1, MS_PER_DAY);
        assert!(parse_range("2021-02-29").is_none());
        assert!(parse_range("2020-13").is_none());
        assert!(parse_range("20").is_none());
    }

    #[test]
    fn times_and_zones() {
        let a = parse_range("2020-01-01T10:00:00Z").unwrap();
        let b = parse_range("2020-01-01T12:00:00+02:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.hi - a.lo, 999);
        let ms = parse_range("2020-01-01T10:00:00.123Z").unwrap();
        assert_eq!(ms.lo - a.lo, 123);
        assert_eq!(ms.lo, ms.hi);
        let minute = parse_range("2020-01-01T10:00").unwrap();
        assert_eq!(minute.hi - minute.lo, 59_999);
        assert!(parse_range("2020-01-01T25:00:00Z").is_none());
        assert!(parse_range("2020-01-01T10:00:00+2").is_none());
    }

    #[test]
    fn instant_formatting_round_trips() {
        let us = 1_577_872_800_123_000;
        let s = format_instant_us(us);
        assert_eq!(s, "2020-01-01T10:00:00.123Z");
        assert_eq!(parse_range(&s).unwrap().lo * 1000, us);
        assert_eq!(format_http_date_us(us), "Wed, 01 Jan 2020 10:00:00 GMT");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_range(&s);
        }

        #[test]
        fn civil_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            proptest::prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}

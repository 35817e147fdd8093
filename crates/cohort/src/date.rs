//! Calendar days as integers (days since 1970-01-01), enough for time restrictions and ages.
//! FHIR dates and dateTimes are read by their calendar date as written (the local date of the
//! record): a time restriction names days, not instants.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day number.
pub fn civil_from_days(z: i32) -> (i32, u32, u32) {
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

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn num(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A full date `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<i32> {
    let (a, b) = parse_partial(s)?;
    (a == b && s.len() == 10).then_some(a)
}

/// The first and last day a FHIR date or dateTime (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or with a
/// time) covers.
pub fn parse_partial(s: &str) -> Option<(i32, i32)> {
    let date = s.get(..s.find('T').unwrap_or(s.len()))?;
    let mut parts = date.split('-');
    let y = parts.next().filter(|p| p.len() == 4).and_then(num)? as i32;
    let m = match parts.next() {
        None => None,
        Some(p) if p.len() == 2 => Some(num(p).filter(|m| (1..=12).contains(m))?),
        Some(_) => return None,
    };
    let d = match parts.next() {
        None => None,
        Some(p) if p.len() == 2 => Some(num(p)?),
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    match (m, d) {
        (None, _) => Some((days_from_civil(y, 1, 1), days_from_civil(y, 12, 31))),
        (Some(m), None) => Some((
            days_from_civil(y, m, 1),
            days_from_civil(y, m, days_in_month(y, m)),
        )),
        (Some(m), Some(d)) => {
            if d == 0 || d > days_in_month(y, m) {
                return None;
            }
            let day = days_from_civil(y, m, d);
            Some((day, day))
        }
    }
}

/// Whole years (or months, weeks, days by `unit`) from `birth` to `today`, as a person's age.
pub fn age_in(unit: AgeUnit, birth: i32, today: i32) -> f64 {
    match unit {
        AgeUnit::Days => f64::from(today - birth),
        AgeUnit::Weeks => f64::from((today - birth).div_euclid(7)),
        AgeUnit::Months | AgeUnit::Years => {
            let (by, bm, bd) = civil_from_days(birth);
            let (ty, tm, td) = civil_from_days(today);
            let mut months = (ty - by) * 12 + tm as i32 - bm as i32;
            if td < bd {
                months -= 1;
            }
            if unit == AgeUnit::Years {
                f64::from(months.div_euclid(12))
            } else {
                f64::from(months)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AgeUnit {
    Years,
    Months,
    Weeks,
    Days,
}

/// Today's day number from the system clock (UTC).
pub fn today() -> i32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (secs / 86_400) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_partials() {
        for z in [-800_000, -1, 0, 1, 19_000, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("2021-02-29"), None);
        assert!(parse_date("2024-02-29").is_some());
        assert_eq!(parse_date("2021"), None);
        let (a, b) = parse_partial("2021").unwrap();
        assert_eq!(b - a, 364);
        let (a, b) = parse_partial("2024-02").unwrap();
        assert_eq!(b - a, 28);
        let (a, b) = parse_partial("2013-04-02T10:30:10+01:00").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_partial("13-04-02"), None);
    }

    #[test]
    fn age_counts_whole_years() {
        let b = parse_date("2000-06-15").unwrap();
        assert_eq!(
            age_in(AgeUnit::Years, b, parse_date("2018-06-14").unwrap()),
            17.0
        );
        assert_eq!(
            age_in(AgeUnit::Years, b, parse_date("2018-06-15").unwrap()),
            18.0
        );
        assert_eq!(
            age_in(AgeUnit::Months, b, parse_date("2001-06-14").unwrap()),
            11.0
        );
    }
}

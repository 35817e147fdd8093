//! Calendar days: the precision at which the TORCH algorithm compares consent periods.

use std::fmt;

/// A calendar day, counted from 1970-01-01 (day 0) in the proleptic Gregorian calendar.
///
/// An integer rather than a date struct: consent evaluation compares and subtracts periods for
/// millions of patients, and a day number makes that plain integer arithmetic.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Day(pub i32);

impl Day {
    /// The earliest day any period can start: open starts and the retrospective extension
    /// (TORCH moves a retro-extended start to 1900-01-01).
    pub const MIN: Day = Day(i32::MIN / 2);
    /// The latest day any period can end: open ends.
    pub const MAX: Day = Day(i32::MAX / 2);

    /// The day of a valid civil date; `None` for an impossible one (month 13, 30 February).
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if !(-100_000..=100_000).contains(&year) {
            return None;
        }
        Some(Day(days_from_civil(year, month, day)))
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The day `n` days later (earlier for a negative `n`), saturating at [`Day::MIN`]/[`Day::MAX`].
    pub fn plus(self, n: i32) -> Day {
        Day(self.0.saturating_add(n).clamp(Day::MIN.0, Day::MAX.0))
    }

    /// The day of a FHIR `date`, `dateTime` or `instant` with at least day precision (the local
    /// date as written, as HAPI reads it for TORCH); `None` for a partial date or anything else.
    pub fn parse_fhir(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        if b.len() > 10 && b[10] != b'T' {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        Day::from_ymd(i32::try_from(year).ok()?, month, day)
    }

    /// Today in UTC, from the system clock.
    pub fn today() -> Day {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Day(i32::try_from(secs / 86_400).unwrap_or(Day::MAX.0))
    }
}

impl fmt::Display for Day {
    /// `YYYY-MM-DD`, a FHIR `date`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400) as u32;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_epoch() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Some(Day(0)));
        assert_eq!(
            Day::from_ymd(2000, 3, 1).map(|d| d.ymd()),
            Some((2000, 3, 1))
        );
        for n in [-800_000, -1, 0, 59, 60, 11_016, 30_000, 2_000_000] {
            let (y, m, d) = Day(n).ymd();
            assert_eq!(Day::from_ymd(y, m, d), Some(Day(n)), "{n}");
        }
        assert_eq!(Day::from_ymd(2023, 2, 29), None);
        assert_eq!(
            Day::from_ymd(2024, 2, 29).map(|d| d.to_string()),
            Some("2024-02-29".into())
        );
    }

    #[test]
    fn fhir_dates_need_day_precision() {
        assert_eq!(Day::parse_fhir("2024-02-23"), Day::from_ymd(2024, 2, 23));
        // The local date as written, whatever the offset.
        assert_eq!(
            Day::parse_fhir("2024-02-20T23:30:00-05:00"),
            Day::from_ymd(2024, 2, 20)
        );
        assert_eq!(Day::parse_fhir("2024-02"), None);
        assert_eq!(Day::parse_fhir("2024"), None);
        assert_eq!(Day::parse_fhir("2024-13-01"), None);
        assert_eq!(Day::parse_fhir("2024-02-23x"), None);
        assert_eq!(Day::parse_fhir("２０２４-02-23"), None);
    }
}

//! Calendar dates as days since 1970-01-01 (proleptic Gregorian), formatted as FHIR `date`/`dateTime`.
//! Hand-rolled because the generator only needs day arithmetic and formatting, on a hot path.

use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(pub i32);

impl Day {
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Day {
        // Howard Hinnant's days_from_civil.
        let y = if m <= 2 { y - 1 } else { y };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = m as i32;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Day(era * 146_097 + doe - 719_468)
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        let z = self.0 + 719_468;
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

    pub fn plus(self, days: i32) -> Day {
        Day(self.0 + days)
    }

    /// Whole years from `self` to `later` (age on a date).
    pub fn years_until(self, later: Day) -> i32 {
        let (y0, m0, d0) = self.ymd();
        let (y1, m1, d1) = later.ymd();
        let mut years = y1 - y0;
        if (m1, d1) < (m0, d0) {
            years -= 1;
        }
        years
    }

    /// `YYYY-MM-DD` appended to `out`.
    pub fn write_date(self, out: &mut String) {
        let (y, m, d) = self.ymd();
        let _ = write!(out, "{y:04}-{m:02}-{d:02}");
    }

    pub fn date_string(self) -> String {
        let mut s = String::with_capacity(10);
        self.write_date(&mut s);
        s
    }

    /// `YYYY-MM-DDThh:mm:00+01:00`. German local time; a fixed offset is fine for synthetic data.
    pub fn date_time_string(self, minute_of_day: u32) -> String {
        let mut s = String::with_capacity(25);
        self.write_date(&mut s);
        let m = minute_of_day % 1440;
        let _ = write!(s, "T{:02}:{:02}:00+01:00", m / 60, m % 60);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(Day::from_ymd(1970, 1, 1), Day(0));
        assert_eq!(Day::from_ymd(2000, 3, 1).ymd(), (2000, 3, 1));
        for d in (-40_000..40_000).step_by(97) {
            let (y, m, dd) = Day(d).ymd();
            assert_eq!(Day::from_ymd(y, m, dd), Day(d));
        }
        assert_eq!(Day::from_ymd(2024, 2, 29).date_string(), "2024-02-29");
        assert_eq!(
            Day::from_ymd(2024, 2, 29).date_time_string(8 * 60 + 5),
            "2024-02-29T08:05:00+01:00"
        );
        assert_eq!(
            Day::from_ymd(1980, 6, 15).years_until(Day::from_ymd(2020, 6, 14)),
            39
        );
    }
}

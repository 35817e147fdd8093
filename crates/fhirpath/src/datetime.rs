//! Partial-precision dates, date-times and times as FHIRPath needs them: parsing, comparison that
//! can be undecidable (`@2012 < @2012-04` is empty), and calendar arithmetic with quantities.

use std::cmp::Ordering;
use std::fmt::Write as _;

use crate::decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    /// Seconds, with or without milliseconds (FHIRPath treats them as one precision).
    Second,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Date,
    DateTime,
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Temporal {
    pub kind: Kind,
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
    /// Digits written after the decimal point of the seconds (0 when none), kept for printing.
    frac_digits: u8,
    pub precision: Precision,
    /// Offset from UTC in minutes, when given.
    tz: Option<i32>,
}

fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    if s.len() < n || !s.as_bytes()[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's `days_from_civil`.
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

const MS_PER_DAY: i64 = 86_400_000;

impl Temporal {
    fn empty(kind: Kind) -> Self {
        Temporal {
            kind,
            year: 0,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            millis: 0,
            frac_digits: 0,
            precision: Precision::Year,
            tz: None,
        }
    }

    /// `YYYY[-MM[-DD]]`, returning the rest of the input.
    fn parse_date_part(s: &str) -> Option<(Self, &str)> {
        let mut t = Self::empty(Kind::Date);
        let (y, mut rest) = digits(s, 4)?;
        t.year = y as i32;
        if let Some(r) = rest.strip_prefix('-') {
            let (m, r) = digits(r, 2)?;
            if !(1..=12).contains(&m) {
                return None;
            }
            t.month = m;
            t.precision = Precision::Month;
            rest = r;
            if let Some(r) = rest.strip_prefix('-') {
                let (d, r) = digits(r, 2)?;
                if d < 1 || d > days_in_month(t.year, m) {
                    return None;
                }
                t.day = d;
                t.precision = Precision::Day;
                rest = r;
            }
        }
        Some((t, rest))
    }

    /// `HH[:MM[:SS[.fff]]]` into `t`, returning the rest and the precision reached.
    fn parse_time_part<'s>(t: &mut Self, s: &'s str) -> Option<(&'s str, Precision)> {
        let (h, mut rest) = digits(s, 2)?;
        if h > 23 {
            return None;
        }
        t.hour = h;
        let mut p = Precision::Hour;
        if let Some(r) = rest.strip_prefix(':') {
            let (m, r) = digits(r, 2)?;
            if m > 59 {
                return None;
            }
            t.minute = m;
            p = Precision::Minute;
            rest = r;
            if let Some(r) = rest.strip_prefix(':') {
                let (sec, r) = digits(r, 2)?;
                if sec > 59 {
                    return None;
                }
                t.second = sec;
                p = Precision::Second;
                rest = r;
                if let Some(r) = rest.strip_prefix('.') {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    if n == 0 {
                        return None;
                    }
                    let frac = &r[..n];
                    let ms: String = frac.chars().chain("000".chars()).take(3).collect();
                    t.millis = ms.parse().ok()?;
                    t.frac_digits = n.min(9) as u8;
                    rest = &r[n..];
                }
            }
        }
        Some((rest, p))
    }

    fn parse_tz(s: &str) -> Option<Option<i32>> {
        if s.is_empty() {
            return Some(None);
        }
        if s == "Z" {
            return Some(Some(0));
        }
        let sign = match s.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, r) = digits(&s[1..], 2)?;
        let r = r.strip_prefix(':')?;
        let (m, r) = digits(r, 2)?;
        if !r.is_empty() || h * 60 + m > 14 * 60 || m > 59 {
            return None;
        }
        Some(Some(sign * (h as i32 * 60 + m as i32)))
    }

    pub(crate) fn parse_date(s: &str) -> Option<Self> {
        let (t, rest) = Self::parse_date_part(s)?;
        rest.is_empty().then_some(t)
    }

    /// A dateTime: `2015`, `2015-02-04T14:34:28.123+01:00`, `2015T` (FHIRPath literal form).
    pub(crate) fn parse_datetime(s: &str) -> Option<Self> {
        let (mut t, rest) = Self::parse_date_part(s)?;
        t.kind = Kind::DateTime;
        let Some(rest) = rest.strip_prefix('T') else {
            // A date-only dateTime may not carry a zone.
            return rest.is_empty().then_some(t);
        };
        if rest.is_empty() {
            return Some(t);
        }
        if t.precision != Precision::Day {
            // `2015-02T10` is not valid; only the bare `2015T` form is.
            return None;
        }
        let (rest, p) = Self::parse_time_part(&mut t, rest)?;
        t.precision = p;
        t.tz = Self::parse_tz(rest)?;
        Some(t)
    }

    /// A time without the `T`: `14:34:28.123`.
    pub(crate) fn parse_time(s: &str) -> Option<Self> {
        let mut t = Self::empty(Kind::Time);
        let (rest, p) = Self::parse_time_part(&mut t, s)?;
        if !rest.is_empty() {
            return None;
        }
        t.precision = p;
        Some(t)
    }

    /// Reinterprets a date as a dateTime (for comparing the two kinds).
    pub(crate) fn as_datetime(mut self) -> Self {
        if self.kind == Kind::Date {
            self.kind = Kind::DateTime;
        }
        self
    }

    /// Date part only, dropping any time (`toDate()` on a dateTime).
    pub(crate) fn to_date(mut self) -> Self {
        self.kind = Kind::Date;
        self.precision = self.precision.min(Precision::Day);
        self.hour = 0;
        self.minute = 0;
        self.second = 0;
        self.millis = 0;
        self.frac_digits = 0;
        self.tz = None;
        self
    }

    /// Milliseconds since the epoch of the components (local time), for time-unit arithmetic.
    fn epoch_ms(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.millis)
    }

    fn set_epoch_ms(&mut self, ms: i64) {
        let days = ms.div_euclid(MS_PER_DAY);
        let rem = ms.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        self.year = y;
        self.month = m;
        self.day = d;
        self.hour = (rem / 3_600_000) as u32;
        self.minute = (rem / 60_000 % 60) as u32;
        self.second = (rem / 1000 % 60) as u32;
        self.millis = (rem % 1000) as u32;
    }

    /// The components shifted to UTC when a zone is known and the value has a time.
    fn normalized(&self) -> Self {
        let mut t = *self;
        if let Some(tz) = self.tz
            && self.kind == Kind::DateTime
            && self.precision >= Precision::Hour
        {
            t.set_epoch_ms(self.epoch_ms() - i64::from(tz) * 60_000);
            t.tz = Some(0);
        }
        t
    }

    /// FHIRPath comparison: `None` when the precisions differ and the common components are equal
    /// (or when the kinds cannot be compared).
    pub(crate) fn compare(&self, other: &Self) -> Option<Ordering> {
        let (a, b) = match (self.kind, other.kind) {
            (Kind::Time, Kind::Time) => (*self, *other),
            (Kind::Time, _) | (_, Kind::Time) => return None,
            _ => {
                // One side zoned and the other not: the local offset is unknown.
                let timed = |t: &Self| t.kind == Kind::DateTime && t.precision >= Precision::Hour;
                if timed(self) && timed(other) && self.tz.is_some() != other.tz.is_some() {
                    return None;
                }
                (
                    self.as_datetime().normalized(),
                    other.as_datetime().normalized(),
                )
            }
        };
        let min = a.precision.min(b.precision);
        let parts = |t: &Temporal| -> [(Precision, i64); 6] {
            [
                (Precision::Year, i64::from(t.year)),
                (Precision::Month, i64::from(t.month)),
                (Precision::Day, i64::from(t.day)),
                (Precision::Hour, i64::from(t.hour)),
                (Precision::Minute, i64::from(t.minute)),
                (
                    Precision::Second,
                    i64::from(t.second) * 1000 + i64::from(t.millis),
                ),
            ]
        };
        let (pa, pb) = (parts(&a), parts(&b));
        let start = if a.kind == Kind::Time { 3 } else { 0 };
        for i in start..6 {
            let (p, va) = pa[i];
            if p > min {
                break;
            }
            match va.cmp(&pb[i].1) {
                Ordering::Equal => {}
                o => return Some(o),
            }
        }
        if a.precision == b.precision {
            Some(Ordering::Equal)
        } else {
            None
        }
    }

    /// Adds `value` of a calendar/UCUM time `unit`; `None` for other units or overflow.
    pub(crate) fn add(&self, value: Decimal, unit: &str) -> Option<Self> {
        let unit = CalendarUnit::parse(unit)?;
        let mut t = *self;
        match unit {
            CalendarUnit::Year | CalendarUnit::Month => {
                let n = i64::try_from(value.trunc()?).ok()?;
                if t.kind == Kind::Time {
                    return None;
                }
                let months = if unit == CalendarUnit::Year {
                    n.checked_mul(12)?
                } else {
                    n
                };
                if unit == CalendarUnit::Month && t.precision == Precision::Year {
                    t.year = t.year.checked_add(i32::try_from(months / 12).ok()?)?;
                } else {
                    let total =
                        (i64::from(t.year) * 12 + i64::from(t.month) - 1).checked_add(months)?;
                    t.year = i32::try_from(total.div_euclid(12)).ok()?;
                    t.month = (total.rem_euclid(12) + 1) as u32;
                    t.day = t.day.min(days_in_month(t.year, t.month));
                }
            }
            _ => {
                let unit_ms = unit.millis();
                // Calendar arithmetic uses whole units (`+ 7.7 days` adds 7 days), except for
                // milliseconds, the finest precision.
                let whole = if unit == CalendarUnit::Millisecond {
                    value
                } else {
                    Decimal::from_i64(i64::try_from(value.trunc()?).ok()?)
                };
                let ms = whole.checked_mul(Decimal::from_i64(unit_ms))?.trunc()?;
                let ms = i64::try_from(ms).ok()?;
                // Below the value's precision the quantity is truncated to whole units of it.
                let grain: i64 = match (t.kind, t.precision) {
                    (Kind::Time, _) | (_, Precision::Second) => 1,
                    (_, Precision::Minute) => 60_000,
                    (_, Precision::Hour) => 3_600_000,
                    (_, Precision::Day) => MS_PER_DAY,
                    (_, Precision::Month) => {
                        let months = ms / (30 * MS_PER_DAY);
                        return t.add(Decimal::from_i64(months), "month");
                    }
                    (_, Precision::Year) => {
                        let years = ms / (365 * MS_PER_DAY);
                        return t.add(Decimal::from_i64(years), "year");
                    }
                };
                let ms = ms / grain * grain;
                if t.kind == Kind::Time {
                    let base = i64::from(t.hour) * 3_600_000
                        + i64::from(t.minute) * 60_000
                        + i64::from(t.second) * 1000
                        + i64::from(t.millis);
                    let v = (base.checked_add(ms)?).rem_euclid(MS_PER_DAY);
                    t.hour = (v / 3_600_000) as u32;
                    t.minute = (v / 60_000 % 60) as u32;
                    t.second = (v / 1000 % 60) as u32;
                    t.millis = (v % 1000) as u32;
                } else {
                    let v = t.epoch_ms().checked_add(ms)?;
                    t.set_epoch_ms(v);
                    if !(1..=9999).contains(&t.year) {
                        return None;
                    }
                }
                if t.millis != 0 && t.frac_digits == 0 && t.precision == Precision::Second {
                    t.frac_digits = 3;
                }
            }
        }
        if !(1..=9999).contains(&t.year) && t.kind != Kind::Time {
            return None;
        }
        Some(t)
    }

    /// `dateOf()`: the date part of a date or dateTime.
    pub(crate) fn date_part(&self) -> Option<Self> {
        (self.kind != Kind::Time).then(|| self.to_date())
    }

    /// `timeOf()`: the time part of a dateTime that has one.
    pub(crate) fn time_part(&self) -> Option<Self> {
        if self.kind != Kind::DateTime || self.precision < Precision::Hour {
            return None;
        }
        let mut t = *self;
        t.kind = Kind::Time;
        t.tz = None;
        Some(t)
    }

    /// Offset from UTC in minutes, when the value carries a zone.
    pub(crate) fn tz_minutes(&self) -> Option<i32> {
        self.tz
    }

    /// One component (`yearOf()` ... `millisecondOf()`); `None` when below the precision.
    pub(crate) fn component(&self, part: Part) -> Option<i64> {
        let is_time = self.kind == Kind::Time;
        let (needed, v) = match part {
            Part::Year if !is_time => (Precision::Year, i64::from(self.year)),
            Part::Month if !is_time => (Precision::Month, i64::from(self.month)),
            Part::Day if !is_time => (Precision::Day, i64::from(self.day)),
            Part::Hour => (Precision::Hour, i64::from(self.hour)),
            Part::Minute => (Precision::Minute, i64::from(self.minute)),
            Part::Second => (Precision::Second, i64::from(self.second)),
            Part::Millisecond if self.frac_digits > 0 => {
                (Precision::Second, i64::from(self.millis))
            }
            _ => return None,
        };
        let has = if is_time || self.kind == Kind::DateTime || needed <= Precision::Day {
            self.precision >= needed
        } else {
            false
        };
        has.then_some(v)
    }

    /// `precision()`: the number of digits of the value (`@2014` → 4, `@T10:30` → 4).
    pub(crate) fn precision_digits(&self) -> i64 {
        let ms = self.frac_digits > 0;
        match (self.kind, self.precision) {
            (Kind::Time, Precision::Hour) => 2,
            (Kind::Time, Precision::Minute) => 4,
            (Kind::Time, _) => {
                if ms {
                    9
                } else {
                    6
                }
            }
            (_, Precision::Year) => 4,
            (_, Precision::Month) => 6,
            (_, Precision::Day) => 8,
            (_, Precision::Hour) => 10,
            (_, Precision::Minute) => 12,
            (_, Precision::Second) => {
                if ms {
                    17
                } else {
                    14
                }
            }
        }
    }

    /// `lowBoundary`/`highBoundary`: the earliest/latest value the partial value could stand for,
    /// at `digits` precision. A missing zone widens to +14:00 (low) or -12:00 (high).
    pub(crate) fn boundary(&self, digits: Option<i64>, high: bool) -> Option<Self> {
        let (target, ms) = match (self.kind, digits) {
            (Kind::Time, None) => (Precision::Second, true),
            (_, None) => (Precision::Second, self.kind != Kind::Date),
            (Kind::Time, Some(2)) => (Precision::Hour, false),
            (Kind::Time, Some(4)) => (Precision::Minute, false),
            (Kind::Time, Some(6)) => (Precision::Second, false),
            (Kind::Time, Some(9)) => (Precision::Second, true),
            (Kind::Time, Some(_)) => return None,
            (_, Some(4)) => (Precision::Year, false),
            (_, Some(6)) => (Precision::Month, false),
            (_, Some(8)) => (Precision::Day, false),
            (Kind::Date, Some(_)) => return None,
            (_, Some(10)) => (Precision::Hour, false),
            (_, Some(12)) => (Precision::Minute, false),
            (_, Some(14)) => (Precision::Second, false),
            (_, Some(17)) => (Precision::Second, true),
            _ => return None,
        };
        let target = if self.kind == Kind::Date && digits.is_none() {
            Precision::Day
        } else {
            target
        };
        let mut t = *self;
        // An hour-only time (`T08`) is not a valid FHIR value: read it as `08:00` first.
        let p = if self.kind == Kind::DateTime && self.precision == Precision::Hour {
            Precision::Minute
        } else {
            self.precision
        };
        if p < Precision::Month {
            t.month = if high { 12 } else { 1 };
        }
        if p < Precision::Day {
            t.day = if high {
                days_in_month(t.year, t.month)
            } else {
                1
            };
        }
        if p < Precision::Hour {
            t.hour = if high { 23 } else { 0 };
        }
        if p < Precision::Minute {
            t.minute = if high { 59 } else { 0 };
        }
        if p < Precision::Second {
            t.second = if high { 59 } else { 0 };
        }
        if p < Precision::Second || self.frac_digits == 0 {
            t.millis = if high { 999 } else { 0 };
        }
        t.precision = target;
        t.frac_digits = if target == Precision::Second && ms {
            3
        } else {
            0
        };
        if t.kind == Kind::DateTime && target >= Precision::Hour && t.tz.is_none() {
            t.tz = Some(if high { -720 } else { 840 });
        }
        if t.kind == Kind::DateTime && target < Precision::Hour {
            t.tz = None;
        }
        Some(t)
    }

    /// Current UTC date-time, with milliseconds.
    pub(crate) fn now() -> Self {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut t = Self::empty(Kind::DateTime);
        t.set_epoch_ms(ms);
        t.precision = Precision::Second;
        t.frac_digits = 3;
        t.tz = Some(0);
        t
    }

    pub(crate) fn today() -> Self {
        Self::now().to_date()
    }

    pub(crate) fn time_of_day() -> Self {
        let n = Self::now();
        let mut t = Self::empty(Kind::Time);
        t.hour = n.hour;
        t.minute = n.minute;
        t.second = n.second;
        t.millis = n.millis;
        t.frac_digits = 3;
        t.precision = Precision::Second;
        t
    }

    fn write_time(&self, out: &mut String) {
        let _ = write!(out, "{:02}", self.hour);
        if self.precision >= Precision::Minute {
            let _ = write!(out, ":{:02}", self.minute);
        }
        if self.precision >= Precision::Second {
            let _ = write!(out, ":{:02}", self.second);
            if self.frac_digits > 0 {
                let frac = format!("{:03}", self.millis);
                let n = usize::from(self.frac_digits);
                let frac: String = frac.chars().chain(std::iter::repeat('0')).take(n).collect();
                let _ = write!(out, ".{frac}");
            }
        }
    }
}

impl std::fmt::Display for Temporal {
    /// The FHIRPath text form without the `@` (and without `T` for times).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        if self.kind == Kind::Time {
            self.write_time(&mut out);
            return f.write_str(&out);
        }
        let _ = write!(out, "{:04}", self.year);
        if self.precision >= Precision::Month {
            let _ = write!(out, "-{:02}", self.month);
        }
        if self.precision >= Precision::Day {
            let _ = write!(out, "-{:02}", self.day);
        }
        if self.kind == Kind::DateTime && self.precision >= Precision::Hour {
            out.push('T');
            self.write_time(&mut out);
            match self.tz {
                Some(0) => out.push('Z'),
                Some(tz) => {
                    let sign = if tz < 0 { '-' } else { '+' };
                    let _ = write!(out, "{sign}{:02}:{:02}", tz.abs() / 60, tz.abs() % 60);
                }
                None => {}
            }
        }
        f.write_str(&out)
    }
}

/// A component of a date/time, for `yearOf()` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CalendarUnit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

impl CalendarUnit {
    /// Calendar keywords (`year`, `days`) and the UCUM time codes (`a`, `d`, `ms`).
    pub(crate) fn parse(unit: &str) -> Option<Self> {
        Some(match unit {
            "year" | "years" | "a" => Self::Year,
            "month" | "months" | "mo" => Self::Month,
            "week" | "weeks" | "wk" => Self::Week,
            "day" | "days" | "d" => Self::Day,
            "hour" | "hours" | "h" => Self::Hour,
            "minute" | "minutes" | "min" => Self::Minute,
            "second" | "seconds" | "s" => Self::Second,
            "millisecond" | "milliseconds" | "ms" => Self::Millisecond,
            _ => return None,
        })
    }

    fn millis(self) -> i64 {
        match self {
            Self::Year => 365 * MS_PER_DAY,
            Self::Month => 30 * MS_PER_DAY,
            Self::Week => 7 * MS_PER_DAY,
            Self::Day => MS_PER_DAY,
            Self::Hour => 3_600_000,
            Self::Minute => 60_000,
            Self::Second => 1000,
            Self::Millisecond => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Temporal {
        Temporal::parse_datetime(s).unwrap()
    }

    #[test]
    fn parse_print_round_trip() {
        for s in [
            "2015",
            "2015-02",
            "2015-02-04",
            "2015-02-04T14:34:28.123+10:00",
            "2015-02-04T14Z",
        ] {
            assert_eq!(dt(s).to_string(), s);
        }
        assert_eq!(dt("2015T").to_string(), "2015");
        assert_eq!(
            Temporal::parse_time("14:34:28.5").unwrap().to_string(),
            "14:34:28.5"
        );
        assert!(Temporal::parse_date("2015-13").is_none());
        assert!(Temporal::parse_date("2015-02-30").is_none());
        assert!(Temporal::parse_datetime("2015-02-04T25:00").is_none());
    }

    #[test]
    fn comparison_with_precision() {
        assert_eq!(dt("2012").compare(&dt("2013-04")), Some(Ordering::Less));
        assert_eq!(dt("2012").compare(&dt("2012-04")), None);
        assert_eq!(
            dt("2017-11-05T01:30:00.0-04:00").compare(&dt("2017-11-05T01:15:00.0-05:00")),
            Some(Ordering::Less)
        );
        assert_eq!(
            dt("2012-04-15T15:30:31").compare(&dt("2012-04-15T15:30:31.0")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn arithmetic() {
        let d = Temporal::parse_date("2014-01-31").unwrap();
        assert_eq!(
            d.add(Decimal::from_i64(1), "month").unwrap().to_string(),
            "2014-02-28"
        );
        assert_eq!(
            d.add(Decimal::from_i64(1), "day").unwrap().to_string(),
            "2014-02-01"
        );
        assert_eq!(
            dt("2014")
                .add(Decimal::from_i64(24), "months")
                .unwrap()
                .to_string(),
            "2016"
        );
        let t = Temporal::parse_time("23:00").unwrap();
        assert_eq!(
            t.add(Decimal::from_i64(2), "hours").unwrap().to_string(),
            "01:00"
        );
    }
}

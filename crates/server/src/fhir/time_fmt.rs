//! Time rendering and parsing: FHIR instants, HTTP dates, `_since`.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

fn datetime(us: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A FHIR `instant` (`2024-05-01T10:00:00.123456Z`) from microseconds since the epoch.
pub fn instant(us: i64) -> String {
    datetime(us)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

/// An HTTP date (`Wed, 01 May 2024 10:00:00 GMT`) for `Last-Modified`.
pub fn http_date(us: i64) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    datetime(us)
        .format(&fmt)
        .unwrap_or_else(|_| "Thu, 01 Jan 1970 00:00:00 GMT".to_string())
}

/// Parses `_since` (an instant; dates and partial dates are accepted leniently and mean their
/// start, in UTC) into microseconds since the epoch.
pub fn parse_instant_us(value: &str) -> Option<i64> {
    // An unencoded `+` offset in a query string arrives as a space.
    let value = value.trim().replace(' ', "+");
    let dt = if let Ok(dt) = OffsetDateTime::parse(&value, &Rfc3339) {
        dt
    } else {
        let (y, m, d) = match value.split('-').collect::<Vec<_>>().as_slice() {
            [y] => (*y, "1", "1"),
            [y, m] => (*y, *m, "1"),
            [y, m, d] => (*y, *m, *d),
            _ => return None,
        };
        if y.len() != 4 {
            return None;
        }
        let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
        let date = Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
        PrimitiveDateTime::new(date, Time::MIDNIGHT).assume_offset(UtcOffset::UTC)
    };
    i64::try_from(dt.unix_timestamp_nanos() / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_instants_and_http_dates() {
        let us = 1_714_557_600_123_456; // 2024-05-01T10:00:00.123456Z
        assert_eq!(instant(us), "2024-05-01T10:00:00.123456Z");
        assert_eq!(http_date(us), "Wed, 01 May 2024 10:00:00 GMT");
    }

    #[test]
    fn parses_since() {
        assert_eq!(
            parse_instant_us("2024-05-01T10:00:00.123456Z"),
            Some(1_714_557_600_123_456)
        );
        assert_eq!(
            parse_instant_us("2024-05-01T12:00:00 02:00"),
            Some(1_714_557_600_000_000)
        );
        assert_eq!(parse_instant_us("2024-05-01"), Some(1_714_521_600_000_000));
        assert_eq!(
            parse_instant_us("2024"),
            parse_instant_us("2024-01-01T00:00:00Z")
        );
        assert_eq!(parse_instant_us("yesterday"), None);
        assert_eq!(parse_instant_us("2024-13-01"), None);
    }
}

//! Date/time component functions: `dateOf()`, `timeOf()`, `yearOf()` ... `timezoneOffsetOf()`.

use crate::datetime::{Part, Temporal};
use crate::decimal::Decimal;
use crate::eval::Coll;
use crate::eval::value::{Val, temporal_item, val};
use crate::{EvalError, Item};

use super::{FnName, single};

pub(super) fn part<'a>(f: FnName, input: &[Item<'a>]) -> Result<Coll<'a>, EvalError> {
    use FnName as F;
    Ok(match f {
        F::DateOf | F::TimeOf => {
            let Some(item) = single(input, f)? else {
                return Ok(Vec::new());
            };
            let t = match val(item) {
                Some(Val::Temporal(t)) => Some(t),
                Some(Val::Str(s)) => Temporal::parse_datetime(&s),
                _ => None,
            };
            let out = t.and_then(|t| {
                if f == F::DateOf {
                    t.date_part()
                } else {
                    t.time_part()
                }
            });
            out.map(temporal_item).into_iter().collect()
        }
        F::YearOf
        | F::MonthOf
        | F::DayOf
        | F::HourOf
        | F::MinuteOf
        | F::SecondOf
        | F::MillisecondOf
        | F::TimezoneOffsetOf => {
            let Some(item) = single(input, f)? else {
                return Ok(Vec::new());
            };
            let t = match val(item) {
                Some(Val::Temporal(t)) => Some(t),
                Some(Val::Str(s)) => {
                    Temporal::parse_datetime(&s).or_else(|| Temporal::parse_time(&s))
                }
                _ => None,
            };
            let Some(t) = t else {
                return Ok(Vec::new());
            };
            if f == F::TimezoneOffsetOf {
                let hours = t.tz_minutes().and_then(|m| {
                    Decimal::from_i64(i64::from(m)).checked_div(Decimal::from_i64(60))
                });
                return Ok(hours
                    .map(|h| Item::Decimal(h.to_string()))
                    .into_iter()
                    .collect());
            }
            let part = match f {
                F::YearOf => Part::Year,
                F::MonthOf => Part::Month,
                F::DayOf => Part::Day,
                F::HourOf => Part::Hour,
                F::MinuteOf => Part::Minute,
                F::SecondOf => Part::Second,
                _ => Part::Millisecond,
            };
            t.component(part).map(Item::Integer).into_iter().collect()
        }
        _ => Vec::new(),
    })
}

//! Day-precise periods and sets of them (TORCH's `Period` and `NonContinuousPeriod`).

use crate::Day;

/// The days `start..=end`, both inclusive (a FHIR period of dates). Never empty: `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Period {
    pub start: Day,
    pub end: Day,
}

impl Period {
    /// `None` when `end` lies before `start` (TORCH ignores such a period).
    pub fn new(start: Day, end: Day) -> Option<Period> {
        (start <= end).then_some(Period { start, end })
    }

    /// Every day.
    pub const ALL: Period = Period {
        start: Day::MIN,
        end: Day::MAX,
    };

    pub fn contains(&self, day: Day) -> bool {
        self.start <= day && day <= self.end
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// A set of days as disjoint, non-adjacent periods in ascending order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Periods(Vec<Period>);

impl Periods {
    pub fn empty() -> Periods {
        Periods(Vec::new())
    }

    pub fn all() -> Periods {
        Periods(vec![Period::ALL])
    }

    pub fn of(periods: impl IntoIterator<Item = Period>) -> Periods {
        let mut v: Vec<Period> = periods.into_iter().collect();
        v.sort_by_key(|p| (p.start, p.end));
        let mut out: Vec<Period> = Vec::with_capacity(v.len());
        for p in v {
            match out.last_mut() {
                // Overlapping or adjacent (the next day): one period.
                Some(last) if p.start <= last.end.plus(1) => last.end = last.end.max(p.end),
                _ => out.push(p),
            }
        }
        Periods(out)
    }

    pub fn periods(&self) -> &[Period] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, day: Day) -> bool {
        // Few periods per patient: a linear scan beats a binary search here.
        self.0.iter().any(|p| p.contains(day))
    }

    /// Whether any day of `period` lies in the set (a resource's time overlaps the window).
    pub fn overlaps(&self, period: &Period) -> bool {
        self.0.iter().any(|p| p.overlaps(period))
    }

    pub fn union(&self, other: &Periods) -> Periods {
        Periods::of(self.0.iter().chain(other.0.iter()).copied())
    }

    pub fn subtract(&self, deny: &Period) -> Periods {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for p in &self.0 {
            if !p.overlaps(deny) {
                out.push(*p);
                continue;
            }
            if deny.start > p.start {
                out.push(Period {
                    start: p.start,
                    end: deny.start.plus(-1),
                });
            }
            if deny.end < p.end {
                out.push(Period {
                    start: deny.end.plus(1),
                    end: p.end,
                });
            }
        }
        Periods(out)
    }

    pub fn subtract_all(&self, denies: &Periods) -> Periods {
        denies.0.iter().fold(self.clone(), |acc, d| acc.subtract(d))
    }

    pub fn intersect(&self, other: &Periods) -> Periods {
        let mut out = Vec::new();
        for a in &self.0 {
            for b in &other.0 {
                let start = a.start.max(b.start);
                let end = a.end.min(b.end);
                if start <= end {
                    out.push(Period { start, end });
                }
            }
        }
        Periods::of(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(a: i32, b: i32) -> Period {
        Period {
            start: Day(a),
            end: Day(b),
        }
    }

    #[test]
    fn of_merges_overlapping_and_adjacent() {
        assert_eq!(
            Periods::of([p(5, 9), p(0, 3), p(4, 4), p(20, 30)]).periods(),
            &[p(0, 9), p(20, 30)]
        );
    }

    #[test]
    fn subtract_splits_and_trims() {
        let s = Periods::of([p(0, 10)]);
        assert_eq!(s.subtract(&p(3, 5)).periods(), &[p(0, 2), p(6, 10)]);
        assert_eq!(s.subtract(&p(-5, 0)).periods(), &[p(1, 10)]);
        assert_eq!(s.subtract(&p(10, 20)).periods(), &[p(0, 9)]);
        assert!(s.subtract(&p(0, 10)).is_empty());
        assert_eq!(s.subtract(&p(11, 20)), s);
    }

    fn set() -> impl Strategy<Value = Periods> {
        prop::collection::vec((0i32..60, 0i32..10), 0..5)
            .prop_map(|v| Periods::of(v.into_iter().map(|(s, l)| p(s, s + l))))
    }

    proptest! {
        #[test]
        fn set_operations_agree_with_day_membership(a in set(), b in set()) {
            let u = a.union(&b);
            let i = a.intersect(&b);
            let d = b.periods().iter().fold(a.clone(), |acc, x| acc.subtract(x));
            for day in -2..75 {
                let day = Day(day);
                prop_assert_eq!(u.contains(day), a.contains(day) || b.contains(day));
                prop_assert_eq!(i.contains(day), a.contains(day) && b.contains(day));
                prop_assert_eq!(d.contains(day), a.contains(day) && !b.contains(day));
            }
        }
    }
}

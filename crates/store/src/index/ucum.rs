//! UCUM unit expressions → canonical form, so that quantity search compares values across
//! units (`100 mg/dL` answers `1|http://unitsofmeasure.org|g/L`; FHIR R4 §3.1.1.4.6).
//!
//! A real parser of the UCUM case-sensitive grammar (`term := term "." component | term "/"
//! component | component`, left-associative; components are prefixed atoms with an integer
//! exponent, integer factors, `{annotations}` and parenthesised terms). Only atoms and prefixes
//! come from tables, and only the common clinical subset of them: an unknown atom makes the whole
//! unit non-convertible (`None`), so such quantities keep exact-unit matching only.
//!
//! The canonical unit is a dimension signature over fixed base units (`g.m-3`, `mol.m-3`, `m-3`,
//! `1`): two units convert into each other exactly when their signatures are equal. Deliberate
//! departures from full UCUM:
//! - `mol` and `eq` are base dimensions: UCUM defines `mol` as a count (Avogadro's number) and
//!   `eq` as `mol`, but a count per litre is not a concentration in the lab, and an equivalent
//!   is a mole only for monovalent ions (2.5 mmol/L of calcium is 5 meq/L).
//! - Mass and substance amount never convert into each other (that needs the molar mass).
//! - Affine and logarithmic units (`Cel`, `[degF]`, `[pH]`, `dB`) are absent: a canonical value
//!   must be a pure multiple of the value.

/// The code system of UCUM units in `Quantity.system`.
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";

/// The facet of the derived parameter key whose quantity rows hold canonical values
/// (`keys::derived_param_key(type, code, CANONICAL)`).
pub const CANONICAL: &str = "canonical";

/// Longer unit strings are not parsed: clinical units are short, and this bounds the work an
/// input can cause.
const MAX_UNIT_CHARS: usize = 256;
/// Nesting of parentheses, bounded so that the recursive parser cannot exhaust the stack.
const MAX_DEPTH: usize = 16;
/// Exponents beyond this are not units anyone measures in; bounding them keeps the arithmetic exact.
const MAX_EXPONENT: i32 = 24;
/// Canonical values are rounded to this many significant digits, so that a value converted along
/// different paths (`mg/dL` at write time, `g/L` at search time) lands on the same `f64` and
/// comparisons (`gt`, `lt`) are not decided by rounding noise.
const SIGNIFICANT_DIGITS: usize = 12;

/// Base dimensions, in the order they appear in canonical unit strings.
const BASES: [&str; 10] = ["g", "mol", "eq", "[IU]", "m", "s", "K", "C", "cd", "rad"];
const G: usize = 0;
const MOL: usize = 1;
const EQ: usize = 2;
const IU: usize = 3;
const M: usize = 4;
const S: usize = 5;
const K: usize = 6;
const C: usize = 7;
const CD: usize = 8;
const RAD: usize = 9;

type Dims = [i32; BASES.len()];

/// A unit as a factor (`mantissa · 10^decade`, the decade kept apart so that decimal prefixes
/// stay exact) times a product of base dimensions.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Magnitude {
    mantissa: f64,
    decade: i32,
    dims: Dims,
}

impl Magnitude {
    const ONE: Magnitude = Magnitude {
        mantissa: 1.0,
        decade: 0,
        dims: [0; BASES.len()],
    };

    fn checked(self) -> Option<Magnitude> {
        (self.mantissa.is_finite() && self.mantissa > 0.0).then_some(self)
    }

    fn mul(self, o: Magnitude) -> Option<Magnitude> {
        let mut dims = self.dims;
        for (d, e) in dims.iter_mut().zip(o.dims) {
            *d = d.checked_add(e)?;
        }
        Magnitude {
            mantissa: self.mantissa * o.mantissa,
            decade: self.decade.checked_add(o.decade)?,
            dims,
        }
        .checked()
    }

    fn pow(self, e: i32) -> Option<Magnitude> {
        let mut dims = self.dims;
        for d in &mut dims {
            *d = d.checked_mul(e)?;
        }
        Magnitude {
            mantissa: self.mantissa.powi(e),
            decade: self.decade.checked_mul(e)?,
            dims,
        }
        .checked()
    }

    fn div(self, o: Magnitude) -> Option<Magnitude> {
        self.mul(o.pow(-1)?)
    }
}

struct Atom {
    symbol: &'static str,
    /// Whether the atom takes a metric prefix (UCUM's `isMetric`).
    metric: bool,
    mantissa: f64,
    decade: i32,
    dims: &'static [(usize, i32)],
}

const fn atom(
    symbol: &'static str,
    metric: bool,
    mantissa: f64,
    decade: i32,
    dims: &'static [(usize, i32)],
) -> Atom {
    Atom {
        symbol,
        metric,
        mantissa,
        decade,
        dims,
    }
}

const PRESSURE: &[(usize, i32)] = &[(G, 1), (M, -1), (S, -2)];
const ENERGY: &[(usize, i32)] = &[(G, 1), (M, 2), (S, -2)];
const CATALYTIC: &[(usize, i32)] = &[(MOL, 1), (S, -1)];

/// UCUM atoms of clinical use, by their case-sensitive symbol, with their value in base units.
const ATOMS: &[Atom] = &[
    // base units (and the two this module treats as base, see the module comment)
    atom("m", true, 1.0, 0, &[(M, 1)]),
    atom("s", true, 1.0, 0, &[(S, 1)]),
    atom("g", true, 1.0, 0, &[(G, 1)]),
    atom("rad", true, 1.0, 0, &[(RAD, 1)]),
    atom("K", true, 1.0, 0, &[(K, 1)]),
    atom("C", true, 1.0, 0, &[(C, 1)]),
    atom("cd", true, 1.0, 0, &[(CD, 1)]),
    atom("mol", true, 1.0, 0, &[(MOL, 1)]),
    atom("eq", true, 1.0, 0, &[(EQ, 1)]),
    // international units are arbitrary: convertible only among their own multiples
    atom("[IU]", true, 1.0, 0, &[(IU, 1)]),
    atom("[iU]", true, 1.0, 0, &[(IU, 1)]),
    // volume, mass
    atom("L", true, 1.0, -3, &[(M, 3)]),
    atom("l", true, 1.0, -3, &[(M, 3)]),
    atom("t", true, 1.0, 6, &[(G, 1)]),
    atom("[lb_av]", false, 4.535_923_7, 2, &[(G, 1)]),
    atom("[oz_av]", false, 2.834_952_312_5, 1, &[(G, 1)]),
    // length
    atom("[in_i]", false, 2.54, -2, &[(M, 1)]),
    atom("[ft_i]", false, 3.048, -1, &[(M, 1)]),
    // time (UCUM's year and month are the Julian ones: a = 365.25 d, mo = a/12)
    atom("min", false, 6.0, 1, &[(S, 1)]),
    atom("h", false, 3.6, 3, &[(S, 1)]),
    atom("d", false, 8.64, 4, &[(S, 1)]),
    atom("wk", false, 6.048, 5, &[(S, 1)]),
    atom("mo", false, 2.6298, 6, &[(S, 1)]),
    atom("a", false, 3.155_76, 7, &[(S, 1)]),
    atom("Hz", true, 1.0, 0, &[(S, -1)]),
    // mechanics and electricity (kg = 10^3 g)
    atom("N", true, 1.0, 3, &[(G, 1), (M, 1), (S, -2)]),
    atom("Pa", true, 1.0, 3, PRESSURE),
    atom("bar", true, 1.0, 8, PRESSURE),
    atom("atm", false, 1.013_25, 8, PRESSURE),
    // m[Hg] = 133.322 kPa, m[H2O] = 9.80665 kPa
    atom("m[Hg]", true, 1.333_22, 8, PRESSURE),
    atom("m[H2O]", true, 9.806_65, 6, PRESSURE),
    atom("J", true, 1.0, 3, ENERGY),
    atom("cal", true, 4.184, 3, ENERGY),
    atom("W", true, 1.0, 3, &[(G, 1), (M, 2), (S, -3)]),
    atom("A", true, 1.0, 0, &[(C, 1), (S, -1)]),
    atom("V", true, 1.0, 3, &[(G, 1), (M, 2), (S, -2), (C, -1)]),
    // catalytic activity: U = umol/min
    atom("kat", true, 1.0, 0, CATALYTIC),
    atom("U", true, 1.0 / 60.0, -6, CATALYTIC),
    // dimensionless
    atom("%", false, 1.0, -2, &[]),
    atom("[ppth]", false, 1.0, -3, &[]),
    atom("[ppm]", false, 1.0, -6, &[]),
    atom("10*", false, 1.0, 1, &[]),
    atom("10^", false, 1.0, 1, &[]),
];

/// Metric prefixes and their decades; `u`, `µ` (micro sign) and `μ` (Greek mu) all mean micro.
const PREFIXES: &[(&str, i32)] = &[
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("h", 2),
    ("da", 1),
    ("d", -1),
    ("c", -2),
    ("m", -3),
    ("u", -6),
    ("\u{b5}", -6),
    ("\u{3bc}", -6),
    ("n", -9),
    ("p", -12),
    ("f", -15),
];

fn atom_magnitude(a: &Atom, extra_decade: i32) -> Magnitude {
    let mut dims = [0; BASES.len()];
    for (base, e) in a.dims {
        dims[*base] = *e;
    }
    Magnitude {
        mantissa: a.mantissa,
        decade: a.decade + extra_decade,
        dims,
    }
}

/// A prefixed or plain atom. The plain atom wins (`cd` is candela, not centi-day; `Pa` is
/// pascal), as in UCUM.
fn lookup(symbol: &str) -> Option<Magnitude> {
    if let Some(a) = ATOMS.iter().find(|a| a.symbol == symbol) {
        return Some(atom_magnitude(a, 0));
    }
    PREFIXES.iter().find_map(|(p, decade)| {
        let rest = symbol.strip_prefix(p)?;
        let a = ATOMS.iter().find(|a| a.metric && a.symbol == rest)?;
        Some(atom_magnitude(a, *decade))
    })
}

/// A simple unit with its optional exponent (`cm2`, `s-1`, `10*9`, `mm[Hg]`), or an integer
/// factor (`100`).
fn annotatable(token: &[char]) -> Option<Magnitude> {
    if token.is_empty() {
        return None;
    }
    if token.iter().all(char::is_ascii_digit) {
        let s: String = token.iter().collect();
        let n: u64 = s.parse().ok()?;
        // An integer factor of zero would make every value zero.
        return (n > 0).then_some(Magnitude {
            mantissa: n as f64,
            ..Magnitude::ONE
        });
    }
    let digits = token
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .count();
    let mut atom_end = token.len() - digits;
    let mut exponent = 1;
    if digits > 0 {
        let signed = atom_end > 0 && matches!(token[atom_end - 1], '+' | '-');
        if signed {
            atom_end -= 1;
        }
        let text: String = token[atom_end..].iter().collect();
        exponent = text
            .parse()
            .ok()
            .filter(|e: &i32| e.abs() <= MAX_EXPONENT)?;
    }
    if atom_end == 0 {
        return None;
    }
    let symbol: String = token[..atom_end].iter().collect();
    lookup(&symbol)?.pow(exponent)
}

struct Parser<'a> {
    s: &'a [char],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.pos).copied()
    }

    /// `main-term := "/" term | term`
    fn main_term(&mut self) -> Option<Magnitude> {
        let m = if self.peek() == Some('/') {
            self.pos += 1;
            Magnitude::ONE.div(self.term()?)?
        } else {
            self.term()?
        };
        (self.pos == self.s.len()).then_some(m)
    }

    /// `term := term "." component | term "/" component | component`: left to right, so the
    /// solidus divides by the next component only (`mg/kg.d` is mg·d/kg).
    fn term(&mut self) -> Option<Magnitude> {
        let mut acc = self.component()?;
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    acc = acc.mul(self.component()?)?;
                }
                Some('/') => {
                    self.pos += 1;
                    acc = acc.div(self.component()?)?;
                }
                _ => return Some(acc),
            }
        }
    }

    fn component(&mut self) -> Option<Magnitude> {
        match self.peek()? {
            '(' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return None;
                }
                self.pos += 1;
                let t = self.term()?;
                if self.peek() != Some(')') {
                    return None;
                }
                self.pos += 1;
                self.depth -= 1;
                Some(t)
            }
            // An annotation alone stands for the unity (`{cells}/uL` is `/uL`).
            '{' => {
                self.annotation()?;
                Some(Magnitude::ONE)
            }
            _ => {
                let start = self.pos;
                while let Some(c) = self.peek() {
                    match c {
                        '.' | '/' | '(' | ')' | '{' | '}' => break,
                        // Bracketed atom parts (`[IU]`, `m[H2O]`) may hold digits and are
                        // part of the symbol.
                        '[' => {
                            let close = self.s[self.pos..].iter().position(|&c| c == ']')?;
                            self.pos += close + 1;
                        }
                        c if c.is_whitespace() => return None,
                        _ => self.pos += 1,
                    }
                }
                let m = annotatable(&self.s[start..self.pos])?;
                if self.peek() == Some('{') {
                    self.annotation()?;
                }
                Some(m)
            }
        }
    }

    /// Skips `{…}`: annotations carry no meaning in UCUM.
    fn annotation(&mut self) -> Option<()> {
        let close = self.s[self.pos..].iter().position(|&c| c == '}')?;
        if self.s[self.pos + 1..self.pos + close].contains(&'{') {
            return None;
        }
        self.pos += close + 1;
        Some(())
    }
}

/// How a unit converts to its canonical form: `canonical = value · factor`, in `unit`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanonicalUnit {
    mantissa: f64,
    decade: i32,
    unit: String,
}

impl CanonicalUnit {
    /// The dimension signature, e.g. `g.m-3` for mg/dL, `mol.m-3` for mmol/L, `1` for `%`.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// `value` in the canonical unit, rounded to a fixed number of significant digits (see
    /// `SIGNIFICANT_DIGITS`); `None` when it leaves the range of `f64`.
    pub fn convert(&self, value: f64) -> Option<f64> {
        let scaled = value * self.mantissa;
        if !scaled.is_finite() {
            return None;
        }
        // Formatting rounds to the significant digits, and shifting the decimal exponent
        // applies the decade exactly: one rounding step in all.
        let text = format!("{:.*e}", SIGNIFICANT_DIGITS - 1, scaled);
        let (digits, exp) = text.split_once('e')?;
        let exp: i32 = exp.parse().ok()?;
        let v: f64 = format!("{digits}e{}", exp.checked_add(self.decade)?)
            .parse()
            .ok()?;
        v.is_finite().then_some(v)
    }
}

/// Parses a UCUM unit code (case-sensitive form) into its canonical conversion; `None` when the
/// code is not valid UCUM, uses an atom outside the supported subset, or is not a pure multiple
/// of a canonical unit (temperatures in `Cel`, `[pH]`).
pub fn canonical_unit(code: &str) -> Option<CanonicalUnit> {
    let chars: Vec<char> = code.chars().take(MAX_UNIT_CHARS + 1).collect();
    if chars.is_empty() || chars.len() > MAX_UNIT_CHARS {
        return None;
    }
    let m = Parser {
        s: &chars,
        pos: 0,
        depth: 0,
    }
    .main_term()?;
    let mut parts = Vec::new();
    for (base, e) in BASES.iter().zip(m.dims) {
        match e {
            0 => {}
            1 => parts.push((*base).to_owned()),
            e => parts.push(format!("{base}{e}")),
        }
    }
    let unit = if parts.is_empty() {
        "1".to_owned()
    } else {
        parts.join(".")
    };
    Some(CanonicalUnit {
        mantissa: m.mantissa,
        decade: m.decade,
        unit,
    })
}

/// `value` in `code` as (canonical value, canonical unit); `None` when not convertible.
pub fn to_canonical(value: f64, code: &str) -> Option<(f64, String)> {
    let c = canonical_unit(code)?;
    Some((c.convert(value)?, c.unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(v: f64, code: &str) -> (f64, String) {
        to_canonical(v, code).unwrap_or_else(|| panic!("{code} should convert"))
    }

    /// Both sides convert to the same canonical value and unit.
    fn same(a: (f64, &str), b: (f64, &str)) {
        let (x, y) = (canon(a.0, a.1), canon(b.0, b.1));
        assert_eq!(x, y, "{} {} vs {} {}", a.0, a.1, b.0, b.1);
    }

    #[test]
    fn lab_concentrations() {
        same((100.0, "mg/dL"), (1.0, "g/L"));
        assert_eq!(canon(100.0, "mg/dL"), (1000.0, "g.m-3".to_owned()));
        same((5.5, "mmol/L"), (5500.0, "umol/L"));
        same((5.5, "mmol/L"), (5500.0, "\u{b5}mol/L"));
        same((5.5, "mmol/L"), (5.5, "mol/m3"));
        assert_eq!(canon(1.0, "mmol/L").1, "mol.m-3");
        same((4.2, "10*9/L"), (4.2, "10*3/uL"));
        same((4.2, "10*9/L"), (4.2, "/nL"));
        same((4.2, "10*9/L"), (4200.0, "/uL"));
        assert_eq!(canon(4.2, "10*9/L"), (4.2e12, "m-3".to_owned()));
        same((250.0, "10*3/uL"), (250.0, "10^3/uL"));
        same((14.0, "g/dL"), (140.0, "g/L"));
        same((2.0, "ng/mL"), (2.0, "ug/L"));
        same((30.0, "U/L"), (0.5, "ukat/L"));
        same((3.0, "m[IU]/mL"), (3.0, "[IU]/L"));
        same((140.0, "meq/L"), (0.14, "eq/L"));
    }

    #[test]
    fn percent_and_annotations() {
        assert_eq!(canon(7.1, "%"), (0.071, "1".to_owned()));
        same((50.0, "%"), (0.5, "1"));
        same((50.0, "%"), (500.0, "[ppth]"));
        same((5.0, "{cells}/uL"), (5.0, "/uL"));
        same((5.0, "mg{creat}/dL"), (5.0, "mg/dL"));
        same((1.0, "{score}"), (1.0, "1"));
    }

    #[test]
    fn pressure_time_and_compound_units() {
        same((120.0, "mm[Hg]"), (15.99864, "kPa"));
        same((10.0, "cm[H2O]"), (0.980665, "kPa"));
        same((1.0, "bar"), (100.0, "kPa"));
        same((1.0, "h"), (60.0, "min"));
        same((1.0, "d"), (24.0, "h"));
        same((1.0, "wk"), (7.0, "d"));
        same((1.0, "a"), (12.0, "mo"));
        same((90.0, "mL/min"), (5.4, "L/h"));
        same((1.73, "m2"), (17300.0, "cm2"));
        // `/` applies to the next component only: mg/kg.d = mg·d/kg, not mg/(kg·d).
        assert_eq!(canon(1.0, "mg/kg.d").1, "s");
        same((2.0, "mg/kg/d"), (2.0, "mg/(kg.d)"));
        same((70.0, "kg"), (70000.0, "g"));
        same((1.0, "[lb_av]"), (453.59237, "g"));
        same((60.0, "/min"), (1.0, "Hz"));
        same((2.0, "kcal"), (8.368, "kJ"));
    }

    #[test]
    fn no_molar_mass_conversion_and_no_cross_dimension() {
        assert_ne!(canon(1.0, "mg/dL").1, canon(1.0, "mmol/L").1);
        assert_ne!(canon(1.0, "meq/L").1, canon(1.0, "mmol/L").1);
        assert_ne!(canon(1.0, "[IU]/L").1, canon(1.0, "U/L").1);
        assert_ne!(canon(1.0, "mg").1, canon(1.0, "mL").1);
    }

    #[test]
    fn invalid_or_unsupported_units() {
        for code in [
            "", "Cel", "[degF]", "[pH]", "mg/", "/", "mg//dL", "(mg", "mg)", "mg.(L", "{x",
            "mg{a{b}}", "xyz", "m g", "MG", "mmHg", "IU", "10*", "0", "0/L", "s999", "m-", "kmin",
            "dh", "[IU", "g]", "mg}", "da", "()",
        ] {
            // `10*` alone is 10 (UCUM's exponent defaults to 1): the one valid entry here.
            if code == "10*" {
                assert_eq!(canon(1.0, code), (10.0, "1".to_owned()));
                continue;
            }
            assert!(
                canonical_unit(code).is_none(),
                "{code:?} should not convert"
            );
        }
        let deep = format!("{}g{}", "(".repeat(40), ")".repeat(40));
        assert!(canonical_unit(&deep).is_none());
        let shallow = format!("{}g{}", "(".repeat(3), ")".repeat(3));
        assert!(canonical_unit(&shallow).is_some());
        assert!(canonical_unit(&"g.".repeat(200)).is_none());
    }

    #[test]
    fn rounding_makes_conversion_paths_agree() {
        // 0.1 mg/dL and 1 mg/L reach 1 g/m3 along different float paths.
        same((0.1, "mg/dL"), (1.0, "mg/L"));
        same((0.3, "g/dL"), (3.0, "g/L"));
        let u = canonical_unit("mg/dL").unwrap();
        assert_eq!(u.convert(f64::MAX), None);
        assert_eq!(u.convert(0.0), Some(0.0));
        assert_eq!(u.convert(-2.5), Some(-25.0));
    }

    fn unit_strategy() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let simple = (
            proptest::sample::select(vec!["", "k", "m", "u", "n", "d", "c", "M", "G", "p", "f"]),
            proptest::sample::select(vec![
                "g", "L", "mol", "m", "s", "eq", "[IU]", "U", "kat", "Pa",
            ]),
            proptest::sample::select(vec!["", "2", "3", "-1", "-2"]),
        )
            .prop_map(|(p, a, e)| format!("{p}{a}{e}"));
        let other = proptest::sample::select(vec![
            "min", "h", "d", "wk", "%", "10*3", "10*9", "mm[Hg]", "{cells}", "[lb_av]",
        ])
        .prop_map(str::to_owned);
        let component = prop_oneof![simple, other];
        (
            proptest::collection::vec(
                (proptest::sample::select(vec![".", "/"]), component.clone()),
                0..4,
            ),
            component,
        )
            .prop_map(|(rest, first)| {
                let mut s = first;
                for (op, c) in rest {
                    s.push_str(op);
                    s.push_str(&c);
                }
                s
            })
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,40}") {
            let _ = canonical_unit(&s);
        }

        #[test]
        fn parser_never_panics_on_unit_alphabet(s in "[a-zA-Z0-9.\\/(){}\\[\\]*^%+\\-\u{b5}]{0,30}") {
            if let Some(u) = canonical_unit(&s) {
                let _ = u.convert(1.0);
            }
        }

        #[test]
        fn conversion_is_proportional(unit in unit_strategy(), v in 1e-6f64..1e6) {
            let u = canonical_unit(&unit);
            proptest::prop_assert!(u.is_some(), "{} should convert", unit);
            let u = u.unwrap();
            if let (Some(a), Some(b)) = (u.convert(v), u.convert(2.0 * v)) {
                proptest::prop_assert!(a > 0.0);
                let rel = ((b - 2.0 * a) / b).abs();
                proptest::prop_assert!(rel < 1e-10, "{} {}: {} vs {}", v, unit, a, b);
            }
        }
    }
}

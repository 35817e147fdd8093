//! SMART App Launch scopes: v2 (`patient/Observation.rs`, `user/*.cruds`,
//! `system/Patient.r`, granular `patient/Observation.rs?category=http://…|laboratory`), v1
//! (`patient/*.read`, `user/Observation.write`, `user/*.*`) mapped to v2 on parsing, and the
//! launch/identity scopes.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::error::AuthError;

/// Whose data a resource scope speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// The patient in the launch context (the token's `patient`).
    Patient,
    /// Whatever the user may see.
    User,
    /// A backend service, no user (client_credentials).
    System,
}

impl Context {
    pub fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// SMART v2 permissions, a subset of `cruds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Perms(u8);

impl Perms {
    pub const NONE: Perms = Perms(0);
    pub const C: Perms = Perms(1);
    pub const R: Perms = Perms(2);
    pub const U: Perms = Perms(4);
    pub const D: Perms = Perms(8);
    pub const S: Perms = Perms(16);
    pub const RS: Perms = Perms(2 | 16);
    pub const ALL: Perms = Perms(31);
    const LETTERS: [(u8, char); 5] = [(1, 'c'), (2, 'r'), (4, 'u'), (8, 'd'), (16, 's')];

    pub fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }
    pub fn intersect(self, other: Perms) -> Perms {
        Perms(self.0 & other.0)
    }
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// `c?r?u?d?s?` in this order, not empty (SMART v2 §Scopes).
    pub fn parse_v2(text: &str) -> Option<Perms> {
        let mut bits = 0u8;
        let mut next = 0;
        for ch in text.chars() {
            let pos = Self::LETTERS[next..].iter().position(|(_, c)| *c == ch)?;
            bits |= Self::LETTERS[next + pos].0;
            next += pos + 1;
        }
        (bits != 0).then_some(Perms(bits))
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, ch) in Self::LETTERS {
            if self.0 & bit != 0 {
                write!(f, "{ch}")?;
            }
        }
        Ok(())
    }
}

/// A search-parameter constraint of a granular scope, e.g. `category` =
/// `http://terminology.hl7.org/CodeSystem/observation-category|laboratory`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Constraint {
    pub param: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceScope {
    pub context: Context,
    /// `None` for `*`.
    pub resource_type: Option<String>,
    pub perms: Perms,
    /// All must hold (`?a=x&b=y`); empty for an unconstrained scope.
    pub constraints: Vec<Constraint>,
}

impl ResourceScope {
    pub fn covers_type(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    /// True when everything `self` grants is also granted by `other`.
    pub fn is_within(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && match (&self.resource_type, &other.resource_type) {
                (_, None) => true,
                (Some(a), Some(b)) => a == b,
                (None, Some(_)) => false,
            }
            && other.perms.contains(self.perms)
            && other
                .constraints
                .iter()
                .all(|c| self.constraints.contains(c))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Resource(ResourceScope),
    /// EHR launch: the `launch` parameter carries the context.
    Launch,
    /// Standalone launch asking for a patient to be picked.
    LaunchPatient,
    LaunchEncounter,
    OpenId,
    Profile,
    FhirUser,
    OfflineAccess,
    OnlineAccess,
}

const TYPE_MAX: usize = 64;

fn valid_type(text: &str) -> bool {
    text == "*"
        || (text.len() <= TYPE_MAX
            && text.starts_with(|c: char| c.is_ascii_uppercase())
            && text.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn invalid(scope: &str, reason: &'static str) -> AuthError {
    AuthError::InvalidScope {
        scope: scope.chars().take(200).collect(),
        reason,
    }
}

/// What stays encoded in a constraint value when printed: the separators of the query part.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'&')
    .add(b'=')
    .add(b'%')
    .add(b'#')
    .add(b'?');

impl Scope {
    pub fn parse(text: &str) -> Result<Scope, AuthError> {
        match text {
            "launch" => return Ok(Scope::Launch),
            "launch/patient" => return Ok(Scope::LaunchPatient),
            "launch/encounter" => return Ok(Scope::LaunchEncounter),
            "openid" => return Ok(Scope::OpenId),
            "profile" => return Ok(Scope::Profile),
            "fhirUser" => return Ok(Scope::FhirUser),
            "offline_access" => return Ok(Scope::OfflineAccess),
            "online_access" => return Ok(Scope::OnlineAccess),
            _ => {}
        }
        if text.len() > 1024 {
            return Err(invalid(text, "too long"));
        }
        let (context, rest) = text
            .split_once('/')
            .ok_or_else(|| invalid(text, "unknown scope"))?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Err(invalid(text, "unknown context")),
        };
        let (body, query) = match rest.split_once('?') {
            Some((body, query)) => (body, Some(query)),
            None => (rest, None),
        };
        let (resource_type, perms_text) = body
            .split_once('.')
            .ok_or_else(|| invalid(text, "expected Type.permissions"))?;
        if !valid_type(resource_type) {
            return Err(invalid(text, "bad resource type"));
        }
        let (perms, v1) = match perms_text {
            "read" => (Perms::RS, true),
            "write" => (Perms::C.union(Perms::U).union(Perms::D), true),
            "*" => (Perms::ALL, true),
            other => (
                Perms::parse_v2(other).ok_or_else(|| invalid(text, "bad permissions"))?,
                false,
            ),
        };
        let mut constraints = Vec::new();
        if let Some(query) = query {
            if v1 {
                return Err(invalid(text, "constraints need v2 permissions"));
            }
            for pair in query.split('&') {
                let (param, value) = pair
                    .split_once('=')
                    .ok_or_else(|| invalid(text, "constraint without '='"))?;
                let param = percent_decode_str(param)
                    .decode_utf8()
                    .map_err(|_| invalid(text, "bad encoding"))?;
                let value = percent_decode_str(value)
                    .decode_utf8()
                    .map_err(|_| invalid(text, "bad encoding"))?;
                if param.is_empty()
                    || value.is_empty()
                    || !param.chars().all(|c| {
                        c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == ':' || c == '.'
                    })
                {
                    return Err(invalid(text, "bad constraint"));
                }
                constraints.push(Constraint {
                    param: param.into_owned(),
                    value: value.into_owned(),
                });
            }
            constraints.sort();
            constraints.dedup();
        }
        Ok(Scope::Resource(ResourceScope {
            context,
            resource_type: (resource_type != "*").then(|| resource_type.to_owned()),
            perms,
            constraints,
        }))
    }

    /// True when everything `self` grants is also granted by `allowed` (used for "requested
    /// scopes ⊆ the client's allowed scopes" and for down-scoping at refresh).
    pub fn is_within(&self, allowed: &Scope) -> bool {
        match (self, allowed) {
            (Scope::Resource(a), Scope::Resource(b)) => a.is_within(b),
            (a, b) => a == b,
        }
    }
}

impl fmt::Display for Scope {
    /// Always the v2 form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Launch => f.write_str("launch"),
            Scope::LaunchPatient => f.write_str("launch/patient"),
            Scope::LaunchEncounter => f.write_str("launch/encounter"),
            Scope::OpenId => f.write_str("openid"),
            Scope::Profile => f.write_str("profile"),
            Scope::FhirUser => f.write_str("fhirUser"),
            Scope::OfflineAccess => f.write_str("offline_access"),
            Scope::OnlineAccess => f.write_str("online_access"),
            Scope::Resource(r) => {
                write!(
                    f,
                    "{}/{}.{}",
                    r.context.as_str(),
                    r.resource_type.as_deref().unwrap_or("*"),
                    r.perms
                )?;
                for (i, c) in r.constraints.iter().enumerate() {
                    let sep = if i == 0 { '?' } else { '&' };
                    write!(
                        f,
                        "{sep}{}={}",
                        utf8_percent_encode(&c.param, QUERY_VALUE),
                        utf8_percent_encode(&c.value, QUERY_VALUE)
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// The scopes of a grant or token, in the order given, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeSet(Vec<Scope>);

impl ScopeSet {
    /// Parses a space-separated `scope` parameter. Any unknown or malformed scope is an error:
    /// a scope we do not understand must never be granted silently.
    pub fn parse(text: &str) -> Result<ScopeSet, AuthError> {
        let mut scopes: Vec<Scope> = Vec::new();
        for item in text.split([' ', '\t', '\n']).filter(|s| !s.is_empty()) {
            let scope = Scope::parse(item)?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        Ok(ScopeSet(scopes))
    }

    pub fn from_scopes(scopes: impl IntoIterator<Item = Scope>) -> ScopeSet {
        let mut set = ScopeSet::default();
        for s in scopes {
            if !set.0.contains(&s) {
                set.0.push(s);
            }
        }
        set
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn has(&self, scope: &Scope) -> bool {
        self.0.contains(scope)
    }

    pub fn resource_scopes(&self) -> impl Iterator<Item = &ResourceScope> {
        self.0.iter().filter_map(|s| match s {
            Scope::Resource(r) => Some(r),
            _ => None,
        })
    }

    /// Each scope of `self` is within some scope of `allowed`.
    pub fn is_within(&self, allowed: &ScopeSet) -> bool {
        self.first_outside(allowed).is_none()
    }

    pub fn first_outside(&self, allowed: &ScopeSet) -> Option<&Scope> {
        self.0
            .iter()
            .find(|s| !allowed.0.iter().any(|a| s.is_within(a)))
    }

    pub fn retain(&mut self, keep: impl FnMut(&Scope) -> bool) {
        self.0.retain(keep);
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rs(text: &str) -> ResourceScope {
        match Scope::parse(text).unwrap() {
            Scope::Resource(r) => r,
            other => panic!("not a resource scope: {other:?}"),
        }
    }

    #[test]
    fn v2_scopes() {
        let s = rs("patient/Observation.rs");
        assert_eq!(s.context, Context::Patient);
        assert_eq!(s.resource_type.as_deref(), Some("Observation"));
        assert_eq!(s.perms, Perms::RS);
        let s = rs("user/*.cruds");
        assert_eq!(
            (s.context, s.resource_type, s.perms),
            (Context::User, None, Perms::ALL)
        );
        let s = rs("system/Patient.r");
        assert_eq!((s.context, s.perms), (Context::System, Perms::R));
        let s = rs(
            "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
        );
        assert_eq!(
            s.constraints,
            vec![Constraint {
                param: "category".into(),
                value: "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
                    .into()
            }]
        );
        let s = rs("user/Observation.rs?code=http%3A%2F%2Floinc.org%7C1234-5&category=vital-signs");
        assert_eq!(s.constraints.len(), 2);
        assert_eq!(s.constraints[1].value, "http://loinc.org|1234-5");
    }

    #[test]
    fn v1_maps_to_v2() {
        assert_eq!(
            Scope::parse("patient/*.read").unwrap().to_string(),
            "patient/*.rs"
        );
        assert_eq!(
            Scope::parse("user/Observation.write").unwrap().to_string(),
            "user/Observation.cud"
        );
        assert_eq!(
            Scope::parse("user/*.*").unwrap().to_string(),
            "user/*.cruds"
        );
        assert_eq!(
            Scope::parse("patient/*.*").unwrap(),
            Scope::parse("patient/*.cruds").unwrap()
        );
    }

    #[test]
    fn refused() {
        for bad in [
            "patient/Observation.sr", // wrong order
            "patient/Observation.rr", // duplicate
            "patient/Observation.",   // empty
            "patient/Observation.x",
            "patient/observation.rs", // lower-case type
            "doctor/Observation.rs",
            "*.*",
            "patient/Observation",
            "patient/Observation.read?category=x",
            "patient/Observation.rs?category",
            "patient/Observation.rs?=x",
            "launch/other",
            "admin",
            "",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad} accepted");
        }
        assert!(ScopeSet::parse("openid bogus").is_err());
        assert!(ScopeSet::parse("  ").unwrap().is_empty());
    }

    #[test]
    fn special_scopes() {
        let set = ScopeSet::parse("openid fhirUser launch launch/patient offline_access online_access profile launch/encounter").unwrap();
        assert_eq!(set.len(), 8);
        assert_eq!(
            set.to_string(),
            "openid fhirUser launch launch/patient offline_access online_access profile launch/encounter"
        );
    }

    #[test]
    fn within() {
        let allowed = ScopeSet::parse("patient/*.rs user/Observation.cruds openid").unwrap();
        assert!(
            ScopeSet::parse("patient/Observation.r openid")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            ScopeSet::parse("patient/Observation.rs?category=laboratory")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            ScopeSet::parse("user/Observation.cd")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            !ScopeSet::parse("patient/Observation.c")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            !ScopeSet::parse("user/Patient.r")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            !ScopeSet::parse("system/Observation.r")
                .unwrap()
                .is_within(&allowed)
        );
        assert!(
            !ScopeSet::parse("offline_access")
                .unwrap()
                .is_within(&allowed)
        );
        // A constrained grant does not cover the unconstrained scope.
        let lab = ScopeSet::parse("patient/Observation.rs?category=laboratory").unwrap();
        assert!(
            !ScopeSet::parse("patient/Observation.rs")
                .unwrap()
                .is_within(&lab)
        );
        assert!(
            ScopeSet::parse("patient/Observation.r?category=laboratory")
                .unwrap()
                .is_within(&lab)
        );
    }

    fn arb_scope() -> impl Strategy<Value = Scope> {
        let resource = (
            prop_oneof![
                Just(Context::Patient),
                Just(Context::User),
                Just(Context::System)
            ],
            prop::option::of("[A-Z][a-zA-Z]{0,20}"),
            1u8..32,
            prop::collection::vec(("[a-z][a-z-]{0,10}", "[ -~]{1,30}"), 0..3),
        )
            .prop_map(|(context, resource_type, bits, cs)| {
                let mut constraints: Vec<Constraint> = cs
                    .into_iter()
                    .map(|(param, value)| Constraint { param, value })
                    .collect();
                constraints.sort();
                constraints.dedup();
                Scope::Resource(ResourceScope {
                    context,
                    resource_type,
                    perms: Perms(bits),
                    constraints,
                })
            });
        prop_oneof![
            resource,
            Just(Scope::Launch),
            Just(Scope::LaunchPatient),
            Just(Scope::OpenId),
            Just(Scope::FhirUser),
            Just(Scope::OfflineAccess),
            Just(Scope::OnlineAccess),
        ]
    }

    proptest! {
        #[test]
        fn printed_scopes_parse_back(scope in arb_scope()) {
            let text = scope.to_string();
            prop_assert_eq!(Scope::parse(&text).unwrap(), scope.clone());
            prop_assert!(scope.is_within(&scope));
        }

        #[test]
        fn parser_never_panics(text in "\\PC{0,80}") {
            let _ = Scope::parse(&text);
            let _ = ScopeSet::parse(&text);
        }

        #[test]
        fn scope_like_strings(ctx in "(patient|user|system|x)", ty in "(\\*|[A-Za-z]{1,8})", perms in "[cruds*a-z]{0,6}") {
            let text = format!("{ctx}/{ty}.{perms}");
            if let Ok(Scope::Resource(r)) = Scope::parse(&text) {
                prop_assert!(!r.perms.is_empty());
                // v2 output of a parsed scope is itself a fixed point.
                let again = Scope::parse(&Scope::Resource(r.clone()).to_string()).unwrap();
                prop_assert_eq!(again, Scope::Resource(r));
            }
        }

        #[test]
        fn v1_read_is_v2_rs(ctx in "(patient|user|system)", ty in "(\\*|[A-Z][a-z]{1,8})") {
            let v1 = Scope::parse(&format!("{ctx}/{ty}.read")).unwrap();
            let v2 = Scope::parse(&format!("{ctx}/{ty}.rs")).unwrap();
            prop_assert_eq!(v1, v2);
        }
    }
}

//! Users: login name, display name, tenant memberships with roles and a `fhirUser`,
//! argon2id password, TOTP (sealed at rest, required for admin roles), lockout with backoff.

use medicus_store::platform::DocExpect;
use serde::{Deserialize, Serialize};

use crate::crypto::{b64, b64_decode, random_id};
use crate::docs;
use crate::error::AuthError;
use crate::password::{check_password_policy, hash_password, verify_dummy, verify_password};
use crate::roles::Role;
use crate::service::Auth;
use crate::totp;

const NS_USER: &str = "user";
const NS_LOGIN: &str = "login";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub tenant: String,
    pub roles: Vec<Role>,
    /// `Practitioner/{id}` or `Patient/{id}` in this tenant.
    #[serde(rename = "fhirUser", default, skip_serializing_if = "Option::is_none")]
    pub fhir_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The seed sealed under the server key (context `totp:<user id>`), base64.
    sealed: String,
    confirmed: bool,
    #[serde(default)]
    last_step: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub memberships: Vec<Membership>,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    totp: Option<TotpState>,
    #[serde(default)]
    pub failed_logins: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until_s: Option<i64>,
    pub created_s: i64,
}

impl User {
    pub fn membership(&self, tenant: &str) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.tenant == tenant)
    }
    pub fn roles_in(&self, tenant: &str) -> Vec<Role> {
        self.membership(tenant)
            .map(|m| m.roles.clone())
            .unwrap_or_default()
    }
    /// Any membership with an admin role makes the second factor mandatory.
    pub fn requires_totp(&self) -> bool {
        self.memberships
            .iter()
            .any(|m| m.roles.iter().any(|r| r.requires_totp()))
    }
    pub fn has_totp(&self) -> bool {
        self.totp.as_ref().is_some_and(|t| t.confirmed)
    }
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub login: String,
    pub display_name: String,
    pub password: Option<String>,
    pub memberships: Vec<Membership>,
}

/// A TOTP secret being enrolled: show `uri` as a QR code (or `secret_base32`) once.
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    pub secret_base32: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    Success(Box<User>),
    /// Password right; ask for the TOTP code (call `login` again with it).
    TotpRequired,
    /// Password right, but an admin role without an enrolled second factor: enrol first
    /// (`begin_totp` / `confirm_totp`) before any session is granted.
    TotpEnrolmentRequired(Box<User>),
    /// Unknown login or wrong password (one answer for both: no account enumeration).
    Invalid,
    TotpInvalid,
    Locked {
        until_s: i64,
    },
    Disabled,
}

pub(crate) fn normalise_login(login: &str) -> String {
    login.trim().to_lowercase()
}

fn validate_login(login: &str) -> Result<(), AuthError> {
    let ok = !login.is_empty()
        && login.len() <= 128
        && login
            .chars()
            .all(|c| c.is_alphanumeric() || "._-@+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(
            "login names are 1-128 letters, digits or ._-@+".into(),
        ))
    }
}

fn validate_fhir_user(reference: &str) -> Result<(), AuthError> {
    let ok = match reference.split_once('/') {
        Some(("Practitioner" | "Patient" | "RelatedPerson" | "Person", id)) => {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "fhirUser must be Practitioner/<id> or Patient/<id>, not '{reference}'"
        )))
    }
}

fn validate_membership(m: &Membership) -> Result<(), AuthError> {
    medicus_store::tenant::validate_tenant_id(&m.tenant)
        .map_err(|e| AuthError::Invalid(e.to_string()))?;
    if let Some(r) = &m.fhir_user {
        validate_fhir_user(r)?;
    }
    if m.roles.contains(&Role::Patient)
        && !m
            .fhir_user
            .as_deref()
            .is_some_and(|r| r.starts_with("Patient/"))
    {
        return Err(AuthError::Invalid(
            "a patient membership needs fhirUser Patient/<id>".into(),
        ));
    }
    if m.roles.contains(&Role::Service) {
        return Err(AuthError::Invalid(
            "service is a client role, not a user role".into(),
        ));
    }
    Ok(())
}

impl Auth {
    pub fn create_user(&self, new: NewUser) -> Result<User, AuthError> {
        let login = normalise_login(&new.login);
        validate_login(&login)?;
        for m in &new.memberships {
            validate_membership(m)?;
        }
        let password_hash = match &new.password {
            Some(p) => {
                check_password_policy(p)?;
                Some(hash_password(p, self.config.password_cost)?)
            }
            None => None,
        };
        let user = User {
            id: random_id()?,
            login: login.clone(),
            display_name: new.display_name.trim().to_owned(),
            memberships: new.memberships,
            disabled: false,
            password_hash,
            totp: None,
            failed_logins: 0,
            locked_until_s: None,
            created_s: self.now(),
        };
        // The login index is claimed first: of two concurrent creations one wins.
        let index = serde_json::json!({ "user": user.id });
        if docs::put(
            &*self.records,
            NS_LOGIN,
            &login,
            &index,
            None,
            DocExpect::Absent,
        )?
        .is_none()
        {
            return Err(AuthError::Exists(format!("login {login}")));
        }
        docs::put(
            &*self.records,
            NS_USER,
            &user.id,
            &user,
            None,
            DocExpect::Absent,
        )?
        .ok_or_else(|| AuthError::Exists(format!("user {}", user.id)))?;
        Ok(user)
    }

    pub fn user(&self, id: &str) -> Result<Option<User>, AuthError> {
        Ok(docs::get::<User>(&*self.records, NS_USER, id)?.map(|(u, _)| u))
    }

    pub fn user_by_login(&self, login: &str) -> Result<Option<User>, AuthError> {
        let Some((index, _)) =
            docs::get::<serde_json::Value>(&*self.records, NS_LOGIN, &normalise_login(login))?
        else {
            return Ok(None);
        };
        let Some(id) = index.get("user").and_then(|v| v.as_str()) else {
            return Err(AuthError::Corrupt("login index".into()));
        };
        self.user(id)
    }

    pub fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, AuthError> {
        Ok(docs::list::<User>(&*self.records, NS_USER, "")?
            .into_iter()
            .map(|(_, u)| u)
            .filter(|u| tenant.is_none_or(|t| u.membership(t).is_some()))
            .collect())
    }

    fn update_user(
        &self,
        id: &str,
        change: impl FnMut(&mut User) -> Result<(), AuthError>,
    ) -> Result<User, AuthError> {
        docs::update(&*self.records, NS_USER, id, None, change)
    }

    /// Sets the user's roles (and `fhirUser`) in a tenant; empty roles remove the membership.
    pub fn set_membership(&self, id: &str, membership: Membership) -> Result<User, AuthError> {
        if !membership.roles.is_empty() {
            validate_membership(&membership)?;
        }
        self.update_user(id, |u| {
            u.memberships.retain(|m| m.tenant != membership.tenant);
            if !membership.roles.is_empty() {
                u.memberships.push(membership.clone());
            }
            Ok(())
        })
    }

    /// Disables (or re-enables) a user. Disabling also revokes the user's live access tokens
    /// (a `sub:` marker for one token lifetime); refresh tokens are refused at their next use.
    pub fn set_disabled(&self, id: &str, disabled: bool) -> Result<User, AuthError> {
        let user = self.update_user(id, |u| {
            u.disabled = disabled;
            Ok(())
        })?;
        if disabled {
            let until = self.now() + self.config.access_token_ttl_s + self.config.leeway_s;
            self.revoke_marker(format!("sub:{id}"), until)?;
        } else {
            self.unrevoke_marker(&format!("sub:{id}"))?;
        }
        Ok(user)
    }

    pub fn set_password(&self, id: &str, password: &str) -> Result<User, AuthError> {
        check_password_policy(password)?;
        let hash = hash_password(password, self.config.password_cost)?;
        self.update_user(id, |u| {
            u.password_hash = Some(hash.clone());
            u.failed_logins = 0;
            u.locked_until_s = None;
            Ok(())
        })
    }

    /// Starts (or restarts) TOTP enrolment: a new seed, sealed at rest, active once confirmed.
    pub fn begin_totp(&self, id: &str, issuer: &str) -> Result<TotpEnrolment, AuthError> {
        let secret = totp::generate_secret()?;
        let sealed = b64(&self.server_key.seal(&format!("totp:{id}"), &secret)?);
        let user = self.update_user(id, |u| {
            u.totp = Some(TotpState {
                sealed: sealed.clone(),
                confirmed: false,
                last_step: None,
            });
            Ok(())
        })?;
        Ok(TotpEnrolment {
            secret_base32: totp::base32(&secret),
            uri: totp::otpauth_uri(issuer, &user.login, &secret),
        })
    }

    /// Confirms enrolment with a first code from the app.
    pub fn confirm_totp(&self, id: &str, code: &str) -> Result<bool, AuthError> {
        let now = self.now();
        let mut ok = false;
        self.update_user(id, |u| {
            ok = false;
            let Some(state) = u.totp.as_mut() else {
                return Err(AuthError::Invalid("no TOTP enrolment started".into()));
            };
            let secret = self
                .server_key
                .open(&format!("totp:{}", u.id), &b64_decode(&state.sealed)?)?;
            if let Some(step) = totp::verify(&secret, code, now, state.last_step) {
                state.confirmed = true;
                state.last_step = Some(step);
                ok = true;
            }
            Ok(())
        })?;
        Ok(ok)
    }

    /// A login attempt. Failures (password or code) count towards a lockout of
    /// `lockout_base_s · 2^(failures − max)` seconds, capped at `lockout_max_s`; while locked,
    /// nothing is verified. Per-IP rate limiting belongs to the HTTP layer.
    pub fn login(
        &self,
        login: &str,
        password: &str,
        totp_code: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let now = self.now();
        let Some(user) = self.user_by_login(login)? else {
            verify_dummy(password, self.config.password_cost);
            return Ok(LoginOutcome::Invalid);
        };
        if let Some(until) = user.locked_until_s
            && until > now
        {
            return Ok(LoginOutcome::Locked { until_s: until });
        }
        let password_ok = user
            .password_hash
            .as_deref()
            .is_some_and(|h| verify_password(password, h));
        if !password_ok {
            self.record_failure(&user.id, now)?;
            return Ok(LoginOutcome::Invalid);
        }
        if user.disabled {
            return Ok(LoginOutcome::Disabled);
        }
        if user.has_totp() {
            let Some(code) = totp_code else {
                return Ok(LoginOutcome::TotpRequired);
            };
            let mut accepted = false;
            self.update_user(&user.id, |u| {
                accepted = false;
                let Some(state) = u.totp.as_mut() else {
                    return Ok(());
                };
                let secret = self
                    .server_key
                    .open(&format!("totp:{}", u.id), &b64_decode(&state.sealed)?)?;
                if let Some(step) = totp::verify(&secret, code, now, state.last_step) {
                    // Stored under compare-and-set: a code replayed concurrently loses.
                    state.last_step = Some(step);
                    accepted = true;
                }
                Ok(())
            })?;
            if !accepted {
                self.record_failure(&user.id, now)?;
                return Ok(LoginOutcome::TotpInvalid);
            }
        } else if user.requires_totp() {
            return Ok(LoginOutcome::TotpEnrolmentRequired(Box::new(user)));
        }
        let user = self.update_user(&user.id, |u| {
            u.failed_logins = 0;
            u.locked_until_s = None;
            Ok(())
        })?;
        Ok(LoginOutcome::Success(Box::new(user)))
    }

    fn record_failure(&self, id: &str, now: i64) -> Result<(), AuthError> {
        let (max, base, cap) = (
            self.config.max_failed_logins,
            self.config.lockout_base_s,
            self.config.lockout_max_s,
        );
        self.update_user(id, |u| {
            u.failed_logins = u.failed_logins.saturating_add(1);
            if u.failed_logins >= max {
                let exponent = (u.failed_logins - max).min(20);
                let lock = base.saturating_mul(1i64 << exponent).min(cap);
                u.locked_until_s = Some(now + lock);
            }
            Ok(())
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tests::auth;

    fn clinician() -> NewUser {
        NewUser {
            login: "Alice".into(),
            display_name: "Dr. Alice".into(),
            password: Some("correct horse battery".into()),
            memberships: vec![Membership {
                tenant: "t1".into(),
                roles: vec![Role::Clinician],
                fhir_user: Some("Practitioner/a1".into()),
            }],
        }
    }

    #[test]
    fn create_and_find() {
        let (auth, _, records) = auth();
        let user = auth.create_user(clinician()).unwrap();
        assert_eq!(user.login, "alice");
        assert_eq!(auth.user_by_login(" ALICE ").unwrap().unwrap().id, user.id);
        assert!(matches!(
            auth.create_user(clinician()),
            Err(AuthError::Exists(_))
        ));
        let raw = String::from_utf8(records.raw("user")[0].value.clone()).unwrap();
        assert!(!raw.contains("correct horse"), "password in plain text");
        assert!(raw.contains("$argon2id$"));
        assert_eq!(auth.list_users(Some("t1")).unwrap().len(), 1);
        assert_eq!(auth.list_users(Some("t2")).unwrap().len(), 0);
    }

    #[test]
    fn validation() {
        let (auth, _, _) = auth();
        let mut u = clinician();
        u.password = Some("short".into());
        assert!(auth.create_user(u).is_err());
        let mut u = clinician();
        u.memberships[0].roles = vec![Role::Patient];
        assert!(
            auth.create_user(u).is_err(),
            "patient without Patient fhirUser"
        );
        let mut u = clinician();
        u.memberships[0].fhir_user = Some("Observation/1".into());
        assert!(auth.create_user(u).is_err());
        let mut u = clinician();
        u.login = "a b".into();
        assert!(auth.create_user(u).is_err());
    }

    #[test]
    fn login_lockout_with_backoff() {
        let (auth, clock, _) = auth();
        let user = auth.create_user(clinician()).unwrap();
        assert_eq!(
            auth.login("nobody", "whatever pass", None).unwrap(),
            LoginOutcome::Invalid
        );
        for _ in 0..4 {
            assert_eq!(
                auth.login("alice", "wrong password", None).unwrap(),
                LoginOutcome::Invalid
            );
        }
        assert!(matches!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::Success(_)
        ));
        for _ in 0..5 {
            assert_eq!(
                auth.login("alice", "wrong password", None).unwrap(),
                LoginOutcome::Invalid
            );
        }
        // Locked: even the right password is refused without being checked.
        assert_eq!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::Locked {
                until_s: clock.now_s() + 30
            }
        );
        clock.advance(31);
        assert_eq!(
            auth.login("alice", "wrong password", None).unwrap(),
            LoginOutcome::Invalid
        );
        // Sixth failure: doubled lock.
        assert_eq!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::Locked {
                until_s: clock.now_s() + 60
            }
        );
        clock.advance(61);
        assert!(matches!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::Success(_)
        ));
        assert_eq!(auth.user(&user.id).unwrap().unwrap().failed_logins, 0);
        auth.set_disabled(&user.id, true).unwrap();
        assert_eq!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::Disabled
        );
        let (token, _) = auth
            .issue_access_token(&crate::tokens::TokenGrant {
                subject: user.id.clone(),
                tenant: "t1".into(),
                roles: vec![Role::Clinician],
                scopes: crate::ScopeSet::parse("user/*.rs").unwrap(),
                patient: None,
                fhir_user: None,
                client_id: "app".into(),
                family: None,
            })
            .unwrap();
        assert!(
            auth.verify_access_token(&token).is_err(),
            "disabled user's token"
        );
        auth.set_disabled(&user.id, false).unwrap();
        assert!(auth.verify_access_token(&token).is_ok());
    }

    use crate::clock::Clock;

    #[test]
    fn admin_needs_totp_and_codes_are_single_use() {
        let (auth, clock, records) = auth();
        let mut new = clinician();
        new.memberships[0].roles = vec![Role::TenantAdmin];
        let user = auth.create_user(new).unwrap();
        assert!(matches!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::TotpEnrolmentRequired(_)
        ));
        let enrolment = auth.begin_totp(&user.id, "medicus").unwrap();
        assert!(
            enrolment
                .uri
                .starts_with("otpauth://totp/medicus:alice?secret=")
        );
        let raw = String::from_utf8(records.raw("user")[0].value.clone()).unwrap();
        assert!(
            !raw.contains(&enrolment.secret_base32),
            "TOTP seed in plain text"
        );
        let secret = decode_base32(&enrolment.secret_base32);
        // Not yet confirmed: still enrolment required.
        assert!(matches!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::TotpEnrolmentRequired(_)
        ));
        assert!(
            !auth.confirm_totp(&user.id, "000000").unwrap()
                || totp::code_at(&secret, clock.now_s()) == "000000"
        );
        assert!(
            auth.confirm_totp(&user.id, &totp::code_at(&secret, clock.now_s()))
                .unwrap()
        );
        assert_eq!(
            auth.login("alice", "correct horse battery", None).unwrap(),
            LoginOutcome::TotpRequired
        );
        clock.advance(30);
        let code = totp::code_at(&secret, clock.now_s());
        assert!(matches!(
            auth.login("alice", "correct horse battery", Some(&code))
                .unwrap(),
            LoginOutcome::Success(_)
        ));
        // Replay of the same code.
        assert_eq!(
            auth.login("alice", "correct horse battery", Some(&code))
                .unwrap(),
            LoginOutcome::TotpInvalid
        );
        // A wrong password never reaches the TOTP check.
        assert_eq!(
            auth.login("alice", "wrong password", Some(&code)).unwrap(),
            LoginOutcome::Invalid
        );
    }

    fn decode_base32(text: &str) -> Vec<u8> {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let (mut buffer, mut bits, mut out) = (0u32, 0, Vec::new());
        for c in text.bytes() {
            buffer = (buffer << 5) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
            }
        }
        out
    }

    #[test]
    fn memberships() {
        let (auth, _, _) = auth();
        let user = auth.create_user(clinician()).unwrap();
        let user2 = auth
            .set_membership(
                &user.id,
                Membership {
                    tenant: "t2".into(),
                    roles: vec![Role::Researcher],
                    fhir_user: None,
                },
            )
            .unwrap();
        assert_eq!(user2.roles_in("t2"), vec![Role::Researcher]);
        assert_eq!(user2.roles_in("t1"), vec![Role::Clinician]);
        let user3 = auth
            .set_membership(
                &user.id,
                Membership {
                    tenant: "t1".into(),
                    roles: vec![],
                    fhir_user: None,
                },
            )
            .unwrap();
        assert!(user3.membership("t1").is_none());
    }
}

//! Object lock (WORM): retention in GOVERNANCE or COMPLIANCE mode until a date, and legal
//! hold. A version that is held or retained cannot be deleted by any path of the engine (the S3
//! API, and whatever else deletes through `Objects`); GOVERNANCE yields only to a caller with
//! the bypass right who asks for it, COMPLIANCE to nobody, and a COMPLIANCE date can only move
//! later.

use serde::{Deserialize, Serialize};

use crate::error::ObjectError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum LockMode {
    Governance,
    Compliance,
}

impl LockMode {
    pub fn parse(s: &str) -> Result<LockMode, ObjectError> {
        match s {
            "GOVERNANCE" => Ok(LockMode::Governance),
            "COMPLIANCE" => Ok(LockMode::Compliance),
            _ => Err(ObjectError::InvalidArgument(format!(
                "unknown object lock mode {s:?}"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }
}

/// Retention of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: LockMode,
    /// Microseconds since the Unix epoch.
    pub until_us: i64,
}

/// The lock state of one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

impl ObjectLock {
    pub fn is_empty(&self) -> bool {
        self.retention.is_none() && !self.legal_hold
    }

    /// Whether the version may be deleted now; `bypass` is a GOVERNANCE bypass the caller has
    /// the right to and asked for.
    pub fn check_delete(&self, now_us: i64, bypass: bool) -> Result<(), ObjectError> {
        if self.legal_hold {
            return Err(ObjectError::ObjectLocked(
                "the object version is under legal hold".into(),
            ));
        }
        match self.retention {
            Some(r) if r.until_us > now_us => match r.mode {
                LockMode::Compliance => Err(ObjectError::ObjectLocked(
                    "the object version is retained in COMPLIANCE mode".into(),
                )),
                LockMode::Governance if bypass => Ok(()),
                LockMode::Governance => Err(ObjectError::ObjectLocked(
                    "the object version is retained in GOVERNANCE mode (bypass needs the permission and x-amz-bypass-governance-retention)".into(),
                )),
            },
            _ => Ok(()),
        }
    }

    /// Whether the retention may change from `self.retention` to `new`.
    pub fn check_retention_change(
        &self,
        new: Option<Retention>,
        now_us: i64,
        bypass: bool,
    ) -> Result<(), ObjectError> {
        let Some(old) = self.retention.filter(|r| r.until_us > now_us) else {
            return Ok(());
        };
        let extends = |n: Option<Retention>| n.is_some_and(|n| n.until_us >= old.until_us);
        match old.mode {
            LockMode::Compliance => {
                if extends(new) && new.is_some_and(|n| n.mode == LockMode::Compliance) {
                    Ok(())
                } else {
                    Err(ObjectError::ObjectLocked(
                        "a COMPLIANCE retention can only be extended".into(),
                    ))
                }
            }
            LockMode::Governance => {
                if extends(new) || bypass {
                    Ok(())
                } else {
                    Err(ObjectError::ObjectLocked(
                        "shortening or removing a GOVERNANCE retention needs the bypass".into(),
                    ))
                }
            }
        }
    }
}

/// The default retention of a lock-enabled bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: LockMode,
    pub days: u32,
}

impl DefaultRetention {
    pub fn at(self, now_us: i64) -> Retention {
        Retention {
            mode: self.mode,
            until_us: now_us.saturating_add(i64::from(self.days) * 86_400_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000_000;

    fn lock(mode: LockMode, until_us: i64) -> ObjectLock {
        ObjectLock {
            retention: Some(Retention { mode, until_us }),
            legal_hold: false,
        }
    }

    #[test]
    fn deletes() {
        let now = 100 * DAY;
        assert!(ObjectLock::default().check_delete(now, false).is_ok());
        let hold = ObjectLock {
            retention: None,
            legal_hold: true,
        };
        assert!(hold.check_delete(now, true).is_err());
        let c = lock(LockMode::Compliance, now + DAY);
        assert!(c.check_delete(now, true).is_err());
        assert!(c.check_delete(now + 2 * DAY, false).is_ok(), "expired");
        let g = lock(LockMode::Governance, now + DAY);
        assert!(g.check_delete(now, false).is_err());
        assert!(g.check_delete(now, true).is_ok());
    }

    #[test]
    fn retention_changes() {
        let now = 100 * DAY;
        let r = |mode, until_us| Some(Retention { mode, until_us });
        let c = lock(LockMode::Compliance, now + DAY);
        assert!(
            c.check_retention_change(r(LockMode::Compliance, now + 2 * DAY), now, false)
                .is_ok()
        );
        assert!(
            c.check_retention_change(r(LockMode::Compliance, now + DAY / 2), now, true)
                .is_err()
        );
        assert!(
            c.check_retention_change(r(LockMode::Governance, now + 5 * DAY), now, true)
                .is_err()
        );
        assert!(c.check_retention_change(None, now, true).is_err());
        let g = lock(LockMode::Governance, now + DAY);
        assert!(
            g.check_retention_change(r(LockMode::Compliance, now + 2 * DAY), now, false)
                .is_ok()
        );
        assert!(g.check_retention_change(None, now, false).is_err());
        assert!(g.check_retention_change(None, now, true).is_ok());
    }
}

//! Lifecycle rules of a bucket: expire current objects after some days (a delete marker in a
//! versioned bucket), remove noncurrent versions some days after they were superseded, abort
//! multipart uploads left incomplete. Applied by [`Objects::apply_lifecycle`] through the same
//! delete path as the API, without any bypass: a locked version is never removed by a rule.

use serde::{Deserialize, Serialize};

use crate::engine::Objects;
use crate::error::{ObjectError, Result};
use medicus_store::objects::{BucketRecord, ListFrom};

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleRule {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub prefix: String,
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noncurrent_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_multipart_days: Option<u32>,
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleReport {
    pub expired: u64,
    pub noncurrent_removed: u64,
    pub uploads_aborted: u64,
    /// Versions a rule selected but their lock kept.
    pub locked_kept: u64,
}

fn due(since_us: i64, days: u32, now_us: i64) -> bool {
    since_us.saturating_add(i64::from(days) * DAY_US) <= now_us
}

impl Objects {
    /// Applies the bucket's enabled rules as of `now_us`.
    pub fn apply_lifecycle(&self, bucket: &BucketRecord, now_us: i64) -> Result<LifecycleReport> {
        let config = Self::bucket_config(bucket)?;
        let mut report = LifecycleReport::default();
        for rule in config.lifecycle.iter().filter(|r| r.enabled) {
            if let Some(days) = rule.expiration_days {
                self.expire_current(bucket, rule, days, now_us, &mut report)?;
            }
            if let Some(days) = rule.noncurrent_days {
                self.expire_noncurrent(bucket, rule, days, now_us, &mut report)?;
            }
            if let Some(days) = rule.abort_multipart_days {
                let mut after: Option<(String, String)> = None;
                loop {
                    let page = self.store().upload_list(
                        &bucket.name,
                        &rule.prefix,
                        after.as_ref().map(|(k, u)| (k.as_str(), u.as_str())),
                        500,
                    )?;
                    let Some(last) = page.last() else { break };
                    after = Some((last.key.clone(), last.upload_id.clone()));
                    for u in page.iter().filter(|u| due(u.created_us, days, now_us)) {
                        match self.abort_upload(u) {
                            Ok(()) => report.uploads_aborted += 1,
                            Err(ObjectError::NoSuchUpload) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    fn expire_current(
        &self,
        bucket: &BucketRecord,
        rule: &LifecycleRule,
        days: u32,
        now_us: i64,
        report: &mut LifecycleReport,
    ) -> Result<()> {
        let mut after: Option<String> = None;
        loop {
            let from = after.as_deref().map_or(ListFrom::Start, ListFrom::After);
            let page = self
                .store()
                .list_latest(&bucket.name, &rule.prefix, from, 500)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for v in page.iter().filter(|v| due(v.created_us, days, now_us)) {
                match self.delete_with(bucket, &v.key, None, false) {
                    Ok(_) => report.expired += 1,
                    Err(ObjectError::ObjectLocked(_)) => report.locked_kept += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    fn expire_noncurrent(
        &self,
        bucket: &BucketRecord,
        rule: &LifecycleRule,
        days: u32,
        now_us: i64,
        report: &mut LifecycleReport,
    ) -> Result<()> {
        let mut after: Option<(String, i64)> = None;
        // The creation time of the next newer version of the same key: when this one became
        // noncurrent.
        let mut newer: Option<(String, i64)> = None;
        loop {
            let page = self.store().list_versions(
                &bucket.name,
                &rule.prefix,
                after.as_ref().map(|(k, s)| (k.as_str(), *s)),
                500,
            )?;
            let Some(last) = page.last() else { break };
            after = Some((last.key.clone(), last.seq));
            for v in page {
                let superseded = match &newer {
                    Some((k, at)) if *k == v.key => Some(*at),
                    _ => None,
                };
                newer = Some((v.key.clone(), v.created_us));
                let Some(since) = superseded else { continue };
                if v.latest || !due(since, days, now_us) {
                    continue;
                }
                match self.delete_with(bucket, &v.key, Some(&v.version_id), false) {
                    Ok(_) => report.noncurrent_removed += 1,
                    Err(ObjectError::ObjectLocked(_)) => report.locked_kept += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

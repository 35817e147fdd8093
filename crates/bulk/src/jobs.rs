//! Asynchronous bulk jobs: the registry behind `202 Accepted` + `Content-Location`, status polling
//! (`X-Progress`, `Retry-After`), completion manifests and `DELETE` to cancel.
//!
//! Jobs belong to a tenant; a job is only visible through its own tenant's URLs. Output files live
//! under `<data>/bulk/<job id>/`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    Export,
    Import,
}

/// Where a job stands.
#[derive(Debug, Clone, PartialEq)]
pub enum JobState {
    /// Still running; `progress` is a short human text for `X-Progress`.
    Running {
        progress: String,
    },
    /// Finished; the body of the completion response (the Bulk Data manifest for exports, an
    /// OperationOutcome-bearing summary for imports).
    Completed {
        manifest: Value,
    },
    /// Failed; an OperationOutcome.
    Failed {
        outcome: Value,
    },
    Cancelled,
}

#[derive(Debug)]
pub struct Job {
    pub id: String,
    pub tenant: String,
    pub kind: JobKind,
    /// The kick-off request URL, reported in the manifest (`request`).
    pub request: String,
    /// Output files of this job.
    pub dir: PathBuf,
    state: Mutex<JobState>,
    cancelled: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Job {
    pub fn state(&self) -> JobState {
        lock(&self.state).clone()
    }

    /// Sets the state unless the job was cancelled (a cancelled job stays cancelled).
    pub fn set_state(&self, state: JobState) {
        let mut current = lock(&self.state);
        if *current != JobState::Cancelled {
            *current = state;
        }
    }

    /// Workers check this between batches and stop early.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::Relaxed)
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
        *lock(&self.state) = JobState::Cancelled;
    }
}

/// All jobs of this process.
#[derive(Debug)]
pub struct JobRegistry {
    root: PathBuf,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

impl JobRegistry {
    /// `root` is where job output directories are created (`<data>/bulk`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        JobRegistry {
            root: root.into(),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Registers a new running job and creates its output directory.
    pub fn create(&self, tenant: &str, kind: JobKind, request: &str) -> std::io::Result<Arc<Job>> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let dir = self.root.join(&id);
        std::fs::create_dir_all(&dir)?;
        let job = Arc::new(Job {
            id: id.clone(),
            tenant: tenant.to_owned(),
            kind,
            request: request.to_owned(),
            dir,
            state: Mutex::new(JobState::Running {
                progress: "queued".into(),
            }),
            cancelled: AtomicBool::new(false),
        });
        lock(&self.jobs).insert(id, job.clone());
        Ok(job)
    }

    /// The job `id` of `tenant`; another tenant's job is not found.
    pub fn get(&self, tenant: &str, id: &str) -> Option<Arc<Job>> {
        lock(&self.jobs)
            .get(id)
            .filter(|j| j.tenant == tenant)
            .cloned()
    }

    /// Cancels a job and deletes its output; `false` when there is no such job for the tenant or
    /// it was already cancelled (a second DELETE, or polling afterwards, answers 404).
    pub fn cancel(&self, tenant: &str, id: &str) -> bool {
        let job = {
            let mut jobs = lock(&self.jobs);
            match jobs.get(id) {
                Some(j) if j.tenant == tenant => jobs.remove(id),
                _ => None,
            }
        };
        match job {
            Some(j) => {
                j.cancel();
                let _ = std::fs::remove_dir_all(&j.dir);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_per_tenant_and_cancellable() {
        let dir = tempfile::tempdir().unwrap();
        let reg = JobRegistry::new(dir.path());
        let job = reg
            .create("a", JobKind::Export, "http://x/fhir/a/$export")
            .unwrap();
        assert!(job.dir.is_dir());
        assert!(reg.get("b", &job.id).is_none());
        assert!(reg.get("a", &job.id).is_some());
        job.set_state(JobState::Running {
            progress: "50%".into(),
        });
        assert!(!reg.cancel("b", &job.id));
        assert!(reg.cancel("a", &job.id));
        assert!(job.is_cancelled());
        assert!(!job.dir.exists());
        job.set_state(JobState::Completed {
            manifest: Value::Null,
        });
        assert_eq!(job.state(), JobState::Cancelled);
        assert!(reg.get("a", &job.id).is_none());
        assert!(!reg.cancel("a", &job.id));
    }
}

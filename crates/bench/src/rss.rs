//! Resident memory from `/proc/self/status`, per phase.
//!
//! Linux keeps the peak (`VmHWM`) per process; writing `5` to `/proc/self/clear_refs` resets it
//! to the current RSS, so the peak after a reset is the peak of the phase that follows. The
//! tracker remembers the largest peak seen before every reset, so the whole run's peak is kept
//! too. Without procfs every figure is 0.

/// A `Vm…:` line of `/proc/self/status`, in kB.
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| parse_status_kb(&s, field))
        .unwrap_or(0)
}

fn parse_status_kb(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[derive(Debug, Default)]
pub struct PeakTracker {
    /// Largest `VmHWM` seen before a reset, in kB.
    earlier_kb: u64,
}

impl PeakTracker {
    /// Starts a phase: remembers the peak so far, then resets the kernel's mark.
    pub fn start_phase(&mut self) {
        self.earlier_kb = self.earlier_kb.max(status_kb("VmHWM:"));
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// Current RSS, in MiB.
    pub fn current_mib(&self) -> f64 {
        status_kb("VmRSS:") as f64 / 1024.0
    }

    /// Peak RSS since the last `start_phase`, in MiB.
    pub fn phase_peak_mib(&self) -> f64 {
        status_kb("VmHWM:") as f64 / 1024.0
    }

    /// Peak RSS of the whole process so far, in MiB.
    pub fn overall_peak_mib(&self) -> f64 {
        self.earlier_kb.max(status_kb("VmHWM:")) as f64 / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmHWM:\t  123456 kB\nVmRSS:\t  1000 kB\n";
        assert_eq!(parse_status_kb(s, "VmHWM:"), Some(123_456));
        assert_eq!(parse_status_kb(s, "VmRSS:"), Some(1000));
        assert_eq!(parse_status_kb(s, "VmSwap:"), None);
    }

    /// Other tests in this binary reset the process-wide peak at any moment, so only what the
    /// tracker itself remembers is compared: the peak before the reset is never lost.
    #[test]
    fn the_peak_before_a_phase_is_kept() {
        let mut t = PeakTracker::default();
        let big = vec![1u8; 8 << 20];
        t.start_phase();
        let remembered = t.earlier_kb as f64 / 1024.0;
        assert!(remembered >= 8.0, "{remembered} MiB");
        assert!(t.overall_peak_mib() >= remembered);
        drop(big);
    }
}

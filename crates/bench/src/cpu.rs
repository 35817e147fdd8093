//! How busy the whole machine's CPUs were between two points in time (`/proc/stat`), so a load
//! figure can say whether the cores, not the code, were the limit. On a 2-core machine the
//! loader, every medicus node and the PostgreSQL server share the same cores.

/// Cumulative CPU time of all cores, and of this process, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    busy: u64,
    total: u64,
    /// User and system time of this process (all its threads).
    process: u64,
}

impl CpuTimes {
    /// The counters now; `None` where `/proc` is unavailable.
    pub fn now() -> Option<CpuTimes> {
        let mut times = parse(&std::fs::read_to_string("/proc/stat").ok()?)?;
        times.process = parse_process(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        Some(times)
    }

    /// Share of CPU time spent busy since `earlier`, in percent of all cores (0–100).
    pub fn busy_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }

    /// Share of all cores' time this process used since `earlier`, in percent (0–100); the
    /// rest of the busy share is other processes (a database server, neighbours).
    pub fn process_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let process = self.process.checked_sub(earlier.process)?;
        (total > 0).then(|| process as f64 * 100.0 / total as f64)
    }
}

/// utime + stime of `/proc/self/stat` (fields 14 and 15; the command name before them may
/// contain spaces, so counting starts after its closing parenthesis).
fn parse_process(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq steal (guest time is
/// already counted in user). Idle and iowait are not busy.
fn parse(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total - idle,
        total,
        process: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share_between_two_readings() {
        let a = parse("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n").expect("parse");
        let b = parse("cpu  200 0 100 850 50 0 0 0 0 0\n").expect("parse");
        // 150 busy ticks of 200.
        assert_eq!(b.busy_percent_since(&a), Some(75.0));
        assert_eq!(a.busy_percent_since(&a), None);
        assert_eq!(a.busy_percent_since(&b), None);
        assert!(parse("intr 1 2 3").is_none());
        let now = CpuTimes::now().expect("procfs");
        assert_eq!(now.process_percent_since(&now), None);
    }

    #[test]
    fn process_time_is_user_plus_system() {
        let stat = "4242 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100";
        assert_eq!(parse_process(stat), Some(300));
        assert_eq!(parse_process("4242 (x) S 1 2"), None);
        let mut a = CpuTimes {
            busy: 0,
            total: 1000,
            process: 100,
        };
        let b = CpuTimes {
            busy: 0,
            total: 1400,
            process: 200,
        };
        assert_eq!(b.process_percent_since(&a), Some(25.0));
        a.process = 300;
        assert_eq!(b.process_percent_since(&a), None);
    }
}

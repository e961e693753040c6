//! CPU time a proxy spent, read from Linux `/proc`: on a small machine where the load
//! generator, the proxy and the upstream share the cores, CPU per request is the figure that
//! does not depend on who got scheduled when.

use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on every Linux ABI in use).
const USER_HZ: u64 = 100;

/// The CPU a proxy spends over one phase: read when the phase starts and when it ends.
pub struct Meter {
    pid: Option<u32>,
    before: Option<Duration>,
}

impl Meter {
    /// Starts metering `pid` and its direct children (`None`: a target without a proxy).
    pub fn start(pid: Option<u32>) -> Self {
        Self {
            pid,
            before: pid.and_then(process_tree),
        }
    }

    /// The CPU time used since [`Meter::start`], or `None` without a proxy or `/proc`.
    pub fn stop(self) -> Option<Duration> {
        let after = self.pid.and_then(process_tree)?;
        Some(after.saturating_sub(self.before?))
    }
}

/// User plus system time of process `pid` and its direct children (nginx's workers; the
/// threads of HAProxy and of the gateway count in their process's own figure), or `None`
/// without `/proc`.
fn process_tree(pid: u32) -> Option<Duration> {
    let mut ticks = own_ticks(pid)?.1;
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if let Some((parent, child_ticks)) = own_ticks(child)
                && parent == pid
            {
                ticks += child_ticks;
            }
        }
    }
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// The parent pid and utime + stime of `pid`.
fn own_ticks(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields count from after it.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    let parent = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((parent, utime + stime))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let (parent, _) = super::own_ticks(me).unwrap_or_default();
        assert_eq!(parent, std::os::unix::process::parent_id());
        assert!(super::process_tree(me).is_some());
    }
}

//! CPU time and memory of processes, read from getrusage(2) and /proc: the load generator's
//! own CPU (it shares the cores with the servers), a server's process group CPU, and a
//! server's resident set size.

use std::time::Duration;

use nix::sys::resource::{getrusage, UsageWho};
use nix::sys::time::TimeValLike;

/// This process's user+sys CPU time so far.
pub fn self_cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let micros = u.user_time().num_microseconds() + u.system_time().num_microseconds();
            Duration::from_micros(micros.max(0) as u64)
        }
        Err(_) => Duration::ZERO,
    }
}

fn clock_ticks_per_sec() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|t| t.max(1) as u64)
        .unwrap_or(100)
}

/// `(pgrp, utime + stime in ticks)` from the text of /proc/PID/stat.
fn parse_stat(text: &str) -> Option<(i32, u64)> {
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): pgrp is field 5, utime 14, stime 15.
    let pgrp = f.get(2)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((pgrp, utime + stime))
}

/// The CPU time used so far by every live process in process group `pgid` (a server and
/// whatever it spawned).
pub fn group_cpu(pgid: i32) -> Duration {
    let mut ticks = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Some((pgrp, t)) = parse_stat(&text) {
                if pgrp == pgid {
                    ticks += t;
                }
            }
        }
    }
    Duration::from_micros(ticks * 1_000_000 / clock_ticks_per_sec())
}

/// CPU time the whole machine has spent busy (all cores, everything but idle and iowait).
pub fn machine_busy() -> Duration {
    let Ok(text) = std::fs::read_to_string("/proc/stat") else {
        return Duration::ZERO;
    };
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| f.get(i)).sum();
    Duration::from_micros(busy * 1_000_000 / clock_ticks_per_sec())
}

/// VmRSS of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_command_name() {
        let text = "1234 (my server) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4";
        assert_eq!(parse_stat(text), Some((1234, 300)));
    }
}

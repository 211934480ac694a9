//! CPU time by thread role, read from `/proc/<pid>/stat` and
//! `/proc/<pid>/task/*/{comm,schedstat}` (Linux; elsewhere nothing is
//! read). It holds up when other work shares the cores: it counts the time
//! our threads ran, and the time they were runnable but waited for a core.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::report::CpuUse;

/// The CPU counters of one process at one moment.
#[derive(Debug, Clone, Default)]
pub struct CpuSnap {
    /// utime + stime of the whole process (includes exited threads), s.
    process_s: f64,
    /// tid → (role, on-CPU s, run-queue wait s).
    threads: HashMap<u32, (String, f64, f64)>,
}

/// Whose counters: this process, or another by pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The generator itself.
    Generator,
    /// The node's process.
    Node(u32),
}

impl Whose {
    fn dir(self) -> PathBuf {
        match self {
            Whose::Generator => PathBuf::from("/proc/self"),
            Whose::Node(pid) => PathBuf::from(format!("/proc/{pid}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Whose::Generator => "generator",
            Whose::Node(_) => "node",
        }
    }
}

/// Reads the counters of `whose` (`None` if they cannot be read).
pub fn snapshot(whose: Whose) -> Option<CpuSnap> {
    let dir = whose.dir();
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // Fields 14 and 15 of proc(5)'s stat; `rest` starts at field 3.
    let utime: f64 = rest.get(11)?.parse().ok()?;
    let stime: f64 = rest.get(12)?.parse().ok()?;
    let main_tid: u32 = std::fs::read_to_string(dir.join("stat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let mut threads = HashMap::new();
    for t in std::fs::read_dir(dir.join("task")).ok()?.flatten() {
        let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let sched = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let mut f = sched
            .split_whitespace()
            .map(|x| x.parse::<f64>().unwrap_or(0.0) / 1e9);
        let (run, wait) = (f.next().unwrap_or(0.0), f.next().unwrap_or(0.0));
        threads.insert(tid, (role(tid == main_tid, comm.trim()), run, wait));
    }
    Some(CpuSnap {
        // 100 clock ticks per second on Linux.
        process_s: (utime + stime) / 100.0,
        threads,
    })
}

/// A thread's role from its name: `main`; `arbiters` (every actix
/// thread: in a node, actix-web's HTTP workers and the arbiters of the
/// scheduler and the process layer, whose names are cut to the same 15
/// characters, `actix-rt|system`); `http-accept` (actix-web's acceptor);
/// else the name without its trailing number (`hb-verify`, `sled-io`,
/// `hb-store-writer`, `tokio-rt-worker`, `bench`).
pub fn role(main: bool, comm: &str) -> String {
    if main {
        return "main".into();
    }
    if comm.starts_with("actix-rt|system") {
        return "arbiters".into();
    }
    if comm.starts_with("actix-server") {
        return "http-accept".into();
    }
    comm.trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['-', ':', '|'])
        .to_string()
}

/// The CPU used between `a` and `b`, by role; threads that exited in
/// between count as `exited`.
pub fn delta(whose: Whose, a: &CpuSnap, b: &CpuSnap) -> CpuUse {
    let mut by_role: BTreeMap<String, f64> = BTreeMap::new();
    let mut waited = 0.0;
    for (tid, (role, run, wait)) in &b.threads {
        let (run0, wait0) = a.threads.get(tid).map_or((0.0, 0.0), |t| (t.1, t.2));
        *by_role.entry(role.clone()).or_default() += run - run0;
        waited += wait - wait0;
    }
    let process = b.process_s - a.process_s;
    let seen: f64 = by_role.values().sum();
    if process - seen > 0.02 {
        by_role.insert("exited".into(), process - seen);
    }
    let mut roles: Vec<(String, f64)> = by_role.into_iter().filter(|(_, s)| *s > 0.0).collect();
    roles.sort_by(|x, y| y.1.total_cmp(&x.1));
    CpuUse {
        whose: whose.name().to_string(),
        seconds: process.max(seen),
        roles,
        waited,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_group_threads_by_name() {
        assert_eq!(role(true, "hb"), "main");
        assert_eq!(role(false, "actix-rt|system:0|arbiter:3"), "arbiters");
        assert_eq!(role(false, "actix-server ac"), "http-accept");
        assert_eq!(role(false, "sled-io-2"), "sled-io");
        assert_eq!(role(false, "tokio-runtime-w"), "tokio-runtime-w");
    }

    #[test]
    fn delta_splits_cpu_by_role() {
        let mut a = CpuSnap::default();
        let mut b = CpuSnap::default();
        a.threads.insert(1, ("main".into(), 1.0, 0.1));
        b.threads.insert(1, ("main".into(), 1.5, 0.2));
        b.threads.insert(2, ("http-accept".into(), 0.25, 0.0));
        a.process_s = 1.0;
        b.process_s = 2.0;
        let d = delta(Whose::Generator, &a, &b);
        assert_eq!(d.whose, "generator");
        assert_eq!(d.roles[0], ("main".to_string(), 0.5));
        assert!(d
            .roles
            .iter()
            .any(|(r, s)| r == "exited" && (*s - 0.25).abs() < 1e-9));
        assert!((d.seconds - 1.0).abs() < 1e-9);
        assert!((d.waited - 0.1).abs() < 1e-9);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_can_be_read() {
        let s = snapshot(Whose::Generator).expect("/proc/self is readable");
        assert!(!s.threads.is_empty());
    }
}

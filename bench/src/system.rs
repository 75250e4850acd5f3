//! The machine side of a fair run: CPU pinning, the open-file limit, source addresses, and
//! the CPU time and memory of a server's process tree.

use anyhow::{bail, Context, Result};
use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use procfs::CurrentSI;
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// A CPU list as `taskset -c` takes it: `0`, `1-3`, `0,2`.
#[derive(Clone, Debug)]
pub struct Cpus {
    pub list: String,
    pub ids: Vec<usize>,
}

impl std::str::FromStr for Cpus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut ids = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo, hi),
                None => (part, part),
            };
            let lo: usize = lo.parse().map_err(|_| format!("bad CPU {lo:?}"))?;
            let hi: usize = hi.parse().map_err(|_| format!("bad CPU {hi:?}"))?;
            if hi < lo {
                return Err(format!("bad CPU range {part:?}"));
            }
            ids.extend(lo..=hi);
        }
        if ids.is_empty() {
            return Err("empty CPU list".into());
        }
        Ok(Cpus {
            list: s.to_owned(),
            ids,
        })
    }
}

/// Pins this process (and every thread it starts afterwards) to `cpus`.
pub fn pin_self(cpus: &Cpus) -> Result<()> {
    let mut set = CpuSet::new();
    for &id in &cpus.ids {
        set.set(id).with_context(|| format!("CPU {id}"))?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).context("sched_setaffinity")?;
    Ok(())
}

/// The open-file limit this process ends up with, after raising it as far as allowed.
///
/// The soft limit goes up to the hard limit; the hard limit goes up to `wanted` where the
/// process may (CAP_SYS_RESOURCE). Servers started afterwards inherit the result.
pub fn raise_nofile(wanted: u64) -> u64 {
    use rlimit::Resource;
    let (_, hard) = Resource::NOFILE.get().unwrap_or((1024, 1024));
    if hard < wanted && Resource::NOFILE.set(wanted, wanted).is_ok() {
        return wanted;
    }
    let _ = Resource::NOFILE.set(hard, hard);
    Resource::NOFILE.get().map(|(soft, _)| soft).unwrap_or(1024)
}

/// How many connections one run may open: the load generator and the server each hold one
/// descriptor per connection, plus a few hundred of their own.
pub fn max_connections(nofile: u64) -> usize {
    nofile.saturating_sub(300) as usize
}

/// Connections per loopback source address: well under the ephemeral port range, so that
/// binding before connecting never runs out of ports.
pub const PER_SOURCE: usize = 10_000;

/// Hands out loopback source addresses 127.0.0.2 and up, moving on every run so that ports
/// left in TIME_WAIT by one run do not meet the next.
pub struct Sources {
    next: u32,
}

impl Sources {
    pub fn new() -> Sources {
        Sources { next: 0 }
    }

    /// The source address of each of `n` connections.
    pub fn take(&mut self, n: usize) -> Vec<Ipv4Addr> {
        let blocks = n.div_ceil(PER_SOURCE).max(1) as u32;
        if self.next + blocks > 250 {
            self.next = 0;
        }
        let first = self.next;
        self.next += blocks;
        (0..n)
            .map(|i| Ipv4Addr::new(127, 0, 0, 2 + (first + (i / PER_SOURCE) as u32) as u8))
            .collect()
    }
}

/// The processes of a running server: the ones started and everything below them (nginx's
/// workers, for instance; the nodes of a cluster and their Redis).
pub struct ProcessTree {
    roots: Vec<i32>,
    cpus: Vec<usize>,
    ticks_per_s: f64,
    page_size: u64,
}

/// CPU time and resident memory of a process tree at one moment.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    /// The load generator's own CPU seconds at the same moment.
    pub client_cpu_s: f64,
    /// Busy and total CPU seconds of the server's CPU set, interrupts included (on loopback
    /// much of the network stack runs in softirq time that no process is charged for).
    pub set_busy_s: f64,
    pub set_total_s: f64,
}

impl ProcessTree {
    pub fn new(root: u32, cpus: &[usize]) -> ProcessTree {
        ProcessTree::of(&[root], cpus)
    }

    /// Several processes (and their children) counted as one server.
    pub fn of(roots: &[u32], cpus: &[usize]) -> ProcessTree {
        ProcessTree {
            roots: roots.iter().map(|&r| r as i32).collect(),
            cpus: cpus.to_vec(),
            ticks_per_s: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
        }
    }

    fn members(&self) -> Result<Vec<procfs::process::Stat>> {
        let mut stats = Vec::new();
        for process in procfs::process::all_processes()? {
            let Ok(process) = process else { continue };
            if let Ok(stat) = process.stat() {
                stats.push(stat);
            }
        }
        if let Some(gone) = self
            .roots
            .iter()
            .find(|root| !stats.iter().any(|s| s.pid == **root))
        {
            bail!("server process {gone} is gone");
        }
        let mut tree: HashSet<i32> = self.roots.iter().copied().collect();
        // Parents come before children in pid order only mostly: repeat until stable.
        loop {
            let before = tree.len();
            for stat in &stats {
                if tree.contains(&stat.ppid) {
                    tree.insert(stat.pid);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        let members: Vec<_> = stats
            .into_iter()
            .filter(|s| tree.contains(&s.pid))
            .collect();
        Ok(members)
    }

    /// This process (the load generator).
    pub fn myself() -> ProcessTree {
        ProcessTree::new(std::process::id(), &[])
    }

    /// CPU seconds of the (first) root process alone (threads included, children not).
    pub fn own_cpu_s(&self) -> f64 {
        procfs::process::Process::new(self.roots[0])
            .and_then(|p| p.stat())
            .map(|s| (s.utime + s.stime) as f64 / self.ticks_per_s)
            .unwrap_or(0.0)
    }

    pub fn usage(&self) -> Result<Usage> {
        let mut usage = Usage {
            client_cpu_s: ProcessTree::myself().own_cpu_s(),
            ..Usage::default()
        };
        if let Ok(kernel) = procfs::KernelStats::current() {
            for (i, t) in kernel.cpu_time.iter().enumerate() {
                if !self.cpus.contains(&i) {
                    continue;
                }
                let busy = t.user
                    + t.nice
                    + t.system
                    + t.irq.unwrap_or(0)
                    + t.softirq.unwrap_or(0)
                    + t.steal.unwrap_or(0);
                let total = busy + t.idle + t.iowait.unwrap_or(0);
                usage.set_busy_s += busy as f64 / self.ticks_per_s;
                usage.set_total_s += total as f64 / self.ticks_per_s;
            }
        }
        for stat in self.members()? {
            usage.cpu_s += (stat.utime + stat.stime) as f64 / self.ticks_per_s;
            usage.rss_bytes += stat.rss * self.page_size;
        }
        Ok(usage)
    }
}

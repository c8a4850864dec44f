//! The CPU a run cost: the gateway's (`--gateway-pid`) and a local PostgreSQL's
//! (`--postgres-cpu`), read from /proc before and after the timed part of a run,
//! so that the report carries CPU per code beside throughput and latency. CPU per
//! code is the figure that carries from this 2-core machine to a bank's.
//!
//! PostgreSQL is every process named `postgres` on this machine: the postmaster,
//! its background workers and the backends. A backend that exits during the run
//! hands its time to the postmaster's children's total, which is counted too.

use anyhow::{anyhow, Result};
use clap::Args;
use procfs::process::{all_processes, Process};
use procfs::ProcError;
use serde_json::{json, Value};

#[derive(Debug, Clone, Default, Args)]
pub struct CpuArgs {
    /// The gateway's process id, to report its CPU time per code (same machine).
    #[arg(long, value_name = "PID")]
    pub gateway_pid: Option<i32>,
    /// Also report the CPU time of this machine's PostgreSQL (every `postgres`
    /// process) per code.
    #[arg(long)]
    pub postgres_cpu: bool,
}

impl CpuArgs {
    /// Called before a run starts (before any card is enrolled or session bound): a
    /// gateway that cannot be measured would otherwise leave the report without its
    /// CPU line, or with a zombie's 0 ms, and nothing would say why.
    pub fn check(&self) -> Result<()> {
        if let Some(pid) = self.gateway_pid {
            let stat = Process::new(pid)
                .and_then(|p| p.stat())
                .map_err(|e| unreadable(pid, e))?;
            if matches!(stat.state, 'Z' | 'X') {
                return Err(anyhow!(
                    "--gateway-pid {pid}: the process has exited (its CPU time no longer moves)"
                ));
            }
        }
        if self.postgres_cpu && postgres_ticks().is_none() {
            return Err(anyhow!(
                "--postgres-cpu: no process named `postgres` runs on this machine \
                 (its CPU can only be read when PostgreSQL is local)"
            ));
        }
        Ok(())
    }
}

/// Why `--gateway-pid` cannot be measured, in the words of the option.
fn unreadable(pid: i32, e: ProcError) -> anyhow::Error {
    match e {
        ProcError::NotFound(_) => anyhow!("--gateway-pid {pid}: no such process"),
        ProcError::PermissionDenied(_) => anyhow!(
            "--gateway-pid {pid}: its CPU time cannot be read (permission denied on \
             /proc/{pid}/stat; run the bench as the gateway's user)"
        ),
        other => anyhow!("--gateway-pid {pid}: its CPU time cannot be read: {other}"),
    }
}

/// CPU times in clock ticks at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    gateway: Option<u64>,
    postgres: Option<u64>,
}

/// Why a figure that was asked for is missing from the report, so it says so
/// instead of leaving the line out.
const GATEWAY_GONE: &str = "not measured: the gateway exited during the run";
const POSTGRES_GONE: &str = "not measured: no `postgres` process was left to read";

/// Started before the timed part of a run, read after it.
pub struct Meter {
    args: CpuArgs,
    start: Sample,
}

/// What a run cost, in milliseconds of CPU (user + system). A figure that was
/// asked for but could not be read at the end carries its reason in `missing`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub gateway_ms: Option<f64>,
    pub postgres_ms: Option<f64>,
    pub gateway_missing: Option<&'static str>,
    pub postgres_missing: Option<&'static str>,
}

impl Meter {
    pub fn start(args: &CpuArgs) -> Self {
        Self {
            args: args.clone(),
            start: sample(args),
        }
    }

    /// What was spent since the start; `None` when nothing was asked for.
    pub fn stop(&self) -> Option<Spent> {
        if self.args.gateway_pid.is_none() && !self.args.postgres_cpu {
            return None;
        }
        let end = sample(&self.args);
        let ms = |ticks: u64| ticks as f64 * 1000.0 / procfs::ticks_per_second() as f64;
        let spent = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| ms(b.saturating_sub(a)));
        // A gateway that exited during the run has stopped counting: its figure
        // would undercount, so it is reported as missing rather than low.
        let gateway_alive = self.args.gateway_pid.is_some_and(alive);
        let gateway_ms = spent(self.start.gateway, end.gateway).filter(|_| gateway_alive);
        let postgres_ms = spent(self.start.postgres, end.postgres);
        Some(Spent {
            gateway_ms,
            postgres_ms,
            gateway_missing: (self.args.gateway_pid.is_some() && gateway_ms.is_none())
                .then_some(GATEWAY_GONE),
            postgres_missing: (self.args.postgres_cpu && postgres_ms.is_none())
                .then_some(POSTGRES_GONE),
        })
    }
}

impl Spent {
    /// The JSON form, with microseconds per unit of `done` (codes, requests).
    pub fn json(&self, done: u64) -> Value {
        let per = |ms: Option<f64>| {
            ms.filter(|_| done > 0)
                .map(|ms| (ms * 1000.0 / done as f64 * 10.0).round() / 10.0)
        };
        json!({
            "gateway_ms": self.gateway_ms.map(f64::round),
            "gateway_us_per": per(self.gateway_ms),
            "postgres_ms": self.postgres_ms.map(f64::round),
            "postgres_us_per": per(self.postgres_ms),
            "gateway_missing": self.gateway_missing,
            "postgres_missing": self.postgres_missing,
        })
    }

    /// Lines for the text report.
    pub fn text(&self, done: u64, unit: &str) -> String {
        let mut out = String::new();
        let figures = [
            ("gateway", self.gateway_ms, self.gateway_missing),
            ("postgres", self.postgres_ms, self.postgres_missing),
        ];
        for (who, ms, missing) in figures {
            if let Some(why) = missing {
                out.push_str(&format!("  {:<22} {why}\n", format!("{who} CPU")));
            }
            if let Some(ms) = ms {
                let per = if done > 0 {
                    format!("{:.1} µs per {unit}", ms * 1000.0 / done as f64)
                } else {
                    "none done".to_owned()
                };
                out.push_str(&format!(
                    "  {:<22} {ms:.0} ms, {per}\n",
                    format!("{who} CPU")
                ));
            }
        }
        out
    }
}

/// True while the process runs (a zombie or a reaped pid does not).
fn alive(pid: i32) -> bool {
    Process::new(pid)
        .and_then(|p| p.stat())
        .is_ok_and(|stat| !matches!(stat.state, 'Z' | 'X'))
}

fn sample(args: &CpuArgs) -> Sample {
    Sample {
        gateway: args.gateway_pid.and_then(|pid| {
            let stat = Process::new(pid).ok()?.stat().ok()?;
            Some(stat.utime + stat.stime)
        }),
        postgres: args.postgres_cpu.then(postgres_ticks).flatten(),
    }
}

/// Every `postgres` process's CPU, and what its exited children used.
fn postgres_ticks() -> Option<u64> {
    let mut total = 0u64;
    let mut seen = false;
    for process in all_processes().ok()?.flatten() {
        let Ok(stat) = process.stat() else { continue };
        if stat.comm != "postgres" {
            continue;
        }
        seen = true;
        let children = u64::try_from(stat.cutime + stat.cstime).unwrap_or(0);
        total += stat.utime + stat.stime + children;
    }
    seen.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(pid: i32) -> CpuArgs {
        CpuArgs {
            gateway_pid: Some(pid),
            postgres_cpu: false,
        }
    }

    /// Above the kernel's largest pid_max (2^22), so never a process.
    #[test]
    fn a_gateway_pid_with_no_process_is_refused() {
        let e = gateway(i32::MAX).check().expect_err("no such process");
        assert_eq!(
            e.to_string(),
            format!("--gateway-pid {}: no such process", i32::MAX)
        );
        assert!(CpuArgs::default().check().is_ok());
        assert!(gateway(std::process::id() as i32).check().is_ok());
    }

    /// A child that has exited but is not yet reaped still has a /proc entry.
    #[test]
    fn a_gateway_pid_that_has_exited_is_refused() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id() as i32;
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while Process::new(pid).and_then(|p| p.stat()).unwrap().state != 'Z' {
            assert!(std::time::Instant::now() < give_up, "true never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let e = gateway(pid).check().expect_err("a zombie");
        child.wait().expect("reap");
        assert!(
            e.to_string()
                .starts_with(&format!("--gateway-pid {pid}: the process has exited")),
            "{e}"
        );
    }

    /// A gateway that exits between the start and the end of a run is named as
    /// missing in both reports instead of its line being dropped.
    #[test]
    fn a_gateway_that_exits_during_the_run_is_reported_missing() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let meter = Meter::start(&gateway(child.id() as i32));
        child.kill().expect("kill sleep");
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while alive(child.id() as i32) {
            assert!(std::time::Instant::now() < give_up, "sleep never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let spent = meter.stop().expect("asked for");
        child.wait().expect("reap");
        assert!(spent.gateway_ms.is_none());
        assert_eq!(spent.gateway_missing, Some(GATEWAY_GONE));
        assert!(
            spent.text(10, "code").contains(GATEWAY_GONE),
            "{}",
            spent.text(10, "code")
        );
        assert_eq!(spent.json(10)["gateway_missing"], GATEWAY_GONE);
    }

    /// Root reads every /proc/PID/stat, so the refusal's words are checked alone.
    #[test]
    fn a_gateway_pid_that_cannot_be_read_is_named() {
        let path = Some("/proc/1/stat".into());
        let e = unreadable(1, ProcError::PermissionDenied(path));
        assert!(
            e.to_string()
                .starts_with("--gateway-pid 1: its CPU time cannot be read (permission denied"),
            "{e}"
        );
    }

    /// This process's own CPU, burnt on purpose, is seen rising and shared out per
    /// unit. Bounded by work seen, not by a wall-clock guess (CI shares its cores).
    #[test]
    fn a_process_that_burns_cpu_is_measured() {
        let args = CpuArgs {
            gateway_pid: Some(std::process::id() as i32),
            postgres_cpu: false,
        };
        let meter = Meter::start(&args);
        let give_up = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut x = 0u64;
        let spent = loop {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            let spent = meter.stop().expect("asked for");
            if spent.gateway_ms.expect("the gateway's CPU") >= 50.0 {
                break spent;
            }
            assert!(
                std::time::Instant::now() < give_up,
                "no CPU seen in a minute"
            );
        };
        assert!(spent.postgres_ms.is_none());
        assert!(spent.gateway_missing.is_none() && spent.postgres_missing.is_none());
        let ms = spent.gateway_ms.unwrap();
        let v = spent.json(1000);
        assert_eq!(
            v["gateway_us_per"].as_f64().unwrap(),
            (ms * 10.0).round() / 10.0
        );
        assert!(spent.text(1000, "code").contains("µs per code"));
    }
}

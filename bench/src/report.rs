//! What every mode measures and prints: counts, errors by kind, throughput and a
//! latency histogram (hdrhistogram, microseconds), plus one histogram per second of
//! the run for `--plot`. Counts only: no card number or code is ever kept here.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Latencies above this are clamped (and still counted): a minute is far past any
/// timeout the tool uses.
const MAX_US: u64 = 60_000_000;
/// Per-second series for the plot stop growing after an hour; the totals do not.
const MAX_SECONDS: usize = 3600;

/// Three decimals: microseconds when in milliseconds; no false precision in JSON.
fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// A latency histogram over the whole run and per second of send time.
pub struct Latency {
    pub total: Histogram<u64>,
    pub per_second: Vec<Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        Self {
            total: histogram(),
            per_second: Vec::new(),
        }
    }
}

impl Latency {
    /// `at` is when the request was scheduled, from the start of the run.
    pub fn record(&mut self, at: Duration, latency: Duration) {
        let us = u64::try_from(latency.as_micros())
            .unwrap_or(MAX_US)
            .clamp(1, MAX_US);
        self.total.saturating_record(us);
        let second = usize::try_from(at.as_secs()).unwrap_or(usize::MAX);
        if second < MAX_SECONDS {
            while self.per_second.len() <= second {
                self.per_second.push(histogram());
            }
            if let Some(h) = self.per_second.get_mut(second) {
                h.saturating_record(us);
            }
        }
    }

    /// p50, p90, p99, p99.9, max and mean in milliseconds.
    pub fn json(&self) -> Value {
        let h = &self.total;
        if h.is_empty() {
            return Value::Null;
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        json!({
            "p50": ms(h.value_at_quantile(0.50)),
            "p90": ms(h.value_at_quantile(0.90)),
            "p99": ms(h.value_at_quantile(0.99)),
            "p99_9": ms(h.value_at_quantile(0.999)),
            "max": ms(h.max()),
            "mean": round3(h.mean() / 1000.0),
        })
    }
}

/// Locks what a run's tasks share, even after one of them panicked: a panic elsewhere
/// must not hide the report.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The final (or, after Ctrl-C, partial) report of one run.
#[derive(Default)]
pub struct Report {
    pub mode: &'static str,
    /// The run's parameters, as given (no secrets).
    pub params: BTreeMap<&'static str, Value>,
    /// Named counts: sent, replies_with_code, …
    pub counts: BTreeMap<&'static str, u64>,
    /// Errors by kind: an SMPP status name, an HTTP status, "timeout", …
    pub errors: BTreeMap<String, u64>,
    /// What `throughput_per_s` counts (e.g. "replies_with_code").
    pub throughput_of: &'static str,
    pub elapsed: Duration,
    pub latency: Latency,
    pub interrupted: bool,
    /// The CPU the run cost the gateway (and PostgreSQL), when asked for.
    pub cpu: Option<crate::cpu::Spent>,
    /// When the timed part began: from then on, what `throughput_of` counts and
    /// the errors are also counted per second in which they happened (`--plot`).
    pub started: Option<Instant>,
    pub done_per_second: Vec<u64>,
    pub errors_per_second: Vec<u64>,
}

/// Adds `n` to the count of second `s` (none past `MAX_SECONDS`).
fn bump(series: &mut Vec<u64>, s: Option<usize>, n: u64) {
    if let Some(s) = s.filter(|s| *s < MAX_SECONDS) {
        if series.len() <= s {
            series.resize(s + 1, 0);
        }
        series[s] += n;
    }
}

impl Report {
    pub fn new(mode: &'static str, throughput_of: &'static str) -> Self {
        Self {
            mode,
            throughput_of,
            ..Self::default()
        }
    }

    /// Takes the report a run's tasks filled, timed from `start` to the last answer
    /// (`last`), not to the end of the drain.
    pub fn take(
        shared: &Mutex<Report>,
        start: Instant,
        last: &Mutex<Instant>,
        interrupted: bool,
    ) -> Report {
        let mut report = std::mem::take(&mut *lock(shared));
        report.interrupted = interrupted;
        report.elapsed = lock(last).saturating_duration_since(start);
        report
    }

    /// The second of the run it is now, once the run started.
    fn second(&self) -> Option<usize> {
        let s = self.started?.elapsed().as_secs();
        usize::try_from(s).ok()
    }

    pub fn count(&mut self, name: &'static str, n: u64) {
        *self.counts.entry(name).or_default() += n;
        if name == self.throughput_of && n > 0 {
            let s = self.second();
            bump(&mut self.done_per_second, s, n);
        }
    }

    pub fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_default() += 1;
        let s = self.second();
        bump(&mut self.errors_per_second, s, 1);
    }

    /// How many of what `throughput_of` counts were done.
    pub fn done(&self) -> u64 {
        self.counts.get(self.throughput_of).copied().unwrap_or(0)
    }

    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        let n = self.done();
        if secs > 0.0 {
            n as f64 / secs
        } else {
            0.0
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "mode": self.mode,
            "params": self.params,
            "counts": self.counts,
            "errors": self.errors,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "throughput_of": self.throughput_of,
            "throughput_per_s": round3(self.throughput()),
            "latency_ms": self.latency.json(),
            "cpu": self.cpu.map(|c| c.json(self.done())),
            "interrupted": self.interrupted,
        })
    }

    /// The human-readable form, for a terminal.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "otpgw bench {}{}",
            self.mode,
            if self.interrupted {
                " (interrupted: partial report)"
            } else {
                ""
            }
        );
        for (k, v) in &self.params {
            let _ = writeln!(out, "  {k:<22} {v}");
        }
        for (k, v) in &self.counts {
            let _ = writeln!(out, "  {k:<22} {v}");
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "  {:<22} none", "errors");
        } else {
            for (k, v) in &self.errors {
                let _ = writeln!(out, "  error {k:<16} {v}");
            }
        }
        let _ = writeln!(
            out,
            "  {:<22} {:.2} s",
            "elapsed",
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  {:<22} {:.1} {}/s",
            "throughput",
            self.throughput(),
            self.throughput_of
        );
        let h = &self.latency.total;
        if !h.is_empty() {
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            let _ = writeln!(
                out,
                "  latency ms             p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  (n={})",
                ms(0.5),
                ms(0.9),
                ms(0.99),
                ms(0.999),
                h.max() as f64 / 1000.0,
                h.len()
            );
        }
        if let Some(cpu) = &self.cpu {
            out.push_str(&cpu.text(self.done(), self.throughput_of));
        }
        out
    }

    /// Prints the report on stdout: JSON (one line) or text.
    pub fn print(&self, as_json: bool) {
        if as_json {
            println!("{}", self.json());
        } else {
            print!("{}", self.text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_throughput() {
        let mut r = Report::new("x", "done");
        for ms in 1..=100u64 {
            r.latency
                .record(Duration::from_millis(ms * 20), Duration::from_millis(ms));
        }
        r.count("done", 100);
        r.elapsed = Duration::from_secs(2);
        let v = r.json();
        assert_eq!(v["throughput_per_s"], 50.0);
        let p50 = v["latency_ms"]["p50"].as_f64().unwrap();
        assert!((49.0..=51.0).contains(&p50), "{p50}");
        assert_eq!(r.latency.per_second.len(), 3);
        // Not started: nothing per second.
        assert!(r.done_per_second.is_empty());
        r.started = Some(Instant::now());
        r.count("done", 2);
        r.error("timeout");
        r.count("other", 5);
        assert_eq!(r.done_per_second, vec![2]);
        assert_eq!(r.errors_per_second, vec![1]);
        assert!(r.text().contains("throughput"));
    }
}

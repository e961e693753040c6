//! The Markdown report: one table of every target and phase, then the comparisons DESIGN §8
//! sets targets for.

use std::fmt;
use std::time::Duration;

use crate::drive::Outcome;
use shroud_benches::harness::error::LoadError;

/// Relay overhead targets of DESIGN §8, microseconds.
const ADDED_P50_TARGET_US: f64 = 150.0;
const ADDED_P99_TARGET_US: f64 = 1000.0;
/// Throughput target of DESIGN §8: the gateway's share of nginx's rate.
const THROUGHPUT_TARGET: f64 = 0.8;

/// What one target did in one phase.
pub struct Row {
    /// The target's name.
    pub target: &'static str,
    /// The JSON-RPC method sent.
    pub call: &'static str,
    /// Connections in the phase.
    pub connections: usize,
    /// What was measured.
    pub outcome: Outcome,
    /// CPU time the proxy (gateway or nginx with its workers) used during the phase.
    pub proxy_cpu: Option<Duration>,
}

impl Row {
    /// Proxy CPU time per answered request of the whole phase, microseconds.
    fn cpu_per_request_us(&self) -> Option<f64> {
        let cpu = self.proxy_cpu?;
        (self.outcome.total > 0).then(|| cpu.as_secs_f64() * 1e6 / self.outcome.total as f64)
    }
}

/// The gateway's resident memory before and with the idle connections.
pub struct IdleMemory {
    /// Connections held open.
    pub connections: usize,
    /// RSS before they were opened, KiB.
    pub before_kib: Option<u64>,
    /// RSS with them open, KiB.
    pub after_kib: Option<u64>,
}

/// The whole run.
pub struct Report {
    /// Every row, latency phase first.
    pub rows: Vec<Row>,
    /// The idle-connection measurement, when asked for.
    pub idle: Option<IdleMemory>,
    /// New-connection times to the gateway, by transport, nanoseconds.
    pub handshakes: Vec<(&'static str, hdrhistogram::Histogram<u64>)>,
    connections: usize,
    command: Vec<String>,
}

impl Report {
    /// An empty report for a run with `connections` in its throughput phase.
    pub fn new(connections: usize, command: Vec<String>) -> Self {
        Self {
            rows: Vec::new(),
            idle: None,
            handshakes: Vec::new(),
            connections,
            command,
        }
    }

    /// Adds `row`, pooled with an earlier round of the same target and connections.
    pub fn add(&mut self, row: Row) -> Result<(), LoadError> {
        let earlier = self
            .rows
            .iter_mut()
            .find(|r| r.target == row.target && r.connections == row.connections);
        let Some(earlier) = earlier else {
            self.rows.push(row);
            return Ok(());
        };
        earlier.outcome.merge(&row.outcome)?;
        earlier.proxy_cpu = match (earlier.proxy_cpu, row.proxy_cpu) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        Ok(())
    }

    /// Failed requests, plus one for every row without a single answer.
    pub fn failures(&self) -> u64 {
        self.rows
            .iter()
            .map(|row| row.outcome.failed + u64::from(row.outcome.ok == 0))
            .sum()
    }

    fn find(&self, target: &str, connections: usize) -> Option<&Outcome> {
        self.rows
            .iter()
            .find(|row| row.target == target && row.connections == connections)
            .map(|row| &row.outcome)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "## shroud-load")?;
        writeln!(f)?;
        writeln!(f, "`{}`", self.command.join(" "))?;
        if cfg!(debug_assertions) {
            writeln!(f)?;
            writeln!(
                f,
                "**Debug build: these figures say nothing about Shroud's speed.** Build with \
                 `--release`."
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "Rows pool every round of a target: requests, failures and windows add up, \
             percentiles come from the merged histograms."
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{} CPUs ({}), everything on 127.0.0.1; latencies from request sent to whole answer read.",
            std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model().as_deref().unwrap_or("unknown CPU"),
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| target | call | connections | requests | failed | req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | proxy CPU µs/req |"
        )?;
        writeln!(f, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")?;
        for row in &self.rows {
            let o = &row.outcome;
            writeln!(
                f,
                "| {} | `{}` | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |",
                row.target,
                row.call,
                row.connections,
                o.ok,
                o.failed,
                o.rate(),
                micros(o.latency.value_at_quantile(0.5)),
                micros(o.latency.value_at_quantile(0.9)),
                micros(o.latency.value_at_quantile(0.99)),
                micros(o.latency.value_at_quantile(0.999)),
                micros(o.latency.max()),
                row.cpu_per_request_us()
                    .map_or_else(|| "–".to_owned(), |us| format!("{us:.0}")),
            )?;
        }
        writeln!(f)?;
        if let (Some(direct), Some(gateway)) = (self.find("direct", 1), self.find("gateway", 1)) {
            let p50 = added_us(direct, gateway, 0.5);
            let p99 = added_us(direct, gateway, 0.99);
            writeln!(
                f,
                "- Relay overhead on one connection (gateway − direct): p50 **{p50:+.0} µs** (target < {ADDED_P50_TARGET_US:.0} µs: {}), p99 **{p99:+.0} µs** (target < {ADDED_P99_TARGET_US:.0} µs: {}).",
                verdict(p50 < ADDED_P50_TARGET_US),
                verdict(p99 < ADDED_P99_TARGET_US),
            )?;
        }
        if let (Some(nginx), Some(gateway)) = (
            self.find("nginx", self.connections),
            self.find("gateway", self.connections),
        ) && nginx.rate() > 0.0
        {
            let share = gateway.rate() / nginx.rate();
            writeln!(
                f,
                "- Throughput on {} connections: gateway {:.0} req/s = **{:.0} %** of nginx's {:.0} req/s (target ≥ {:.0} %: {}).",
                self.connections,
                gateway.rate(),
                share * 100.0,
                nginx.rate(),
                THROUGHPUT_TARGET * 100.0,
                verdict(share >= THROUGHPUT_TARGET),
            )?;
        }
        if let Some(cached) = self.find("gateway-cached", 1) {
            writeln!(
                f,
                "- Cache hit over RA-TLS on one connection: p50 {} µs (DESIGN §8's < 50 µs is in process, without the network and TLS measured here).",
                micros(cached.latency.value_at_quantile(0.5)),
            )?;
        }
        if let (Some(tcp), Some(h3)) = (self.find("gateway", 1), self.find("gateway-h3", 1)) {
            writeln!(
                f,
                "- Request latency on one connection, HTTP/3 over QUIC vs HTTP/1.1 over TCP (gateway-h3 − gateway): p50 **{:+.0} µs**, p99 **{:+.0} µs**. Loopback loses no packet: what QUIC gains on a lossy link (no head-of-line blocking across streams, faster loss recovery) does not show here; this is the cost of its user-space stack.",
                added_us(tcp, h3, 0.5),
                added_us(tcp, h3, 0.99),
            )?;
        }
        if !self.handshakes.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "New connections to the gateway, one after the other, each with a new verifier (full evidence verification, no cached verdict):"
            )?;
            writeln!(f)?;
            writeln!(
                f,
                "| transport | connections | p50 µs | p90 µs | p99 µs | max µs |"
            )?;
            writeln!(f, "|---|--:|--:|--:|--:|--:|")?;
            for (name, times) in &self.handshakes {
                writeln!(
                    f,
                    "| {name} | {} | {} | {} | {} | {} |",
                    times.len(),
                    micros(times.value_at_quantile(0.5)),
                    micros(times.value_at_quantile(0.9)),
                    micros(times.value_at_quantile(0.99)),
                    micros(times.max()),
                )?;
            }
            writeln!(f)?;
        }
        if let Some(idle) = &self.idle {
            match (idle.before_kib, idle.after_kib) {
                (Some(before), Some(after)) => {
                    let per = after.saturating_sub(before) as f64 * 1024.0
                        / idle.connections.max(1) as f64;
                    writeln!(
                        f,
                        "- Gateway memory: RSS {:.1} MiB before, {:.1} MiB with {} idle RA-TLS connections (**{:.1} KiB per connection**).",
                        before as f64 / 1024.0,
                        after as f64 / 1024.0,
                        idle.connections,
                        per / 1024.0,
                    )?;
                }
                _ => writeln!(f, "- Gateway memory: RSS not readable (no /proc).")?,
            }
        }
        Ok(())
    }
}

fn micros(nanos: u64) -> String {
    format!("{:.0}", nanos as f64 / 1000.0)
}

fn added_us(base: &Outcome, with: &Outcome, quantile: f64) -> f64 {
    (with.latency.value_at_quantile(quantile) as f64
        - base.latency.value_at_quantile(quantile) as f64)
        / 1000.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, model)| model.trim().to_owned())
}

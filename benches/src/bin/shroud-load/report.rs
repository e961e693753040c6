//! The Markdown report: one table of every target and phase, then the comparisons DESIGN §8
//! sets targets for.

use std::fmt;
use std::time::Duration;

use crate::drive::Outcome;
use shroud_benches::harness::error::LoadError;

/// Relay overhead targets of DESIGN §8, microseconds.
const ADDED_P50_TARGET_US: f64 = 100.0;
const ADDED_P99_TARGET_US: f64 = 1000.0;
/// Throughput of DESIGN §8 (issue 19), as the gateway's share of nginx's rate over the same
/// protocol: below the floor a change does not land; the goal is at least nginx's.
const THROUGHPUT_FLOOR: f64 = 0.8;
const THROUGHPUT_GOAL: f64 = 1.0;
/// Memory of DESIGN §8: RSS per idle RA-TLS connection, KiB, at this many connections.
const IDLE_KIB_TARGET: f64 = 12.0;
const IDLE_TARGET_CONNECTIONS: usize = 10_000;

/// A protocol's throughput phase and the names its gateway and yardstick rows go by.
struct Protocol {
    label: &'static str,
    gateway: &'static str,
    nginx: &'static str,
    haproxy: &'static str,
}

const HTTP1: Protocol = Protocol {
    label: "HTTP/1.1",
    gateway: "gateway",
    nginx: "nginx",
    haproxy: "haproxy",
};
const HTTP2: Protocol = Protocol {
    label: "HTTP/2",
    gateway: "gateway-h2",
    nginx: "nginx-h2",
    haproxy: "haproxy-h2",
};

/// What one target did in one phase.
pub struct Row {
    /// The target's name.
    pub target: &'static str,
    /// The JSON-RPC method sent.
    pub call: &'static str,
    /// Connections in the phase.
    pub connections: usize,
    /// Streams on each connection, one request in flight on each (1 but over HTTP/2).
    pub streams: usize,
    /// What was measured.
    pub outcome: Outcome,
    /// CPU time the proxy (gateway, nginx with its workers, HAProxy) used during the phase.
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
    /// RSS once each of them has made one call and waits for the next, KiB.
    pub after_call_kib: Option<u64>,
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
    h2: (usize, usize),
    command: Vec<String>,
}

impl Report {
    /// An empty report for a run with `connections` in its HTTP/1.1 throughput phase and
    /// `h2` (connections, streams on each) in its HTTP/2 one.
    pub fn new(connections: usize, h2: (usize, usize), command: Vec<String>) -> Self {
        Self {
            rows: Vec::new(),
            idle: None,
            handshakes: Vec::new(),
            connections,
            h2,
            command,
        }
    }

    /// Adds `row`, pooled with an earlier round of the same target and phase.
    pub fn add(&mut self, row: Row) -> Result<(), LoadError> {
        let earlier = self.rows.iter_mut().find(|r| {
            r.target == row.target && r.connections == row.connections && r.streams == row.streams
        });
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

    fn row(&self, target: &str, (connections, streams): (usize, usize)) -> Option<&Row> {
        self.rows.iter().find(|row| {
            row.target == target && row.connections == connections && row.streams == streams
        })
    }

    fn find(&self, target: &str, connections: usize) -> Option<&Outcome> {
        self.row(target, (connections, 1)).map(|row| &row.outcome)
    }

    /// The throughput comparison of one protocol: the gateway's rate against each yardstick's
    /// (the floor and the goal against nginx's), then the proxies' CPU per request.
    fn throughput(
        &self,
        f: &mut fmt::Formatter<'_>,
        protocol: &Protocol,
        shape: (usize, usize),
    ) -> fmt::Result {
        let gateway = self.row(protocol.gateway, shape);
        let nginx = self.row(protocol.nginx, shape);
        let haproxy = self.row(protocol.haproxy, shape);
        let label = match shape {
            (connections, 1) => format!("{}, {connections} connections", protocol.label),
            (connections, streams) => format!(
                "{}, {connections} connections × {streams} streams",
                protocol.label
            ),
        };
        if let Some(gateway) = gateway {
            let rate = gateway.outcome.rate();
            let mut shares = Vec::new();
            if let Some(nginx) = nginx.filter(|row| row.outcome.rate() > 0.0) {
                let share = rate / nginx.outcome.rate();
                shares.push(format!(
                    "**{:.0} %** of nginx's {:.0} req/s (floor ≥ {:.0} %: {}; goal ≥ {:.0} %: {})",
                    share * 100.0,
                    nginx.outcome.rate(),
                    THROUGHPUT_FLOOR * 100.0,
                    verdict(share >= THROUGHPUT_FLOOR),
                    THROUGHPUT_GOAL * 100.0,
                    verdict(share >= THROUGHPUT_GOAL),
                ));
            }
            if let Some(haproxy) = haproxy.filter(|row| row.outcome.rate() > 0.0) {
                shares.push(format!(
                    "**{:.0} %** of HAProxy's {:.0} req/s",
                    rate / haproxy.outcome.rate() * 100.0,
                    haproxy.outcome.rate(),
                ));
            }
            if !shares.is_empty() {
                writeln!(
                    f,
                    "- Throughput, {label}: gateway {rate:.0} req/s = {}.",
                    shares.join(", ")
                )?;
            }
        }
        let cpu: Vec<(&str, f64)> = [("nginx", nginx), ("HAProxy", haproxy), ("gateway", gateway)]
            .into_iter()
            .filter_map(|(name, row)| Some((name, row?.cpu_per_request_us()?)))
            .collect();
        if cpu.len() > 1 {
            let listed: Vec<String> = cpu
                .iter()
                .map(|(name, us)| format!("{name} **{us:.0} µs**"))
                .collect();
            let goal = match (
                gateway.and_then(Row::cpu_per_request_us),
                nginx.and_then(Row::cpu_per_request_us),
            ) {
                (Some(gateway), Some(nginx)) => {
                    format!(" (goal ≤ nginx's: {})", verdict(gateway <= nginx))
                }
                _ => String::new(),
            };
            writeln!(
                f,
                "- Proxy CPU per request, {label}: {}{goal}.",
                listed.join(", ")
            )?;
        }
        Ok(())
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
            "`-h2` targets speak HTTP/2 (connections × concurrent streams on each), `-h3` HTTP/3, the others HTTP/1.1; one request in flight per connection or stream."
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
                phase_shape((row.connections, row.streams)),
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
            let yardsticks: Vec<String> = [("nginx", "nginx"), ("HAProxy", "haproxy")]
                .into_iter()
                .filter_map(|(name, target)| {
                    let proxy = self.find(target, 1)?;
                    Some(format!(
                        "{name} {:+.0} µs / {:+.0} µs",
                        added_us(direct, proxy, 0.5),
                        added_us(direct, proxy, 0.99)
                    ))
                })
                .collect();
            let yardsticks = if yardsticks.is_empty() {
                String::new()
            } else {
                format!(" For comparison (p50 / p99): {}.", yardsticks.join(", "))
            };
            writeln!(
                f,
                "- Relay overhead on one connection (gateway − direct): p50 **{p50:+.0} µs** (target < {ADDED_P50_TARGET_US:.0} µs: {}), p99 **{p99:+.0} µs** (target < {ADDED_P99_TARGET_US:.0} µs: {}).{yardsticks}",
                verdict(p50 < ADDED_P50_TARGET_US),
                verdict(p99 < ADDED_P99_TARGET_US),
            )?;
        }
        self.throughput(f, &HTTP1, (self.connections, 1))?;
        self.throughput(f, &HTTP2, self.h2)?;
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
                    let kib = per / 1024.0;
                    let scale = if idle.connections < IDLE_TARGET_CONNECTIONS {
                        format!(
                            ", measured at {} connections, not {IDLE_TARGET_CONNECTIONS}",
                            idle.connections
                        )
                    } else {
                        String::new()
                    };
                    writeln!(
                        f,
                        "- Gateway memory: RSS {:.1} MiB before, {:.1} MiB with {} idle RA-TLS connections (**{kib:.1} KiB per connection**; target < {IDLE_KIB_TARGET:.0} KiB: {}{scale}).",
                        before as f64 / 1024.0,
                        after as f64 / 1024.0,
                        idle.connections,
                        verdict(kib < IDLE_KIB_TARGET),
                    )?;
                    if let Some(used) = idle.after_call_kib {
                        let per_used =
                            used.saturating_sub(before) as f64 / idle.connections.max(1) as f64;
                        writeln!(
                            f,
                            "- The same connections after one call each, idle between calls: RSS {:.1} MiB (**{per_used:.1} KiB per connection**: the HTTP state a connection keeps once it has been used).",
                            used as f64 / 1024.0,
                        )?;
                    }
                }
                _ => writeln!(f, "- Gateway memory: RSS not readable (no /proc).")?,
            }
        }
        Ok(())
    }
}

/// `32` connections, or `4 × 8` connections × streams.
fn phase_shape((connections, streams): (usize, usize)) -> String {
    if streams == 1 {
        connections.to_string()
    } else {
        format!("{connections} × {streams}")
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::{Report, Row};
    use crate::drive::Outcome;

    /// A phase of one second that answered `rate` requests, each in `latency_us`, and cost the
    /// proxy `cpu_us` per request.
    fn row(target: &'static str, shape: (usize, usize), rate: u64, cpu_us: u64) -> Row {
        let mut latency = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|e| {
            panic!("histogram bounds: {e}");
        });
        latency.saturating_record(100_000);
        Row {
            target,
            call: "eth_getBalance",
            connections: shape.0,
            streams: shape.1,
            outcome: Outcome {
                latency,
                ok: rate,
                failed: 0,
                total: rate,
                window: Duration::from_secs(1),
            },
            proxy_cpu: Some(Duration::from_micros(rate * cpu_us)),
        }
    }

    #[test]
    fn compares_the_gateway_with_both_yardsticks_over_both_protocols() {
        let mut report = Report::new(32, (4, 8), vec!["shroud-load".into()]);
        for added in [
            row("gateway", (32, 1), 900, 20),
            row("nginx", (32, 1), 1000, 12),
            row("haproxy", (32, 1), 800, 10),
            row("gateway-h2", (4, 8), 1100, 10),
            row("nginx-h2", (4, 8), 1000, 12),
            row("haproxy-h2", (4, 8), 2000, 9),
        ] {
            assert!(report.add(added).is_ok());
        }
        let text = report.to_string();
        assert!(text.contains(
            "- Throughput, HTTP/1.1, 32 connections: gateway 900 req/s = **90 %** of nginx's 1000 req/s (floor ≥ 80 %: met; goal ≥ 100 %: NOT met), **112 %** of HAProxy's 800 req/s."
        ), "{text}");
        assert!(text.contains(
            "- Proxy CPU per request, HTTP/1.1, 32 connections: nginx **12 µs**, HAProxy **10 µs**, gateway **20 µs** (goal ≤ nginx's: NOT met)."
        ), "{text}");
        assert!(text.contains(
            "- Throughput, HTTP/2, 4 connections × 8 streams: gateway 1100 req/s = **110 %** of nginx's 1000 req/s (floor ≥ 80 %: met; goal ≥ 100 %: met), **55 %** of HAProxy's 2000 req/s."
        ), "{text}");
        assert!(
            text.contains("| gateway-h2 | `eth_getBalance` | 4 × 8 | 1100 |"),
            "{text}"
        );
        assert_eq!(report.failures(), 0);
    }
}

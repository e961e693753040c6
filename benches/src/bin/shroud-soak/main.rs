//! `shroud-soak`: the soak and fault harness of the hardening work.
//!
//! Steady load through the release gateway over RA-TLS for minutes, while one of the chain's two
//! upstreams goes through the faults of the adversarial test on a schedule (healthy, answers
//! past the response limit, slow, garbage, down) and, in the last phase of every cycle, other
//! clients flood the gateway (idle sockets, 10 000-level bodies, over-limit batches, 1 MB of
//! invalid JSON). It samples the gateway's resident memory and open descriptors and judges
//! every steady request: answered with a result, answered with a clear JSON-RPC error, refused
//! with a clear error, or lost. A run with any lost request exits non-zero.
//!
//! ```sh
//! cargo build --release -p shroud-gateway -p shroud-benches --bin shroud-gateway --bin shroud-soak
//! target/release/shroud-soak            # 10 cycles of 6 × 10 s: 10 minutes
//! ```
#![forbid(unsafe_code)]

mod client;
mod upstream;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Parser;
use shroud_benches::harness::error::LoadError;
use shroud_benches::harness::gateway::Gateway;
use shroud_ra_tls::Policy;
use shroud_ra_tls::tls::{AttestedServerVerifier, client_config};
use tokio::sync::watch;

use crate::client::{Counts, FloodCounts};
use crate::upstream::{Mode, Upstream};

/// The soak and fault harness.
#[derive(Debug, Parser)]
#[command(name = "shroud-soak", version)]
struct Args {
    /// The gateway binary (default: `shroud-gateway` beside this program).
    #[arg(long, value_name = "PATH")]
    gateway_bin: Option<PathBuf>,
    /// Seconds of each phase of a cycle (healthy, huge, slow, garbage, down, flood).
    #[arg(long, default_value_t = 10)]
    phase_secs: u64,
    /// Cycles of the six phases.
    #[arg(long, default_value_t = 10)]
    cycles: u32,
    /// Steady client connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Milliseconds between two calls of one steady connection.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Seconds between two samples of memory and descriptors.
    #[arg(long, default_value_t = 10)]
    sample_secs: u64,
}

/// The phases of one cycle: what upstream `a` does, and whether the flood runs.
/// Huge answers come right after a healthy phase, while the gateway still prefers `a`; the
/// slow phase lets `a`'s health probes pass again before garbage and down take it out.
const PHASES: [(&str, Mode, bool); 6] = [
    ("healthy", Mode::Healthy, false),
    ("upstream huge", Mode::Huge, false),
    ("upstream slow", Mode::Slow, false),
    ("upstream garbage", Mode::Garbage, false),
    ("upstream down", Mode::Down, false),
    ("client flood", Mode::Healthy, true),
];

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("shroud-soak: starting the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok((report, lost)) => {
            print!("{report}");
            if lost == 0 {
                ExitCode::SUCCESS
            } else {
                eprintln!("shroud-soak: {lost} requests were lost");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("shroud-soak: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One sample of the gateway and the clients.
struct Sample {
    at: Duration,
    phase: &'static str,
    rss_kib: Option<u64>,
    descriptors: Option<usize>,
    requests: u64,
    ok: u64,
    error: u64,
    refused: u64,
    lost: u64,
}

async fn run(args: &Args) -> Result<(String, u64), LoadError> {
    if args.phase_secs == 0 || args.cycles == 0 || args.connections == 0 {
        return Err(LoadError::Usage(
            "--phase-secs, --cycles and --connections must be positive".into(),
        ));
    }
    let faulty = Upstream::start().await?;
    let healthy = Upstream::start().await?;
    let binary = match &args.gateway_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| LoadError::io("finding this program's directory", e))?
            .with_file_name("shroud-gateway"),
    };
    let gateway = Gateway::start(&binary, &config(&faulty, &healthy)).await?;
    let usage = |e: &dyn std::fmt::Display| LoadError::Usage(e.to_string());
    let policy = Policy::from_pins([format!("simulated:measurement={}", gateway.measurement())])
        .map_err(|e| usage(&e))?;
    let verifier = AttestedServerVerifier::new(policy).danger_allow_simulated(true);
    let tls = client_config(Arc::new(verifier), &[b"http/1.1"]).map_err(|e| usage(&e))?;
    let target = client::Gateway {
        addr: gateway.addr(),
        connector: tokio_rustls::TlsConnector::from(Arc::new(tls)),
    };

    let counts = Arc::new(Counts::default());
    let flood_counts = Arc::new(FloodCounts::default());
    let (stop, stopped) = watch::channel(false);
    let (flooding, flood_switch) = watch::channel(false);
    let mut steady = Vec::new();
    for _ in 0..args.connections {
        steady.push(tokio::spawn(client::steady(
            target.clone(),
            Duration::from_millis(args.interval_ms),
            Arc::clone(&counts),
            stopped.clone(),
        )));
    }
    let flood = tokio::spawn(client::flood(
        target.clone(),
        Arc::clone(&flood_counts),
        flood_switch,
    ));

    let started = Instant::now();
    let phase_length = Duration::from_secs(args.phase_secs);
    let sample_every = Duration::from_secs(args.sample_secs.max(1));
    let mut samples = Vec::new();
    let mut next_sample = started;
    let take = |phase: &'static str| {
        let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
        Sample {
            at: started.elapsed(),
            phase,
            rss_kib: gateway.rss_kib(),
            descriptors: gateway.open_descriptors(),
            requests: counts.total(),
            ok: load(&counts.ok),
            error: load(&counts.error),
            refused: load(&counts.refused),
            lost: load(&counts.lost),
        }
    };
    for cycle in 1..=args.cycles {
        for (phase, mode, flood_on) in PHASES {
            eprintln!("shroud-soak: cycle {cycle}/{}: {phase}", args.cycles);
            faulty.set(mode);
            let _ = flooding.send(flood_on);
            let phase_end = Instant::now() + phase_length;
            while Instant::now() < phase_end {
                if Instant::now() >= next_sample {
                    samples.push(take(phase));
                    next_sample += sample_every;
                }
                let wake = next_sample.min(phase_end);
                tokio::time::sleep_until(wake.into()).await;
            }
        }
    }
    faulty.set(Mode::Healthy);
    let _ = flooding.send(false);
    // The flood task ends when its switch is gone.
    drop(flooding);
    // Let the last requests finish, and the flood's connections close, before the last sample.
    let _ = stop.send(true);
    for task in steady {
        let _ = task.await;
    }
    let _ = flood.await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    samples.push(take("after"));
    let lost = counts.lost.load(Ordering::Relaxed);
    Ok((
        report(args, &samples, &counts, &flood_counts, &gateway),
        lost,
    ))
}

fn config(faulty: &Upstream, healthy: &Upstream) -> String {
    format!(
        r#"[listen]
https = "127.0.0.1:0"
metrics = "127.0.0.1:0"

[tee]
platform = "simulated"

[limits]
rate_limit_per_second = 2000
rate_limit_burst = 4000
max_connections = 2000

[[chain]]
name = "eth"
health_check_interval_ms = 2000
upstreams = [
  {{ url = "{}", name = "a", timeout_ms = 5000 }},
  {{ url = "{}", name = "b", timeout_ms = 5000 }},
]
"#,
        faulty.url(),
        healthy.url()
    )
}

fn report(
    args: &Args,
    samples: &[Sample],
    counts: &Counts,
    flood: &FloodCounts,
    gateway: &Gateway,
) -> String {
    let mut out = String::new();
    let mib = |kib: Option<u64>| {
        kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
    };
    let fds = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
    let _ = writeln!(
        out,
        "## Soak: {} cycles of 6 × {} s, {} steady connections, one call every {} ms each\n",
        args.cycles, args.phase_secs, args.connections, args.interval_ms
    );
    let _ = writeln!(
        out,
        "| t (s) | phase | gateway RSS (MiB) | open fds | requests | ok | JSON-RPC error | refused | lost |"
    );
    let _ = writeln!(out, "|--:|---|--:|--:|--:|--:|--:|--:|--:|");
    for s in samples {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            s.at.as_secs(),
            s.phase,
            mib(s.rss_kib),
            fds(s.descriptors),
            s.requests,
            s.ok,
            s.error,
            s.refused,
            s.lost
        );
    }
    let rss: Vec<u64> = samples.iter().filter_map(|s| s.rss_kib).collect();
    let descriptors: Vec<usize> = samples.iter().filter_map(|s| s.descriptors).collect();
    let spread = |values: &[u64]| {
        let first = values.first().copied().unwrap_or(0);
        let last = values.last().copied().unwrap_or(0);
        let max = values.iter().copied().max().unwrap_or(0);
        (first, last, max)
    };
    let (rss_first, rss_last, rss_max) = spread(&rss);
    let (fd_first, fd_last, fd_max) =
        spread(&descriptors.iter().map(|&n| n as u64).collect::<Vec<_>>());
    let load = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "\nSteady requests: {} (ok {}, JSON-RPC errors {}, refused {}, **lost {}**).",
        counts.total(),
        load(&counts.ok),
        load(&counts.error),
        load(&counts.refused),
        load(&counts.lost)
    );
    let reasons = counts
        .lost_reasons
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for (reason, n) in reasons.iter() {
        let _ = writeln!(out, "- lost {n}: {reason}");
    }
    let _ = writeln!(
        out,
        "Gateway RSS first / last / max: {} / {} / {} MiB; open descriptors first / last / max: {fd_first} / {fd_last} / {fd_max}.",
        mib(Some(rss_first)),
        mib(Some(rss_last)),
        mib(Some(rss_max))
    );
    let _ = writeln!(
        out,
        "Flood: {} idle sockets opened, {} flood requests answered (refusals included), {} cut off.",
        load(&flood.idle_sockets),
        load(&flood.answered),
        load(&flood.cut_off)
    );
    let panicked = gateway.log().contains("panicked");
    let _ = writeln!(
        out,
        "Gateway log: {}.",
        if panicked {
            "a panic was logged"
        } else {
            "no panic"
        }
    );
    out
}

//! `shroud verify`: offline verification of an RA-TLS certificate or of raw platform evidence
//! (DESIGN §6): authenticity to the pinned vendor root, debug, TCB policy, and the pins when
//! given. Nothing goes over the network; the clock is `--at` or the system's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;
use serde_json::{Value, json};
use shroud_ra_tls::cmw::Evidence;
use shroud_ra_tls::verify::{PlatformReport, VerifyOptions, verify_raw_evidence};
use shroud_ra_tls::{Error, Platform, Policy, TcbStatus, UnixTime};

use crate::Failure;

/// The arguments of `shroud verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An RA-TLS certificate (PEM or DER) to verify.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "evidence",
        conflicts_with_all = ["evidence", "platform"]
    )]
    cert: Option<PathBuf>,
    /// Raw platform evidence: a DCAP quote, a Nitro COSE document or an SEV-SNP report.
    #[arg(long, value_name = "FILE", requires = "platform")]
    evidence: Option<PathBuf>,
    /// The platform of --evidence: nitro, tdx, sgx or sev-snp.
    #[arg(long, value_name = "P", requires = "evidence")]
    platform: Option<String>,
    /// Intel collateral (dcap-qvl QuoteCollateralV3 JSON), when the certificate carries none.
    #[arg(long, value_name = "FILE")]
    collateral: Option<PathBuf>,
    /// The SEV-SNP VCEK or VLEK (DER or PEM), when the certificate carries none.
    #[arg(long, value_name = "FILE")]
    vcek: Option<PathBuf>,
    /// Verify at this instant (RFC 3339, e.g. 2025-07-04T00:00:00Z) instead of now.
    #[arg(long, value_name = "RFC3339")]
    at: Option<String>,
    /// Also accept this TCB status (e.g. SWHardeningNeeded); repeatable. Revoked never is.
    #[arg(long = "allow-tcb", value_name = "STATUS")]
    allow_tcb: Vec<String>,
    /// Require this measurement, e.g. sev-snp:measurement=HEX; pins of one platform form one build.
    #[arg(long = "pin", value_name = "P:FIELD=HEX")]
    pins: Vec<String>,
    /// Require one of the builds of a TOML policy file (one `[[accept]]` table per build).
    #[arg(long, value_name = "FILE", conflicts_with = "pins")]
    policy: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// DEVELOPMENT ONLY: accept the simulated evidence of `shroud-gateway --dev`, which proves
    /// nothing. Refused without it, as everywhere.
    #[arg(long)]
    allow_simulated: bool,
}

/// What was established about the evidence, for printing.
struct Outcome {
    platform: Option<Platform>,
    report: Option<PlatformReport>,
    rejection: Option<Error>,
}

/// Runs `shroud verify`: prints the outcome; fails with exit 1 unless trusted.
pub fn verify(args: &VerifyArgs) -> Result<(), Failure> {
    if args.allow_simulated {
        eprintln!("{}", crate::SIMULATED_WARNING);
    }
    let now = match &args.at {
        Some(text) => parse_at(text)?,
        None => system_now()?,
    };
    let allowed_tcb = args
        .allow_tcb
        .iter()
        .map(|s| parse_tcb(s))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = pin_policy(args, &allowed_tcb)?;
    let outcome = examine(args, now)?;
    let outcome = apply_policy(outcome, policy.as_ref(), &allowed_tcb, now);
    if args.json {
        println!("{}", outcome_json(&outcome));
    } else {
        print!("{}", outcome_text(&outcome));
        if policy.is_none() && outcome.rejection.is_none() {
            eprintln!(
                "note: no --pin given: authenticity, debug and TCB were checked; the measurements were not compared with any build"
            );
        }
    }
    match outcome.rejection {
        None => Ok(()),
        Some(reason) => Err(Failure::Runtime(reason.to_string())),
    }
}

/// Steps up to the authenticated report: the certificate (steps 1, 2, 4) or the raw evidence.
fn examine(args: &VerifyArgs, now: UnixTime) -> Result<Outcome, Failure> {
    let (platform, result) = if let Some(path) = &args.cert {
        let der = shroud_ra_tls::cert::certificate_der(&read(path)?)
            .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        let platform = certificate_platform(&der);
        let collateral = collateral_for(args, platform)?;
        let options = VerifyOptions {
            collateral: collateral.as_deref(),
            danger_allow_simulated: args.allow_simulated,
            ..VerifyOptions::at(now)
        };
        let result = shroud_ra_tls::verify_certificate_evidence(&der, &options).map(
            |(mut report, claims)| {
                // What the certificate's claims say of their issue time counts for the policy's
                // maximum evidence age when the platform states none of its own.
                report.issued_at = report.issued_at.or(claims.iat);
                report
            },
        );
        (platform, result)
    } else {
        let (Some(path), Some(name)) = (&args.evidence, &args.platform) else {
            return Err(Failure::Usage(
                "give --cert FILE, or --evidence FILE --platform P".into(),
            ));
        };
        let platform = hardware_platform(name)?;
        let evidence = read(path)?;
        let collateral = collateral_for(args, Some(platform))?;
        let result = verify_raw_evidence(platform, &evidence, collateral.as_deref(), now);
        (Some(platform), result)
    };
    Ok(match result {
        Ok(report) => Outcome {
            platform: Some(report.platform),
            report: Some(report),
            rejection: None,
        },
        Err(error) => Outcome {
            platform,
            report: None,
            rejection: Some(error),
        },
    })
}

/// Step 3 (TCB) and step 5 (pins) on an authentic report.
fn apply_policy(
    outcome: Outcome,
    policy: Option<&Policy>,
    allowed_tcb: &[TcbStatus],
    now: UnixTime,
) -> Outcome {
    let Some(report) = &outcome.report else {
        return outcome;
    };
    let checked = match policy {
        Some(policy) => policy
            .check_tcb(report.platform, report.tcb_status)
            .and_then(|()| policy.check_measurements(&report.observed(None), now)),
        None => default_tcb_check(report, allowed_tcb),
    };
    Outcome {
        rejection: checked.err(),
        ..outcome
    }
}

/// Without pins: `UpToDate` (or no TCB at all) plus what `--allow-tcb` adds.
fn default_tcb_check(report: &PlatformReport, allowed: &[TcbStatus]) -> Result<(), Error> {
    let status = report.tcb_status;
    if matches!(status, TcbStatus::UpToDate | TcbStatus::NotApplicable) || allowed.contains(&status)
    {
        Ok(())
    } else {
        Err(Error::TcbNotAllowed {
            platform: report.platform,
            status,
        })
    }
}

/// The policy of `--pin`/`--policy` with `--allow-tcb` added, or `None` when nothing is pinned.
fn pin_policy(args: &VerifyArgs, allowed_tcb: &[TcbStatus]) -> Result<Option<Policy>, Failure> {
    if args.pins.is_empty() && args.policy.is_none() {
        return Ok(None);
    }
    let mut policy = shroud_client::policy::policy_from_args(&args.pins, args.policy.as_deref())?;
    for status in allowed_tcb {
        policy
            .allow_tcb(*status)
            .map_err(|e| Failure::Usage(e.to_string()))?;
    }
    Ok(Some(policy))
}

fn parse_tcb(text: &str) -> Result<TcbStatus, Failure> {
    let status: TcbStatus = text
        .parse()
        .map_err(|e: shroud_ra_tls::UnknownName| Failure::Usage(format!("--allow-tcb: {e}")))?;
    if status == TcbStatus::Revoked {
        return Err(Failure::Usage(
            "--allow-tcb: a Revoked TCB can never be allowed".into(),
        ));
    }
    Ok(status)
}

/// The platform of a certificate's evidence, when it parses that far.
fn certificate_platform(der: &[u8]) -> Option<Platform> {
    let cert = shroud_ra_tls::cert::ParsedCertificate::parse(der).ok()?;
    Evidence::from_cbor(&cert.evidence).ok()?.platform().ok()
}

fn hardware_platform(name: &str) -> Result<Platform, Failure> {
    match name.parse::<Platform>() {
        Ok(Platform::Simulated) | Err(_) => Err(Failure::Usage(format!(
            "--platform {name:?}: expected nitro, tdx, sgx or sev-snp"
        ))),
        Ok(platform) => Ok(platform),
    }
}

/// The collateral for `platform` from `--collateral` (Intel) or `--vcek` (SEV-SNP).
fn collateral_for(
    args: &VerifyArgs,
    platform: Option<Platform>,
) -> Result<Option<Vec<u8>>, Failure> {
    let (wanted, other, other_flag) = match platform {
        Some(Platform::SevSnp) => (&args.vcek, &args.collateral, "--collateral"),
        Some(Platform::Sgx | Platform::Tdx) => (&args.collateral, &args.vcek, "--vcek"),
        // Nitro needs none; an unparsable certificate is refused by the verifier anyway.
        _ => return Ok(None),
    };
    if other.is_some() {
        return Err(Failure::Usage(format!(
            "{other_flag} does not apply to {} evidence (Intel takes --collateral JSON, SEV-SNP --vcek)",
            platform.map_or("this", Platform::as_str)
        )));
    }
    wanted.as_deref().map(read).transpose()
}

fn read(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))
}

fn parse_at(text: &str) -> Result<UnixTime, Failure> {
    let instant = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| Failure::Usage(format!("--at {text:?} is not an RFC 3339 instant: {e}")))?;
    let secs = u64::try_from(instant.unix_timestamp())
        .map_err(|_| Failure::Usage(format!("--at {text:?} is before 1970")))?;
    Ok(UnixTime::since_unix_epoch(Duration::from_secs(secs)))
}

fn system_now() -> Result<UnixTime, Failure> {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(UnixTime::since_unix_epoch)
        .map_err(|e| Failure::Usage(format!("the system clock is before 1970 ({e}); pass --at")))
}

/// The DESIGN §6 object: `platform, verdict, reason, debug, tcb_status, measurements,
/// report_data`.
fn outcome_json(outcome: &Outcome) -> Value {
    let report = outcome.report.as_ref();
    let measurements: serde_json::Map<String, Value> = report
        .map(|r| {
            r.measurements
                .iter()
                .map(|(field, value)| (field.to_owned(), Value::from(hex::encode(value))))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "platform": outcome.platform.map(Platform::as_str),
        "verdict": if outcome.rejection.is_none() { "trusted" } else { "rejected" },
        "reason": outcome.rejection.as_ref().map(ToString::to_string),
        "debug": is_debug(outcome),
        "tcb_status": report.map(|r| r.tcb_status.as_str()),
        "measurements": measurements,
        "report_data": report.map(|r| hex::encode(&r.report_data)),
    })
}

/// Debug builds are refused before a report is returned, so the refusal is what says so.
fn is_debug(outcome: &Outcome) -> bool {
    matches!(outcome.rejection, Some(Error::DebugEnclave { .. }))
        || outcome.report.as_ref().is_some_and(|r| r.debug)
}

fn outcome_text(outcome: &Outcome) -> String {
    let mut lines = vec![match &outcome.rejection {
        None => "verdict      trusted".to_owned(),
        Some(reason) => format!("verdict      rejected: {reason}"),
    }];
    if let Some(platform) = outcome.platform {
        lines.push(format!("platform     {platform}"));
    }
    lines.push(format!("debug        {}", is_debug(outcome)));
    if let Some(report) = &outcome.report {
        lines.push(format!("tcb_status   {}", report.tcb_status));
        lines.extend(
            report
                .measurements
                .iter()
                .map(|(field, value)| format!("{field:<12} {}", hex::encode(value))),
        );
        lines.push(format!("report_data  {}", hex::encode(&report.report_data)));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

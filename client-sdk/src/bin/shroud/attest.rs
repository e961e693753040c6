//! `shroud attest`: complete an attested handshake (nothing sent) and print what it proved.

use serde_json::{Value, json};
use shroud_client::{Client, Verdict};

use crate::{Failure, TrustArgs, client};

/// Attests `url` and prints the verdict, as text or one JSON object. Fails (exit 1) unless the
/// policy accepts the gateway; with `--json` a refusal is printed as `{"verdict": "rejected"}`.
pub async fn attest(
    url: &str,
    trust: &TrustArgs,
    as_json: bool,
    fresh: bool,
    http3: bool,
) -> Result<(), Failure> {
    let client = client(url, trust, http3)?;
    if fresh {
        return attest_fresh(url, &client, as_json).await;
    }
    match client.attest().await {
        Ok(verdict) if as_json => println!("{}", verdict_json(url, &verdict)),
        Ok(verdict) => print!("{}", verdict_text(url, &verdict)),
        Err(error) => {
            if as_json && let Some(reason) = error.attestation() {
                println!(
                    "{}",
                    json!({
                        "url": url,
                        "verdict": "rejected",
                        "kind": error.kind().as_str(),
                        "reason": reason.to_string(),
                    })
                );
            }
            return Err(error.into());
        }
    }
    Ok(())
}

/// `attest --fresh`: the handshake's verdict, then fresh evidence bound to a random nonce.
async fn attest_fresh(url: &str, client: &Client, as_json: bool) -> Result<(), Failure> {
    let fresh = client.attest_fresh().await?;
    let nonce = hex::encode(&fresh.nonce);
    if as_json {
        let mut value = verdict_json(url, &fresh.connection);
        if let Some(object) = value.as_object_mut() {
            object.insert(
                "fresh".to_owned(),
                json!({
                    "nonce": nonce,
                    "nonce_bound": true,
                    "same_key": true,
                    "issued_at_unix": fresh.fresh.claims().iat,
                    "cert_sha256": hex::encode(fresh.fresh.cert_sha256()),
                    "spki_sha256": hex::encode(fresh.fresh.spki_sha256()),
                }),
            );
        }
        println!("{value}");
    } else {
        print!("{}", verdict_text(url, &fresh.connection));
        println!(
            "fresh        nonce {nonce} bound: a certificate issued now for the same key (spki_sha256 {}) carries it in its verified claims",
            hex::encode(fresh.fresh.spki_sha256())
        );
    }
    Ok(())
}

/// The verdict as one JSON object (field names as in DESIGN §6; hex lower case).
pub fn verdict_json(url: &str, verdict: &Verdict) -> Value {
    let measurements: serde_json::Map<String, Value> = verdict
        .measurements()
        .iter()
        .map(|(field, value)| (field.to_owned(), Value::from(hex::encode(value))))
        .collect();
    let ohttp_keys = verdict.claims().ohttp_keys.as_deref();
    json!({
        "url": url,
        "verdict": "trusted",
        "platform": verdict.platform().as_str(),
        "measurements": measurements,
        "tcb_status": verdict.tcb_status().as_str(),
        "not_before": rfc3339(verdict.not_before()),
        "not_after": rfc3339(verdict.not_after()),
        "not_before_unix": verdict.not_before(),
        "not_after_unix": verdict.not_after(),
        "issued_at_unix": verdict.claims().iat,
        "spki_sha256": hex::encode(verdict.spki_sha256()),
        "cert_sha256": hex::encode(verdict.cert_sha256()),
        "bound_keys": {
            "tls_spki_sha256": hex::encode(verdict.claims().pubkey_sha256),
            "ohttp_keys": ohttp_keys.is_some(),
            "ohttp_keys_sha256": ohttp_keys.map(|keys| hex::encode(shroud_ra_tls::sha256(keys))),
        },
    })
}

/// The verdict as aligned `name value` lines.
pub fn verdict_text(url: &str, verdict: &Verdict) -> String {
    let mut lines = vec![
        format!("gateway      {url}"),
        "verdict      trusted (the policy accepts this enclave)".to_owned(),
        format!("platform     {}", verdict.platform()),
    ];
    lines.extend(
        verdict
            .measurements()
            .iter()
            .map(|(field, value)| format!("{field:<12} {}", hex::encode(value))),
    );
    lines.push(format!("tcb_status   {}", verdict.tcb_status()));
    lines.push(format!(
        "not_before   {} ({})",
        rfc3339(verdict.not_before()),
        verdict.not_before()
    ));
    lines.push(format!(
        "not_after    {} ({})",
        rfc3339(verdict.not_after()),
        verdict.not_after()
    ));
    if let Some(iat) = verdict.claims().iat {
        lines.push(format!("issued_at    {} ({iat})", rfc3339(iat)));
    }
    lines.push(format!(
        "spki_sha256  {}",
        hex::encode(verdict.spki_sha256())
    ));
    lines.push(format!(
        "cert_sha256  {}",
        hex::encode(verdict.cert_sha256())
    ));
    lines.push(format!(
        "bound keys   TLS key (pubkey-hash {}); OHTTP keys {}",
        hex::encode(verdict.claims().pubkey_sha256),
        match verdict.claims().ohttp_keys.as_deref() {
            Some(keys) => format!(
                "bound (sha256 {})",
                hex::encode(shroud_ra_tls::sha256(keys))
            ),
            None => "not present".to_owned(),
        }
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// Unix seconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}

//! TC3-HMAC-SHA256 verification for the TCR simulator, from vendor-apis.md §2.2, independent
//! of the adapter's signer: recomputed from the headers and body that arrived.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, Uri};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const MAX_SKEW_SECS: u64 = 300;

/// A refusal: (Tencent code, message).
pub type Refusal = (&'static str, String);

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("hmac key");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `YYYY-MM-DD` of a Unix timestamp, UTC.
fn utc_date(ts: u64) -> String {
    let days = (ts / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Checks the request's signature as Tencent does. Returns the SecretId it was signed with.
pub fn verify(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    (secret_id_known, secret_key): (&str, &str),
    now: u64,
) -> Result<String, Refusal> {
    let invalid = |m: &str| ("AuthFailure.InvalidAuthorization", m.to_string());
    let bad = |m: &str| ("AuthFailure.SignatureFailure", m.to_string());
    let rest = header(headers, "authorization")
        .strip_prefix("TC3-HMAC-SHA256 ")
        .ok_or_else(|| invalid("Authorization must start with `TC3-HMAC-SHA256 `"))?;
    let parts: BTreeMap<&str, &str> = rest
        .split(", ")
        .filter_map(|part| part.split_once('='))
        .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    ) else {
        return Err(invalid(
            "Authorization needs Credential, SignedHeaders and Signature",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [secret_id, date, service, terminator] = scope[..] else {
        return Err(invalid("the credential scope is malformed"));
    };
    let timestamp: u64 = header(headers, "x-tc-timestamp")
        .parse()
        .map_err(|_| invalid("X-TC-Timestamp is missing or not a number"))?;
    if now.abs_diff(timestamp) > MAX_SKEW_SECS {
        return Err((
            "AuthFailure.SignatureExpire",
            format!("Signature expired. Timestamp is {timestamp}, server time is {now}."),
        ));
    }
    if secret_id != secret_id_known {
        return Err((
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found.".into(),
        ));
    }
    if service != "tcr" || terminator != "tc3_request" || date != utc_date(timestamp) {
        return Err(bad(
            "The credential scope does not match tcr or the timestamp's UTC date.",
        ));
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"content-type") || !names.contains(&"host") {
        return Err(bad("SignedHeaders must include content-type and host."));
    }
    let canonical_headers: String = names
        .iter()
        .map(|name| {
            let value = header(headers, name).trim();
            let value = if *name == "x-tc-action" {
                value.to_ascii_lowercase()
            } else {
                value.to_string()
            };
            format!("{name}:{value}\n")
        })
        .collect();
    let canonical = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        uri.path(),
        uri.query().unwrap_or_default(),
        hex::encode(Sha256::digest(body))
    );
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/{service}/tc3_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = hmac(
        &hmac(&hmac(format!("TC3{secret_key}").as_bytes(), date), service),
        "tc3_request",
    );
    if hex::encode(hmac(&key, &string_to_sign)) != *signature {
        return Err(bad(
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    Ok(secret_id.to_string())
}

//! ACS3-HMAC-SHA256 verification for the ACR simulator, written from vendor-apis.md §1.2
//! independently of the adapter's signer (and of the ACK simulator's).

use std::collections::BTreeMap;

use axum::http::request::Parts;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// Alibaba's unreserved set: everything else is percent-encoded in the canonical query.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// `x-acs-date` may be this far off the simulator's clock.
const MAX_SKEW_SECS: i64 = 15 * 60;
const REQUIRED: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// Why a signature was refused: (HTTP status, POP code, message).
pub type Refusal = (u16, &'static str, String);

/// Recomputes the signature of what arrived with `secret` and compares. `now` in Unix
/// seconds. Returns the access key id and the nonce (the caller checks it is fresh).
pub fn verify(
    parts: &Parts,
    body: &[u8],
    key_id: &str,
    secret: &str,
    now: i64,
) -> Result<(String, String), Refusal> {
    let get = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let incomplete = |what: &str| {
        (
            400,
            "IncompleteSignature",
            format!("incomplete signature: {what}"),
        )
    };
    let fields = get("authorization")
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .ok_or_else(|| incomplete("Authorization is not ACS3-HMAC-SHA256"))?;
    let fields: BTreeMap<&str, &str> = fields
        .split(',')
        .filter_map(|field| field.split_once('='))
        .collect();
    let (Some(credential), Some(signed), Some(signature)) = (
        fields.get("Credential"),
        fields.get("SignedHeaders"),
        fields.get("Signature"),
    ) else {
        return Err(incomplete(
            "Credential, SignedHeaders and Signature are needed",
        ));
    };
    if *credential != key_id {
        return Err((
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.".into(),
        ));
    }
    let date = get("x-acs-date");
    if parse_date(date).is_none_or(|at| (now - at).abs() > MAX_SKEW_SECS) {
        return Err((
            400,
            "InvalidTimeStamp.Expired",
            format!("Specified time stamp or date value is expired: {date:?}"),
        ));
    }
    let payload_hash = hex::encode(Sha256::digest(body));
    if get("x-acs-content-sha256") != payload_hash {
        return Err((
            400,
            "SignatureDoesNotMatch",
            "x-acs-content-sha256 is not the hash of the body".into(),
        ));
    }
    let names: Vec<&str> = signed.split(';').collect();
    if let Some(missing) = REQUIRED.iter().find(|name| !names.contains(name)) {
        return Err(incomplete(&format!("{missing} must be signed")));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let mut values: Vec<&str> = parts
            .headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        values.sort_unstable();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let mut query: Vec<(String, String)> = parse_query(parts.uri.query().unwrap_or(""))
        .into_iter()
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, KEEP).to_string(),
                utf8_percent_encode(&v, KEEP).to_string(),
            )
        })
        .collect();
    query.sort();
    let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed}\n{payload_hash}",
        parts.method,
        parts.uri.path(),
        query.join("&")
    );
    let string_to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(string_to_sign.as_bytes());
    if hex::encode(mac.finalize().into_bytes()) != *signature {
        return Err((
            400,
            "SignatureDoesNotMatch",
            format!(
                "Specified signature is not matched with our calculation. server string to \
                 sign is:{string_to_sign}"
            ),
        ));
    }
    Ok((
        credential.to_string(),
        get("x-acs-signature-nonce").to_string(),
    ))
}

/// The query's parameters, decoded, in order.
pub fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` → Unix seconds.
fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |at: usize, len: usize| text.get(at..at + len)?.parse::<i64>().ok();
    let (y, m, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hh, mm, ss) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

//! ACS3-HMAC-SHA256 verification for the ACK simulator, written independently of the
//! adapter's signer.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{http::request::Parts, response::Response};
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::{ACCESS_KEY_ID, ACCESS_KEY_SECRET, Shared, error, lock};

/// x-acs-date may be this many seconds off the simulator's clock (vendor-apis.md §1.2, 10).
const MAX_SKEW: i64 = 15 * 60;
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// Headers the simulator insists are signed (plus content-type when a body is sent).
const MUST_SIGN: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// Checks the V3 signature as the vendor does: recomputed from the received method, path,
/// query, signed headers and body with the known secret; a fresh nonce; a date within 15 min.
/// Codes besides SignatureDoesNotMatch and InvalidAccessKeyId are Alibaba POP's generic ones.
pub(super) fn verify(world: &Shared, parts: &Parts, body: &[u8]) -> Result<(), Response> {
    let headers = &parts.headers;
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let refuse = |code: &str, message: String| Err(error(400, code, message));
    let incomplete = |what: &str| error(400, "IncompleteSignature", format!("incomplete: {what}"));
    let authorization = get("authorization").ok_or_else(|| incomplete("no Authorization"))?;
    let fields = authorization.strip_prefix("ACS3-HMAC-SHA256 ");
    let fields = fields.ok_or_else(|| incomplete("not ACS3-HMAC-SHA256"))?;
    let field = |name: &str| {
        let mut found = fields
            .split(',')
            .filter_map(|f| f.strip_prefix(name)?.strip_prefix('='));
        found
            .next()
            .ok_or_else(|| incomplete(&format!("no {name}")))
    };
    let (credential, signed_headers) = (field("Credential")?, field("SignedHeaders")?);
    let signature = field("Signature")?;
    if credential != ACCESS_KEY_ID {
        let message = "Specified access key is not found.";
        return Err(error(404, "InvalidAccessKeyId.NotFound", message));
    }
    let date = get("x-acs-date").ok_or_else(|| incomplete("no x-acs-date"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let fresh =
        parse_acs_date(date).is_some_and(|at| (now.as_secs() as i64 - at).abs() <= MAX_SKEW);
    if !fresh {
        return refuse(
            "InvalidTimeStamp.Expired",
            format!("x-acs-date {date} is too far off"),
        );
    }
    let payload_hash = hex::encode(Sha256::digest(body));
    if get("x-acs-content-sha256") != Some(payload_hash.as_str()) {
        return refuse(
            "SignatureDoesNotMatch",
            "x-acs-content-sha256 is not the body's".into(),
        );
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    let body_type = headers
        .contains_key("content-type")
        .then_some("content-type");
    let needed = MUST_SIGN.iter().copied().chain(body_type);
    if let Some(missing) = needed.into_iter().find(|n| !names.contains(n)) {
        return Err(incomplete(&format!("{missing} is not signed")));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values = headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let mut values: Vec<&str> = values.map(str::trim).collect();
        values.sort_unstable();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let mut query: Vec<(String, String)> =
        query.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (method, path, query) = (&parts.method, parts.uri.path(), query.join("&"));
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}");
    let hashed = hex::encode(Sha256::digest(canonical.as_bytes()));
    let string_to_sign = format!("ACS3-HMAC-SHA256\n{hashed}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(ACCESS_KEY_SECRET.as_bytes())
        .expect("any key length");
    mac.update(string_to_sign.as_bytes());
    if hex::encode(mac.finalize().into_bytes()) != signature {
        let message = format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        );
        return refuse("SignatureDoesNotMatch", message);
    }
    let nonce = get("x-acs-signature-nonce").unwrap_or_default().to_string();
    if nonce.is_empty() || !lock(world).nonces.insert(nonce) {
        let message = "Specified signature nonce was used already.".to_string();
        return refuse("SignatureNonceUsed", message);
    }
    Ok(())
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, UNRESERVED).to_string()
}

pub(super) fn parse_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
            (decode(k), decode(v))
        })
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` → Unix seconds.
fn parse_acs_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

//! TC3-HMAC-SHA256, Tencent Cloud API 3.0 signing (vendor-apis.md §2.2). Pure: the caller passes
//! the timestamp, so the documented vectors can be checked byte for byte. TC3 has no nonce.
//!
//! What is signed is exactly what is sent: the body bytes, the `Content-Type` value and the
//! `Host` value (port included when there is one) must be the ones the request carries.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

/// The headers this signer signs (the SDK's choice; the server accepts whatever is listed).
pub const SIGNED_HEADERS: &str = "content-type;host";

/// The parts of a request that go into the signature.
#[derive(Debug, Clone, Copy)]
pub struct SigningInput<'a> {
    pub method: &'a str,
    /// The `Host` header value exactly as sent, such as `tke.tencentcloudapi.com` or
    /// `127.0.0.1:8080`.
    pub host: &'a str,
    pub content_type: &'a str,
    /// The body bytes exactly as sent.
    pub payload: &'a [u8],
    /// The product, such as `tke`; part of the credential scope and the signing key.
    pub service: &'a str,
    /// Unix seconds; also sent as `X-TC-Timestamp`.
    pub timestamp: u64,
}

/// Lowercase hex SHA-256 of the body.
pub fn hashed_payload(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// `Method\n/\n<query>\n<canonical headers>\n<signed headers>\n<payload hash>`. POST requests
/// have an empty query; the path is always `/`.
pub fn canonical_request(input: &SigningInput<'_>) -> String {
    format!(
        "{}\n/\n\ncontent-type:{}\nhost:{}\n\n{}\n{}",
        input.method,
        input.content_type.trim(),
        input.host.trim(),
        SIGNED_HEADERS,
        hashed_payload(input.payload)
    )
}

/// The UTC date (`YYYY-MM-DD`) of a Unix timestamp. Always UTC: a local date breaks the scope
/// around midnight.
pub fn utc_date(timestamp: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = (timestamp / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `<date>/<service>/tc3_request`.
pub fn credential_scope(timestamp: u64, service: &str) -> String {
    format!("{}/{service}/tc3_request", utc_date(timestamp))
}

pub fn string_to_sign(input: &SigningInput<'_>) -> String {
    format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        input.timestamp,
        credential_scope(input.timestamp, input.service),
        hex::encode(Sha256::digest(canonical_request(input).as_bytes()))
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(data);
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// SecretSigning = HMAC(HMAC(HMAC("TC3" + secret, date), service), "tc3_request").
pub fn signing_key(secret_key: &str, date: &str, service: &str) -> Zeroizing<[u8; 32]> {
    let key = Zeroizing::new(format!("TC3{secret_key}"));
    let secret_date = hmac_sha256(key.as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(secret_date.as_slice(), service.as_bytes());
    hmac_sha256(secret_service.as_slice(), b"tc3_request")
}

/// The lowercase hex signature.
pub fn signature(secret_key: &str, input: &SigningInput<'_>) -> String {
    let key = signing_key(secret_key, &utc_date(input.timestamp), input.service);
    hex::encode(hmac_sha256(key.as_slice(), string_to_sign(input).as_bytes()).as_slice())
}

/// The `Authorization` header value (a space after each comma, unlike Alibaba's).
pub fn authorization(secret_id: &str, secret_key: &str, input: &SigningInput<'_>) -> String {
    format!(
        "{ALGORITHM} Credential={secret_id}/{}, SignedHeaders={SIGNED_HEADERS}, Signature={}",
        credential_scope(input.timestamp, input.service),
        signature(secret_key, input)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    const TIMESTAMP: u64 = 1_551_113_065;
    const CONTENT_TYPE: &str = "application/json; charset=utf-8";

    fn sha256_hex(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// T1 [VERIFIED]: the body goes in byte for byte, `\u` escapes and spaces included.
    #[test]
    fn vector_t1_cvm_describe_instances() {
        let body = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        let input = SigningInput {
            method: "POST",
            host: "cvm.tencentcloudapi.com",
            content_type: CONTENT_TYPE,
            payload: body.as_bytes(),
            service: "cvm",
            timestamp: TIMESTAMP,
        };
        assert_eq!(
            hashed_payload(input.payload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let canonical = canonical_request(&input);
        assert_eq!(
            canonical,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(&canonical),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            string_to_sign(&input),
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            hex::encode(signing_key(SECRET_KEY, "2019-02-25", "cvm").as_slice()),
            "ac658d5dde49e9bfdd14e04e062f66b05d9f637d44b8a8d845327d4a77f666b1"
        );
        assert_eq!(
            signature(SECRET_KEY, &input),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            authorization("SECRETID", SECRET_KEY, &input),
            "TC3-HMAC-SHA256 Credential=SECRETID/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        // Re-serialising the body (no spaces, raw UTF-8) would change the signature.
        let compact =
            "{\"Limit\":1,\"Filters\":[{\"Values\":[\"未命名\"],\"Name\":\"instance-name\"}]}";
        let other = SigningInput {
            payload: compact.as_bytes(),
            ..input
        };
        assert_ne!(
            signature(SECRET_KEY, &other),
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    /// T2 [DERIVED]: TKE DescribeClusters.
    #[test]
    fn vector_t2_tke_describe_clusters() {
        let input = SigningInput {
            method: "POST",
            host: "tke.tencentcloudapi.com",
            content_type: CONTENT_TYPE,
            payload: br#"{"Limit":20,"Offset":0}"#,
            service: "tke",
            timestamp: TIMESTAMP,
        };
        assert_eq!(
            hashed_payload(input.payload),
            "08f87c5ba032afbc0f4331ef661311dd8c087f639e024cc58f9ae2bbe7358459"
        );
        assert_eq!(
            sha256_hex(&canonical_request(&input)),
            "9950e0ef88ff7776236254944c81d877c2799f9280445ab55ca92acc37d12f16"
        );
        assert_eq!(
            credential_scope(TIMESTAMP, "tke"),
            "2019-02-25/tke/tc3_request"
        );
        assert_eq!(
            authorization(SECRET_ID, SECRET_KEY, &input),
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/tke/tc3_request, SignedHeaders=content-type;host, Signature=f5ecb5260f9a5b8194acef047f2e2b7cb04b37a783e06c4fa08d60417c59cfd0"
        );
    }

    /// T3 [DERIVED]: TCR DescribeNamespaces, same algorithm, another service.
    #[test]
    fn vector_t3_tcr_describe_namespaces() {
        let input = SigningInput {
            method: "POST",
            host: "tcr.tencentcloudapi.com",
            content_type: CONTENT_TYPE,
            payload: br#"{"RegistryId":"tcr-test","Limit":20,"Offset":1}"#,
            service: "tcr",
            timestamp: TIMESTAMP,
        };
        assert_eq!(
            hashed_payload(input.payload),
            "06534f1f8a7b0b3d17fd77b5eb8c80c1bd8abc7420632cdb6b1d53a20fad82e6"
        );
        assert_eq!(
            sha256_hex(&canonical_request(&input)),
            "d1eb9fc87123972a074c7f7aaf2dfbf1b1b31560fc8d182ad3dcd83f57771a62"
        );
        assert_eq!(
            signature(SECRET_KEY, &input),
            "7ee76e626759a7c609f53dcbf25a574094ad210fdfcbc1d500f2364d569298c1"
        );
    }

    #[test]
    fn utc_dates_around_boundaries() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(TIMESTAMP), "2019-02-25");
        // 2024-02-29 23:59:59 and the second after it.
        assert_eq!(utc_date(1_709_251_199), "2024-02-29");
        assert_eq!(utc_date(1_709_251_200), "2024-03-01");
        assert_eq!(utc_date(1_767_225_599), "2025-12-31");
        assert_eq!(utc_date(1_767_225_600), "2026-01-01");
    }
}

//! Shared input decoding for the vendor error targets.
#![forbid(unsafe_code)]

use flotilla::adapters::transport::RawResponse;

/// A vendor HTTP answer from fuzz bytes: two bytes of status (100..=599), then header lines
/// (`name: value`, newline-separated) up to the first NUL byte, then the body. Header lines
/// that are not valid HTTP are skipped, as the HTTP client would never hand them over.
pub fn raw_response(data: &[u8]) -> RawResponse {
    let (status, rest) = match data {
        [a, b, rest @ ..] => (100 + u16::from_be_bytes([*a, *b]) % 500, rest),
        _ => (200, data),
    };
    let (head, body) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&[][..], rest),
    };
    let mut headers = http::HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = http::HeaderName::from_bytes(&line[..colon]);
        let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (name, value) {
            headers.append(name, value);
        }
    }
    RawResponse {
        status,
        headers,
        body: bytes::Bytes::copy_from_slice(body),
    }
}

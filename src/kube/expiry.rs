//! When stored credentials stop working: a client certificate's notAfter, a JWT's `exp`.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use super::access::{ClusterAccess, Credentials};

/// Expiry in milliseconds since the Unix epoch, when the credential says.
pub fn credential_expiry_millis(access: &ClusterAccess) -> Option<i64> {
    match &access.credentials {
        Credentials::ClientCertificate {
            certificate_pem, ..
        } => certificate_not_after(certificate_pem),
        Credentials::Token { token } => jwt_exp(token),
        Credentials::Basic { .. } => None,
    }
}

fn certificate_not_after(pem: &str) -> Option<i64> {
    let block = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .find(|p| p.label == "CERTIFICATE")?;
    let cert = block.parse_x509().ok()?;
    Some(cert.validity().not_after.timestamp() * 1000)
}

/// The `exp` claim of a JWT (ServiceAccount tokens are JWTs); the signature is not checked,
/// this is only for warning about expiry.
fn jwt_exp(token: &str) -> Option<i64> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("exp")?.as_i64().map(|secs| secs * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    #[test]
    fn jwt_exp_is_read() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp":1900000000,"sub":"x"}"#);
        let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
        let access = ClusterAccess {
            server: "https://x".into(),
            ca_pem: None,
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            credentials: Credentials::Token {
                token: Zeroizing::new(token),
            },
        };
        assert_eq!(credential_expiry_millis(&access), Some(1_900_000_000_000));
        let opaque = ClusterAccess {
            credentials: Credentials::Token {
                token: Zeroizing::new("not-a-jwt".into()),
            },
            ..access
        };
        assert_eq!(credential_expiry_millis(&opaque), None);
    }
}

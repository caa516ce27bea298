//! Checks every credential field of a [`ClusterAccess`] before anything is sent, so a broken
//! certificate, key, CA or token is reported as the caller's input (naming the field), not as a
//! failure of the server.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{
    access::{ClusterAccess, Credentials},
    error::{ClusterError, CredentialPart},
};

/// Every credential field of `access` is usable.
pub fn check(access: &ClusterAccess) -> Result<(), ClusterError> {
    if let Some(pem) = &access.ca_pem {
        ca_certificates(pem)?;
    }
    match &access.credentials {
        Credentials::Token { token } => bearer_token(token),
        Credentials::ClientCertificate {
            certificate_pem,
            key_pem,
        } => client_identity(certificate_pem, key_pem),
        Credentials::Basic { .. } => Ok(()),
    }
}

fn bad(part: CredentialPart, reason: impl Into<String>) -> ClusterError {
    ClusterError::BadCredential {
        part,
        reason: reason.into(),
    }
}

/// DER certificates of a CA bundle, each one usable as a trust anchor.
pub fn ca_certificates(pem: &str) -> Result<Vec<Vec<u8>>, ClusterError> {
    let part = CredentialPart::CaCertificate;
    let ders = certificates(pem, part)?;
    let mut roots = rustls::RootCertStore::empty();
    for der in &ders {
        roots
            .add(CertificateDer::from(der.as_slice()))
            .map_err(|_| bad(part, "a CERTIFICATE block is not a usable CA certificate"))?;
    }
    Ok(ders)
}

/// DER of every CERTIFICATE block, each parsed as X.509.
fn certificates(pem: &str, part: CredentialPart) -> Result<Vec<Vec<u8>>, ClusterError> {
    let mut ders = Vec::new();
    for item in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let der = item.map_err(|_| bad(part, "is not valid PEM"))?;
        x509_parser::parse_x509_certificate(&der)
            .map_err(|_| bad(part, "a CERTIFICATE block is not a valid X.509 certificate"))?;
        ders.push(der.to_vec());
    }
    if ders.is_empty() {
        return Err(bad(part, "has no CERTIFICATE block"));
    }
    Ok(ders)
}

fn client_identity(certificate_pem: &str, key_pem: &str) -> Result<(), ClusterError> {
    let certificates: Vec<CertificateDer<'static>> =
        certificates(certificate_pem, CredentialPart::ClientCertificate)?
            .into_iter()
            .map(CertificateDer::from)
            .collect();
    let key_part = CredentialPart::ClientKey;
    // Only the kind of block is named: a key's contents are secret.
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| {
        bad(
            key_part,
            "has no private key block (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)",
        )
    })?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|_| {
        bad(
            key_part,
            "is not a supported RSA, ECDSA or Ed25519 private key",
        )
    })?;
    match rustls::sign::CertifiedKey::new(certificates, signing).keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(()),
        Err(_) => Err(bad(
            key_part,
            "does not belong to the client certificate (their public keys differ)",
        )),
    }
}

fn bearer_token(token: &str) -> Result<(), ClusterError> {
    let part = CredentialPart::BearerToken;
    if token.is_empty() {
        return Err(bad(part, "is empty"));
    }
    // RFC 6750 tokens are visible ASCII; anything else would break the header (never echoed).
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            part,
            "contains spaces, line breaks or non-ASCII characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn identity() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn access(credentials: Credentials, ca_pem: Option<String>) -> ClusterAccess {
        ClusterAccess {
            server: "https://127.0.0.1:6443".into(),
            ca_pem,
            tls_server_name: None,
            insecure_skip_tls_verify: false,
            credentials,
        }
    }

    fn cert_access(certificate_pem: &str, key_pem: &str) -> ClusterAccess {
        access(
            Credentials::ClientCertificate {
                certificate_pem: certificate_pem.into(),
                key_pem: Zeroizing::new(key_pem.into()),
            },
            None,
        )
    }

    fn part_of(result: Result<(), ClusterError>) -> CredentialPart {
        match result {
            Err(ClusterError::BadCredential { part, .. }) => part,
            other => panic!("expected a bad credential, got {other:?}"),
        }
    }

    #[test]
    fn a_good_identity_passes() {
        let (cert, key) = identity();
        check(&cert_access(&cert, &key)).unwrap();
    }

    #[test]
    fn a_certificate_in_the_key_field_is_a_bad_key() {
        let (cert, _) = identity();
        assert_eq!(
            part_of(check(&cert_access(&cert, &cert))),
            CredentialPart::ClientKey
        );
    }

    #[test]
    fn each_field_is_named() {
        let (cert, key) = identity();
        let (_, other_key) = identity();
        assert_eq!(
            part_of(check(&cert_access(&key, &key))),
            CredentialPart::ClientCertificate
        );
        assert_eq!(
            part_of(check(&cert_access(&cert, &other_key))),
            CredentialPart::ClientKey,
            "a key of another certificate"
        );
        let garbled = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            part_of(check(&cert_access(&cert, garbled))),
            CredentialPart::ClientKey
        );
        let token = |t: &str| {
            access(
                Credentials::Token {
                    token: Zeroizing::new(t.into()),
                },
                None,
            )
        };
        assert_eq!(
            part_of(check(&token("abc\r\nX-Injected: 1"))),
            CredentialPart::BearerToken
        );
        check(&token("eyJhbGciOi.abc-_~+/=")).unwrap();
        let with_ca = |ca: &str| {
            access(
                Credentials::Token {
                    token: Zeroizing::new("t".into()),
                },
                Some(ca.into()),
            )
        };
        assert_eq!(
            part_of(check(&with_ca(&key))),
            CredentialPart::CaCertificate
        );
        let bad_der = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(
            part_of(check(&with_ca(bad_der))),
            CredentialPart::CaCertificate
        );
        check(&with_ca(&cert)).unwrap();
    }

    #[test]
    fn messages_never_quote_the_key() {
        let (cert, key) = identity();
        let err = check(&cert_access(&key, &cert)).unwrap_err().to_string();
        assert!(
            !err.contains("BEGIN") && !err.contains(&key[40..80]),
            "{err}"
        );
    }
}

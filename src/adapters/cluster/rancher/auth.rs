//! Rancher authentication. Rancher does not sign requests: every request carries the API key
//! itself, `Authorization: Bearer token-xxxxx:<secret>` (vendor-apis.md §6). Bearer rather than
//! Basic because Rancher decodes Basic with URL-safe base64, which standard encoders do not
//! produce. This module keeps the key's secret half out of every `Debug` and error message.

use http::HeaderValue;
use zeroize::Zeroizing;

use crate::adapters::{Credentials, ErrorClass, VendorError};

use super::VENDOR;

/// A Rancher API key: the token object's name (`token-xxxxx`, public: it is the account the
/// rate limiter keys on) and its secret.
#[derive(Clone)]
pub struct ApiKey {
    key_id: String,
    secret: Zeroizing<String>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}, <redacted>)", self.key_id)
    }
}

impl ApiKey {
    /// A key from its two halves. Operators often paste the whole `token-xxxxx:<secret>` as the
    /// secret, or leave the key id empty and paste it all: both forms are accepted.
    pub fn new(key_id: &str, secret: &str) -> Result<ApiKey, &'static str> {
        let (key_id, secret) = match secret.split_once(':') {
            Some((id, rest)) if id == key_id || (key_id.is_empty() && id.starts_with("token-")) => {
                (id, rest)
            }
            _ => (key_id, secret),
        };
        if key_id.is_empty() {
            return Err("the Rancher API key has no key id (the token-xxxxx part)");
        }
        if key_id.contains(':') {
            return Err("the Rancher API key id must not contain ':'");
        }
        if secret.is_empty() {
            return Err("the Rancher API key has no secret");
        }
        Ok(ApiKey {
            key_id: key_id.to_string(),
            secret: Zeroizing::new(secret.to_string()),
        })
    }

    /// The key in `ctx.credentials`; any kind but an API key is `CredentialsInvalid`.
    pub fn from_credentials(
        credentials: &Credentials,
        operation: &'static str,
    ) -> Result<ApiKey, VendorError> {
        let invalid = |message: &str| {
            VendorError::new(
                ErrorClass::CredentialsInvalid,
                VENDOR,
                operation,
                "",
                message.to_string(),
            )
        };
        match credentials {
            Credentials::ApiKey { key_id, token } => ApiKey::new(key_id, token).map_err(invalid),
            Credentials::AccessKey { .. } => Err(invalid(
                "Rancher needs an API key (token-xxxxx:<secret>), not an access key pair",
            )),
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The `Authorization` header value, marked sensitive so that `http`'s `Debug` hides it.
    pub fn authorization(&self) -> Result<HeaderValue, &'static str> {
        let value = Zeroizing::new(format!("Bearer {}:{}", self.key_id, self.secret.as_str()));
        let mut header = HeaderValue::from_str(&value)
            .map_err(|_| "the Rancher API key holds characters not allowed in an HTTP header")?;
        header.set_sensitive(true);
        Ok(header)
    }

    /// Replaces every occurrence of the secret in `text` (vendor messages are echoed into
    /// errors, and a misbehaving proxy could echo the header back).
    pub fn scrub(&self, text: &str) -> String {
        if self.secret.len() < 6 {
            // Too short to scrub without mangling ordinary words; Rancher secrets are 54 characters.
            return text.to_string();
        }
        text.replace(self.secret.as_str(), "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "kq9x2vdmq8hvl7zsl9n8c5xw4ct7rz6mfz2b8qj4wx7gqtkcn2p6vh";

    #[test]
    fn bearer_header_is_key_id_colon_secret_and_sensitive() {
        let key = ApiKey::new("token-ab12c", SECRET).unwrap();
        let header = key.authorization().unwrap();
        assert_eq!(
            header.to_str().unwrap(),
            format!("Bearer token-ab12c:{SECRET}")
        );
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains(SECRET));
    }

    #[test]
    fn the_whole_key_pasted_as_the_secret_is_accepted() {
        let whole = format!("token-ab12c:{SECRET}");
        for key in [
            ApiKey::new("token-ab12c", &whole).unwrap(),
            ApiKey::new("", &whole).unwrap(),
        ] {
            assert_eq!(key.key_id(), "token-ab12c");
            assert_eq!(
                key.authorization().unwrap(),
                format!("Bearer token-ab12c:{SECRET}").as_str()
            );
        }
        // A secret that merely contains ':' is left alone.
        let key = ApiKey::new("token-ab12c", "a:b-secret").unwrap();
        assert_eq!(
            key.authorization().unwrap(),
            "Bearer token-ab12c:a:b-secret"
        );
    }

    #[test]
    fn incomplete_keys_are_refused() {
        assert!(ApiKey::new("", SECRET).is_err());
        assert!(ApiKey::new("token-ab12c", "").is_err());
        assert!(ApiKey::new("token:ab", SECRET).is_err());
        let bad = ApiKey::new("token-ab12c", "line\nbreak-secret").unwrap();
        let err = bad.authorization().unwrap_err();
        assert!(!err.contains("break-secret"));
    }

    #[test]
    fn wrong_credential_kind_is_credentials_invalid_without_the_secret() {
        let err = ApiKey::from_credentials(
            &Credentials::AccessKey {
                id: "LTAI".into(),
                secret: Zeroizing::new(SECRET.into()),
            },
            "GetCluster",
        )
        .unwrap_err();
        assert_eq!(err.class, ErrorClass::CredentialsInvalid);
        assert!(!format!("{err} {err:?}").contains(SECRET));
    }

    #[test]
    fn debug_and_scrub_hide_the_secret() {
        let key = ApiKey::new("token-ab12c", SECRET).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("token-ab12c") && !debug.contains(SECRET));
        assert_eq!(key.scrub(&format!("echo {SECRET}!")), "echo <redacted>!");
    }
}

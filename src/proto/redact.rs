//! `Debug` for the generated messages that carry secrets (build.rs skips their derived `Debug`).
//! Secret fields print as a length only, so a stray `{:?}` can never log one.

use std::fmt;

use crate::proto as pb;

struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted {} bytes>", self.0)
    }
}

impl fmt::Debug for pb::KubeconfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeconfigSource")
            .field("kubeconfig", &Redacted(self.kubeconfig.len()))
            .field("context", &self.context)
            .finish()
    }
}

impl fmt::Debug for pb::TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("server", &self.server)
            .field("bearer_token", &Redacted(self.bearer_token.len()))
            .field("ca_pem_len", &self.ca_pem.len())
            .finish()
    }
}

impl fmt::Debug for pb::AccessKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeySecret")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &Redacted(self.access_key_secret.len()))
            .finish()
    }
}

impl fmt::Debug for pb::ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySecret")
            .field("key_id", &self.key_id)
            .field("token", &Redacted(self.token.len()))
            .finish()
    }
}

impl fmt::Debug for pb::UsernamePasswordSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsernamePasswordSecret")
            .field("username", &self.username)
            .field("password", &Redacted(self.password.len()))
            .finish()
    }
}

impl fmt::Debug for pb::RobotTokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobotTokenSecret")
            .field("robot_name", &self.robot_name)
            .field("token", &Redacted(self.token.len()))
            .finish()
    }
}

impl fmt::Debug for pb::CreateApiTokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreateApiTokenResponse")
            .field("token", &self.token)
            .field("secret", &Redacted(self.secret.len()))
            .finish()
    }
}

impl fmt::Debug for pb::RegisterAgentResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisterAgentResponse")
            .field("cluster_id", &self.cluster_id)
            .field("agent_credential", &Redacted(self.agent_credential.len()))
            .finish()
    }
}

impl fmt::Debug for pb::CreateAgentRegistrationResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The manifest holds the registration token in its Secret.
        f.debug_struct("CreateAgentRegistrationResponse")
            .field("cluster", &self.cluster)
            .field(
                "registration_token",
                &Redacted(self.registration_token.len()),
            )
            .field("expire_time", &self.expire_time)
            .field("manifest", &Redacted(self.manifest.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let source = pb::TokenSource {
            server: "https://example".into(),
            bearer_token: "s3cr3t-token".into(),
            ca_pem: String::new(),
        };
        let request = pb::ImportClusterRequest {
            source: Some(pb::import_cluster_request::Source::Token(source)),
            ..Default::default()
        };
        let printed = format!("{request:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("https://example"));
    }
}

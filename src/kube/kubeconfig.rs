//! Turning an uploaded kubeconfig into a [`ClusterAccess`], refusing what must never run.

use std::path::Path;

use ::kube::config::{AuthInfo, Kubeconfig};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use super::access::{ClusterAccess, Credentials};

/// Why a kubeconfig cannot be used. Messages never quote the file's contents.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("is not a valid YAML or JSON kubeconfig{0}")]
    Parse(String),
    #[error("has no current-context; name the context to import")]
    NoCurrentContext,
    #[error("has no context {name:?}; it has: {available}")]
    NoContext { name: String, available: String },
    #[error("context {context:?} names cluster {cluster:?}, which the kubeconfig does not define")]
    MissingCluster { context: String, cluster: String },
    #[error("context {context:?} names user {user:?}, which the kubeconfig does not define")]
    MissingUser { context: String, user: String },
    #[error(
        "user {0:?} gets its credentials by running a command (exec); Flotilla never runs \
         commands from uploaded files. Import a ServiceAccount token or a client certificate"
    )]
    Exec(String),
    #[error(
        "user {0:?} uses an auth-provider plugin, which runs code on this server; Flotilla \
         refuses it. Import a ServiceAccount token or a client certificate"
    )]
    AuthProvider(String),
    #[error(
        "{0} refers to a file on the machine it came from; embed the data instead \
         (the *-data field, or `kubectl config view --raw --flatten --minify`)"
    )]
    FileReference(&'static str),
    #[error(
        "{field} is set ({why}); Flotilla does not support it and will not silently ignore it: \
         remove it from the kubeconfig"
    )]
    Unsupported {
        field: &'static str,
        why: &'static str,
    },
    #[error("cluster {0:?} has no server URL")]
    NoServer(String),
    #[error(
        "user {0:?} has no credentials Flotilla can use (token, client certificate or basic auth)"
    )]
    NoCredentials(String),
    #[error("{0} is not valid base64")]
    BadBase64(&'static str),
    #[error("cannot read {path}: {reason}")]
    ReadFile { path: String, reason: String },
}

/// Where file references in a kubeconfig may be resolved. Uploaded kubeconfigs get `Forbidden`:
/// reading paths they name would read this server's files.
#[derive(Debug, Clone, Copy)]
pub enum FileReferences<'a> {
    Forbidden,
    /// Relative to this directory (a kubeconfig given on the command line).
    RelativeTo(&'a Path),
}

/// Parses a kubeconfig (YAML or JSON).
pub fn parse(bytes: &[u8]) -> Result<Kubeconfig, KubeconfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| KubeconfigError::Parse(" (it is not UTF-8 text)".into()))?;
    // What `Kubeconfig::from_yaml` does, within our limits for untrusted YAML.
    let parse_error = |message: String| {
        // Only the position: the parser's message can quote values, and values may be secrets.
        let position = message
            .find(" at line ")
            .map(|at| format!(" (error{})", &message[at..]))
            .unwrap_or_default();
        KubeconfigError::Parse(position)
    };
    serde_saphyr::from_multiple_with_options::<Kubeconfig>(text, super::yaml_limits::options())
        .map_err(|err| parse_error(err.to_string()))?
        .into_iter()
        .try_fold(Kubeconfig::default(), Kubeconfig::merge)
        .map_err(|err| parse_error(err.to_string()))
}

/// Names of every context, in file order.
pub fn context_names(config: &Kubeconfig) -> Vec<String> {
    config.contexts.iter().map(|c| c.name.clone()).collect()
}

/// The access described by `context` (default: current-context).
pub fn access_for_context(
    config: &Kubeconfig,
    context: Option<&str>,
    files: FileReferences<'_>,
) -> Result<ClusterAccess, KubeconfigError> {
    let name = match context.filter(|c| !c.is_empty()) {
        Some(name) => name.to_string(),
        None => config
            .current_context
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or(KubeconfigError::NoCurrentContext)?,
    };
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| KubeconfigError::NoContext {
            name: name.clone(),
            available: context_names(config).join(", "),
        })?;
    let cluster_name = ctx.cluster.clone();
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .ok_or_else(|| KubeconfigError::MissingCluster {
            context: name.clone(),
            cluster: cluster_name.clone(),
        })?;
    let user_name = ctx.user.clone().unwrap_or_default();
    let user = config
        .auth_infos
        .iter()
        .find(|u| u.name == user_name)
        .and_then(|u| u.auth_info.clone())
        .ok_or_else(|| KubeconfigError::MissingUser {
            context: name.clone(),
            user: user_name.clone(),
        })?;

    if cluster.proxy_url.as_deref().is_some_and(|p| !p.is_empty()) {
        return Err(KubeconfigError::Unsupported {
            field: "proxy-url",
            why: "connections go straight to the API server, checked against the outbound \
                  address policy",
        });
    }
    refuse_impersonation(&user)?;
    let server = cluster
        .server
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| KubeconfigError::NoServer(cluster_name.clone()))?;
    let ca_pem = match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => Some(decode_text(data, "certificate-authority-data")?),
        (None, Some(path)) => Some(read_reference(path, "certificate-authority", files)?),
        (None, None) => None,
    };
    Ok(ClusterAccess {
        server,
        ca_pem,
        tls_server_name: cluster.tls_server_name.clone(),
        insecure_skip_tls_verify: cluster.insecure_skip_tls_verify.unwrap_or(false),
        credentials: credentials(&user_name, &user, files)?,
    })
}

/// `as`, `as-groups`, `as-uid` and `as-user-extra` would make every call act as someone else;
/// dropping them would act with more rights than the file asked for.
fn refuse_impersonation(user: &AuthInfo) -> Result<(), KubeconfigError> {
    let why = "it makes every call impersonate another identity";
    let set = [
        (
            "as",
            user.impersonate.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "as-groups",
            user.impersonate_groups
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        (
            "as-uid",
            user.impersonate_uid.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "as-user-extra",
            user.impersonate_user_extra
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
    ];
    match set.iter().find(|(_, present)| *present) {
        Some((field, _)) => Err(KubeconfigError::Unsupported { field, why }),
        None => Ok(()),
    }
}

fn credentials(
    name: &str,
    user: &AuthInfo,
    files: FileReferences<'_>,
) -> Result<Credentials, KubeconfigError> {
    if user.exec.is_some() {
        return Err(KubeconfigError::Exec(name.to_string()));
    }
    if user.auth_provider.is_some() {
        return Err(KubeconfigError::AuthProvider(name.to_string()));
    }
    if let Some(token) = &user.token {
        return Ok(Credentials::Token {
            token: Zeroizing::new(token.expose_secret().trim().to_string()),
        });
    }
    if let Some(path) = &user.token_file {
        let token = Zeroizing::new(read_reference(path, "tokenFile", files)?);
        return Ok(Credentials::Token {
            token: Zeroizing::new(token.trim().to_string()),
        });
    }
    let certificate = match (&user.client_certificate_data, &user.client_certificate) {
        (Some(data), _) => Some(decode_text(data, "client-certificate-data")?),
        (None, Some(path)) => Some(read_reference(path, "client-certificate", files)?),
        (None, None) => None,
    };
    let key = match (&user.client_key_data, &user.client_key) {
        (Some(data), _) => Some(Zeroizing::new(decode_text(
            data.expose_secret(),
            "client-key-data",
        )?)),
        (None, Some(path)) => Some(Zeroizing::new(read_reference(path, "client-key", files)?)),
        (None, None) => None,
    };
    if let (Some(certificate_pem), Some(key_pem)) = (certificate, key) {
        return Ok(Credentials::ClientCertificate {
            certificate_pem,
            key_pem,
        });
    }
    if let (Some(username), Some(password)) = (&user.username, &user.password) {
        return Ok(Credentials::Basic {
            username: username.clone(),
            password: Zeroizing::new(password.expose_secret().to_string()),
        });
    }
    Err(KubeconfigError::NoCredentials(name.to_string()))
}

fn decode_text(data: &str, field: &'static str) -> Result<String, KubeconfigError> {
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = STANDARD
        .decode(compact)
        .map_err(|_| KubeconfigError::BadBase64(field))?;
    String::from_utf8(bytes).map_err(|_| KubeconfigError::BadBase64(field))
}

fn read_reference(
    path: &str,
    field: &'static str,
    files: FileReferences<'_>,
) -> Result<String, KubeconfigError> {
    let FileReferences::RelativeTo(base) = files else {
        return Err(KubeconfigError::FileReference(field));
    };
    let full = base.join(path);
    std::fs::read_to_string(&full).map_err(|err| KubeconfigError::ReadFile {
        path: full.display().to_string(),
        reason: err.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: a
clusters:
- name: c1
  cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: "LS0tLS1CRUdJTg=="}
- name: c2
  cluster: {server: "https://10.0.0.2:6443", certificate-authority: /etc/passwd}
users:
- name: tok
  user: {token: "SECRET-TOKEN"}
- name: ex
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/rm, args: ["-rf", "/"]}
- name: ap
  user:
    auth-provider: {name: gcp}
contexts:
- name: a
  context: {cluster: c1, user: tok}
- name: exec
  context: {cluster: c1, user: ex}
- name: provider
  context: {cluster: c1, user: ap}
- name: files
  context: {cluster: c2, user: tok}
- name: dangling
  context: {cluster: nope, user: tok}
"#;

    fn with(cluster_extra: &str, user_extra: &str) -> Result<ClusterAccess, KubeconfigError> {
        let text = format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n{cluster_extra}users:\n- name: u\n  user:\n    token: T\n{user_extra}contexts:\n- name: a\n  context: {{cluster: c, user: u}}\n"
        );
        access_for_context(
            &parse(text.as_bytes()).unwrap(),
            None,
            FileReferences::Forbidden,
        )
    }

    #[test]
    fn impersonation_and_proxies_are_refused_by_name() {
        with("", "").unwrap();
        for (cluster, user, field) in [
            ("    proxy-url: http://127.0.0.1:3128\n", "", "proxy-url"),
            ("", "    as: admin\n", "as"),
            ("", "    as-groups: [system:masters]\n", "as-groups"),
            ("", "    as-uid: \"1\"\n", "as-uid"),
            ("", "    as-user-extra: {scopes: [all]}\n", "as-user-extra"),
        ] {
            match with(cluster, user) {
                Err(KubeconfigError::Unsupported { field: named, .. }) => {
                    assert_eq!(named, field);
                    let message = with(cluster, user).unwrap_err().to_string();
                    assert!(message.starts_with(field), "{message}");
                }
                other => panic!("{field}: expected a refusal, got {other:?}"),
            }
        }
    }

    fn access(context: Option<&str>) -> Result<ClusterAccess, KubeconfigError> {
        access_for_context(
            &parse(CONFIG.as_bytes()).unwrap(),
            context,
            FileReferences::Forbidden,
        )
    }

    #[test]
    fn current_context_with_token() {
        let a = access(None).unwrap();
        assert_eq!(a.server, "https://127.0.0.1:6443");
        assert_eq!(a.ca_pem.as_deref(), Some("-----BEGIN"));
        assert!(
            matches!(a.credentials, Credentials::Token { token } if token.as_str() == "SECRET-TOKEN")
        );
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            access(Some("exec")),
            Err(KubeconfigError::Exec(_))
        ));
        assert!(matches!(
            access(Some("provider")),
            Err(KubeconfigError::AuthProvider(_))
        ));
        assert!(matches!(
            access(Some("files")),
            Err(KubeconfigError::FileReference("certificate-authority"))
        ));
        assert!(matches!(
            access(Some("dangling")),
            Err(KubeconfigError::MissingCluster { .. })
        ));
        let missing = access(Some("zzz")).unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("a, exec, provider, files, dangling"),
            "{missing}"
        );
    }

    #[test]
    fn parse_errors_do_not_quote_the_input() {
        let err =
            parse(b"users: [ {name: x, user: {token: SECRET-VALUE}} ]\nclusters: 7\n").unwrap_err();
        assert!(!err.to_string().contains("SECRET"), "{err}");
        assert!(parse(&[0xff, 0xfe]).is_err());
    }
}

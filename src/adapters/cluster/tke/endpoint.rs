//! How Flotilla reaches a TKE cluster's API server. The public (extranet) endpoint is opened
//! only when the spec asks for it (`TkeClusterConfig.public_endpoint`), with the source CIDRs
//! the spec allows, and the cluster then carries a `PUBLIC_ENDPOINT` warning. Otherwise nothing
//! is opened and Flotilla uses the intranet kubeconfig: that works where Flotilla runs with a
//! route into the VPC; elsewhere the create's connect step fails with an unreachable API server
//! (the operation's error says so), never by exposing the cluster behind the user's back.
//!
//! The allowed CIDRs are set with ModifyClusterEndpointSP (SecurityPolicies) once the endpoint
//! is open, on every fetch, so a policy changed at the vendor is put back. UNCONFIRMED: that
//! TKE takes SecurityPolicies there (the Terraform provider's
//! `managed_cluster_internet_security_policies` goes through it); vendor-apis.md is silent.

use zeroize::Zeroizing;

use super::{
    EXTRANET_NOT_ENABLED, VENDOR, action,
    backend::TkeProvider,
    client::{self, EndpointStatusReply, KubeconfigReply, Reply},
};
use crate::adapters::{
    CallContext,
    error::{ErrorClass, Result, VendorError},
    transport::Idempotency,
};

impl TkeProvider {
    /// DescribeClusterKubeconfig, intranet or extranet.
    pub(super) async fn kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        extranet: bool,
    ) -> Result<Zeroizing<String>> {
        let reply: Reply<KubeconfigReply> = self
            .call(
                ctx,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_kubeconfig_request(t, ts, cluster_id, extranet),
            )
            .await?;
        match reply.body.kubeconfig {
            Some(yaml) if !yaml.trim().is_empty() => Ok(Zeroizing::new(yaml)),
            _ => Err(VendorError::new(
                ErrorClass::Unknown,
                VENDOR,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                "MalformedResponse",
                "the answer has no Kubeconfig",
            )),
        }
    }

    /// The public kubeconfig, opening the endpoint first (once) and restricting it to `cidrs`.
    pub(super) async fn public_kubeconfig(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        cidrs: &[String],
    ) -> Result<Zeroizing<String>> {
        let kubeconfig = match self.kubeconfig(ctx, cluster_id, true).await {
            Ok(kubeconfig) => kubeconfig,
            Err(err) if extranet_not_enabled(&err) => {
                return Err(self.open_extranet_endpoint(ctx, cluster_id, err).await);
            }
            Err(err) => return Err(err),
        };
        self.call::<serde_json::Value, _>(
            ctx,
            action::MODIFY_CLUSTER_ENDPOINT_SP,
            // Sets the whole list: repeating it changes nothing.
            Idempotency::Idempotent,
            |t, ts| client::modify_cluster_endpoint_sp_request(t, ts, cluster_id, cidrs),
        )
        .await?;
        Ok(kubeconfig)
    }

    /// The kubeconfig failed because the cluster has no public endpoint: open one (once) and
    /// say "not yet", so the caller polls again.
    async fn open_extranet_endpoint(
        &self,
        ctx: &CallContext,
        cluster_id: &str,
        cause: VendorError,
    ) -> VendorError {
        let pending = |what: String, request_id: String| {
            VendorError::new(
                ErrorClass::DependencyPending,
                VENDOR,
                action::DESCRIBE_CLUSTER_KUBECONFIG,
                cause.code.clone(),
                format!("{what}; the kubeconfig can be fetched once it is ready"),
            )
            .with_request_id(request_id)
        };
        let status: Reply<EndpointStatusReply> = match self
            .call(
                ctx,
                action::DESCRIBE_CLUSTER_ENDPOINT_STATUS,
                Idempotency::Idempotent,
                |t, ts| client::describe_cluster_endpoint_status_request(t, ts, cluster_id),
            )
            .await
        {
            Ok(status) => status,
            Err(err) => return err,
        };
        match status.body.status.as_deref().unwrap_or("NotFound") {
            "NotFound" => {}
            "CreateFailed" => {
                return VendorError::new(
                    ErrorClass::DependencyBlocked,
                    VENDOR,
                    action::CREATE_CLUSTER_ENDPOINT,
                    cause.code.clone(),
                    format!(
                        "opening the public API server endpoint of {cluster_id} failed: {}",
                        status.body.error_msg.unwrap_or_default()
                    ),
                )
                .with_request_id(status.request_id);
            }
            other => {
                return pending(
                    format!("the public API server endpoint of {cluster_id} is {other}"),
                    status.request_id,
                );
            }
        }
        let created: Result<Reply<serde_json::Value>> = self
            .call(
                ctx,
                action::CREATE_CLUSTER_ENDPOINT,
                Idempotency::NotIdempotent,
                |t, ts| client::create_cluster_endpoint_request(t, ts, cluster_id),
            )
            .await;
        match created {
            Ok(reply) => pending(
                format!("opening the public API server endpoint of {cluster_id}"),
                reply.request_id,
            ),
            // Someone else opened it meanwhile.
            Err(err) if err.code.starts_with("ResourceInUse") => pending(
                format!("the public API server endpoint of {cluster_id} is being opened"),
                err.request_id,
            ),
            Err(err) => err,
        }
    }
}

pub(super) fn extranet_not_enabled(err: &VendorError) -> bool {
    let message = err.message.to_ascii_lowercase();
    err.code == EXTRANET_NOT_ENABLED
        || err.code.ends_with("NotEnableExtranet")
        || (message.contains("extranet")
            && (message.contains("not enable") || message.contains("not open")))
}

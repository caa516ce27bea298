//! The `flotilla` command.

use std::process::ExitCode;

use clap::Parser;

use crate::{
    app,
    auth::Role,
    config::{Cli, Command, Settings, TokenCommand},
    telemetry,
};

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("flotilla: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("flotilla: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve_serve(&args)?;
            let traces = telemetry::init_with_traces(
                settings.log_format,
                &settings.log_filter,
                settings.otlp_endpoint.as_deref(),
            )?;
            let server = app::start(settings).await?;
            let token = server.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                token.cancel();
            });
            server.wait().await?;
            tracing::info!("stopped");
            if let Some(traces) = traces {
                // Sends the last spans; blocks on the exporter's thread.
                tokio::task::block_in_place(|| drop(traces));
            }
            Ok(())
        }
        Command::Agent(args) => crate::agent::run(*args).await,
        Command::RotateMasterKey(args) => {
            let settings = Settings::resolve_common_only(&args)?;
            telemetry::init(settings.log_format, &settings.log_filter)?;
            let report = app::rotate_master_key(&settings).await?;
            println!(
                "new master key {}: re-encrypted {} secret(s), {} changed meanwhile{}",
                report.new_key_id,
                report.resealed,
                report.skipped,
                if report.skipped > 0 {
                    " (run again)"
                } else {
                    ""
                }
            );
            if report.unowned > 0 {
                println!(
                    "{} secret(s) belong to no cluster or credential and were left as they are",
                    report.unowned
                );
            }
            if report.failed > 0 {
                anyhow::bail!(
                    "{} secret(s) did not open for the cluster or credential that points at them \
                     (see the log for their ids); they were left under their old key",
                    report.failed
                );
            }
            Ok(())
        }
        Command::Token(command) => token_command(command).await,
        Command::RbacManifest => {
            print!("{}", crate::kube::impersonation::role_bindings_yaml());
            Ok(())
        }
        Command::Backup(args) => {
            let settings = Settings::resolve_common_only(&args.common)?;
            telemetry::init(settings.log_format, &settings.log_filter)?;
            let report = app::backup::backup(&settings, &args.file, args.force).await?;
            println!(
                "wrote {} ({} bytes); keep the master key file with it: without it the \
                 stored secrets cannot be opened",
                args.file.display(),
                report.bytes
            );
            Ok(())
        }
        Command::Restore(args) => {
            let settings = Settings::resolve_common_only(&args.common)?;
            telemetry::init(settings.log_format, &settings.log_filter)?;
            let restored = app::backup::restore(&settings, &args.file).await?;
            print!("{}", restore_message(&args.file, &restored));
            Ok(())
        }
        Command::Migrate(args) => {
            let settings = Settings::resolve_common_only(&args)?;
            telemetry::init(settings.log_format, &settings.log_filter)?;
            app::migrate(&settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::error!(%err, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}

async fn token_command(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            common,
            name,
            role,
            clusters,
            expires_in_days,
        } => {
            let settings = Settings::resolve_common_only(&common)?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be viewer, operator or admin"))?;
            let expire = expires_in_days
                .map(|days| {
                    crate::auth::tokens::expire_after_days(
                        crate::store::now_millis(),
                        u64::from(days),
                    )
                })
                .transpose()
                .map_err(|e| anyhow::anyhow!("--expires-in-days: {e}"))?;
            let tokens = app::tokens(&settings).await?;
            let issued = tokens
                .issue(&name, role, clusters, expire, "cli")
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "created token {} ({}, role {}); the secret below is shown only now:",
                issued.token.name, issued.token.id, issued.token.role
            );
            println!("{}", issued.secret.as_str());
            Ok(())
        }
        TokenCommand::List { common, all } => {
            let settings = Settings::resolve_common_only(&common)?;
            let tokens = app::tokens(&settings).await?;
            println!(
                "{:<18} {:<24} {:<9} {:<20} STATE",
                "ID", "NAME", "ROLE", "CLUSTERS"
            );
            for row in tokens.list(all).await.map_err(|e| anyhow::anyhow!("{e}"))? {
                let clusters: Vec<String> =
                    serde_json::from_str(&row.cluster_ids).unwrap_or_default();
                let now = crate::store::now_millis();
                let state = if row.revoke_time.is_some() {
                    "revoked"
                } else if row.expire_time.is_some_and(|t| t <= now) {
                    "expired"
                } else {
                    "active"
                };
                let scope = if clusters.is_empty() {
                    "*".to_string()
                } else {
                    clusters.join(",")
                };
                println!(
                    "{:<18} {:<24} {:<9} {:<20} {state}",
                    row.id, row.name, row.role, scope
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { common, token } => {
            let settings = Settings::resolve_common_only(&common)?;
            let tokens = app::tokens(&settings).await?;
            let row = tokens
                .revoke(&token)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("revoked {} ({})", row.name, row.id);
            Ok(())
        }
    }
}

/// What `flotilla restore` tells the operator, the master key above all.
fn restore_message(file: &std::path::Path, restored: &app::backup::Restored) -> String {
    let report = &restored.report;
    let mut out = format!("restored {}\n", file.display());
    match &report.previous {
        Some(previous) => out.push_str(&format!(
            "the database it replaced is kept at {}\n",
            previous.display()
        )),
        None => out.push_str("there was no database before\n"),
    }
    if report.pending_migrations > 0 {
        out.push_str(&format!(
            "{} migration(s) newer than the backup run when the server starts\n",
            report.pending_migrations
        ));
    }
    out.push_str(&format!(
        "the master keys ({}) must be the ones in use when the backup was taken, or a later \
         key file that still holds them: secrets are sealed under key(s) {}\n",
        restored.key_source,
        if report.key_ids.is_empty() {
            "(none stored)".to_string()
        } else {
            report.key_ids.join(", ")
        }
    ));
    match &restored.missing_keys {
        None => out.push_str(&format!(
            "WARNING: no master keys at {}: copy the key file that belongs to this backup \
             there before starting the server\n",
            restored.key_source
        )),
        Some(missing) if !missing.is_empty() => out.push_str(&format!(
            "WARNING: the master keys at {} lack key(s) {}: the secrets sealed under them will \
             not open until that key file is in place\n",
            restored.key_source,
            missing.join(", ")
        )),
        Some(_) => out.push_str("every key the secrets need is in the master key file\n"),
    }
    out
}

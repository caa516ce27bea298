//! The `flotilla` command.

use std::process::ExitCode;

use clap::Parser;

use crate::{
    app,
    config::{Cli, Command, Settings},
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
            telemetry::init(settings.log_format, &settings.log_filter)?;
            let server = app::start(settings).await?;
            let token = server.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                token.cancel();
            });
            server.wait().await?;
            tracing::info!("stopped");
            Ok(())
        }
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

//! `sluice run`: the service until a signal, with SIGHUP reloads.

use std::process::ExitCode;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::{DEFAULT_CONFIG_PATH, error_chain};
use crate::config::{Config, OutputConfig, SinkKind};

/// Raise the soft open-files limit to the hard limit: each connection,
/// spill segment and sink socket takes a file descriptor, and the usual
/// soft default (1024) runs out long before the hard one.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the plain struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "cannot read RLIMIT_NOFILE");
        return;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            tracing::warn!(soft = before, hard = lim.rlim_max, error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
            return;
        }
    }
    tracing::info!(
        before,
        soft = lim.rlim_cur,
        hard = lim.rlim_max,
        "open-files limit (RLIMIT_NOFILE)"
    );
}

pub(super) fn run(config: Config) -> ExitCode {
    raise_nofile_limit();
    let result = (|| -> anyhow::Result<usize> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let lost = runtime.block_on(async {
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone())?;
            // Room for a burst of reload requests to wait together and be
            // served by one reload (the service coalesces what is waiting).
            let (reload_tx, reload_rx) = tokio::sync::mpsc::channel(256);
            spawn_reload_on_sighup(reload_tx.clone())?;
            let origin = config.origin.clone();
            let summary = describe_outputs(&config);
            let report = crate::service::run(config, shutdown, reload_rx, Some(reload_tx), |ready| {
                println!("{}", ready.to_json_line());
                tracing::info!(config = %origin, "ready: {}", ready.to_json_line());
                if origin.starts_with('<') {
                    tracing::info!("no config file given and no {DEFAULT_CONFIG_PATH}: running the embedded default");
                }
                // The addresses the listeners got (port 0: a free one).
                let listening = ready
                    .listeners
                    .iter()
                    .map(|(_, protocol, addr)| format!("listening on {protocol} {addr}"));
                let parts: Vec<String> = listening.chain(summary.iter().cloned()).collect();
                tracing::info!("{}", parts.join("; "));
            })
            .await?;
            Ok(report.lost_records)
        });
        // The service has stopped within its deadline; a disk write still
        // running on the blocking pool gets a moment, not forever (a torn
        // tail is truncated and counted at the next start).
        runtime.shutdown_timeout(std::time::Duration::from_secs(3));
        lost
    })();
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(lost) => {
            eprintln!(
                "error: {lost} records were lost at shutdown (still queued at its deadline, or arriving after the queues closed)"
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// SIGHUP: re-read the config file (the service logs the outcome).
fn spawn_reload_on_sighup(
    reload: tokio::sync::mpsc::Sender<crate::reload::ReloadRequest>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if reload
                .send(crate::reload::ReloadRequest { reply: None })
                .await
                .is_err()
            {
                return;
            }
        }
    });
    Ok(())
}

/// First SIGINT/SIGTERM: graceful shutdown. Second: exit at once.
fn spawn_signal_handler(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    tokio::spawn(async move {
        let mut seen = false;
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            if seen {
                eprintln!("second signal: exiting now");
                std::process::exit(1);
            }
            seen = true;
            shutdown.cancel();
        }
    });
    Ok(())
}

/// What each route writes where, for the start-up line.
fn describe_outputs(config: &Config) -> Vec<String> {
    let mut parts = Vec::new();
    for r in &config.routes {
        if let Some(s) = config.sinks.get(r.sink) {
            let what = match r.output {
                OutputConfig::Metric(_) => "metrics",
                OutputConfig::Document(_) => "documents",
                OutputConfig::Raw => "raw frames",
            };
            let to = match &s.kind {
                SinkKind::File { path } => path.display().to_string(),
                other => other.type_name().to_owned(),
            };
            parts.push(format!("route {} writes {what} to {to}", r.name));
        }
    }
    parts
}

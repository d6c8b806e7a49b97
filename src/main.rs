//! The `sluice` binary: a thin CLI over the library.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sluice::cli::parse::{ParseFraming, ParseOptions};
use sluice::config::{Config, OutputConfig, SinkKind};
use sluice::decode::{DecodeOptions, Sender};
use sluice::ingest::now_nanos;
use tokio_util::sync::CancellationToken;

/// mimalloc: per-message records are allocated on a reader thread and freed
/// on a sink thread; glibc's malloc and free were 14% of the CPU profile of
/// the end-to-end benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's index of its `purge_delay` option (`mi_option_e` in
/// mimalloc.h, v3). A test checks it against that option's default, so an
/// upgrade that renumbers the options fails there.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Return freed memory to the OS after 100 ms instead of mimalloc's
/// 1000 ms. In the end-to-end benchmark at full speed, 1000 ms gave peak
/// RSS 67-73 MiB and 200 ms 52-59; once faster (LTO), 200 ms reached
/// 54-63.5 MiB and 100 ms 51-56 (three runs each), with CPU per message
/// the same within the VM's noise. 0 ms costs about 30% of the throughput
/// in page faults. The `MIMALLOC_PURGE_DELAY` environment variable, when
/// set, still decides.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores an integer option; any value is valid.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) }
    }
}

/// Where `run`, `check` and `parse` look when no `-c` is given.
const DEFAULT_CONFIG_PATH: &str = "config/sluice.toml";

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Syslog receiver: syslog over UDP, TCP and TLS in (RFC 3164, RFC 5424, log4j), InfluxDB points and Elasticsearch documents out",
    long_about = "Syslog receiver: syslog over UDP, TCP and TLS (RFC 5425; listeners with protocol = \"tls\" and a [listeners.tls] table) in, decoded (RFC 3164, RFC 5424, log4j 1.2 and log4j2), routed by pattern into InfluxDB points, Elasticsearch documents or files.\n\nWithout -c, run, check and health use config/sluice.toml when present, else the embedded default (127.0.0.1:5514 UDP and TCP, files in ./sluice-data/)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as text or as one JSON object per line. Levels
    /// come from RUST_LOG (default "info"; e.g. "sluice=debug").
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service. Without -c: config/sluice.toml when present, else the embedded default.
    Run {
        /// The config file (TOML); relative paths in it are relative to its folder.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Validate a config and print what it resolved to.
    Check {
        /// The config file (TOML); without it, config/sluice.toml or the embedded default.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Ask a running sluice's GET /health at the config's admin address:
    /// exit 0 when it answers 200 (ok or degraded), 1 otherwise (for a
    /// container HEALTHCHECK).
    Health {
        /// The config file the service runs with (its [admin] listen is asked).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Decode stdin and print one canonical JSON object per message; with -c, also what each route makes of it.
    Parse {
        /// A config file: also show what its routes make of each message.
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How stdin is cut (default: the --listener's framing when it is a TCP or TLS listener, else auto).
        #[arg(long, value_enum)]
        framing: Option<ParseFraming>,
        /// Decode as this listener of the config does (timezone, sender, log4j options, multi-line joining).
        #[arg(long, requires = "config")]
        listener: Option<String>,
        /// Zone for timestamps without an offset (default: the listener's, else the config's, else UTC).
        #[arg(long)]
        timezone: Option<chrono_tz::Tz>,
        /// Who sent the frames: generic, or log4j (BSD frames carry no TAG).
        #[arg(long, value_enum)]
        sender: Option<SenderArg>,
        /// Receive time (RFC 3339) for year inference, instead of now.
        #[arg(long)]
        received: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
    /// Spill logs on disk.
    Spill {
        #[command(subcommand)]
        command: SpillCommand,
    },
}

#[derive(Subcommand)]
enum SpillCommand {
    /// Read every route's spill log under DATA_DIR (the data dir, or its
    /// `spill` folder) without changing it: pending (recoverable) and lost
    /// records and corrupt regions, one JSON object per route. Exits 1
    /// when a log is corrupt, 2 when DATA_DIR is not a spill folder.
    Verify { data_dir: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SenderArg {
    Generic,
    Log4j,
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour codes only for a terminal: in a file or a journal they are noise.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match cli.command {
        Command::Run { config } => with_config(config.as_deref(), run),
        Command::Check { config } => with_config(config.as_deref(), check),
        Command::Health { config } => with_config(config.as_deref(), health),
        Command::Spill {
            command: SpillCommand::Verify { data_dir },
        } => match sluice::testing::verify(&data_dir) {
            Ok(reports) => {
                let mut out = String::new();
                for r in &reports {
                    out.push_str(&serde_json::to_string(r).unwrap_or_default());
                    out.push('\n');
                }
                print!("{out}");
                if reports.iter().any(|r| !r.corrupt.is_empty()) {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Parse {
            config,
            framing,
            listener,
            timezone,
            sender,
            received,
        } => {
            let config = match config.as_deref().map(|p| Config::load(Some(p))).transpose() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let mut options = ParseOptions {
                framing: framing.unwrap_or(ParseFraming::Auto),
                decode: DecodeOptions {
                    timezone: config.as_ref().map_or(chrono_tz::Tz::UTC, |c| c.timezone),
                    ..DecodeOptions::default()
                },
                multiline: None,
                received_nanos: received
                    .and_then(|r| r.timestamp_nanos_opt())
                    .unwrap_or_else(now_nanos),
            };
            if let (Some(name), Some(c)) = (&listener, &config) {
                let Some(l) = c.listeners.iter().find(|l| &l.name == name) else {
                    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
                    eprintln!(
                        "error: no listener {name:?} in {} (listeners: {})",
                        c.origin,
                        names.join(", ")
                    );
                    return ExitCode::from(2);
                };
                options.decode = l.decode.clone();
                options.multiline = l.multiline.clone();
                if framing.is_none() && l.protocol != sluice::config::ListenerProtocol::Udp {
                    options.framing = l.framing.into();
                }
            }
            if let Some(tz) = timezone {
                options.decode.timezone = tz;
            }
            if let Some(sender) = sender {
                options.decode.sender = match sender {
                    SenderArg::Generic => Sender::Generic,
                    SenderArg::Log4j => Sender::Log4j,
                };
            }
            report(
                sluice::cli::parse::run(
                    &mut std::io::stdin(),
                    &mut std::io::stdout(),
                    config.as_ref(),
                    &options,
                )
                .map_err(anyhow::Error::from),
            )
        }
    }
}

fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            ExitCode::from(1)
        }
    }
}

/// Load the config (`-c`, else config/sluice.toml, else embedded); a bad one exits 2.
fn with_config(path: Option<&Path>, f: fn(Config) -> ExitCode) -> ExitCode {
    let loaded = match path {
        Some(p) => Config::load(Some(p)),
        // The default config, like the embedded one, writes below the
        // working directory (./sluice-data/), not below config/.
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            Config::load_relative_to(Path::new(DEFAULT_CONFIG_PATH), Path::new(""))
        }
        None => Config::load(None),
    };
    match loaded {
        Ok(c) => f(c),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// An error and its causes, each printed once (an `io::Error` cause is
/// often already in its wrapper's text).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let more = cause.to_string();
        if text.is_empty() {
            text = more;
        } else if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
    }
    text
}

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

fn run(config: Config) -> ExitCode {
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
            let report = sluice::service::run(config, shutdown, reload_rx, Some(reload_tx), |ready| {
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
    reload: tokio::sync::mpsc::Sender<sluice::service::ReloadRequest>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if reload
                .send(sluice::service::ReloadRequest { reply: None })
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

fn check(config: Config) -> ExitCode {
    // Written at once, and a closed stdout (`sluice check | head`) is not an
    // error worth a panic.
    let mut out = String::new();
    macro_rules! outln {
        ($out:expr, $($arg:tt)*) => {{
            use std::fmt::Write as _;
            let _ = writeln!($out, $($arg)*);
        }};
    }
    // Build the router as `run` would: the patterns together can fail where
    // each alone compiled (e.g. a pattern set over the size limit).
    if let Err(e) = sluice::router::Router::new(&config.routes) {
        eprintln!("error: {}: {e}", config.origin);
        return ExitCode::from(2);
    }
    // What `run` will write to: data_dir and the dead-letter files.
    if let Err(e) = config.check_writable() {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    outln!(out, "{}: ok", config.origin);
    outln!(out, "timezone: {}", config.timezone);
    outln!(
        out,
        "shutdown_timeout_secs: {}",
        config.shutdown_timeout.as_secs()
    );
    match config.admin {
        Some(a) => outln!(out, "admin: http://{a} (/metrics, /health)"),
        None => outln!(out, "admin: disabled"),
    }
    for l in &config.listeners {
        // Only the settings this protocol uses.
        let settings = match l.protocol {
            sluice::config::ListenerProtocol::Udp => format!(
                "max_frame_bytes {}, receive_buffer_bytes {}, sockets {}, timezone {}",
                l.max_frame_bytes,
                l.receive_buffer_bytes
                    .map_or_else(|| "kernel default".to_owned(), |b| b.to_string()),
                l.sockets,
                l.decode.timezone
            ),
            _ => format!(
                "max_frame_bytes {}, max_connections {}, max_connections_per_peer {}, idle_timeout_secs {}, frame_timeout_secs {}, framing {}, timezone {}",
                l.max_frame_bytes,
                l.max_connections,
                l.max_connections_per_peer
                    .map_or_else(|| "unlimited".to_owned(), |n| n.to_string()),
                l.idle_timeout.as_secs(),
                l.frame_timeout.as_secs(),
                l.framing.as_str(),
                l.decode.timezone
            ),
        };
        outln!(
            out,
            "listener {}: {} {} ({settings})",
            l.name,
            sluice::listener::protocol_name(l.protocol),
            l.listen,
        );
        let d = &l.decode;
        let mut extras = vec![format!(
            "sender {}",
            match d.sender {
                Sender::Generic => "generic",
                Sender::Log4j => "log4j",
            }
        )];
        if let Some(app) = &d.app_name {
            extras.push(format!("app_name {app:?}"));
        }
        if d.strip_facility_prefix {
            extras.push("strip_facility_prefix".to_owned());
        }
        if let Some(e) = &d.newline_escape {
            extras.push(format!("newline_escape {e:?}"));
        }
        match &l.multiline {
            Some(m) => extras.push(format!(
                "multiline (window_ms {}, max_lines {}, max_bytes {})",
                m.window.as_millis(),
                m.max_lines,
                m.max_bytes
            )),
            None => extras.push("multiline off".to_owned()),
        }
        outln!(out, "  decode: {}", extras.join(", "));
        if let Some(t) = &l.tls {
            outln!(
                out,
                "  tls: certificate {}, client certificates {}, handshake_timeout_secs {}",
                t.cert_file.display(),
                if t.client_auth {
                    "required"
                } else {
                    "not asked for"
                },
                t.handshake_timeout.as_secs()
            );
        }
    }
    for s in &config.sinks {
        let target = match &s.kind {
            SinkKind::File { path } => path.display().to_string(),
            SinkKind::Stdout => "stdout".to_owned(),
            SinkKind::Influxdb(i) => i.urls.join(", "),
            SinkKind::Elasticsearch(e) => e.urls.join(", "),
        };
        outln!(
            out,
            "sink {}: {} {} (batch_max_events {}, linger_ms {})",
            s.name,
            s.kind.type_name(),
            target,
            s.batch_max_events,
            s.linger.as_millis()
        );
    }
    for r in &config.routes {
        let sink = config.sinks.get(r.sink).map_or("?", |s| s.name.as_str());
        let output = match &r.output {
            OutputConfig::Metric(m) => format!("metric {}", m.measurement),
            OutputConfig::Document(f) => format!("document {}", document_name(*f)),
        };
        let mut conds = Vec::new();
        if r.is_default {
            conds.push("events no other route matched".to_owned());
        }
        if r.conditions.facilities.is_some() {
            conds.push("facility".to_owned());
        }
        if r.conditions.severities.is_some() {
            conds.push("severity".to_owned());
        }
        for (name, v) in [
            ("hostname", &r.conditions.hostnames),
            ("appname", &r.conditions.appnames),
            ("msgid", &r.conditions.msgids),
        ] {
            if let Some(v) = v {
                conds.push(format!("{name} in [{}]", v.join(", ")));
            }
        }
        if let Some(p) = &r.pattern_source {
            conds.push(format!("pattern {p:?}"));
        }
        if conds.is_empty() {
            conds.push("every event".to_owned());
        }
        outln!(
            out,
            "route {}{}: {} → {output} → sink {sink} (queue max_events {}, when_full {})",
            r.name,
            if r.is_final { " (final)" } else { "" },
            conds.join(", "),
            r.queue.max_events,
            r.queue.when_full.as_str()
        );
    }
    {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(out.as_bytes());
        ExitCode::SUCCESS
    }
}

/// A document format as the config spells it.
fn document_name(f: sluice::config::DocumentFormat) -> &'static str {
    match f {
        sluice::config::DocumentFormat::Canonical => "canonical",
        sluice::config::DocumentFormat::Ecs { original: false } => "ecs",
        sluice::config::DocumentFormat::Ecs { original: true } => "ecs with event.original",
        sluice::config::DocumentFormat::Flume { .. } => "flume",
    }
}

/// `sluice health`: GET /health at the config's admin address; exit 0 on
/// 200 (ok or degraded), 1 on anything else or no answer within 5 s.
fn health(config: Config) -> ExitCode {
    use std::io::{Read as _, Write as _};
    let Some(mut addr) = config.admin else {
        eprintln!(
            "error: {}: the admin listener is disabled ([admin] enabled = false): nothing to ask",
            config.origin
        );
        return ExitCode::from(2);
    };
    // A wildcard listen address is asked on loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let timeout = std::time::Duration::from_secs(5);
    let answer = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        // Bounded: /health is a small JSON object.
        s.take(1 << 20).read_to_end(&mut raw)?;
        Ok(String::from_utf8_lossy(&raw).into_owned())
    })();
    match answer {
        Ok(text) => {
            let status = text.split_whitespace().nth(1).unwrap_or("?");
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b).trim();
            println!("{body}");
            if status == "200" {
                ExitCode::SUCCESS
            } else {
                eprintln!("error: http://{addr}/health answered {status}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: http://{addr}/health: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option index set at start-up is mimalloc's purge delay: its
    /// default is the documented 1000 ms (read before anything sets it).
    #[test]
    fn purge_delay_index_names_mimallocs_purge_delay() {
        // SAFETY: reads an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}

//! The `sluice` command line: clap definitions and one file per
//! subcommand (`run`, `check`, `health`, `spill`; `parse` decodes stdin).
//! anyhow is used here and in main.rs only.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.

mod check;
mod health;
mod parse;
mod run;
mod spill;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::parse::{ParseFraming, ParseOptions};
use crate::config::Config;
use crate::decode::{DecodeOptions, Sender};
use crate::ingest::now_nanos;

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
    Parse(ParseArgs),
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
    /// records and corrupt regions, one JSON object per route (none when no
    /// route has a log: nothing to verify). Exits 1 when a log is corrupt,
    /// 2 when DATA_DIR is neither a data dir (`run` gives it a `spill`
    /// folder at start) nor a spill folder.
    Verify { data_dir: PathBuf },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SenderArg {
    Generic,
    Log4j,
}

/// The options of `sluice parse`.
#[derive(clap::Args)]
struct ParseArgs {
    /// A config file: also show what its routes make of each message.
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How stdin is cut (default: as the --listener cuts its input — a UDP listener's is `datagram`, a TCP or TLS listener's its `framing` — else auto).
    #[arg(long, value_enum)]
    framing: Option<ParseFraming>,
    /// Decode as this listener of the config does (framing, max_frame_bytes, timezone, sender, log4j options, multi-line joining).
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
}

/// Parse the command line and run the subcommand; the process exit code.
pub fn main() -> ExitCode {
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
        Command::Run { config } => with_config(config.as_deref(), run::run),
        Command::Check { config } => with_config(config.as_deref(), check::check),
        Command::Health { config } => with_config(config.as_deref(), health::health),
        Command::Spill {
            command: SpillCommand::Verify { data_dir },
        } => spill::verify(&data_dir),
        Command::Parse(args) => parse(args),
    }
}

/// `sluice parse`: decode stdin as a listener of the config would.
fn parse(args: ParseArgs) -> ExitCode {
    let ParseArgs {
        config,
        framing,
        listener,
        timezone,
        sender,
        received,
    } = args;
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
        max_frame_bytes: None,
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
        options.max_frame_bytes = Some(l.max_frame_bytes);
        if framing.is_none() {
            // A UDP listener takes each datagram as one frame.
            options.framing = match l.protocol {
                // A Kafka record is one frame, as a datagram is.
                crate::config::ListenerProtocol::Udp | crate::config::ListenerProtocol::Kafka => {
                    ParseFraming::Datagram
                }
                _ => l.framing.into(),
            };
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
        crate::cli::parse::run(
            &mut std::io::stdin(),
            &mut std::io::stdout(),
            config.as_ref(),
            &options,
        )
        .map_err(anyhow::Error::from),
    )
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

//! syslog-blaster: send syslog to a receiver on a schedule and measure what
//! arrives (a thin CLI over its `blaster` module). It is its own binary
//! target, not part of the sluice library: `cargo build --lib` never
//! compiles it.

mod blaster;

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use blaster::{Expect, Format, Framing, Options, Shape, Target, receiver};
use clap::Parser;

/// The same allocator as `sluice`: the sink endpoints allocate per request
/// and per delivered message.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "syslog-blaster",
    version,
    about = "Send syslog at a schedule; with --sink, receive what sluice delivers and report loss and latency"
)]
struct Cli {
    /// udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT; "-" reads it
    /// from stdin once the --sink endpoints are up (start sluice in between).
    #[arg(long)]
    target: String,
    /// Connections (sockets for UDP); messages are spread over them.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Messages per second over all connections (open loop); omit for as
    /// fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Messages to send.
    #[arg(long)]
    count: Option<u64>,
    /// Seconds to send for (with --rate: exactly rate × duration messages).
    #[arg(long)]
    duration: Option<f64>,
    #[arg(long, value_enum, default_value_t = Format::Rfc5424)]
    format: Format,
    /// Stream framing (UDP: one message per datagram).
    #[arg(long, value_enum, default_value_t = Framing::Lf)]
    framing: Framing,
    /// Frame size in bytes: N, or LO-HI for a uniform spread.
    #[arg(long, default_value = "256")]
    size: String,
    /// Every Nth message is a status line (metric routes); 0: none.
    #[arg(long, default_value_t = 4)]
    status_every: u64,
    /// Every Nth message is an error with a multi-line stack trace; 0: none.
    #[arg(long, default_value_t = 0)]
    stack_every: u64,
    /// Distinct host names (host00, host01, …).
    #[arg(long, default_value_t = 16)]
    hosts: u64,
    /// Distinct app names (app0, app1, …).
    #[arg(long, default_value_t = 4)]
    apps: u64,
    /// PEM CA for tls:// targets.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Run InfluxDB /write and Elasticsearch _bulk endpoints here and
    /// measure deliveries; prints {"sink":"ADDR"} on stdout when up.
    #[arg(long)]
    sink: Option<SocketAddr>,
    /// Which deliveries count for loss.
    #[arg(long, value_enum, default_value_t = Expect::Documents)]
    expect: Expect,
    /// After the last send, wait this long without a new delivery.
    #[arg(long, default_value_t = 10.0)]
    drain_secs: f64,
    /// Exit 1 when the lost fraction exceeds this (default: 0 for TCP and
    /// TLS, no limit for UDP).
    #[arg(long)]
    max_loss: Option<f64>,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("--size {s:?}: expected N or LO-HI (bytes, 32..=65536)");
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    if lo < 32 || hi > 65_536 || lo > hi {
        return Err(bad());
    }
    Ok((lo, hi))
}

/// Raise the soft open-files limit to the hard one (`--connections 1000`
/// needs more than the usual soft 1024 with the sink's sockets); says so
/// on stderr when it changed it or could not.
fn raise_nofile_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the plain struct given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0
        || lim.rlim_cur >= lim.rlim_max
    {
        return;
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::info!(before, now = lim.rlim_cur, "open-files limit raised");
    } else {
        tracing::warn!(soft = before, hard = lim.rlim_max, error = %std::io::Error::last_os_error(), "cannot raise the open-files limit");
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    raise_nofile_limit();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let size = parse_size(&cli.size).map_err(anyhow::Error::msg)?;
    let deliveries = match cli.sink {
        Some(addr) => {
            let listener = receiver::bind(addr)
                .await
                .map_err(|source| blaster::BlasterError::Sink { addr, source })?;
            let bound = listener.local_addr()?;
            let d = Arc::new(receiver::Deliveries::new()?);
            tokio::spawn(receiver::serve(listener, d.clone()));
            println!("{}", serde_json::json!({ "sink": bound.to_string() }));
            Some(d)
        }
        None => None,
    };
    let target_text = if cli.target == "-" {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim().to_owned()
    } else {
        cli.target.clone()
    };
    let target = Target::parse(&target_text)?;
    let max_loss = cli
        .max_loss
        .or(if target.is_udp() { None } else { Some(0.0) });
    let options = Options {
        target,
        connections: cli.connections,
        rate: cli.rate,
        count: cli.count,
        duration: cli.duration.map(Duration::from_secs_f64),
        shape: Shape {
            format: cli.format,
            size,
            status_every: cli.status_every,
            stack_every: cli.stack_every,
            hosts: cli.hosts.max(1),
            apps: cli.apps.max(1),
        },
        framing: cli.framing,
        tls_ca: cli.tls_ca,
        expect: cli.expect,
        drain: Duration::from_secs_f64(cli.drain_secs.max(0.0)),
        progress: !cli.quiet,
    };
    let report = blaster::run(options, deliveries).await?;
    if cli.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", report.table());
    }
    if let (Some(max), Some(loss)) = (max_loss, report.loss_ratio) {
        if loss > max {
            eprintln!(
                "loss {:.4} % exceeds --max-loss {:.4} %",
                loss * 100.0,
                max * 100.0
            );
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

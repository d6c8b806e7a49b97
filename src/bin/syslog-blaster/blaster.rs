//! `syslog-blaster`: sends syslog at a schedule and measures what arrives.
//!
//! Senders run open loop: message `seq` is due at `start + seq / rate`, and
//! that intended time (not the moment the write happened) travels in the
//! message as `sent=NANOS`. A receiver that stalls therefore shows up as
//! latency at the sink, not as a slower send — the measurement is safe from
//! coordinated omission. Without `--rate` messages go as fast as the
//! socket takes them and carry the time they were rendered.
//!
//! With `--sink ADDR` the blaster also runs the InfluxDB and Elasticsearch
//! endpoints sluice delivers to ([`receiver`]), and reports delivered, lost
//! and duplicated messages by sequence number and end-to-end latency.

pub(crate) mod message;
pub(crate) mod receiver;
mod udp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};

pub(crate) use message::{Format, Framing, Shape};
use receiver::{Deliveries, Tracker};

/// Largest write on a stream: messages due together go out in one write.
const WRITE_BATCH: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum BlasterError {
    #[error("target {0:?}: expected udp://HOST:PORT, tcp://HOST:PORT or tls://HOST:PORT")]
    Target(String),
    #[error("target {target}: {source}")]
    Connect {
        target: String,
        source: std::io::Error,
    },
    #[error("--tls-ca {path}: {message}")]
    TlsCa { path: PathBuf, message: String },
    #[error("sink endpoints on {addr}: {source}")]
    Sink {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    #[error("{0}")]
    Usage(String),
}

/// Where to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Udp(String),
    Tcp(String),
    Tls(String),
}

impl Target {
    pub(crate) fn parse(s: &str) -> Result<Target, BlasterError> {
        let s = s.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| BlasterError::Target(s.to_owned()))?;
        if rest.is_empty() || !rest.contains(':') {
            return Err(BlasterError::Target(s.to_owned()));
        }
        match scheme {
            "udp" => Ok(Target::Udp(rest.to_owned())),
            "tcp" => Ok(Target::Tcp(rest.to_owned())),
            "tls" => Ok(Target::Tls(rest.to_owned())),
            _ => Err(BlasterError::Target(s.to_owned())),
        }
    }

    fn addr(&self) -> &str {
        match self {
            Target::Udp(a) | Target::Tcp(a) | Target::Tls(a) => a,
        }
    }

    pub(crate) fn is_udp(&self) -> bool {
        matches!(self, Target::Udp(_))
    }
}

/// Which deliveries count for loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Expect {
    /// Every message arrives as a document (`_bulk`).
    Documents,
    /// Every status line arrives as a point (`/write`).
    Points,
    /// Both.
    Both,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) target: Target,
    pub(crate) connections: usize,
    /// Messages per second over all connections; `None`: as fast as possible.
    pub(crate) rate: Option<f64>,
    pub(crate) count: Option<u64>,
    pub(crate) duration: Option<Duration>,
    pub(crate) shape: Shape,
    pub(crate) framing: Framing,
    pub(crate) tls_ca: Option<PathBuf>,
    /// Endpoints for sluice's sinks, already bound.
    pub(crate) expect: Expect,
    /// How long to wait for deliveries after the last send.
    pub(crate) drain: Duration,
    /// Print a progress line to stderr each second.
    pub(crate) progress: bool,
}

/// Counters the senders share.
#[derive(Default)]
struct Sent {
    messages: AtomicU64,
    frames: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Latency {
    pub(crate) count: u64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) p999_ms: f64,
    pub(crate) max_ms: f64,
}

impl Latency {
    fn of(t: &Tracker) -> Latency {
        let h = &t.latency_us;
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
        }
    }
}

/// One kind of delivery, measured.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Delivered {
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    pub(crate) unmatched: u64,
    pub(crate) latency: Latency,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Report {
    pub(crate) target: String,
    pub(crate) format: Format,
    pub(crate) framing: Framing,
    pub(crate) connections: usize,
    pub(crate) rate: Option<f64>,
    pub(crate) sent: u64,
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    pub(crate) send_errors: u64,
    pub(crate) send_seconds: f64,
    pub(crate) send_rate: f64,
    /// Present with `--sink`.
    pub(crate) documents: Option<Delivered>,
    pub(crate) points: Option<Delivered>,
    /// Delivered / (seconds from the first send to the last delivery).
    pub(crate) delivered_rate: Option<f64>,
    /// Lost / expected over what `expect` counts.
    pub(crate) loss_ratio: Option<f64>,
}

/// Plan of one connection: it sends seqs `index, index + n, index + 2n, …`.
#[derive(Clone, Copy)]
struct Plan {
    index: u64,
    connections: u64,
    /// Global end (exclusive) of the sequence, if counted.
    end: Option<u64>,
    /// Rate over all connections.
    rate: Option<f64>,
    deadline: Option<Instant>,
    start: Instant,
    start_wall_nanos: i64,
}

impl Plan {
    /// Intended time of `seq` (monotonic and wall clock), with a rate.
    fn due(&self, seq: u64, rate: f64) -> (Instant, i64) {
        let offset = Duration::from_secs_f64(seq as f64 / rate);
        (
            self.start + offset,
            self.start_wall_nanos + offset.as_nanos() as i64,
        )
    }
}

fn wall_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// Per-connection progress: how many messages it sent (seqs are
/// `index + k * connections`, `k < sent`).
type ConnSent = Arc<Vec<AtomicU64>>;

/// Render what is due into `buf` (up to [`WRITE_BATCH`]); returns the next
/// seq to send, or `None` when the plan is done, plus how long to wait
/// before anything is due.
fn fill(
    plan: &Plan,
    next: &mut u64,
    renderer: &mut message::Renderer,
    buf: &mut Vec<u8>,
    ends: &mut Vec<usize>,
    messages: &mut u64,
    frames: &mut u64,
) -> Result<(), Option<Instant>> {
    let now = Instant::now();
    let batch_wall = wall_nanos();
    loop {
        let seq = plan.index + *next * plan.connections;
        if plan.end.is_some_and(|e| seq >= e) {
            return if buf.is_empty() { Err(None) } else { Ok(()) };
        }
        let sent_nanos = match plan.rate {
            Some(rate) => {
                let (due, wall) = plan.due(seq, rate);
                if plan.deadline.is_some_and(|d| due >= d) {
                    return if buf.is_empty() { Err(None) } else { Ok(()) };
                }
                if due > now {
                    return if buf.is_empty() {
                        Err(Some(due))
                    } else {
                        Ok(())
                    };
                }
                wall
            }
            None => {
                if plan.deadline.is_some_and(|d| now > d) {
                    return if buf.is_empty() { Err(None) } else { Ok(()) };
                }
                batch_wall
            }
        };
        *frames += renderer.render(seq, sent_nanos, buf, ends) as u64;
        *messages += 1;
        *next += 1;
        if buf.len() >= WRITE_BATCH {
            return Ok(());
        }
    }
}

/// One connection's sending state: the plan, where it stands, the
/// renderer and the reused buffers.
struct Sender {
    plan: Plan,
    next: u64,
    renderer: message::Renderer,
    buf: Vec<u8>,
    ends: Vec<usize>,
    sent: Arc<Sent>,
    conn_sent: ConnSent,
}

impl Sender {
    fn new(plan: Plan, renderer: message::Renderer, sent: Arc<Sent>, conn_sent: ConnSent) -> Self {
        Sender {
            plan,
            next: 0,
            renderer,
            buf: Vec::with_capacity(WRITE_BATCH + 8192),
            ends: Vec::new(),
            sent,
            conn_sent,
        }
    }

    /// Render the next due messages into `buf` (waiting until one is due):
    /// `Some((messages, frames))`, or `None` when the plan is done.
    async fn next_batch(&mut self) -> Option<(u64, u64)> {
        loop {
            self.buf.clear();
            self.ends.clear();
            let (mut m, mut f) = (0, 0);
            match fill(
                &self.plan,
                &mut self.next,
                &mut self.renderer,
                &mut self.buf,
                &mut self.ends,
                &mut m,
                &mut f,
            ) {
                Err(None) => return None,
                Err(Some(due)) => tokio::time::sleep_until(due.into()).await,
                Ok(()) => return Some((m, f)),
            }
        }
    }

    /// Count a batch that went out.
    fn sent(&self, messages: u64, frames: u64) {
        self.sent.messages.fetch_add(messages, Ordering::Relaxed);
        self.sent.frames.fetch_add(frames, Ordering::Relaxed);
        self.sent
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        if let Some(c) = self.conn_sent.get(self.plan.index as usize) {
            c.store(self.next, Ordering::Relaxed);
        }
    }
}

async fn send_stream<W: AsyncWrite + Unpin>(mut w: W, mut s: Sender) {
    while let Some((m, f)) = s.next_batch().await {
        if let Err(e) = w.write_all(&s.buf).await {
            s.sent.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, "write failed: connection ends");
            break;
        }
        s.sent(m, f);
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn send_udp(socket: tokio::net::UdpSocket, mut s: Sender) {
    while let Some((m, f)) = s.next_batch().await {
        let errors = udp::send_all(&socket, &s.buf, &s.ends).await;
        if errors > 0 {
            s.sent.errors.fetch_add(errors, Ordering::Relaxed);
        }
        s.sent(m, f);
    }
}

fn tls_connector(ca: Option<&PathBuf>) -> Result<tokio_rustls::TlsConnector, BlasterError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let path = ca.ok_or_else(|| BlasterError::Usage("tls:// needs --tls-ca FILE".into()))?;
    let err = |message: String| BlasterError::TlsCa {
        path: path.clone(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(e.to_string()))?;
    for c in certs {
        roots.add(c).map_err(|e| err(e.to_string()))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Send per `options`; with `deliveries`, wait for and measure what
/// arrives. Returns the report.
pub(crate) async fn run(
    options: Options,
    deliveries: Option<Arc<Deliveries>>,
) -> Result<Report, BlasterError> {
    if options.connections == 0 {
        return Err(BlasterError::Usage(
            "--connections must be at least 1".into(),
        ));
    }
    if options.count.is_none() && options.duration.is_none() {
        return Err(BlasterError::Usage("give --count or --duration".into()));
    }
    if options.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        return Err(BlasterError::Usage("--rate must be positive".into()));
    }
    let framing = if options.target.is_udp() {
        Framing::Datagram
    } else {
        options.framing
    };
    let connector = match &options.target {
        Target::Tls(_) => Some(tls_connector(options.tls_ca.as_ref())?),
        _ => None,
    };
    let addr = options.target.addr().to_owned();
    // Connect everything first, so the schedule starts with all senders.
    let conns = connect_all(&options, connector.as_ref()).await?;

    let sent = Arc::new(Sent::default());
    let conn_sent: ConnSent = Arc::new(
        (0..options.connections)
            .map(|_| AtomicU64::new(0))
            .collect(),
    );
    let start = Instant::now();
    let plan = Plan {
        index: 0,
        connections: options.connections as u64,
        end: options.count,
        rate: options.rate,
        deadline: options.duration.map(|d| start + d),
        start,
        start_wall_nanos: wall_nanos(),
    };
    let done = Arc::new(AtomicBool::new(false));
    if options.progress {
        tokio::spawn(progress(sent.clone(), deliveries.clone(), done.clone()));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let plan = Plan {
            index: i as u64,
            ..plan
        };
        let renderer = message::Renderer::new(options.shape.clone(), framing, i as u64 + 1);
        let sender = Sender::new(plan, renderer, sent.clone(), conn_sent.clone());
        match conn {
            Conn::Udp(s) => tasks.spawn(send_udp(s, sender)),
            Conn::Tcp(s) => tasks.spawn(send_stream(s, sender)),
            Conn::Tls(s) => tasks.spawn(send_stream(*s, sender)),
        };
    }
    while tasks.join_next().await.is_some() {}
    let send_seconds = start.elapsed().as_secs_f64();
    let total = sent.messages.load(Ordering::Relaxed);

    // What should arrive: every message as a document, every status line
    // as a point.
    let shape = &options.shape;
    let mut expected_points = 0;
    for (i, c) in conn_sent.iter().enumerate() {
        for k in 0..c.load(Ordering::Relaxed) {
            let seq = i as u64 + k * options.connections as u64;
            if shape.kind(seq) == message::Kind::Status {
                expected_points += 1;
            }
        }
    }
    let mut report = Report {
        target: format!(
            "{}://{}",
            match options.target {
                Target::Udp(_) => "udp",
                Target::Tcp(_) => "tcp",
                Target::Tls(_) => "tls",
            },
            addr
        ),
        format: shape.format,
        framing,
        connections: options.connections,
        rate: options.rate,
        sent: total,
        frames: sent.frames.load(Ordering::Relaxed),
        bytes: sent.bytes.load(Ordering::Relaxed),
        send_errors: sent.errors.load(Ordering::Relaxed),
        send_seconds,
        send_rate: total as f64 / send_seconds.max(1e-9),
        documents: None,
        points: None,
        delivered_rate: None,
        loss_ratio: None,
    };
    if let Some(d) = deliveries {
        let sent = (&conn_sent, total, expected_points);
        measure(&d, &options, sent, start, &mut report).await;
    }
    done.store(true, Ordering::Relaxed);
    Ok(report)
}

/// One sender's connection.
enum Conn {
    Udp(tokio::net::UdpSocket),
    Tcp(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

/// Connect every sender to the target.
async fn connect_all(
    options: &Options,
    connector: Option<&tokio_rustls::TlsConnector>,
) -> Result<Vec<Conn>, BlasterError> {
    let addr = options.target.addr().to_owned();
    let connect_err = |source| BlasterError::Connect {
        target: addr.clone(),
        source,
    };
    let mut conns = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        let conn = match &options.target {
            Target::Udp(a) => {
                let bind = if a.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let s = tokio::net::UdpSocket::bind(bind)
                    .await
                    .map_err(connect_err)?;
                s.connect(a).await.map_err(connect_err)?;
                Conn::Udp(s)
            }
            Target::Tcp(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                Conn::Tcp(s)
            }
            Target::Tls(a) => {
                let s = tokio::net::TcpStream::connect(a)
                    .await
                    .map_err(connect_err)?;
                let _ = s.set_nodelay(true);
                let host = a.rsplit_once(':').map_or(a.as_str(), |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| BlasterError::Target(format!("{a}: {e}")))?;
                let Some(connector) = connector else {
                    return Err(BlasterError::Usage("tls:// needs --tls-ca FILE".into()));
                };
                let t = connector.connect(name, s).await.map_err(connect_err)?;
                Conn::Tls(Box::new(t))
            }
        };
        conns.push(conn);
    }
    Ok(conns)
}

/// Wait for what `d` receives (until all expected arrived, or nothing new
/// for `options.drain`) and add loss, latency and delivered rate to
/// `report`. `sent`: messages sent per connection, in all, and the status
/// lines among them.
async fn measure(
    d: &Deliveries,
    options: &Options,
    (conn_sent, total, expected_points): (&ConnSent, u64, u64),
    start: Instant,
    report: &mut Report,
) {
    let shape = &options.shape;
    let (want_docs, want_points) = match options.expect {
        Expect::Documents => (total, 0),
        Expect::Points => (0, expected_points),
        Expect::Both => (total, expected_points),
    };
    // Wait for deliveries: until all expected arrived, or nothing new
    // arrived for `drain`.
    let mut last = d.counts();
    let mut last_change = Instant::now();
    let mut last_delivery = Instant::now();
    loop {
        let now = d.counts();
        if now != last {
            last = now;
            last_change = Instant::now();
            last_delivery = last_change;
        }
        if (now.0 >= want_docs && now.1 >= want_points) || last_change.elapsed() > options.drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_seconds = last_delivery.duration_since(start).as_secs_f64();
    let summarize = |t: &Tracker, expected: u64, kind_of: &dyn Fn(u64) -> bool| {
        let mut delivered = 0;
        for (i, c) in conn_sent.iter().enumerate() {
            for k in 0..c.load(Ordering::Relaxed) {
                let seq = i as u64 + k * options.connections as u64;
                if kind_of(seq) && t.contains(seq) {
                    delivered += 1;
                }
            }
        }
        Delivered {
            expected,
            delivered,
            lost: expected.saturating_sub(delivered),
            duplicates: t.duplicates,
            unmatched: t.unmatched,
            latency: Latency::of(t),
        }
    };
    let docs = d
        .documents
        .lock()
        .map(|t| summarize(&t, total, &|_| true))
        .ok();
    let points = d
        .points
        .lock()
        .map(|t| {
            summarize(&t, expected_points, &|s| {
                shape.kind(s) == message::Kind::Status
            })
        })
        .ok();
    let (lost, expected, delivered) = match options.expect {
        Expect::Documents => docs
            .as_ref()
            .map_or((0, 0, 0), |x| (x.lost, x.expected, x.delivered)),
        Expect::Points => points
            .as_ref()
            .map_or((0, 0, 0), |x| (x.lost, x.expected, x.delivered)),
        Expect::Both => {
            let a = docs
                .as_ref()
                .map_or((0, 0, 0), |x| (x.lost, x.expected, x.delivered));
            let b = points
                .as_ref()
                .map_or((0, 0, 0), |x| (x.lost, x.expected, x.delivered));
            (a.0 + b.0, a.1 + b.1, a.2)
        }
    };
    report.loss_ratio = Some(if expected == 0 {
        0.0
    } else {
        lost as f64 / expected as f64
    });
    report.delivered_rate = Some(delivered as f64 / delivered_seconds.max(1e-9));
    report.documents = docs;
    report.points = points;
}

async fn progress(sent: Arc<Sent>, deliveries: Option<Arc<Deliveries>>, done: Arc<AtomicBool>) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_sent, mut last_delivered) = (0u64, 0u64);
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        let s = sent.messages.load(Ordering::Relaxed);
        let delivered = deliveries.as_ref().map(|d| d.counts());
        let mut line = format!(
            "t={:>4.0}s sent={s} ({}/s)",
            start.elapsed().as_secs_f64(),
            s - last_sent
        );
        if let Some((docs, points)) = delivered {
            let seen = docs.max(points);
            line.push_str(&format!(
                " delivered docs={docs} points={points} ({}/s) in_flight={}",
                seen.saturating_sub(last_delivered),
                s.saturating_sub(docs)
            ));
            last_delivered = seen;
        }
        eprintln!("{line}");
        last_sent = s;
    }
}

impl Report {
    /// The human table.
    pub(crate) fn table(&self) -> String {
        let mut out = String::new();
        let mut row = |k: &str, v: String| out.push_str(&format!("{k:<22} {v}\n"));
        row("target", self.target.clone());
        row(
            "format / framing",
            format!("{:?} / {:?}", self.format, self.framing).to_lowercase(),
        );
        row("connections", self.connections.to_string());
        row(
            "rate",
            self.rate.map_or("as fast as possible".to_owned(), |r| {
                format!("{r:.0} msg/s")
            }),
        );
        row(
            "sent",
            format!(
                "{} messages, {} frames, {:.1} MB in {:.2} s = {:.0} msg/s{}",
                self.sent,
                self.frames,
                self.bytes as f64 / 1e6,
                self.send_seconds,
                self.send_rate,
                if self.send_errors > 0 {
                    format!(", {} send errors", self.send_errors)
                } else {
                    String::new()
                }
            ),
        );
        for (name, d) in [("documents", &self.documents), ("points", &self.points)] {
            if let Some(d) = d {
                row(
                    name,
                    format!(
                        "{} of {} delivered, {} lost, {} duplicates, {} unmatched",
                        d.delivered, d.expected, d.lost, d.duplicates, d.unmatched
                    ),
                );
                let l = &d.latency;
                if l.count > 0 {
                    row(
                        &format!("{name} latency"),
                        format!(
                            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
                            l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
                        ),
                    );
                }
            }
        }
        if let Some(r) = self.delivered_rate {
            row("delivered rate", format!("{r:.0} msg/s end to end"));
        }
        if let Some(l) = self.loss_ratio {
            row("loss", format!("{:.4} %", l * 100.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            Target::parse("udp://127.0.0.1:5514").unwrap(),
            Target::Udp("127.0.0.1:5514".into())
        );
        assert_eq!(
            Target::parse("tls://[::1]:6514").unwrap(),
            Target::Tls("[::1]:6514".into())
        );
        for bad in ["127.0.0.1:5514", "http://x:1", "tcp://", "tcp://host"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rate_plan_spaces_messages_evenly() {
        let start = Instant::now();
        let plan = Plan {
            index: 0,
            connections: 1,
            end: Some(10),
            rate: Some(1000.0),
            deadline: None,
            start,
            start_wall_nanos: 1_000_000_000,
        };
        let (due, wall) = plan.due(5, 1000.0);
        assert_eq!(due - start, Duration::from_millis(5));
        assert_eq!(wall, 1_005_000_000);
    }
}

//! `[[listeners]]`: runtime settings and their validation.

use super::*;

/// Who sends to a listener, which decides how a BSD frame's first word is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// Anything: `TAG:` / `TAG[PID]:` after the header is the app name; a
    /// log4j 1.2 `facility:` prefix (the PRI's own facility name) is
    /// recognised and never taken for a TAG.
    #[default]
    Generic,
    /// log4j 1.2 / log4j2 SyslogAppenders: BSD frames carry no TAG, so the
    /// first word of the text is always message.
    Log4j,
}

/// Whether a listener takes frames that need a lenient rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeMode {
    /// Read what real senders send (the rules of [`LenientRule`]), and say
    /// which rule each frame needed.
    #[default]
    Lenient,
    /// Reject (drop and count) a frame that needed any lenient rule.
    Strict,
}

/// What the decoder needs besides the frame.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Zone for timestamps written without an offset.
    pub timezone: Tz,
    pub sender: Sender,
    /// Remove log4j 1.2's `facilityPrinting` prefix (`local7:`) from the message.
    pub strip_facility_prefix: bool,
    /// log4j2 `newLineEscape`: this sequence in MSG is turned back into `\n`.
    pub newline_escape: Option<Box<str>>,
    /// App name for frames that name none (log4j BSD frames never do).
    pub app_name: Option<Arc<str>>,
    /// `decode = "strict"`: the listener rejects frames that needed a
    /// lenient rule (the decoder still reads them, to say which).
    pub mode: DecodeMode,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            timezone: Tz::UTC,
            sender: Sender::Generic,
            strip_facility_prefix: false,
            newline_escape: None,
            app_name: None,
            mode: DecodeMode::Lenient,
        }
    }
}

/// How frames are delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Octet counting or LF, decided per frame (the TCP default).
    #[default]
    Auto,
    /// LF only: a leading digit never starts a count.
    Lf,
    /// Octet counting where a count is present, trusting a count even when
    /// the message after it does not start with `<`; LF otherwise.
    Octet,
    /// As `Auto`, and an RFC 5424 frame also ends where the next `<PRI>1 `
    /// header starts, for log4j2's TCP `newLine=false` (frames back to back,
    /// no delimiter). Trusts the sender's text: a message quoting a header
    /// is cut there, so it is an opt-in of listeners that serve log4j2, and
    /// it stops on a connection once that delivers a delimited frame. The
    /// first cut needs no LF before the next header in the bytes in hand,
    /// so a newline-terminated line that quotes a header stays whole.
    Log4j2Undelimited,
}

impl Framing {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Framing::Auto => "auto",
            Framing::Lf => "lf",
            Framing::Octet => "octet",
            Framing::Log4j2Undelimited => "log4j2_undelimited",
        }
    }
}

/// How long a pending event waits for its next continuation, by default.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_millis(50);
pub(crate) const DEFAULT_MAX_LINES: usize = 1_000;
pub(crate) const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// Senders (peers) with an event pending at once, per listener/connection.
pub(crate) const DEFAULT_MAX_PENDING: usize = 4_096;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultilineConfig {
    /// Longest gap between two frames of one event.
    pub window: Duration,
    /// Most lines (frames) joined into one event.
    pub max_lines: usize,
    /// Most bytes of message in one joined event.
    pub max_bytes: usize,
    pub max_pending: usize,
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            window: DEFAULT_WINDOW,
            max_lines: DEFAULT_MAX_LINES,
            max_bytes: DEFAULT_MAX_BYTES,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerProtocol {
    Udp,
    Tcp,
    /// TCP with TLS (RFC 5425); needs `[listeners.tls]`.
    Tls,
    /// A Kafka consumer: records are frames (raw envelopes from an edge
    /// sluice, or plain frames); `brokers`, `topics`, `group_id`.
    Kafka,
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub protocol: ListenerProtocol,
    pub listen: SocketAddr,
    pub max_connections: usize,
    pub idle_timeout: Duration,
    /// TCP/TLS: a frame must be complete this long after its first byte,
    /// or the connection is closed (slowloris).
    pub frame_timeout: Duration,
    /// TCP/TLS: connections one source address may hold; `None` = only
    /// `max_connections` bounds them.
    pub max_connections_per_peer: Option<usize>,
    /// TCP/TLS: connections the kernel completes and holds until they are
    /// accepted (`listen(2)` backlog; Linux caps it at `net.core.somaxconn`).
    pub listen_backlog: u32,
    pub max_frame_bytes: usize,
    pub framing: Framing,
    /// How frames are decoded: timezone, sender shape, log4j options.
    pub decode: DecodeOptions,
    /// Join multi-frame messages (log4j 1.2 stack traces); `None` = off.
    pub multiline: Option<MultilineConfig>,
    /// Certificates and handshake settings of a `tls` listener.
    pub tls: Option<ListenerTls>,
    /// UDP: `SO_RCVBUF` to ask for; `None` keeps the system default.
    pub receive_buffer_bytes: Option<usize>,
    /// UDP: sockets bound to the address with `SO_REUSEPORT`, each read by
    /// its own task (the kernel spreads senders over them by address).
    pub sockets: usize,
    /// Source networks allowed to send; `None`: everyone.
    pub allow: Option<Arc<AllowList>>,
    /// `protocol = "kafka"`: the consumer's settings (its `listen` is
    /// the unspecified address, port 0).
    pub kafka: Option<Arc<KafkaSource>>,
}

/// Source networks a listener accepts (`allow = ["10.0.0.0/8", "::1"]`).
#[derive(Debug, Clone)]
pub struct AllowList(pub(super) Vec<ipnet::IpNet>);

impl AllowList {
    /// Is `ip` inside one of the networks? IPv4-mapped IPv6 addresses
    /// (`::ffff:10.1.2.3`) are matched as IPv4.
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }
}

impl Validator<'_, '_> {
    /// Every `[[listeners]]`: names unique, one address and protocol each.
    pub(super) fn listeners(
        &self,
        raw: Vec<RawListener>,
        timezone: Tz,
    ) -> Result<Vec<ListenerConfig>, ConfigError> {
        let mut listeners = Vec::new();
        let mut names = HashSet::new();
        for (i, l) in raw.into_iter().enumerate() {
            let base = [key("listeners"), Seg::Index(i)];
            if !names.insert(l.name.clone()) {
                return Err(self.err(
                    &at(&base, "name"),
                    format!("duplicate listener name {:?}", l.name),
                ));
            }
            let listener = self.listener(&base, l, timezone, &listeners)?;
            listeners.push(listener);
        }
        if listeners.is_empty() {
            return Err(self.err(
                &[key("listeners")],
                "no [[listeners]]: nothing would be received",
            ));
        }
        Ok(listeners)
    }

    fn listener(
        &self,
        base: &[Seg],
        mut l: RawListener,
        timezone: Tz,
        listeners: &[ListenerConfig],
    ) -> Result<ListenerConfig, ConfigError> {
        let frame_keys = [
            ("max_connections", l.max_connections.is_some()),
            ("idle_timeout_secs", l.idle_timeout_secs.is_some()),
            ("frame_timeout_secs", l.frame_timeout_secs.is_some()),
            (
                "max_connections_per_peer",
                l.max_connections_per_peer.is_some(),
            ),
            ("listen_backlog", l.listen_backlog.is_some()),
            ("framing", l.framing.is_some()),
            ("tls", l.tls.is_some()),
            ("receive_buffer_bytes", l.receive_buffer_bytes.is_some()),
            ("sockets", l.sockets.is_some()),
            ("allow", l.allow.is_some()),
        ];
        let kafka = self.kafka_source(base, &mut l, &frame_keys)?;
        let (max_frame_bytes, max_connections, idle, frame_timeout) =
            self.listener_limits(base, &l)?;
        let sender = l.sender.unwrap_or_default();
        let decode = self.decode_options(base, &l, timezone)?;
        let multiline = self.multiline(base, &l, sender)?;
        let tls = match (l.protocol, l.tls.take()) {
            (ListenerProtocol::Tls, Some(t)) => Some(self.listener_tls(&at(base, "tls"), t)?),
            (ListenerProtocol::Tls, None) => {
                return Err(self.err(
                    &at(base, "protocol"),
                    "a tls listener needs [listeners.tls] with cert_file and key_file",
                ));
            }
            (_, Some(_)) => {
                return Err(self.err(
                    &at(base, "tls"),
                    "only a listener with protocol = \"tls\" takes [listeners.tls]",
                ));
            }
            (_, None) => None,
        };
        let (receive_buffer_bytes, sockets) = self.udp_sockets(base, &l)?;
        let allow = self.allow(base, l.allow.take())?;
        let listen = self.listen(base, &l, listeners)?;
        Ok(ListenerConfig {
            listen,
            decode,
            multiline,
            tls,
            receive_buffer_bytes,
            sockets,
            allow,
            kafka,
            name: l.name,
            protocol: l.protocol,
            max_connections,
            idle_timeout: Duration::from_secs(idle),
            frame_timeout: Duration::from_secs(frame_timeout),
            max_connections_per_peer: l.max_connections_per_peer,
            listen_backlog: l.listen_backlog.unwrap_or(DEFAULT_LISTEN_BACKLOG),
            max_frame_bytes,
            framing: l.framing.unwrap_or_default(),
        })
    }

    /// Frame size, connection and timeout bounds:
    /// `(max_frame_bytes, max_connections, idle_timeout_secs, frame_timeout_secs)`.
    fn listener_limits(
        &self,
        base: &[Seg],
        l: &RawListener,
    ) -> Result<(usize, usize, u64, u64), ConfigError> {
        let max_frame_bytes = l.max_frame_bytes.unwrap_or(DEFAULT_MAX_FRAME_BYTES);
        if max_frame_bytes == 0 || max_frame_bytes > MAX_FRAME_BYTES_LIMIT {
            return Err(self.err(
                &at(base, "max_frame_bytes"),
                format!("must be between 1 and {MAX_FRAME_BYTES_LIMIT}"),
            ));
        }
        let max_connections = l.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max_connections == 0 {
            return Err(self.err(&at(base, "max_connections"), "must be at least 1"));
        }
        let idle = l.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
        if idle == 0 {
            return Err(self.err(&at(base, "idle_timeout_secs"), "must be at least 1"));
        }
        for (set, key) in [
            (l.frame_timeout_secs.is_some(), "frame_timeout_secs"),
            (
                l.max_connections_per_peer.is_some(),
                "max_connections_per_peer",
            ),
            (l.listen_backlog.is_some(), "listen_backlog"),
        ] {
            if set && l.protocol == ListenerProtocol::Udp {
                return Err(self.err(&at(base, key), "only TCP and TLS listeners take it"));
            }
        }
        if l.listen_backlog == Some(0) {
            return Err(self.err(&at(base, "listen_backlog"), "must be at least 1"));
        }
        let frame_timeout = l.frame_timeout_secs.unwrap_or(DEFAULT_FRAME_TIMEOUT_SECS);
        if frame_timeout == 0 {
            return Err(self.err(&at(base, "frame_timeout_secs"), "must be at least 1"));
        }
        if let Some(per_peer) = l.max_connections_per_peer {
            if per_peer == 0 || per_peer > max_connections {
                return Err(self.err(
                    &at(base, "max_connections_per_peer"),
                    format!("must be between 1 and max_connections ({max_connections})"),
                ));
            }
        }
        Ok((max_frame_bytes, max_connections, idle, frame_timeout))
    }

    /// How the listener's frames are decoded.
    fn decode_options(
        &self,
        base: &[Seg],
        l: &RawListener,
        timezone: Tz,
    ) -> Result<DecodeOptions, ConfigError> {
        let sender = l.sender.unwrap_or_default();
        if l.newline_escape.as_deref() == Some("") {
            return Err(self.err(&at(base, "newline_escape"), "must not be empty"));
        }
        if l.app_name.as_deref() == Some("") {
            return Err(self.err(&at(base, "app_name"), "must not be empty"));
        }
        Ok(DecodeOptions {
            timezone: match &l.timezone {
                Some(tz) => self.timezone(&at(base, "timezone"), tz)?,
                None => timezone,
            },
            sender,
            strip_facility_prefix: l.strip_facility_prefix.unwrap_or(false),
            newline_escape: l.newline_escape.clone().map(String::into_boxed_str),
            app_name: l.app_name.as_ref().map(|a| Arc::from(a.as_str())),
            mode: l.decode.unwrap_or_default(),
        })
    }

    /// Multi-line joining: on by default for log4j senders.
    fn multiline(
        &self,
        base: &[Seg],
        l: &RawListener,
        sender: Sender,
    ) -> Result<Option<MultilineConfig>, ConfigError> {
        let multiline_keys = [
            ("multiline_window_ms", l.multiline_window_ms.is_some()),
            ("multiline_max_lines", l.multiline_max_lines.is_some()),
            ("multiline_max_bytes", l.multiline_max_bytes.is_some()),
        ];
        Ok(if l.multiline.unwrap_or(sender == Sender::Log4j) {
            let window = l
                .multiline_window_ms
                .map_or(DEFAULT_WINDOW, Duration::from_millis);
            if window.is_zero() || window > Duration::from_secs(10) {
                return Err(self.err(
                    &at(base, "multiline_window_ms"),
                    "must be between 1 and 10000",
                ));
            }
            let max_lines = l.multiline_max_lines.unwrap_or(DEFAULT_MAX_LINES);
            if max_lines == 0 || max_lines > 100_000 {
                return Err(self.err(
                    &at(base, "multiline_max_lines"),
                    "must be between 1 and 100000",
                ));
            }
            let max_bytes = l.multiline_max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
            if max_bytes == 0 || max_bytes > MAX_FRAME_BYTES_LIMIT {
                return Err(self.err(
                    &at(base, "multiline_max_bytes"),
                    format!("must be between 1 and {MAX_FRAME_BYTES_LIMIT}"),
                ));
            }
            Some(MultilineConfig {
                window,
                max_lines,
                max_bytes,
                max_pending: DEFAULT_MAX_PENDING,
            })
        } else {
            self.refuse_set(
                base,
                &multiline_keys,
                "multi-line joining is off for this listener: set multiline = true (it is on by default only for sender = \"log4j\")",
            )?;
            None
        })
    }

    /// UDP only: `(receive_buffer_bytes, sockets)`.
    fn udp_sockets(
        &self,
        base: &[Seg],
        l: &RawListener,
    ) -> Result<(Option<usize>, usize), ConfigError> {
        let receive_buffer_bytes = match (l.protocol, l.receive_buffer_bytes) {
            (ListenerProtocol::Udp, Some(b)) if !(1024..=1 << 30).contains(&b) => {
                return Err(self.err(
                    &at(base, "receive_buffer_bytes"),
                    "must be between 1024 and 1073741824",
                ));
            }
            (ListenerProtocol::Udp, b) => Some(b.unwrap_or(DEFAULT_UDP_RECEIVE_BUFFER_BYTES)),
            (_, Some(_)) => {
                return Err(self.err(
                    &at(base, "receive_buffer_bytes"),
                    "only UDP listeners take receive_buffer_bytes",
                ));
            }
            (_, None) => None,
        };
        let sockets = match (l.protocol, l.sockets) {
            (ListenerProtocol::Udp, Some(n)) if !(1..=MAX_UDP_SOCKETS).contains(&n) => {
                return Err(self.err(
                    &at(base, "sockets"),
                    format!("must be between 1 and {MAX_UDP_SOCKETS}"),
                ));
            }
            (ListenerProtocol::Udp, n) => n.unwrap_or(1),
            (_, Some(_)) => {
                return Err(self.err(
                    &at(base, "sockets"),
                    "only UDP listeners take sockets (a TCP listener's connections are spread already)",
                ));
            }
            (_, None) => 1,
        };
        Ok((receive_buffer_bytes, sockets))
    }

    /// `allow`: the source networks; `None` allows everyone.
    fn allow(
        &self,
        base: &[Seg],
        allow: Option<Vec<String>>,
    ) -> Result<Option<Arc<AllowList>>, ConfigError> {
        Ok(match allow {
            None => None,
            Some(list) => {
                let mut nets = Vec::with_capacity(list.len());
                for (k, text) in list.iter().enumerate() {
                    let mut path = at(base, "allow");
                    path.push(Seg::Index(k));
                    let net = text
                        .parse::<ipnet::IpNet>()
                        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            self.err(
                                &path,
                                format!("{text:?} is not a network (\"10.0.0.0/8\", \"2001:db8::/32\") or an address"),
                            )
                        })?;
                    nets.push(net);
                }
                if nets.is_empty() {
                    return Err(self.err(
                        &at(base, "allow"),
                        "an empty allow list would refuse every sender: remove the key to allow all",
                    ));
                }
                Some(Arc::new(AllowList(nets)))
            }
        })
    }

    /// The address, unless another listener holds it already.
    fn listen(
        &self,
        base: &[Seg],
        l: &RawListener,
        listeners: &[ListenerConfig],
    ) -> Result<SocketAddr, ConfigError> {
        let Some(text) = &l.listen else {
            // A kafka listener (checked by `kafka_source`): no socket.
            return Ok(SocketAddr::from(([0, 0, 0, 0], 0)));
        };
        let listen = self.addr(&at(base, "listen"), text)?;
        // Two sockets cannot bind one address and transport (TLS is
        // TCP); `run` would fail, so `check` refuses it too.
        let transport = |p: ListenerProtocol| p == ListenerProtocol::Udp;
        if let Some(other) = listeners.iter().find(|o: &&ListenerConfig| {
            listen.port() != 0
                && o.listen.port() == listen.port()
                && transport(o.protocol) == transport(l.protocol)
                && (o.listen.ip() == listen.ip()
                    || o.listen.ip().is_unspecified()
                    || listen.ip().is_unspecified())
        }) {
            return Err(self.err(
                &at(base, "listen"),
                format!(
                    "listener {:?} already listens on {} ({}): one address and protocol per listener",
                    other.name,
                    other.listen,
                    if transport(l.protocol) { "udp" } else { "tcp" }
                ),
            ));
        }
        Ok(listen)
    }
}

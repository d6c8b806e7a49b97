//! `sluice parse`: decode stdin and print one canonical JSON object per
//! message; with a config, also what every route makes of it — the pattern
//! debugger. Frames take the listeners' own path ([`crate::ingest::FramePath`]).

use std::io::{BufWriter, Read, Write};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::config::Config;
use crate::decode::DecodeOptions;
use crate::event::Event;
use crate::framing::{FrameItem, Framing, SyslogFramer};
use crate::ingest::{Fate, FramePath};
use crate::multiline::MultilineConfig;
use crate::output::{ConversionError, encode};
use crate::router::{Miss, Router, RouterError};
use crate::text::write_json_str;

/// How stdin is cut into messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ParseFraming {
    /// All of stdin is one message, taken as a UDP listener takes a
    /// datagram: its bytes exactly, a trailing LF included (`echo` adds
    /// one; it counts towards `max_frame_bytes`).
    Datagram,
    /// One message per line.
    Lf,
    /// RFC 6587 octet counting (`LEN SP MSG`), LF where there is no count.
    Octet,
    /// Per message, as a TCP listener does: octet counting or LF.
    Auto,
    /// As `auto`, and an RFC 5424 message also ends where the next
    /// `<PRI>1 ` header starts until a delimited one is seen (log4j2 TCP
    /// `newLine=false`; a listener's `framing = "log4j2_undelimited"`).
    #[value(name = "log4j2_undelimited")]
    Log4j2Undelimited,
}

impl From<Framing> for ParseFraming {
    /// As a TCP or TLS listener with this `framing` cuts its streams.
    fn from(framing: Framing) -> ParseFraming {
        match framing {
            Framing::Auto => ParseFraming::Auto,
            Framing::Lf => ParseFraming::Lf,
            Framing::Octet => ParseFraming::Octet,
            Framing::Log4j2Undelimited => ParseFraming::Log4j2Undelimited,
        }
    }
}

/// Cut `input` into frames.
pub(super) fn frames(
    input: &[u8],
    framing: ParseFraming,
    max_frame_bytes: usize,
) -> Vec<FrameItem> {
    let framing = match framing {
        ParseFraming::Datagram => {
            return vec![
                crate::listener::as_datagram(input, max_frame_bytes)
                    .map_or(FrameItem::Oversized, FrameItem::Frame),
            ];
        }
        ParseFraming::Lf => Framing::Lf,
        ParseFraming::Octet => Framing::Octet,
        ParseFraming::Auto => Framing::Auto,
        ParseFraming::Log4j2Undelimited => Framing::Log4j2Undelimited,
    };
    let mut framer = SyslogFramer::new(max_frame_bytes, framing);
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Ok(Some(item)) = framer.decode(&mut buf) {
        out.push(item);
    }
    while let Ok(Some(item)) = framer.decode_eof(&mut buf) {
        out.push(item);
    }
    out
}

/// Render one event as the debugger's JSON line.
pub(super) fn report(event: &Event, config: Option<(&Config, &Router)>) -> String {
    let mut out = String::with_capacity(512);
    out.push('{');
    event.write_canonical_fields(&mut out);
    if let Some((config, router)) = config {
        let mut matches = Vec::new();
        let mut misses: Vec<(usize, Miss)> = Vec::new();
        router.evaluate(event, &mut matches, |r, m| misses.push((r, m)));
        out.push_str(",\"routes\":[");
        for (i, route) in config.routes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"route\":");
            write_json_str(&mut out, &route.name);
            if let Some(m) = matches.iter().find(|m| m.route == i) {
                out.push_str(",\"matched\":true");
                let names = router.capture_names(i);
                out.push_str(",\"captures\":{");
                if let Some(c) = &m.captures {
                    let mut first = true;
                    for (idx, name) in names {
                        if let Some(v) = c.get(*idx) {
                            if !first {
                                out.push(',');
                            }
                            first = false;
                            write_json_str(&mut out, name);
                            out.push(':');
                            write_json_str(&mut out, v);
                        }
                    }
                }
                out.push('}');
                let mut errors: Vec<ConversionError> = Vec::new();
                let record = encode(
                    String::new(),
                    &route.output,
                    &route.name,
                    names,
                    event,
                    m.captures.as_ref(),
                    &mut errors,
                );
                if !errors.is_empty() {
                    out.push_str(",\"conversion_errors\":[");
                    for (k, e) in errors.iter().enumerate() {
                        if k > 0 {
                            out.push(',');
                        }
                        write_json_str(&mut out, &e.to_string());
                    }
                    out.push(']');
                }
                let sink = config.sinks.get(route.sink).map_or("", |s| s.name.as_str());
                out.push_str(",\"sink\":");
                write_json_str(&mut out, sink);
                match (&route.output, record) {
                    (crate::config::OutputConfig::Metric(_), Some(r)) => {
                        out.push_str(",\"line\":");
                        write_json_str(&mut out, &r.payload);
                    }
                    (crate::config::OutputConfig::Document(_), Some(r)) => {
                        out.push_str(",\"document\":");
                        out.push_str(&r.payload);
                    }
                    // The frame itself: what `sluice parse` read.
                    (crate::config::OutputConfig::Raw, Some(_)) => {
                        out.push_str(",\"output\":\"raw\"");
                    }
                    (_, None) => out.push_str(",\"output\":null"),
                }
            } else {
                out.push_str(",\"matched\":false");
                if let Some((_, miss)) = misses.iter().find(|(r, _)| *r == i) {
                    out.push_str(",\"failed\":");
                    write_json_str(&mut out, miss.as_str());
                }
            }
            out.push('}');
        }
        out.push(']');
    }
    out.push('}');
    out
}

/// How `sluice parse` reads its input.
#[derive(Debug, Clone)]
pub(super) struct ParseOptions {
    pub framing: ParseFraming,
    pub decode: DecodeOptions,
    /// Join multi-frame messages as a listener would (frames count as
    /// arriving together, within the window).
    pub multiline: Option<MultilineConfig>,
    /// Receive time for year inference, nanoseconds since the epoch.
    pub received_nanos: i64,
    /// Longer frames are skipped as oversized: the `--listener`'s limit;
    /// without one, the largest of the config's listeners (else the
    /// default).
    pub max_frame_bytes: Option<usize>,
}

/// Run `sluice parse` over `input`, writing to `out`.
pub(super) fn run(
    input: &mut dyn Read,
    out: &mut dyn Write,
    config: Option<&Config>,
    options: &ParseOptions,
) -> Result<(), ParseError> {
    let mut data = Vec::new();
    input.read_to_end(&mut data).map_err(ParseError::Io)?;
    let router = match config {
        Some(c) => Some(Router::new(&c.routes)?),
        None => None,
    };
    let opts = &options.decode;
    let max = options
        .max_frame_bytes
        .or_else(|| config.and_then(|c| c.listeners.iter().map(|l| l.max_frame_bytes).max()))
        .unwrap_or(crate::config::DEFAULT_MAX_FRAME_BYTES);
    let mut out = BufWriter::new(out);
    let received = options.received_nanos;
    // The listeners' own path: frames count as arriving together, within
    // the joiner's window.
    let mut path = FramePath::new(opts, options.multiline.clone());
    let mut events = Vec::new();
    let now = tokio::time::Instant::now();
    let emit = |events: &mut Vec<Event>, out: &mut BufWriter<&mut dyn Write>| {
        for event in events.drain(..) {
            writeln!(out, "{}", report(&event, config.zip(router.as_ref())))
                .map_err(ParseError::Io)?;
        }
        Ok::<(), ParseError>(())
    };
    for item in frames(&data, options.framing, max) {
        match item {
            FrameItem::Frame(f) => {
                if let Fate::Rejected(event) = path.frame(f, None, received, 0, now, &mut events) {
                    // What the listener would do: reject it, and say why.
                    let mut line = String::with_capacity(512);
                    line.push('{');
                    event.write_canonical_fields(&mut line);
                    line.push_str(",\"rejected\":\"strict\"}");
                    writeln!(out, "{line}").map_err(ParseError::Io)?;
                    continue;
                }
                emit(&mut events, &mut out)?;
            }
            FrameItem::Oversized => {
                writeln!(
                    out,
                    "{{\"skipped\":\"oversized\",\"max_frame_bytes\":{max}}}"
                )
                .map_err(ParseError::Io)?;
            }
            FrameItem::Truncated => {
                writeln!(out, "{{\"skipped\":\"truncated\"}}").map_err(ParseError::Io)?;
            }
        }
    }
    path.close(&mut events);
    emit(&mut events, &mut out)?;
    out.flush().map_err(ParseError::Io)
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ParseError {
    #[error("i/o: {0}")]
    Io(std::io::Error),
    #[error(transparent)]
    Router(#[from] RouterError),
}

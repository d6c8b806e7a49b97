//! The frames the blaster sends, shaped as real senders write them
//! (see `../shared/docs/wire-formats.md`), each carrying its sequence number
//! and its intended send time as `seq=N sent=NANOS` so that whatever
//! arrives at the sink endpoints can be matched back.
//!
//! Rendering appends to a reusable buffer: no allocation per message.

use chrono::{DateTime, Datelike, Timelike, Utc};

/// Wire shape of the generated messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Format {
    /// `<PRI>1 TIMESTAMP(µs) HOST APP PROCID - - MSG`
    Rfc5424,
    /// `<PRI>MMM dd HH:mm:ss HOST APP[PROCID]: MSG`
    Rfc3164,
    /// log4j 1.2 `SyslogAppender` with `header=true`: no TAG; a stack trace
    /// is one frame per line, each with the header, tabs as four spaces.
    Log4j1,
    /// log4j2 `Rfc5424Layout`: MDC as `[mdc@18060 ...]`.
    Log4j2,
}

/// How frames are delimited on a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Framing {
    /// Newline after each frame; newlines inside a message are sent as
    /// the two characters `\n` (log4j2 `newLineEscape`).
    Lf,
    /// RFC 6587 octet counting: `LEN SP FRAME`; newlines stay raw.
    Octet,
    /// UDP: one frame per datagram, newlines raw (not a CLI choice).
    #[value(skip)]
    Datagram,
}

/// What to generate.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    pub(crate) format: Format,
    /// Frames are padded to a size drawn uniformly from this range (bytes
    /// of the syslog frame, without framing).
    pub(crate) size: (usize, usize),
    /// Every Nth message is a status line (0: none).
    pub(crate) status_every: u64,
    /// Every Nth message is an error with a multi-line stack trace (0: none).
    pub(crate) stack_every: u64,
    pub(crate) hosts: u64,
    pub(crate) apps: u64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            format: Format::Rfc5424,
            size: (256, 256),
            status_every: 4,
            stack_every: 0,
            hosts: 16,
            apps: 4,
        }
    }
}

/// The kind of one message, decided by its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Status,
    Stack,
    Event,
}

impl Shape {
    pub(crate) fn kind(&self, seq: u64) -> Kind {
        if self.status_every > 0 && seq % self.status_every == 0 {
            Kind::Status
        } else if self.stack_every > 0 && seq % self.stack_every == 1 {
            Kind::Stack
        } else {
            Kind::Event
        }
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

const ROUTES: [&str; 4] = ["/api/v1/orders", "/api/v1/users", "/login", "/health"];

const STACK: [&str; 5] = [
    "java.lang.IllegalStateException: boom",
    "\tat com.example.Orders.place(Orders.java:42)",
    "\tat com.example.Api.handle(Api.java:17)",
    "Caused by: java.io.IOException: disk gone",
    "\t... 2 more",
];

/// Small, fast, deterministic random numbers (xorshift64*), for sizes.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// Renders messages into a caller's buffer.
pub(crate) struct Renderer {
    shape: Shape,
    framing: Framing,
    rng: Rng,
    /// The frame being built (before framing is applied).
    frame: Vec<u8>,
    /// The header, cached per second of the send time.
    stamp_second: i64,
    iso_stamp: String,
    bsd_stamp: String,
}

impl Renderer {
    pub(crate) fn new(shape: Shape, framing: Framing, seed: u64) -> Renderer {
        Renderer {
            shape,
            framing,
            rng: Rng::new(seed),
            frame: Vec::with_capacity(4096),
            stamp_second: i64::MIN,
            iso_stamp: String::new(),
            bsd_stamp: String::new(),
        }
    }

    /// Append message `seq`, intended at `sent_nanos` (Unix epoch), to
    /// `out`: framed for a stream, or (with [`Framing::Datagram`]) raw, each
    /// frame's end offset pushed to `ends`. Returns the number of frames
    /// written (a log4j 1.2 stack trace takes several).
    pub(crate) fn render(
        &mut self,
        seq: u64,
        sent_nanos: i64,
        out: &mut Vec<u8>,
        ends: &mut Vec<usize>,
    ) -> usize {
        let kind = self.shape.kind(seq);
        let target = self.rng.between(self.shape.size.0, self.shape.size.1);
        if self.shape.format == Format::Log4j1 && kind == Kind::Stack {
            // First the message, then one frame per stack line.
            self.build(seq, sent_nanos, Kind::Stack, target, true);
            let mut n = self.emit(out, ends);
            for line in STACK {
                self.header(seq, sent_nanos, 3);
                match line.strip_prefix('\t') {
                    Some(rest) => {
                        self.frame.extend_from_slice(b"    ");
                        self.frame.extend_from_slice(rest.as_bytes());
                    }
                    None => self.frame.extend_from_slice(line.as_bytes()),
                }
                n += self.emit(out, ends);
            }
            return n;
        }
        self.build(seq, sent_nanos, kind, target, false);
        self.emit(out, ends)
    }

    /// Apply framing to `self.frame` and append it to `out`.
    fn emit(&mut self, out: &mut Vec<u8>, ends: &mut Vec<usize>) -> usize {
        match self.framing {
            Framing::Datagram => {
                out.extend_from_slice(&self.frame);
                ends.push(out.len());
            }
            Framing::Octet => {
                push_u64(out, self.frame.len() as u64);
                out.push(b' ');
                out.extend_from_slice(&self.frame);
            }
            Framing::Lf => {
                let mut rest = &self.frame[..];
                while let Some(at) = memchr::memchr(b'\n', rest) {
                    out.extend_from_slice(&rest[..at]);
                    out.extend_from_slice(b"\\n");
                    rest = &rest[at + 1..];
                }
                out.extend_from_slice(rest);
                out.push(b'\n');
            }
        }
        self.frame.clear();
        1
    }

    /// Refresh the cached per-second part of the timestamps.
    fn stamp(&mut self, sent_nanos: i64) {
        let second = sent_nanos.div_euclid(1_000_000_000);
        if second == self.stamp_second {
            return;
        }
        let t = DateTime::<Utc>::from_timestamp_nanos(sent_nanos);
        self.iso_stamp = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        self.bsd_stamp = format!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[t.month0() as usize],
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        self.stamp_second = second;
    }

    fn header(&mut self, seq: u64, sent_nanos: i64, severity: u8) {
        let pri = 16 * 8 + severity as u64; // local0
        let host = seq % self.shape.hosts.max(1);
        let app = seq % self.shape.apps.max(1);
        self.stamp(sent_nanos);
        let f = &mut self.frame;
        f.push(b'<');
        push_u64(f, pri);
        f.push(b'>');
        match self.shape.format {
            Format::Rfc5424 | Format::Log4j2 => {
                f.extend_from_slice(b"1 ");
                f.extend_from_slice(self.iso_stamp.as_bytes());
                let micros = sent_nanos.rem_euclid(1_000_000_000) as u64 / 1_000;
                push_padded(f, micros, 6);
                f.extend_from_slice(b"Z host");
                push_padded(f, host, 2);
                f.extend_from_slice(b" app");
                push_u64(f, app);
                f.push(b' ');
                push_u64(f, 1000 + app);
                if self.shape.format == Format::Log4j2 {
                    f.extend_from_slice(b" - [mdc@18060 requestId=\"r-");
                    push_u64(f, seq);
                    f.extend_from_slice(b"\"] ");
                } else {
                    f.extend_from_slice(b" - - ");
                }
            }
            Format::Rfc3164 | Format::Log4j1 => {
                f.extend_from_slice(self.bsd_stamp.as_bytes());
                f.extend_from_slice(b" host");
                push_padded(f, host, 2);
                f.push(b' ');
                if self.shape.format == Format::Rfc3164 {
                    f.extend_from_slice(b"app");
                    push_u64(f, app);
                    f.push(b'[');
                    push_u64(f, 1000 + app);
                    f.extend_from_slice(b"]: ");
                }
            }
        }
    }

    fn build(&mut self, seq: u64, sent_nanos: i64, kind: Kind, target: usize, log4j1: bool) {
        let severity = match kind {
            Kind::Stack => 3,
            _ => 6,
        };
        self.header(seq, sent_nanos, severity);
        let f = &mut self.frame;
        match kind {
            Kind::Status => {
                let route = ROUTES[(seq / 4 % ROUTES.len() as u64) as usize];
                let code = if seq % 50 == 0 { 503 } else { 200 };
                f.extend_from_slice(b"status route=");
                f.extend_from_slice(route.as_bytes());
                f.extend_from_slice(b" code=");
                push_u64(f, code);
                f.extend_from_slice(b" latency_ms=");
                push_u64(f, seq % 97);
                f.push(b'.');
                push_u64(f, seq % 10);
                f.extend_from_slice(b" bytes=");
                push_u64(f, 200 + seq % 800);
            }
            Kind::Event | Kind::Stack => {
                f.extend_from_slice(if kind == Kind::Stack {
                    b"ERROR [worker-"
                } else {
                    b"INFO  [worker-"
                });
                push_u64(f, seq % 8);
                f.extend_from_slice(b"] com.example.Orders - order processed id=");
                push_u64(f, seq);
            }
        }
        f.extend_from_slice(b" seq=");
        push_u64(f, seq);
        f.extend_from_slice(b" sent=");
        push_u64(f, sent_nanos.max(0) as u64);
        // Pad to the target size with a filler word.
        if f.len() + 1 < target {
            f.push(b' ');
            f.resize(target, b'x');
        }
        if kind == Kind::Stack && !log4j1 {
            for line in STACK {
                f.push(b'\n');
                f.extend_from_slice(line.as_bytes());
            }
        }
    }
}

/// Append `n` in decimal.
fn push_u64(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Append `n` in decimal, zero-padded to `width` digits.
fn push_padded(out: &mut Vec<u8>, n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    let mut n = n;
    while n > 0 || digits.len() - i < width {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if i == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Find `key` (e.g. `b"seq="`) followed by digits in `text`; the number.
pub(crate) fn number_after(text: &[u8], key: &memchr::memmem::Finder<'_>) -> Option<u64> {
    let at = key.find(text)? + key.needle().len();
    let digits = text[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    std::str::from_utf8(&text[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(format: Format, framing: Framing, seq: u64, shape: Shape) -> String {
        let mut r = Renderer::new(Shape { format, ..shape }, framing, 7);
        let mut out = Vec::new();
        r.render(seq, 1_795_860_000_123_456_789, &mut out, &mut Vec::new());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rfc5424_status_line_has_its_size_seq_and_send_time() {
        let s = render(Format::Rfc5424, Framing::Lf, 8, Shape::default());
        assert!(
            s.starts_with("<134>1 2026-11-28T10:00:00.123456Z host08 app0 1000 - - status route=/login code=200 latency_ms=8.8 bytes=208 seq=8 sent=1795860000123456789 x"),
            "{s}"
        );
        assert_eq!(s.len(), 257, "256 bytes and the LF");
        assert!(s.ends_with("xx\n"));
    }

    #[test]
    fn octet_framing_counts_the_bytes_and_keeps_newlines() {
        let shape = Shape {
            stack_every: 2,
            status_every: 0,
            ..Shape::default()
        };
        let s = render(Format::Rfc5424, Framing::Octet, 3, shape.clone());
        let (len, frame) = s.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), frame.len());
        assert!(frame.contains("\nCaused by: java.io.IOException: disk gone\n"));
        let lf = render(Format::Rfc5424, Framing::Lf, 3, shape);
        assert_eq!(lf.matches('\n').count(), 1, "escaped: {lf}");
        assert!(lf.contains("\\nCaused by: "));
    }

    #[test]
    fn log4j_shapes() {
        let shape = Shape {
            stack_every: 2,
            ..Shape::default()
        };
        let s = render(Format::Log4j1, Framing::Lf, 3, shape.clone());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 6, "{s}");
        assert!(lines[0].starts_with("<131>Nov 28 10:00:00 host03 ERROR [worker-3]"));
        assert_eq!(
            lines[2],
            "<131>Nov 28 10:00:00 host03     at com.example.Orders.place(Orders.java:42)"
        );
        let s = render(Format::Log4j2, Framing::Lf, 6, shape.clone());
        assert!(
            s.contains(" app2 1002 - [mdc@18060 requestId=\"r-6\"] INFO  "),
            "{s}"
        );
        let s = render(Format::Rfc3164, Framing::Lf, 6, shape);
        assert!(
            s.starts_with("<134>Nov 28 10:00:00 host06 app2[1002]: INFO "),
            "{s}"
        );
    }

    #[test]
    fn integers_are_written_plain_and_padded() {
        let mut out = Vec::new();
        push_u64(&mut out, 0);
        out.push(b' ');
        push_u64(&mut out, u64::MAX);
        out.push(b' ');
        push_padded(&mut out, 42, 6);
        out.push(b' ');
        push_padded(&mut out, 1234567, 2);
        out.push(b' ');
        push_padded(&mut out, 0, 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 18446744073709551615 000042 1234567 00"
        );
    }

    #[test]
    fn numbers_are_found_after_their_key() {
        let (seq, sent) = (
            memchr::memmem::Finder::new(b"seq="),
            memchr::memmem::Finder::new(b"sent="),
        );
        assert_eq!(number_after(b"x seq=42 sent=7", &seq), Some(42));
        assert_eq!(number_after(b"x,seq=42i,sent=7i", &sent), Some(7));
        assert_eq!(number_after(b"seq=", &seq), None);
        assert_eq!(number_after(b"nothing", &seq), None);
    }
}

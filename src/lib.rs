//! Sluice: a syslog network receiver. Log lines arrive over UDP and TCP,
//! are decoded, routed by pattern, and leave as InfluxDB points and JSON
//! documents through bounded per-route queues.
//!
//! # Layout
//!
//! One module per stage of the data flow, in order:
//!
//! - [`listener`] — sockets → frames: `udp` (batched receive, kernel drop
//!   counts), `tcp` (bounded connections, idle and frame timeouts, graceful
//!   drain; one tracing span per connection) and `tls` (the bounded
//!   handshake; certificates are loaded by [`tls`]).
//! - [`ingest`] — the one frame → decode → join path (`FramePath`), shared
//!   by the listeners' readers, `sluice parse` and the fuzz harness; the
//!   readers add route → encode → push into the queues.
//! - [`framing`] — the RFC 6587 framer: octet counting or LF, per frame,
//!   bounded by `max_frame_bytes`; `framing/headers.rs` splits log4j2's
//!   undelimited streams at each header.
//! - [`decode`] — frame → [`event::Event`]: RFC 5424 / RFC 3164 and the
//!   log4j variants, lenient (`decode/rfc5424.rs`, `rfc3164.rs`, `time.rs`:
//!   timestamps, year inference, zones).
//! - [`multiline`] — joins what log4j split over several frames (stack
//!   traces, long messages) back into one event.
//! - [`router`] — event → matching routes (one `RegexSet` pass); route
//!   patterns may use grok ([`grok`]).
//! - [`route`] — route output: a line-protocol point or a JSON document.
//! - [`queue`] — one bounded queue per route (`block`, `drop_newest`,
//!   `drop_oldest`, `spill`), its on-disk spill log ([`queue::spill`]) and
//!   the delivery worker ([`queue::deliver`]) that drains it into a sink.
//! - [`sinks`] — batch writers: file, stdout, InfluxDB, Elasticsearch; the
//!   shared HTTP transport and retry policy. Sinks never import the queue:
//!   the worker drives them through [`sinks::Deliver`].
//!
//! Around them: [`config`] (strict TOML, errors with file:line:key; one
//! file per section; it holds the settings the stages run with — decode
//! options, framing, multi-line, TLS certificates loaded, route patterns
//! compiled — and imports no stage), [`grok`] (the pattern library),
//! [`telemetry`] (Prometheus counters, admin `/metrics` and `/health`),
//! [`event`] (the decoded message) and [`text`] (JSON / digit / RFC 3339
//! writers: every unsafe byte write), [`service`] (`sluice run`: wiring and
//! graceful shutdown) and [`cli`] (the subcommands, `cli/parse.rs` is
//! `sluice parse`; `main.rs` only sets up the allocator and calls
//! [`cli::main`]). The load tool `syslog-blaster` is a binary of its own
//! (`src/bin/syslog-blaster/`), not part of the library.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod config;
pub mod decode;
pub mod event;
pub mod framing;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod grok;
pub mod ingest;
pub mod listener;
pub mod multiline;
#[warn(unreachable_pub)]
pub(crate) mod queue;
pub mod route;
pub mod router;
pub mod sequence_pattern;
pub mod service;
#[warn(unreachable_pub)]
pub(crate) mod sinks;
pub mod telemetry;
pub mod text;
pub mod tls;

/// What the benches, the integration tests and the binary use of the
/// crate's internals (rooms are `pub(crate)`); not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::queue::spill::verify::{VerifyReport, verify};
    pub use crate::queue::spill::{Fsync, SpillLog, SpillOptions};
    pub use crate::sinks::elasticsearch::bulk::{
        Item, bulk_body, chunks, document_hash, document_id, index_name,
    };
}

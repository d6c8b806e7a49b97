//! Sluice: a syslog network receiver. Log lines arrive over UDP, TCP and
//! TLS, are decoded, routed by pattern, and leave as InfluxDB points and JSON
//! documents through bounded per-route queues.
//!
//! # Layout
//!
//! One room per stage of the data flow, in order; a stage imports only the
//! stages after it (`.ci/structure.py` checks this in CI):
//!
//! - `listener` — sockets → frames: `udp` (batched receive paced while
//!   traffic flows, kernel drop counts; a datagram is one frame, also for
//!   `sluice parse`), `tcp`
//!   (bounded connections, `listen_backlog`, readers that hand on in
//!   turns — a plain connection waits for bytes without a buffer and
//!   reads a full chunk under its turn; TLS reads a share that shrinks as
//!   connections grow — idle and
//!   frame timeouts, graceful drain; one tracing span per connection),
//!   `tls` (the bounded handshake) and `kafka` (a consumer-group member:
//!   raw envelopes decoded as the edge received them, headers read by
//!   whole name through librdkafka's C API so no record can panic it,
//!   offsets committed only for records whose `record::Ack` every route
//!   released; backpressure pauses partitions: at `max_in_flight`, or all
//!   of them once the pipeline has taken nothing for a second; offsets
//!   that go back are a reset, read on and counted; paused partitions'
//!   lag asked of the broker).
//! - `ingest` — the one frame → decode → join path (`FramePath`), shared
//!   by the listeners' readers, `sluice parse` and the fuzz harness; the
//!   readers add route → encode → push into the queues.
//! - `framing` — the RFC 6587 framer: octet counting or LF, per frame,
//!   bounded by `max_frame_bytes`; `framing/headers.rs` splits log4j2's
//!   undelimited streams at each header.
//! - `decode` — frame → `event::Event`: RFC 5424 / RFC 3164 and the
//!   log4j variants, lenient (`decode/rfc5424.rs`, `rfc3164.rs`, `time.rs`:
//!   timestamps, year inference, zones; `sd_ids.rs`: repeated SD-IDs in
//!   linear time; every lenient reading names an `event::LenientRule`).
//!   Tests of #22's readings: `lenient_tests.rs`, `lenient_findings_tests.rs`,
//!   `rfc3164_tests.rs`, `time_tests.rs`.
//! - `multiline` — joins what log4j split over several frames (stack
//!   traces, long messages) back into one event, per peer and join
//!   stream (a Kafka record's topic and partition).
//! - `router` — event → matching routes (a literal prefilter, then the
//!   candidates' regexes or their faster sequence form).
//! - `output` — a matched event → a `record::Record`: a line-protocol
//!   point, or a JSON document (canonical, ECS or Flume's shape); for a
//!   route to a Kafka sink also the topic, key and, for the `raw`
//!   payload, the frame with its envelope (`output::kafka`).
//! - `queue` — one bounded queue per route (`block`, `drop_newest`,
//!   `drop_oldest`, `spill`), its on-disk spill log (`queue::spill`, under
//!   the data dir's `spill` folder, which `run` creates at start) and the
//!   delivery worker (`queue::deliver`) that drains it into a sink.
//! - `sinks` — batch writers: file, stdout, InfluxDB, Elasticsearch,
//!   Kafka (`sinks::kafka`: librdkafka, a batch done when every delivery
//!   report is in; idle, its broker statistics feed `/health`); the
//!   shared HTTP transport and node failover (`sinks::http`), typed
//!   errors (`sinks::error`: retryable, permanent, or held until an
//!   operator acts) and `Retry-After` / status reading (`sinks::retry`;
//!   the `RetryPolicy` is config's, built once per sink). Sinks
//!   never import the queue: the worker drives them through
//!   `sinks::Deliver`.
//!
//! Foundations every stage may import (they import no stage): `config`
//! (strict TOML, errors with file:line:key; one file per section; it holds
//! the settings the stages run with — decode options, framing, multi-line,
//! TLS certificates loaded, route patterns compiled, each sink's
//! `RetryPolicy` with its defaults (`config/retry.rs`), and the librdkafka
//! security settings both Kafka clients set), `grok` (the pattern
//! library), `telemetry` (the Prometheus registry, metric families and the
//! labels stages count by, and the `/health` state sinks and listeners
//! set), `log_limit` (rate-limited log lines), `record`
//! (the encoded output a queue holds and a sink writes), `event` (the
//! decoded message; spans of its frame, structured data in one list) and
//! `text` (JSON / digit / RFC 3339 writers: every unsafe byte write).
//!
//! Around them, the orchestrators: `service` (`sluice run`: wiring and
//! graceful shutdown), `reload` (reload requests and how a burst is
//! coalesced), `admin` (the admin HTTP server: `/metrics`, `/health`,
//! `POST /reload`), `cli` (the subcommands; `cli/parse.rs` is
//! `sluice parse`; `main.rs` only sets up the allocator and calls
//! `cli::main`), `fuzz_harness` (the fuzz target's body, in the library so
//! `cargo test` replays the inputs it once crashed on) and `testing`
//! (below). The load tool `syslog-blaster` is a binary of its own
//! (`src/bin/syslog-blaster/`), not part of the library.
//!
//! Every room is `pub(crate)`: the crate's only public items are
//! `cli::main` and the `#[doc(hidden)]` `testing` module, which re-exports
//! what the integration tests, benches and the fuzz target use. The
//! `[lints]` table in Cargo.toml enforces it (`unreachable_pub`) and asks a
//! `// SAFETY:` comment of every `unsafe` block.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub(crate) mod admin;
pub mod cli;
pub(crate) mod config;
pub(crate) mod decode;
pub(crate) mod event;
pub(crate) mod framing;
pub(crate) mod fuzz_harness;
pub(crate) mod grok;
pub(crate) mod ingest;
pub(crate) mod listener;
pub(crate) mod log_limit;
pub(crate) mod multiline;
pub(crate) mod output;
pub(crate) mod queue;
pub(crate) mod record;
pub(crate) mod reload;
pub(crate) mod router;
pub(crate) mod service;
pub(crate) mod sinks;
pub(crate) mod telemetry;
pub(crate) mod text;

/// What the benches, the integration tests and the fuzz target use of the
/// crate's internals (every room is `pub(crate)`); not an API.
#[doc(hidden)]
pub mod testing {
    // config
    pub use crate::config::line_protocol::line_protocol_measurement;
    pub use crate::config::{
        Config, DecodeMode, DecodeOptions, DocumentFormat, EMBEDDED_DEFAULT, FieldConfig,
        FieldType, Framing, MeasurementPart, MetricConfig, MultilineConfig, OnConversionError,
        OutputConfig, Precision, Sender, Source, TagConfig, UnsignedAs,
    };
    // decode, event, framing, multiline, text
    pub use crate::decode::decode;
    pub use crate::event::Event;
    pub use crate::framing::{FrameItem, SyslogFramer};
    pub use crate::multiline::Joiner;
    pub use crate::text::{Timestamp, write_rfc3339};
    // router, output, record
    pub use crate::output::{Captures, encode};
    pub use crate::record::{Payload, Record};
    pub use crate::router::Router;
    // queue
    pub use crate::queue::spill::{Fsync, SpillLog, SpillOptions};
    // sinks
    pub use crate::sinks::elasticsearch::bulk::{
        Item, bulk_body, chunks, document_hash, document_id, index_name,
    };
    // the fuzz target (fuzz/) and its regression replay
    pub use crate::fuzz_harness::frame_decode_join;
}

//! Sluice: a syslog network receiver. Log lines arrive over UDP and TCP,
//! are decoded, routed by pattern, and leave as InfluxDB points and JSON
//! documents through bounded per-route queues.
//!
//! # Layout
//!
//! One module per stage of the data flow, in order:
//!
//! - [`listener`] — sockets → frames: UDP datagrams, TCP connections
//!   (bounded connections, idle timeout, graceful drain).
//! - [`framing`] — the RFC 6587 framer: octet counting or LF, per frame,
//!   bounded by `max_frame_bytes`.
//! - [`decode`] — frame → [`event::Event`]: RFC 5424 / RFC 3164 and the
//!   log4j variants, lenient (`decode/rfc5424.rs`, `rfc3164.rs`, `time.rs`:
//!   timestamps, year inference, zones).
//! - [`multiline`] — joins what log4j split over several frames (stack
//!   traces, long messages) back into one event.
//! - `router` — event → matching routes (a literal prefilter, then the
//!   candidates' regexes or their faster sequence form); route patterns may
//!   use grok ([`grok`]).
//! - `output` — a matched event → a `record::Record`: a line-protocol
//!   point, or a JSON document (canonical, ECS or Flume's shape).
//! - [`queue`] — one bounded queue per route (`block`, `drop_newest`,
//!   `drop_oldest`, `spill`), its on-disk spill log ([`queue::spill`]) and
//!   the delivery worker ([`queue::deliver`]) that drains it into a sink.
//! - [`sinks`] — batch writers: file, stdout, InfluxDB, Elasticsearch; the
//!   shared HTTP transport and retry policy. Sinks never import the queue:
//!   the worker drives them through [`sinks::Deliver`].
//!
//! Foundations every stage may import (they import no stage):
//! [`config`] (strict TOML, errors with file:line:key; one file per
//! section; it holds the settings the stages run with — decode options,
//! framing, multi-line, TLS certificates loaded, route patterns compiled),
//! [`grok`] (the pattern library), `telemetry` (the Prometheus registry,
//! metric families and the labels stages count by), `log_limit`
//! (rate-limited log lines), `record` (the encoded output a queue holds and
//! a sink writes), [`event`].
//!
//! Around them: [`pipeline`] (one frame through decode → route → encode →
//! queue), `service` (`sluice run`: wiring and graceful shutdown),
//! `reload` (reload requests and how a burst is coalesced), `admin`
//! (the admin HTTP server: `/metrics`, `/health`, `POST /reload`),
//! [`debugger`] (`sluice parse`) and [`cli`] (the subcommands; `main.rs`
//! only sets up the allocator and calls [`cli::main`]).

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub(crate) mod admin;
pub mod blaster;
pub mod cli;
pub mod config;
pub mod debugger;
pub mod decode;
pub mod event;
pub mod framing;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod grok;
pub mod listener;
pub(crate) mod log_limit;
pub mod multiline;
pub(crate) mod output;
pub mod pipeline;
#[warn(unreachable_pub)]
pub(crate) mod queue;
pub(crate) mod record;
pub(crate) mod reload;
pub(crate) mod router;
pub(crate) mod service;
#[warn(unreachable_pub)]
pub(crate) mod sinks;
pub(crate) mod telemetry;
pub mod tls;
pub mod udp_receive;

/// What the benches, the integration tests and the binary use of the
/// crate's internals (rooms are `pub(crate)`); not an API.
#[doc(hidden)]
pub mod testing {
    pub use crate::config::line_protocol_measurement;
    pub use crate::output::{Captures, encode};
    pub use crate::queue::spill::verify::{VerifyReport, verify};
    pub use crate::queue::spill::{Fsync, SpillLog, SpillOptions};
    pub use crate::record::Record;
    pub use crate::reload::ReloadRequest;
    pub use crate::router::Router;
    pub use crate::service::run;
    pub use crate::sinks::elasticsearch::bulk::{
        Item, bulk_body, chunks, document_hash, document_id, index_name,
    };
}

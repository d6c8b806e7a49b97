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
//!   log4j variants, lenient.
//! - [`multiline`] — joins what log4j split over several frames (stack
//!   traces, long messages) back into one event.
//! - [`router`] — event → matching routes (one `RegexSet` pass); route
//!   patterns may use grok ([`grok`]).
//! - [`route`] — route output: a line-protocol point or a JSON document.
//! - [`queue`] — one bounded queue per route, `block` or `drop_newest`.
//! - [`sinks`] — batch writers: file, stdout.
//!
//! Around them: [`config`] (strict TOML, errors with file:line:key),
//! [`telemetry`] (Prometheus counters, admin `/metrics` and `/health`),
//! [`pipeline`] (one frame through decode → route → encode → queue),
//! [`service`] (`sluice run`: wiring and graceful shutdown) and
//! [`debugger`] (`sluice parse`).

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
pub mod queue;
pub mod route;
pub mod router;
pub mod sequence_pattern;
pub mod service;
pub mod sinks;
pub mod spill;
pub mod telemetry;
pub mod text;
pub mod tls;

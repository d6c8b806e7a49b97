//! The TOML configuration: parsed strictly into raw structs, then validated
//! into runtime types. Every error names the file, the line and the key.
//!
//! `${NAME}` anywhere in the file is replaced by the environment variable
//! `NAME` before parsing (for secrets); an unset variable is an error.
//! `${NAME:-default}` uses `default` when `NAME` is unset or empty;
//! `${NAME:?message}` makes an unset or empty `NAME` an error that says
//! `message`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

use crate::grok::Library;

/// The unit tests' UDP listener on an ephemeral port, as TOML: a macro, so
/// that `concat!` builds their config constants on it.
#[cfg(test)]
macro_rules! test_udp_listener {
    () => {
        "[[listeners]]\nname = \"u\"\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\n"
    };
}
#[cfg(test)]
pub(crate) use test_udp_listener;

mod check;
mod env;
mod kafka;
mod kafka_source;
pub(crate) mod line_protocol;
mod listener;
mod locate;
mod metric;
mod names;
mod queue;
mod raw;
mod retry;
mod route;
mod sink;
#[cfg(test)]
mod tests;
mod tls;
mod validate;

use env::substitute_env;
use locate::{Locator, Seg, Validator, at, key, nonempty};
use names::{FACILITIES, severity_code};
use raw::*;

pub use crate::grok::FieldType;
pub(crate) use kafka::*;
pub(crate) use kafka_source::*;
pub(crate) use line_protocol::{line_protocol_key, line_protocol_measurement};
pub use listener::*;
pub use metric::*;
pub(crate) use names::{facility_name, severity_name};
pub use queue::*;
pub(crate) use retry::RetryPolicy;
pub use route::*;
pub use sink::*;
pub(crate) use tls::ListenerTls;

/// The embedded default (`config/sluice.toml`, compiled in).
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/sluice.toml");

/// A configuration error, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {key}: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        /// Dotted TOML path, e.g. `routes[1].pattern`.
        key: String,
        message: String,
    },
}

// -------------------------------------------------------------- runtime types

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it came from (a path, or `<embedded default>`).
    pub origin: String,
    pub timezone: Tz,
    pub shutdown_timeout: Duration,
    /// Spill logs live in `<data_dir>/spill/<route>/`.
    pub data_dir: PathBuf,
    /// Relative paths in the config (sink files, dead letters, CA, grok and
    /// TLS files, `data_dir`) are relative to this: the config file's
    /// folder, or the working directory ("") for the default config.
    pub base_dir: PathBuf,
    pub admin: Option<SocketAddr>,
    /// Who may call the admin port's mutating endpoints.
    pub admin_access: AdminAccess,
    /// A sink failing for longer than this makes `/health` answer 503.
    pub unhealthy_after: Duration,
    pub listeners: Vec<ListenerConfig>,
    pub sinks: Vec<SinkConfig>,
    /// Ordered routes; the default route, if any, is last with `is_default`.
    pub routes: Vec<RouteConfig>,
}

/// Who may call `POST /reload` (see `telemetry::admit`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AdminAccess {
    /// `[admin] token`: `Authorization: Bearer <token>` is required.
    pub token: Option<String>,
    /// `[admin] allowed_hosts`: names (`host` or `host:port`) accepted in
    /// `Host` and `Origin` besides the admin address and `localhost`.
    pub allowed_hosts: Vec<String>,
}

impl std::fmt::Debug for AdminAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAccess")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .finish()
    }
}

// ----------------------------------------------------------------- defaults

pub(crate) const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub(crate) const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
/// TCP/TLS listening backlog: tokio's default (128) left senders that
/// connect in a burst (400 at once) hanging in `connect`. The kernel caps
/// it at `net.core.somaxconn` (4096 on current Linux).
pub(crate) const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
pub(crate) const DEFAULT_FRAME_TIMEOUT_SECS: u64 = 30;
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT_SECS: u64 = 10;
pub(crate) const DEFAULT_QUEUE_MAX_EVENTS: usize = 10_000;
pub(crate) const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
pub(crate) const DEFAULT_DATA_DIR: &str = "sluice-data";
/// What a UDP listener asks the kernel for as its receive buffer unless
/// `receive_buffer_bytes` says otherwise: 8 MiB holds about 2 s of a
/// 2,000 msg/s burst of 2 KiB datagrams while the reader is descheduled
/// (the kernel's usual 208 KiB lost 981 of 10,000 at 2,000 msg/s on a busy
/// host). The kernel may grant less (net.core.rmem_max): logged at start
/// and shown in `sluice_listener_receive_buffer_bytes`.
pub(crate) const DEFAULT_UDP_RECEIVE_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Upper bound of a UDP listener's `sockets`.
pub(crate) const MAX_UDP_SOCKETS: usize = 64;
pub(crate) const DEFAULT_SPILL_MAX_BYTES: u64 = 1 << 30;
pub(crate) const DEFAULT_SPILL_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
pub(crate) const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9901";
pub(crate) const DEFAULT_UNHEALTHY_AFTER_SECS: u64 = 120;
/// HTTP sinks send what is queued as soon as their worker is free: under
/// load batches fill while the previous request is in flight, and light
/// traffic is not held back (measured: p50 1.2 ms at 20k msg/s with 0,
/// 138 ms with 1000; the same full-speed throughput).
pub(crate) const DEFAULT_HTTP_LINGER_MS: u64 = 0;
/// An HTTP sink's longest wait between two tries of a batch: a
/// `Retry-After: 3600` from a proxy must not stall a route for an hour.
pub(crate) const DEFAULT_MAX_BACKOFF_SECS: u64 = 30;
/// Largest frame a listener may be configured for.
pub(crate) const MAX_FRAME_BYTES_LIMIT: usize = 16 * 1024 * 1024;

// --------------------------------------------------------------- loading

impl Config {
    /// Load `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let origin = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    file: origin.clone(),
                    source,
                })?;
                Config::from_toml(&text, &origin)
            }
            None => Config::from_toml_in(EMBEDDED_DEFAULT, "<embedded default>", Path::new("")),
        }
    }

    /// Load `path` with its relative paths resolved against `base`, not
    /// its folder: `sluice run` without -c reads `config/sluice.toml` this
    /// way (base "", the working directory), so it writes `./sluice-data/`
    /// just as the embedded default does.
    pub fn load_relative_to(path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: origin.clone(),
            source,
        })?;
        Config::from_toml_in(&text, &origin, base)
    }

    /// Parse and validate TOML text; `origin` names it in errors and its
    /// folder is where relative paths start.
    pub fn from_toml(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let base = Path::new(origin)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        Config::from_toml_in(text, origin, &base)
    }

    /// [`Config::from_toml`] with relative paths resolved against `base`.
    pub fn from_toml_in(text: &str, origin: &str, base: &Path) -> Result<Config, ConfigError> {
        let text = substitute_env(text, origin)?;
        let locator = Locator::new(&text, origin, base);
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            locator.parse_error(offset, e.message().trim())
        })?;
        Validator { locator: &locator }.config(raw)
    }
}

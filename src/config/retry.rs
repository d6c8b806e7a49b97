//! A sink's [`RetryPolicy`]: built once, at validation, from the sink's
//! retry keys (`max_retries`, `max_retry_secs`, `max_backoff_secs`), with
//! every default in this one place (README, "Configuration reference").
//! The delivery worker retries a batch by it, and the sinks that retry
//! part of a batch themselves (Elasticsearch items answered 429/5xx, Kafka
//! records whose delivery failed) take their bounds from the same policy.

use std::time::Duration;

use super::DEFAULT_MAX_BACKOFF_SECS;

/// `max_retries` of an HTTP sink (InfluxDB, Elasticsearch) left out.
pub(crate) const DEFAULT_HTTP_MAX_RETRIES: u32 = 1_000;
/// `max_retry_secs` of an HTTP sink left out.
pub(crate) const DEFAULT_HTTP_MAX_RETRY_SECS: u64 = 600;
/// `max_retries` of a Kafka sink left out: unlimited, so an unreachable
/// cluster holds the queue (whose `when_full` decides) rather than the
/// sink dropping records of its own accord.
pub(crate) const DEFAULT_KAFKA_MAX_RETRIES: u32 = u32::MAX;
/// `max_retry_secs` of a Kafka sink left out: a hundred years, unlimited.
pub(crate) const DEFAULT_KAFKA_MAX_RETRY_SECS: u64 = 100 * 365 * 24 * 3600;
/// The first backoff of a network sink; it doubles with each try.
pub(crate) const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Where a network sink's doubling backoff stops growing (a server's
/// `Retry-After` may still ask for more, up to `max_backoff_secs`).
pub(crate) const BACKOFF_GROWTH_CAP: Duration = Duration::from_secs(5);

/// How a batch (and, inside a sink, part of one) is retried: until
/// `max_attempts` tries or `max_elapsed`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub max_elapsed: Duration,
    pub initial_backoff: Duration,
    /// Where the exponential backoff stops growing.
    pub max_backoff: Duration,
    /// The longest wait between two tries, whatever asked for more: the
    /// sink's `max_backoff_secs`. A server's `Retry-After` is honoured up
    /// to it.
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// A network sink's policy from its keys as validated: `max_retries`
    /// (0 means one try), `max_retry_secs`, `max_backoff_secs`.
    pub(crate) fn network(max_retries: u32, max_retry_time: Duration, max_wait: Duration) -> Self {
        RetryPolicy {
            max_attempts: max_retries.max(1),
            max_elapsed: max_retry_time,
            initial_backoff: INITIAL_BACKOFF,
            max_backoff: BACKOFF_GROWTH_CAP,
            max_wait,
        }
    }

    /// An HTTP sink's policy from its keys, defaults filled in.
    pub(crate) fn http(
        max_retries: Option<u32>,
        max_retry_secs: Option<u64>,
        max_wait: Duration,
    ) -> Self {
        RetryPolicy::network(
            max_retries.unwrap_or(DEFAULT_HTTP_MAX_RETRIES),
            Duration::from_secs(max_retry_secs.unwrap_or(DEFAULT_HTTP_MAX_RETRY_SECS)),
            max_wait,
        )
    }

    /// A Kafka sink's policy from its keys, defaults filled in
    /// (unlimited).
    pub(crate) fn kafka(
        max_retries: Option<u32>,
        max_retry_secs: Option<u64>,
        max_wait: Duration,
    ) -> Self {
        RetryPolicy::network(
            max_retries.unwrap_or(DEFAULT_KAFKA_MAX_RETRIES),
            Duration::from_secs(max_retry_secs.unwrap_or(DEFAULT_KAFKA_MAX_RETRY_SECS)),
            max_wait,
        )
    }

    /// A local sink's (file, stdout; no retry keys): a write that fails
    /// (disk full, a closed stdout) is tried 8 times within a minute, then
    /// the batch is given up.
    pub(crate) fn local() -> Self {
        RetryPolicy {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_wait: Duration::from_secs(DEFAULT_MAX_BACKOFF_SECS),
        }
    }

    /// How long to wait before try `attempt + 1`, `elapsed` into the
    /// retries: the backoff, or longer when the server asked
    /// (`retry_after`), but never more than `max_wait` nor past the end of
    /// the retry time (`max_elapsed`: the last try is made when it ends,
    /// not after a wait beyond it).
    pub(crate) fn wait(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        elapsed: Duration,
    ) -> Duration {
        self.backoff(attempt)
            .max(retry_after.unwrap_or_default())
            .min(self.max_wait)
            .min(self.max_elapsed.saturating_sub(elapsed))
    }

    /// Full jitter: a random wait in [0, min(max, initial·2^attempt)].
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(if nanos == 0 {
            0
        } else {
            jitter() % (nanos + 1)
        })
    }
}

/// A cheap pseudo-random number (jitter only, not security).
fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, RetryPolicy, SinkConfig};

    fn sink(kind: &str, keys: &str) -> SinkConfig {
        let head = match kind {
            "influxdb" => "urls = [\"http://127.0.0.1:8086\"]\ndatabase = \"d\"",
            "elasticsearch" => "urls = [\"http://127.0.0.1:9200\"]\nindex = \"i\"",
            "kafka" => "brokers = [\"127.0.0.1:9092\"]\ntopic = \"t\"",
            "file" => "path = \"out.ndjson\"",
            _ => "",
        };
        // A Kafka sink's raw payload is the frame: its route has no document.
        let document = if kind == "kafka" {
            ""
        } else {
            "document = {}\n"
        };
        let text = format!(
            "[[listeners]]\nname = \"tcp\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\n\
             [[sinks]]\nname = \"s\"\ntype = \"{kind}\"\n{head}\n{keys}\n\
             [default_route]\nsink = \"s\"\n{document}"
        );
        let config = Config::from_toml(&text, "retry.toml").unwrap_or_else(|e| panic!("{e}"));
        config.sinks.into_iter().next().unwrap()
    }

    /// The documented defaults (README, sink reference): HTTP sinks 1000
    /// tries in 600 s, Kafka unlimited, every network sink waiting at most
    /// `max_backoff_secs` (30) with a backoff from 200 ms growing to 5 s;
    /// local sinks 8 tries within a minute.
    #[test]
    fn defaults_per_kind_of_sink() {
        let secs = Duration::from_secs;
        for kind in ["influxdb", "elasticsearch"] {
            assert_eq!(
                sink(kind, "").retry,
                RetryPolicy {
                    max_attempts: 1_000,
                    max_elapsed: secs(600),
                    initial_backoff: Duration::from_millis(200),
                    max_backoff: secs(5),
                    max_wait: secs(30),
                },
                "{kind}"
            );
        }
        let kafka = sink("kafka", "").retry;
        assert_eq!(kafka.max_attempts, u32::MAX);
        assert!(kafka.max_elapsed >= secs(100 * 365 * 24 * 3600));
        assert_eq!(
            (kafka.initial_backoff, kafka.max_backoff, kafka.max_wait),
            (Duration::from_millis(200), secs(5), secs(30))
        );
        for kind in ["file", "stdout"] {
            let s = sink(kind, "");
            assert_eq!(s.retry, RetryPolicy::local(), "{kind}");
            assert_eq!((s.retry.max_attempts, s.retry.max_elapsed), (8, secs(60)));
        }
    }

    /// The keys as written make the policy; `max_retries = 0` is one try
    /// (never none).
    #[test]
    fn keys_make_the_policy() {
        let secs = Duration::from_secs;
        let keys = "max_retries = 3\nmax_retry_secs = 45\nmax_backoff_secs = 7";
        for kind in ["influxdb", "elasticsearch", "kafka"] {
            let r = sink(kind, keys).retry;
            assert_eq!(
                (r.max_attempts, r.max_elapsed, r.max_wait),
                (3, secs(45), secs(7)),
                "{kind}"
            );
            assert_eq!(
                sink(kind, "max_retries = 0").retry.max_attempts,
                1,
                "{kind}"
            );
        }
    }
}

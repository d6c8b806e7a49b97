//! A route's `[routes.queue]`: bounds, when-full policy, spill log.

use super::*;

/// When appended records are forced to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never by sluice (the kernel writes back; a power loss loses data).
    Never,
    /// After every [`SpillLog::append`] call.
    EveryBatch,
    /// When the caller says a batch is complete ([`SpillLog::flush`]): the
    /// route queue does so after each batch of frames a reader took in.
    OnFlush,
    /// At most once per this many milliseconds, on [`SpillLog::maybe_sync`].
    IntervalMs(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// Wait for room: TCP readers stop reading (backpressure). UDP cannot
    /// wait; it drops and counts.
    Block,
    /// Drop the new record and count it.
    DropNewest,
    /// Drop the oldest queued records to make room, and count them.
    DropOldest,
    /// Overflow to the route's spill log on disk; when that is full too,
    /// drop the new record and count it (`spill_full`).
    Spill,
}

impl WhenFull {
    pub fn as_str(self) -> &'static str {
        match self {
            WhenFull::Block => "block",
            WhenFull::DropNewest => "drop_newest",
            WhenFull::DropOldest => "drop_oldest",
            WhenFull::Spill => "spill",
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Disk spill (`when_full = "spill"` or `durable = true`).
    pub spill: Option<SpillConfig>,
    pub max_events: usize,
    /// Payload bytes plus a fixed overhead per record.
    pub max_bytes: usize,
    pub when_full: WhenFull,
    /// `block`: the longest a reader waits for room; then the record is
    /// dropped and counted. `None`: as long as it takes.
    pub block_timeout: Option<Duration>,
}

/// A route's spill log settings; the directory is `<data_dir>/spill/<route>`.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// Every record goes through the log (survives a crash), not only the
    /// overflow.
    pub durable: bool,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub fsync: Fsync,
}

impl Validator<'_, '_> {
    /// A route's `[routes.queue]`; no table is the defaults.
    pub(super) fn queue(
        &self,
        base: &[Seg],
        q: Option<RawQueue>,
    ) -> Result<QueueConfig, ConfigError> {
        Ok(match q {
            Some(q) => {
                let max_events = q.max_events.unwrap_or(DEFAULT_QUEUE_MAX_EVENTS);
                if max_events == 0 || max_events > 10_000_000 {
                    return Err(self.err(
                        &at(&at(base, "queue"), "max_events"),
                        "must be between 1 and 10000000",
                    ));
                }
                let max_bytes = q.max_bytes.unwrap_or(DEFAULT_QUEUE_MAX_BYTES);
                if !(1024..=1 << 40).contains(&max_bytes) {
                    return Err(self.err(
                        &at(&at(base, "queue"), "max_bytes"),
                        "must be between 1024 and 1099511627776",
                    ));
                }
                let when_full = q.when_full.unwrap_or(WhenFull::DropNewest);
                let block_timeout = match (q.block_timeout_ms, when_full) {
                    (None, _) => None,
                    (Some(0), _) => {
                        return Err(self.err(
                            &at(&at(base, "queue"), "block_timeout_ms"),
                            "must be at least 1 (leave it out to wait as long as it takes)",
                        ));
                    }
                    (Some(ms), WhenFull::Block) => Some(Duration::from_millis(ms)),
                    (Some(_), _) => {
                        return Err(self.err(
                            &at(&at(base, "queue"), "block_timeout_ms"),
                            "only when_full = \"block\" waits",
                        ));
                    }
                };
                let qbase = at(base, "queue");
                let durable = q.durable.unwrap_or(false);
                let spill = self.spill(&qbase, &q, durable, when_full)?;
                QueueConfig {
                    spill,
                    max_events,
                    max_bytes,
                    when_full,
                    block_timeout,
                }
            }
            None => QueueConfig {
                spill: None,
                max_events: DEFAULT_QUEUE_MAX_EVENTS,
                max_bytes: DEFAULT_QUEUE_MAX_BYTES,
                when_full: WhenFull::DropNewest,
                block_timeout: None,
            },
        })
    }

    /// The spill log of a spilling queue; its keys anywhere else are an error.
    fn spill(
        &self,
        qbase: &[Seg],
        q: &RawQueue,
        durable: bool,
        when_full: WhenFull,
    ) -> Result<Option<SpillConfig>, ConfigError> {
        let spill_keys = [
            ("spill_max_bytes", q.spill_max_bytes.is_some()),
            ("spill_segment_bytes", q.spill_segment_bytes.is_some()),
            ("fsync", q.fsync.is_some()),
            ("fsync_interval_ms", q.fsync_interval_ms.is_some()),
        ];
        Ok(if durable || when_full == WhenFull::Spill {
            let max = q.spill_max_bytes.unwrap_or(DEFAULT_SPILL_MAX_BYTES);
            let segment = q.spill_segment_bytes.unwrap_or(DEFAULT_SPILL_SEGMENT_BYTES);
            if !(4096..=1 << 30).contains(&segment) {
                return Err(self.err(
                    &at(qbase, "spill_segment_bytes"),
                    "must be between 4096 and 1073741824",
                ));
            }
            if max < segment {
                return Err(self.err(
                    &at(qbase, "spill_max_bytes"),
                    format!("must be at least spill_segment_bytes ({segment})"),
                ));
            }
            let fsync = match (q.fsync.unwrap_or(RawFsync::Interval), q.fsync_interval_ms) {
                (RawFsync::Never, None) => Fsync::Never,
                (RawFsync::Always, None) => Fsync::EveryBatch,
                (RawFsync::Batch, None) => Fsync::OnFlush,
                (RawFsync::Interval, ms) => Fsync::IntervalMs(ms.unwrap_or(1000).max(1)),
                (_, Some(_)) => {
                    return Err(self.err(
                        &at(qbase, "fsync_interval_ms"),
                        "only fsync = \"interval\" takes an interval",
                    ));
                }
            };
            Some(SpillConfig {
                durable,
                max_bytes: max,
                segment_bytes: segment,
                fsync,
            })
        } else {
            self.refuse_set(
                qbase,
                &spill_keys,
                "only a spilling queue (when_full = \"spill\" or durable = true) has a spill log",
            )?;
            None
        })
    }
}

//! [`LogLimiter`]: at most one line per interval for a log line that can
//! repeat at the data rate.

/// Rate limit for a repeated log line: at most one per `interval`; the
/// occurrences skipped in between are counted and reported with the next
/// one that is logged (`suppressed = N`). The counters that matter are in
/// `/metrics` regardless.
pub(crate) struct LogLimiter {
    interval_ms: u64,
    /// Milliseconds since [`process_clock`]'s start when the next line may go.
    next_ms: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

/// A monotonic clock shared by every [`LogLimiter`].
fn process_clock() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl LogLimiter {
    pub(crate) const fn new(interval_ms: u64) -> LogLimiter {
        LogLimiter {
            interval_ms,
            next_ms: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(skipped)` when this occurrence may be logged (with how many
    /// were skipped since the last one), `None` when it is skipped.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(process_clock())
    }

    /// [`LogLimiter::allow`] at `now` on [`process_clock`].
    fn allow_at(&self, now: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let next = self.next_ms.load(Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(next, now + self.interval_ms, Relaxed, Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Relaxed));
        }
        self.suppressed.fetch_add(1, Relaxed);
        None
    }
}

#[cfg(test)]
mod log_limiter_tests {
    use super::LogLimiter;

    /// Read at given instants, not the wall clock: a test thread that
    /// loses the CPU for an interval between two calls must not make a
    /// line that is due look skipped, or the reverse.
    #[test]
    fn one_line_per_interval_and_the_skipped_are_counted() {
        let l = LogLimiter::new(50);
        assert_eq!(l.allow_at(0), Some(0));
        assert_eq!(l.allow_at(10), None);
        assert_eq!(l.allow_at(49), None);
        assert_eq!(l.allow_at(50), Some(2));
        assert_eq!(l.allow_at(99), None);
        assert_eq!(l.allow_at(500), Some(1));
    }

    /// `allow` reads the process clock: once an interval has passed, the
    /// next line goes.
    #[test]
    fn allow_lets_a_line_go_once_the_interval_has_passed() {
        let l = LogLimiter::new(50);
        assert_eq!(l.allow(), Some(0));
        std::thread::sleep(std::time::Duration::from_millis(80));
        assert!(l.allow().is_some());
    }
}

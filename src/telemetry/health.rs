//! Health state `/health` reports: per sink (failing since when, records
//! held) and per listener (up, degraded).

use std::sync::Arc;

/// One sink worker's state as `/health` shows it: its last error and
/// since when it has been failing without a success in between, and the
/// records it holds until an operator acts. Clones share it; the worker
/// owns the last one but /health's.
#[derive(Clone, Default)]
pub(crate) struct SinkHealth(Arc<HealthState>);

#[derive(Default)]
struct HealthState {
    failing: std::sync::Mutex<Option<(String, std::time::Instant)>>,
    held: std::sync::atomic::AtomicU64,
}

impl SinkHealth {
    pub(crate) fn ok(&self) {
        if let Ok(mut s) = self.0.failing.lock() {
            *s = None;
        }
    }

    /// The worker holds `records` until an operator acts (0: none).
    pub(crate) fn set_held(&self, records: u64) {
        self.0
            .held
            .store(records, std::sync::atomic::Ordering::Relaxed);
    }

    pub(super) fn held(&self) -> u64 {
        self.0.held.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A worker replaced by a reload still has records in hand: it is
    /// running (it holds a clone besides /health's list) and failing or
    /// holding.
    pub(super) fn still_holding(&self) -> bool {
        Arc::strong_count(&self.0) > 1 && (self.held() > 0 || self.state().is_some())
    }

    pub(crate) fn failing(&self, error: &str) {
        if let Ok(mut s) = self.0.failing.lock() {
            let since = s.as_ref().map_or_else(std::time::Instant::now, |(_, t)| *t);
            *s = Some((error.chars().take(512).collect(), since));
        }
    }

    /// The last error and how long the sink has been failing.
    pub(crate) fn state(&self) -> Option<(String, std::time::Duration)> {
        self.0
            .failing
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|(e, t)| (e.clone(), t.elapsed())))
    }
}

/// A bound listener as `/health` shows it; `up` turns false if its task
/// ends before shutdown.
#[derive(Clone)]
pub(crate) struct ListenerHealth {
    pub name: String,
    pub up: Arc<std::sync::atomic::AtomicBool>,
    /// Why a serving listener is degraded (a kafka listener that reaches
    /// no broker), if it is.
    pub degraded: Degraded,
}

/// A listener's degraded state, set by the listener.
pub(crate) type Degraded = Arc<std::sync::Mutex<Option<String>>>;

//! Polling waits that fail loudly.

use std::time::{Duration, Instant};

/// Poll `pending` every 50 ms while it holds, for at most `secs` seconds.
pub(crate) fn wait_while(secs: u64, mut pending: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while pending() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

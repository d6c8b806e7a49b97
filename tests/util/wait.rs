//! Polling waits that fail loudly: a wait that times out panics naming what
//! it waited for and the last values the helpers observed meanwhile.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Display;
use std::time::{Duration, Instant};

/// How many observations a timed-out wait reports.
const KEPT: usize = 8;

thread_local! {
    /// The latest values read by the helpers (`Sluice::metric`, `read_lines`,
    /// `EsServer::total` …) on this test's thread, newest last.
    static OBSERVED: RefCell<VecDeque<String>> = const { RefCell::new(VecDeque::new()) };
}

/// Note a value a helper just read, for the message of a wait that times
/// out. Repeats of the same observation are kept once.
pub(crate) fn observed(what: impl Display) {
    let what = what.to_string();
    OBSERVED.with(|o| {
        let mut o = o.borrow_mut();
        o.retain(|x| *x != what);
        if o.len() == KEPT {
            o.pop_front();
        }
        o.push_back(what);
    });
}

fn last_observed() -> String {
    OBSERVED.with(|o| {
        let o = o.borrow();
        if o.is_empty() {
            "nothing recorded by the helpers".to_owned()
        } else {
            o.iter().cloned().collect::<Vec<_>>().join("; ")
        }
    })
}

fn forget_observed() {
    OBSERVED.with(|o| o.borrow_mut().clear());
}

/// Poll `f` every 20 ms until it returns `Some`, for at most `secs`; panics
/// naming `what` was awaited and the last observed values.
#[track_caller]
pub(crate) fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    forget_observed();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!(
                "waited {secs} s for {what}, in vain; last observed: {}",
                last_observed()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Poll `done` until it holds, for at most `secs`; panics naming `what`.
#[track_caller]
pub(crate) fn wait_until(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    wait_for(secs, what, || done().then_some(()));
}

/// Poll `pending` every 50 ms while it holds, for at most `secs`; panics
/// when it still holds at the deadline. Called as `wait_while!`, which
/// passes the condition's source text as `what`.
#[track_caller]
pub(crate) fn poll_while(secs: u64, what: &str, mut pending: impl FnMut() -> bool) {
    forget_observed();
    let deadline = Instant::now() + Duration::from_secs(secs);
    while pending() {
        if Instant::now() >= deadline {
            panic!(
                "waited {secs} s for `{what}` to turn false, in vain; last observed: {}",
                last_observed()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `wait_while!(secs, || condition)`: wait while the condition holds, and
/// fail naming it (its source text) and the last observed values if it
/// still holds after `secs` seconds.
macro_rules! wait_while {
    ($secs:expr, $pending:expr $(,)?) => {
        $crate::util::wait::poll_while($secs, stringify!($pending), $pending)
    };
}
pub(crate) use wait_while;

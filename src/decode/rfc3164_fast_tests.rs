//! The RFC 3164 fast path reads what the general path reads.

use super::*;
use crate::decode::rfc3164::{general, rfc3164};
use crate::decode::tests::RECEIVED_2026_11_24;
use crate::event::Event;
use proptest::prelude::*;

/// The frame `<PRI>rest` read by [`rfc3164`] (fast path first) and by
/// [`general`] alone, as `Debug` text, and whether the fast path took it.
fn both(prival: u8, rest: &str, received: i64, opts: &DecodeOptions) -> (String, String, bool) {
    let frame = format!("<{prival}>{rest}");
    let all = frame.as_bytes();
    let after_pri = &all[all.iter().position(|b| *b == b'>').unwrap_or(0) + 1..];
    let read = |fast: bool| {
        let mut e = Event::without_text(all.len(), None, None, received);
        e.facility = Some(prival >> 3);
        e.severity = Some(prival & 7);
        if fast {
            rfc3164(all, after_pri, &mut e, opts);
        } else {
            e.protocol = crate::event::Protocol::Rfc3164;
            e.valid = true;
            general(all, after_pri, &mut e, opts);
        }
        format!("{e:?}")
    };
    let taken = header(after_pri, received, Some(prival >> 3), opts).is_some();
    (read(true), read(false), taken)
}

fn berlin() -> DecodeOptions {
    DecodeOptions {
        timezone: chrono_tz::Europe::Berlin,
        ..DecodeOptions::default()
    }
}

/// The blaster's frames and their kin are taken, and read as the general
/// path reads them; every form a lenient rule names is left to it.
#[test]
fn fast_path_takes_the_usual_frames_only() {
    let opts = DecodeOptions::default();
    for taken in [
        "Nov 24 10:00:00 host01 app3[1003]: status route=a code=200",
        "Nov  4 10:00:00 host01 app3[1003]: m\n",
        "Jan 24 10:00:00 h sshd: Accepted",
        "Dec 31 23:59:59 h a.b/c-d_e[x y]: m",
        "Nov 24 10:00:00 h app[1]:",
    ] {
        let (fast, general, took) = both(13, taken, RECEIVED_2026_11_24, &opts);
        assert!(took, "{taken}");
        assert_eq!(fast, general, "{taken}");
    }
    for left in [
        "Nov 24 10:00:00 h app[]: m",
        "nov 24 10:00:00 h app: m",
        "Nov 24 10:00:60 h app: m",
        "Feb 29 10:00:00 h app: m",
        "Nov 31 10:00:00 h app: m",
        "Nov 4 10:00:00 h app: m",
        "Nov 24 10:00:00  h app: m",
        "Nov 24 10:00:00 UTC: app: m",
        "Nov 24 10:00:00 - app: m",
        "Nov 24 10:00:00 h  app: m",
        "Nov 24 10:00:00 h app[1]: [a b=\"c\"] m",
        "Nov 24 10:00:00 h app:  m",
        "Nov 24 10:00:00 h user: m",
        "Nov 24 10:00:00 h cron(pam_unix)[3]: m",
        "Nov 24 10:00:00 h aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: m",
        "Nov 24 10:00:00 h app m",
        "Nov 24 10:00:00 h\tapp: m",
        "Nov 24 2025 10:00:00 h app: m",
        "Nov 24 10:00:00.5 h app: m",
    ] {
        let (fast, general, took) = both(13, left, RECEIVED_2026_11_24, &opts);
        assert!(!took, "{left}");
        assert_eq!(fast, general, "{left}");
    }
}

/// The kept stamp answers only for its own text, receive second and
/// zone: the same stamp received in another year, or read in another
/// zone, right after, is read afresh.
#[test]
fn fast_path_stamp_is_kept_per_second_and_zone() {
    let frame = "Dec 31 23:00:00 h app[1]: m";
    let next_year = RECEIVED_2026_11_24 + 60 * 86_400 * 1_000_000_000;
    for (received, opts) in [
        (RECEIVED_2026_11_24, DecodeOptions::default()),
        (next_year, DecodeOptions::default()),
        (next_year, berlin()),
        (RECEIVED_2026_11_24, berlin()),
    ] {
        let (fast, general, took) = both(13, frame, received, &opts);
        assert!(took);
        assert_eq!(fast, general, "{received} {:?}", opts.timezone);
    }
}

fn day_text(day: u32, pad: u8) -> String {
    match pad {
        0 => format!("{day:02}"),
        1 => format!("{day:>2}"),
        _ => format!("{day}"),
    }
}

proptest! {
    /// Whatever the fast path takes, the general path reads the same
    /// event, in UTC and in Berlin, received before and after New Year.
    #[test]
    fn fast_path_agrees_with_the_general_path(
        month in "(Nov|Nov|Feb|Jan|Dec|nov|DEC|Foo)",
        day in 0u32..33,
        pad in 0u8..3,
        hms in (0u32..25, 0u32..60, 0u32..=60),
        sep in "( | | | |  |\t|:|)",
        host in prop_oneof![
            3 => "[-a-z0-9.]{1,5}",
            1 => "[-a-zA-Z0-9.:#%\\[\u{7f}\u{e9}\t]{0,6}",
        ],
        host_sep in "( | | |  |\t)",
        tag in prop_oneof![
            3 => "[a-z0-9_./-]{1,8}(\\[[0-9 \\]]{0,3}\\]|):",
            1 => "(user|local7|kern|cron):",
            1 => "[a-zA-Z0-9_./()%#:\\[\\]-]{0,36}",
        ],
        after in "( | | |  |\\[a b=\"c\"\\] |\\[x\\] |)",
        msg in "[a-z ]{0,6}(\n|\r\n|)",
        prival in prop::sample::select(vec![13u8, 8, 15, 134, 191]),
        late in any::<bool>(),
    ) {
        let (h, m, s) = hms;
        let rest = format!(
            "{month} {} {h:02}:{m:02}:{s:02}{sep}{host}{host_sep}{tag}{after}{msg}",
            day_text(day, pad)
        );
        let received = if late {
            RECEIVED_2026_11_24 + 50 * 86_400 * 1_000_000_000
        } else {
            RECEIVED_2026_11_24
        };
        for opts in [DecodeOptions::default(), berlin()] {
            let (fast, general, _) = both(prival, &rest, received, &opts);
            prop_assert_eq!(fast, general, "{:?}", rest);
        }
    }
}

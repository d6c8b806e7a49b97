//! How a sink's answer asks to be retried: a server's `Retry-After` and
//! the [`classify`]ing of statuses. The [`RetryPolicy`] (attempts, retry
//! time, backoff with full jitter, the longest wait) is the sink's
//! validated config's.

use std::time::Duration;

/// `Retry-After` of an answer (see [`parse_retry_after`]).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get("Retry-After")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// A `Retry-After` value read at `now` (RFC 9110 10.2.3): delay-seconds
/// (digits only; more than `u64` holds is a very long wait, not none), or
/// an HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms):
/// the wait until then, none when it is past. Anything else (a sign, a
/// fraction, garbage) is not read: the normal backoff applies. The caller
/// caps the wait ([`RetryPolicy::wait`]).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value)
        .map(|d| d.with_timezone(&chrono::Utc))
        .or_else(|_| {
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(value, f).ok())
                .map(|d| d.and_utc())
                .ok_or(())
        })
        .ok()?;
    let then = std::time::SystemTime::from(date);
    Some(then.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What the status of an HTTP sink's answer says of its request, read
/// alike by both HTTP sinks ([`classify`]); what each then does with it
/// is the sink's (the InfluxDB partial write, the `_bulk` items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx: answered; the body says the rest.
    Done,
    /// 413: the request is larger than the server takes: split it.
    TooLarge,
    /// 429 or 5xx: the node is busy or failing: retry (on the next node),
    /// not before `after` when the server said so (`Retry-After`).
    Retryable { after: Option<Duration> },
    /// 401 or 403: the sink's credentials are refused.
    Unauthorized,
    /// 404: no such database, bucket or endpoint.
    NotFound,
    /// 400 or 422: the request's content was refused.
    BadRequest,
    /// Anything else.
    Unexpected,
}

/// Read an answer's status, and its `Retry-After` when it asks to retry
/// ([`parse_retry_after`] at `now`). Pure: no I/O, tested with canned
/// answers.
pub(crate) fn classify(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Outcome {
    match status {
        200..=299 => Outcome::Done,
        413 => Outcome::TooLarge,
        429 | 500..=599 => Outcome::Retryable {
            after: headers
                .get("Retry-After")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, now)),
        },
        401 | 403 => Outcome::Unauthorized,
        404 => Outcome::NotFound,
        400 | 422 => Outcome::BadRequest,
        _ => Outcome::Unexpected,
    }
}

/// A sink's retry policy, built at validation (see `config::retry`).
pub(crate) use crate::config::RetryPolicy;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::RetryPolicy;

    /// Issue 20, item 10: canned `Retry-After` values against
    /// `max_backoff_secs` (`max_wait`) and the retry time.
    #[test]
    fn waits_honour_retry_after_up_to_max_wait_and_the_retry_time() {
        let secs = Duration::from_secs;
        let policy = RetryPolicy {
            max_attempts: 1000,
            max_elapsed: secs(600),
            initial_backoff: Duration::from_millis(200),
            max_backoff: secs(5),
            max_wait: secs(30),
        };
        let early = secs(1);
        // Honoured when within the cap (never shorter than asked).
        assert_eq!(policy.wait(0, Some(secs(7)), early), secs(7));
        // Capped: an hour, a hundred seconds, u64::MAX seconds.
        for asked in [3600, 100, 31, u64::MAX] {
            assert_eq!(
                policy.wait(0, Some(secs(asked)), early),
                secs(30),
                "{asked}"
            );
        }
        // Without Retry-After: the backoff, at most max_backoff.
        for attempt in [0, 3, 20, u32::MAX] {
            let w = policy.wait(attempt, None, early);
            assert!(w <= secs(5), "{attempt}: {w:?}");
        }
        // The retry time left caps it too: 100 s asked with 30 s of
        // max_retry_secs, 10 s in, waits 20 s; at the end, not at all.
        let short = RetryPolicy {
            max_elapsed: secs(30),
            max_wait: secs(60),
            ..policy
        };
        assert_eq!(short.wait(0, Some(secs(100)), secs(10)), secs(20));
        assert_eq!(short.wait(0, Some(secs(100)), secs(30)), Duration::ZERO);
        assert_eq!(short.wait(0, Some(secs(100)), secs(45)), Duration::ZERO);
        // A max_wait below max_backoff caps the backoff as well.
        let tight = RetryPolicy {
            max_wait: Duration::from_millis(50),
            ..policy
        };
        for attempt in 0..20 {
            assert!(tight.wait(attempt, None, early) <= Duration::from_millis(50));
        }
    }

    /// Follow-up item 9: canned `Retry-After` values. An over-long number
    /// is "very long" (the wait caps it at `max_backoff_secs`), an
    /// HTTP-date gives the wait until then, garbage and negatives nothing
    /// (the normal backoff).
    #[test]
    fn retry_after_reads_long_numbers_and_http_dates() {
        use super::parse_retry_after;
        let secs = Duration::from_secs;
        // 2026-12-06T20:00:00Z.
        let now = std::time::UNIX_EPOCH + secs(1_796_587_200);
        assert_eq!(parse_retry_after("120", now), Some(secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(secs(0)));
        for huge in [
            "99999999999999999999",
            "18446744073709551616",
            "123456789012345678901234567890",
        ] {
            let wait = parse_retry_after(huge, now).unwrap_or_else(|| panic!("{huge} ignored"));
            assert!(wait >= secs(u64::MAX), "{huge}: {wait:?}");
            // Capped like any long wait.
            let policy = super::RetryPolicy {
                max_wait: secs(30),
                ..super::RetryPolicy::local()
            };
            assert_eq!(policy.wait(0, Some(wait), secs(1)), secs(30), "{huge}");
        }
        // IMF-fixdate, RFC 850 and asctime, 90 s after `now`.
        for date in [
            "Sun, 06 Dec 2026 20:01:30 GMT",
            "Sunday, 06-Dec-26 20:01:30 GMT",
            "Sun Dec  6 20:01:30 2026",
        ] {
            assert_eq!(parse_retry_after(date, now), Some(secs(90)), "{date}");
        }
        // An hour ahead: read as an hour (the policy caps it).
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 21:00:00 GMT", now),
            Some(secs(3600))
        );
        // A date already past: no wait asked for.
        assert_eq!(
            parse_retry_after("Sun, 06 Dec 2026 19:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for garbage in [
            "",
            "-5",
            "-99999999999999999999",
            "1.5",
            "soon",
            "12abc",
            "+7",
        ] {
            assert_eq!(parse_retry_after(garbage, now), None, "{garbage:?}");
        }
    }

    /// Canned answers: each status class, and `Retry-After` read only
    /// where the answer asks to retry.
    #[test]
    fn answers_are_classified_by_status_and_retry_after() {
        use super::{Outcome, classify};
        use reqwest::header::{HeaderMap, HeaderValue};
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_796_587_200);
        let none = HeaderMap::new();
        let mut after_7 = HeaderMap::new();
        after_7.insert("Retry-After", HeaderValue::from_static("7"));
        let mut garbage = HeaderMap::new();
        garbage.insert("Retry-After", HeaderValue::from_static("soon"));
        let cases = [
            (200, &none, Outcome::Done),
            (204, &after_7, Outcome::Done),
            (413, &after_7, Outcome::TooLarge),
            (
                429,
                &after_7,
                Outcome::Retryable {
                    after: Some(Duration::from_secs(7)),
                },
            ),
            (429, &none, Outcome::Retryable { after: None }),
            (429, &garbage, Outcome::Retryable { after: None }),
            (
                503,
                &after_7,
                Outcome::Retryable {
                    after: Some(Duration::from_secs(7)),
                },
            ),
            (500, &none, Outcome::Retryable { after: None }),
            (401, &after_7, Outcome::Unauthorized),
            (403, &none, Outcome::Unauthorized),
            (404, &none, Outcome::NotFound),
            (400, &after_7, Outcome::BadRequest),
            (422, &none, Outcome::BadRequest),
            (409, &none, Outcome::Unexpected),
            (302, &none, Outcome::Unexpected),
        ];
        for (status, headers, want) in cases {
            assert_eq!(classify(status, headers, now), want, "{status}");
        }
    }
}

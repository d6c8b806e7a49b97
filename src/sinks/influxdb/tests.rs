use super::*;

fn dead(line: &str, reason: &str, ambiguous: bool) -> DeadLine {
    DeadLine {
        line: line.to_owned(),
        reason: reason.to_owned(),
        ambiguous,
    }
}

#[test]
fn partial_write_errors_name_their_lines() {
    let sent = ["m,t=a x=1 1", "m,t=b x=oops 2", "m x= 3"];
    let reason = "partial write: unable to parse 'm,t=b x=oops 2': invalid boolean\nunable to parse 'm x= 3': missing field value dropped=0";
    let bad = partial_rejects(reason, &sent).unwrap();
    assert_eq!(
        bad.entries,
        [
            dead("m,t=b x=oops 2", "unable to parse: invalid boolean", false),
            dead("m x= 3", "unable to parse: missing field value", false),
        ]
    );
    assert_eq!(bad.count, 2);
    let sent = ["m_good,t=a x=1i 1", "m_bad,t=b x=2i 2", "m_bad2 x=3i 3"];
    let conflict = "partial write: field type conflict: input field \"x\" on measurement \"m_bad\" is type integer, already exists as type float dropped=1";
    let bad = partial_rejects(conflict, &sent).unwrap();
    assert_eq!(bad.entries, [dead("m_bad,t=b x=2i 2", conflict, false)]);
    assert_eq!(bad.count, 1);
}

/// Follow-up item 3: the lines of a field type conflict are those
/// whose field has another type than the one stored — not the first
/// lines of the measurement.
#[test]
fn a_field_type_conflict_names_the_lines_by_their_field_type() {
    let sent: Vec<String> = (0..10)
        .map(|i| {
            let v = if i == 5 || i == 7 {
                format!("{i}i")
            } else {
                format!("{i}")
            };
            format!("m,app=PC,host=h v=1,seq={v} {i}")
        })
        .collect();
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    let conflict = "partial write: field type conflict: input field \"seq\" on measurement \"m\" is type integer, already exists as type float dropped=2";
    let bad = partial_rejects(conflict, &sent).unwrap();
    assert_eq!(
        bad.entries,
        [
            dead("m,app=PC,host=h v=1,seq=5i 5", conflict, false),
            dead("m,app=PC,host=h v=1,seq=7i 7", conflict, false),
        ]
    );
    assert_eq!(bad.count, 2);
    // Escaped names, string and boolean values are read as such.
    let sent = [
        r#"my\ m,t=a s="a \"b\", c",seq=1.5 1"#,
        r#"my\ m,t=a s="x",seq="one" 2"#,
        "my\\ m,t=a seq=true 3",
        "other seq=\"two\" 4",
    ];
    let conflict = r#"partial write: field type conflict: input field "seq" on measurement "my m" is type string, already exists as type float dropped=1"#;
    // Two lines are not float (a string and a boolean) but one was
    // dropped: which one cannot be told, so all are candidates.
    let bad = partial_rejects(conflict, &sent).unwrap();
    assert_eq!(bad.count, 1);
    assert_eq!(bad.entries.len(), sent.len());
    assert!(bad.entries.iter().all(|e| e.ambiguous), "{bad:?}");
    let conflict = r#"partial write: field type conflict: input field "seq" on measurement "my m" is type boolean, already exists as type float dropped=2"#;
    let bad = partial_rejects(conflict, &sent).unwrap();
    assert_eq!(
        bad.entries,
        [
            dead(sent[1], conflict, false),
            dead(sent[2], conflict, false)
        ]
    );
}

/// Follow-up item 3: when every line has the conflicting type (the
/// answer cannot single them out), or the count does not add up, or
/// nothing is named (3b): every line is an ambiguous candidate, and
/// exactly InfluxDB's count is rejected.
#[test]
fn an_unidentifiable_partial_write_dead_letters_every_candidate_as_ambiguous() {
    let sent: Vec<String> = (0..10).map(|i| format!("m seq={i}i {i}")).collect();
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    for reason in [
        "partial write: field type conflict: input field \"seq\" on measurement \"m\" is type integer, already exists as type float dropped=2",
        "partial write: field type conflict dropped=2",
        "partial write: points beyond retention policy dropped=2",
    ] {
        let bad = partial_rejects(reason, &sent).unwrap();
        assert_eq!(bad.count, 2, "{reason}");
        assert_eq!(bad.entries.len(), 10, "{reason}");
        for (e, line) in bad.entries.iter().zip(&sent) {
            assert_eq!(e.line, *line);
            assert!(e.ambiguous);
            assert!(e.reason.starts_with(reason), "{}", e.reason);
            assert!(
                e.reason.contains("rejected 2 of the 10 lines"),
                "{}",
                e.reason
            );
        }
    }
    // A count larger than the request: at most every line.
    let bad = partial_rejects("partial write: dropped=50", &sent).unwrap();
    assert_eq!(bad.count, 10);
    // Saying nothing of a partial write: not one (bisected instead).
    assert_eq!(partial_rejects("gzip: invalid header", &sent), None);
    assert_eq!(partial_rejects("partial write: dropped=0", &sent), None);
}

#[test]
fn field_types_are_read_as_influxdb_names_them() {
    for (raw, kind) in [
        ("1i", "integer"),
        ("-12i", "integer"),
        ("1", "float"),
        ("1.0", "float"),
        ("-1e3", "float"),
        ("7u", "unsigned"),
        ("\"x\"", "string"),
        ("t", "boolean"),
        ("FALSE", "boolean"),
    ] {
        assert_eq!(field_type(raw), kind, "{raw}");
    }
}

#[test]
fn error_text_reads_json_or_raw() {
    assert_eq!(
        error_text(r#"{"error":"database not found: \"x\""}"#),
        "database not found: \"x\""
    );
    assert_eq!(error_text(r#"{"code":"invalid","message":"bad"}"#), "bad");
    assert_eq!(error_text(" plain \n"), "plain");
}

#[test]
fn query_values_are_percent_encoded() {
    assert_eq!(encode("my db&x=1"), "my%20db%26x%3D1");
    assert_eq!(encode("telemetry"), "telemetry");
}

use crate::config::{HttpSinkConfig, Precision, UnsignedAs};

use crate::sinks::http::tests::serve;

fn sink(url: &str, api: InfluxApi) -> InfluxSink {
    InfluxSink::open(
        "t",
        &InfluxConfig {
            http: HttpSinkConfig {
                urls: vec![reqwest::Url::parse(url).unwrap()],
                username: None,
                password: None,
                batch_max_bytes: 1 << 20,
                gzip: false,
                timeout: Duration::from_secs(5),
                dead_letter: None,
                ca_file: None,
            },
            api,
            database: Some("db".into()),
            retention_policy: None,
            org: Some("o".into()),
            bucket: Some("b".into()),
            token: Some("secret".into()),
            create_database: false,
            retention_duration: None,
            unsigned: UnsignedAs::Unsigned,
            precision: Precision::Nanoseconds,
        },
        prometheus_client::metrics::histogram::Histogram::new([0.1]),
    )
    .unwrap()
}

fn records(lines: &[&str]) -> Vec<Record> {
    lines
        .iter()
        .map(|l| Record {
            payload: (*l).into(),
            time_nanos: 0,
            key: None,
            kafka: None,
            ack: None,
        })
        .collect()
}

/// The lines of every request the stand-in took without "bad" in it.
fn delivered_good_lines(seen: &std::sync::Mutex<Vec<(String, String)>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(_, body)| !body.contains("bad"))
        .flat_map(|(_, body)| body.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// The `Retry-After` and message of a retryable error; anything else
/// fails the test, saying what was `expected`.
fn retryable(written: Result<Written, SinkError>, expected: &str) -> (Option<Duration>, String) {
    match written {
        Err(SinkError::Retryable { after, cause }) => (after, cause.to_string()),
        other => panic!("expected {expected}, got {other:?}"),
    }
}

#[tokio::test]
async fn retry_after_is_passed_on_with_the_retryable_error() {
    let (url, _) = serve(|_, _| (503, "Retry-After: 7\r\n", "busy".into())).await;
    let written = sink(&url, InfluxApi::V2)
        .write(&records(&["m x=1 1"]))
        .await;
    let (retry_after, message) = retryable(written, "a retryable error");
    assert_eq!(retry_after, Some(Duration::from_secs(7)));
    assert!(message.contains("503"), "{message}");
}

/// 2.x rejects a whole batch with 400 when one line is bad: the batch is
/// bisected, the good lines delivered, the bad one dead-lettered.
#[tokio::test]
async fn v2_rejected_batch_is_bisected_down_to_the_bad_line() {
    let (url, seen) = serve(|head, body| {
        let path = head.split_whitespace().nth(1).unwrap_or("");
        assert!(
            path.starts_with("/api/v2/write?precision=ns&org=o&bucket=b"),
            "{path}"
        );
        if body.contains("bad") {
            (
                400,
                "",
                r#"{"code":"invalid","message":"unable to parse 'bad': missing fields"}"#.into(),
            )
        } else {
            (204, "", String::new())
        }
    })
    .await;
    let lines = ["m x=1 1", "m x=2 2", "bad", "m x=4 4", "m x=5 5"];
    let rejected = sink(&url, InfluxApi::V2)
        .write(&records(&lines))
        .await
        .unwrap();
    assert_eq!(rejected.rejected, 1);
    let delivered = delivered_good_lines(&seen);
    assert_eq!(delivered, ["m x=1 1", "m x=2 2", "m x=4 4", "m x=5 5"]);
}

/// 1.x 400 that names no line (issue 20, item 8): not a partial
/// write. Bisected like 2.x's 400: the good lines are written, the bad
/// one rejected; nothing of a refused request counts as written.
#[tokio::test]
async fn v1_400_naming_no_line_is_bisected() {
    let (url, seen) = serve(|_, body| {
        if body.contains("bad") {
            (400, "", r#"{"error":"gzip: invalid header"}"#.into())
        } else {
            (204, "", String::new())
        }
    })
    .await;
    let lines = ["m x=1 1", "bad x=2 2", "m x=3 3", "m x=4 4"];
    let rejected = sink(&url, InfluxApi::V1)
        .write(&records(&lines))
        .await
        .unwrap();
    assert_eq!(rejected.rejected, 1, "only the bad line is rejected");
    let delivered = delivered_good_lines(&seen);
    assert_eq!(delivered, ["m x=1 1", "m x=3 3", "m x=4 4"]);
}

#[tokio::test]
async fn v2_sends_the_token_and_a_401_holds_the_queue() {
    let (url, seen) = serve(|_, _| (401, "", r#"{"message":"unauthorized"}"#.into())).await;
    let written = sink(&url, InfluxApi::V2)
        .write(&records(&["m x=1 1"]))
        .await;
    let (retry_after, message) = retryable(written, "the queue to be held");
    assert_eq!(retry_after, Some(CONFIG_ERROR_WAIT), "held, not dropped");
    assert!(message.contains("credentials"), "{message}");
    let head = seen.lock().unwrap()[0].0.to_ascii_lowercase();
    assert!(head.contains("authorization: token secret"), "{head}");
}

/// 2.x 422: a partial write. The accepted points are not resent.
#[tokio::test]
async fn v2_partial_write_is_not_resent() {
    let (url, seen) = serve(|_, _| {
        (
            422,
            "",
            r#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=1"}"#.into(),
        )
    })
    .await;
    let rejected = sink(&url, InfluxApi::V2)
        .write(&records(&["m x=1 1", "m x=2 2"]))
        .await
        .unwrap();
    assert_eq!(rejected.rejected, 1);
    assert_eq!(seen.lock().unwrap().len(), 1, "one request, no resend");
}

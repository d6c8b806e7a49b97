use super::*;

/// An answer whose body arrives in `chunks`, one by one.
fn answer<T: AsRef<[u8]>>(chunks: &[T]) -> reqwest::Response {
    crate::sinks::http::tests::chunked_answer(chunks)
}

/// The items of an answer whose head says none failed are not kept;
/// any other answer is kept whole, to be read item by item or quoted.
#[test]
fn bulk_url_asks_for_the_filter_and_encodes_the_pipeline() {
    let base = |u: &str| reqwest::Url::parse(u).unwrap();
    assert_eq!(
        bulk_url(&base("http://es:9200/"), None).as_str(),
        "http://es:9200/_bulk?filter_path=errors,error,status,items.*.status,items.*.error"
    );
    let parsed = bulk_url(&base("http://es:9200"), Some("logs & more#1"));
    let url = parsed.as_str();
    assert!(url.ends_with("&pipeline=logs+%26+more%231"), "{url}");
    let pairs: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    assert_eq!(
        pairs,
        [
            ("filter_path".to_owned(), BULK_FILTER_PATH.to_owned()),
            ("pipeline".to_owned(), "logs & more#1".to_owned())
        ]
    );
}

#[tokio::test]
async fn answer_body_keeps_only_the_head_of_an_all_succeeded_answer() {
    let items = |errors: bool| -> Vec<String> {
        let mut c = vec![format!(r#"{{"took":3,"errors":{errors},"items":["#)];
        c.extend((0..500).map(|i| {
            format!(r#"{{"create":{{"_index":"logs","_id":"{i:0200}","status":201}}}},"#)
        }));
        c.push(r#"{"create":{"status":201}}]}"#.to_owned());
        c
    };
    let whole = |c: &[String]| c.concat().into_bytes();
    let ok = items(false);
    let cap = 1 << 20;
    let head = answer_body(answer(&ok), true, cap).await.bytes;
    assert!(
        head.len() >= ANSWER_HEAD && head.len() < 1024,
        "{}",
        head.len()
    );
    assert!(whole(&ok).starts_with(&head));
    assert!(read_items(&head, &[7]).unwrap().retry.is_empty());
    // Not a success: kept whole (its text is quoted in the error).
    assert_eq!(answer_body(answer(&ok), false, cap).await.bytes, whole(&ok));
    let failed = items(true);
    assert_eq!(
        answer_body(answer(&failed), true, cap).await.bytes,
        whole(&failed)
    );
    // Over the cap: cut there, and marked.
    let cut = answer_body(answer(&failed), true, 1000).await;
    assert_eq!(cut.bytes, whole(&failed)[..1000]);
    assert!(cut.truncated);
    assert!(short(&cut).ends_with("[answer cut at its cap]"));
}

/// An answer that says no item failed arrives in one chunk, items and
/// all: only its head is kept, not a copy of the whole chunk; one that
/// says an item failed is kept whole, in one chunk as in several.
#[tokio::test]
async fn answer_body_keeps_only_the_head_of_a_one_chunk_answer() {
    let whole = |errors: bool| -> Vec<u8> {
        let items: Vec<String> = (0..5000)
            .map(|_| r#"{"create":{"status":201}}"#.to_owned())
            .collect();
        format!(r#"{{"errors":{errors},"items":[{}]}}"#, items.join(",")).into_bytes()
    };
    let cap = answer_cap(true, 5000);
    let ok = whole(false);
    let head = answer_body(answer(&[&ok]), true, cap).await;
    assert_eq!(head.bytes, ok[..ANSWER_HEAD], "the head, not the chunk");
    assert!(!head.truncated);
    let failed = whole(true);
    let kept = answer_body(answer(&[&failed]), true, cap).await;
    assert_eq!(kept.bytes, failed);
    let halves = [&failed[..100], &failed[100..]];
    assert_eq!(answer_body(answer(&halves), true, cap).await.bytes, failed);
}

/// Each item gets the index of its own hour, also when a batch goes
/// back to an hour it left; a run of one hour shares one name.
#[test]
fn batch_items_take_their_hours_index() {
    let hour = 3_600_000_000_000;
    // 2026-11-24T23:00:00Z
    let t = 1_795_561_200_000_000_000;
    let batch: Vec<Record> = [t, t + 5, t + hour, t + hour + 1, t + 9]
        .into_iter()
        .map(|time_nanos| Record {
            payload: "{}".to_owned().into(),
            time_nanos,
            key: Some([7; 16]),
            kafka: None,
            ack: None,
        })
        .collect();
    let names = hour_names("logs-%Y%m%d%H", &batch);
    assert_eq!(names.len(), 3, "three runs: 23h, 00h, 23h");
    let items = batch_items(&batch, &names, true, 0);
    let indexes: Vec<&str> = items.iter().map(|i| i.index).collect();
    assert_eq!(
        indexes,
        [
            "logs-2026112423",
            "logs-2026112423",
            "logs-2026112500",
            "logs-2026112500",
            "logs-2026112423"
        ]
    );
    assert!(std::ptr::eq(items[0].index, items[1].index));
    assert!(items.iter().all(|i| i.id == Some([7; 16])));
    assert!(
        batch_items(&batch, &names, false, 0)
            .iter()
            .all(|i| i.id.is_none())
    );
}

#[test]
fn index_names_from_the_event_time_in_utc() {
    // 2026-11-24T23:30:00Z
    let t = 1_795_563_000_000_000_000;
    assert_eq!(index_name("syslog-%Y.%m.%d", t), "syslog-2026.11.24");
    assert_eq!(index_name("logs-%Y%m%d%H", t), "logs-2026112423");
    assert_eq!(index_name("fixed", t), "fixed");
    assert_eq!(index_name("a%%b", t), "a%b");
}

#[test]
fn hex_of_every_byte() {
    let all: Vec<u8> = (0..=255).collect();
    let want: String = all.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex(&all), want);
    // An `_id`'s 16 bytes take a path of their own: every byte value at
    // every position of one.
    for chunk in all.chunks(16) {
        for shift in 0..16 {
            let mut block = [0u8; 16];
            for (i, b) in block.iter_mut().enumerate() {
                *b = chunk[(i + shift) % 16];
            }
            let want: String = block.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex(&block), want);
        }
    }
}

#[test]
fn ids_are_stable_and_distinct() {
    assert_eq!(document_id("{\"a\":1}"), document_id("{\"a\":1}"));
    assert_ne!(document_id("{\"a\":1}"), document_id("{\"a\":2}"));
    assert_eq!(document_id("x").len(), 32);
}

#[test]
fn bulk_bodies_pair_actions_and_sources_and_end_in_a_newline() {
    let items = [
        Item {
            index: "i\"x",
            id: Some([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0xfe, 0x10,
            ]),
            source: "{\"m\":\"a\\nb\"}",
            framed: None,
        },
        Item {
            index: "i",
            id: None,
            source: "{}",
            framed: None,
        },
    ];
    let body = bulk_body(&items, &[0, 1]);
    assert_eq!(
        String::from_utf8(body.clone()).unwrap(),
        "{\"create\":{\"_index\":\"i\\\"x\",\"_id\":\"0123456789abcdef000000000000fe10\"}}\n{\"m\":\"a\\nb\"}\n{\"create\":{\"_index\":\"i\"}}\n{}\n"
    );
    // Into a buffer left from an earlier request: emptied, and its
    // allocation kept.
    let mut old = Vec::with_capacity(1 << 16);
    old.extend_from_slice(b"the last request's body");
    let at = old.as_ptr();
    let reused = bulk_body_into(&items, &[0, 1], old);
    assert_eq!(reused, body);
    assert_eq!(reused.as_ptr(), at);
}

/// What the sink relies on to take a request's body back: a `Bytes` made
/// from a Vec, cloned for the request and dropped by it, is unique again
/// and gives back the same allocation.
#[test]
fn a_sent_body_gives_its_buffer_back() {
    let mut v = Vec::with_capacity(4096);
    v.extend_from_slice(b"{\"create\":{}}\n{}\n");
    let at = v.as_ptr();
    let body = bytes::Bytes::from(v);
    let kept = body.clone();
    drop(body);
    let back: Vec<u8> = kept.try_into_mut().map(Into::into).unwrap();
    assert_eq!(back.as_ptr(), at);
    assert!(back.capacity() >= 4096);
}

#[test]
fn an_answer_without_errors_is_not_read_item_by_item() {
    assert!(all_succeeded(
        br#"{"took":3,"errors":false,"items":[{"create":{"status":201}}]}"#
    ));
    assert!(all_succeeded(br#"{"errors":false,"items":[],"took":1}"#));
    for text in [
        r#"{"took":3,"errors":true,"items":[{"create":{"status":429}}]}"#,
        r#"{"took":3,"items":[{"create":{"status":429,"errors":false}}],"errors":false}"#,
        r#"{"error":{"type":"x","reason":"errors\":false \"items\""},"status":400}"#,
        r#"[{"errors":false,"items":[]}]"#,
        "",
    ] {
        assert!(!all_succeeded(text.as_bytes()), "{text}");
    }
    // errors:true is read item by item: a 429 item is retried.
    let a = read_items(
        br#"{"took":3,"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429}}]}"#,
        &[0, 1],
    )
    .unwrap();
    assert_eq!(a.retry.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1]);
}

/// Issue 20, item 9: a 2xx that is not a `_bulk` answer for the request
/// is an error (the request is retried), never items "done".
#[test]
fn a_2xx_that_is_not_a_bulk_answer_is_an_error() {
    for body in [
        "<html><body><h1>Welcome to nginx!</h1></body></html>",
        "",
        r#"{"acknowledged":true}"#,
        r#"{"took":1,"errors":true,"items":[{"create":{"status":201}}]}"#,
        r#"{"took":1,"errors":true,"items":[{"create":{"status":201}},{"create":{"status":429}},{"create":{"status":201}}]}"#,
        r#"{"took":1,"errors":true,"items":[{"create":{"status":201}},{"cre"#,
    ] {
        let e = read_items(body.as_bytes(), &[4, 5]).err();
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("not a _bulk answer")),
            "{body}: {e:?}"
        );
    }
    assert!(
        read_items(
            br#"{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#,
            &[4, 5]
        )
        .is_ok()
    );
}

#[test]
fn items_are_sorted_into_done_retry_and_rejected() {
    let text = r#"{"took":3,"errors":true,"items":[
        {"create":{"_index":"i","_id":"a","status":201,"result":"created"}},
        {"create":{"_index":"i","_id":"b","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}},
        {"create":{"_index":"i","_id":"c","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [x]"}}},
        {"create":{"_index":"i","_id":"d","status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},
        {"create":{"_index":"i","_id":"e","status":503,"error":{"type":"unavailable_shards_exception","reason":"no shard"}}}
    ]}"#;
    let a = read_items(text.as_bytes(), &[10, 11, 12, 13, 14]).unwrap();
    assert_eq!(
        a.retry.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [11, 14]
    );
    // 409: already stored (the id is the document's own), not an error.
    assert_eq!(a.rejected.len(), 1);
    assert_eq!(a.rejected[0].0, 12);
    assert!(a.rejected[0].1.contains("mapper_parsing_exception"));
}

#[test]
fn chunks_respect_the_byte_bound() {
    let items: Vec<Item<'_>> = (0..10)
        .map(|_| Item {
            index: "i",
            id: None,
            source: "0123456789",
            framed: None,
        })
        .collect();
    let pending: Vec<usize> = (0..10).collect();
    let c = chunks(&items, &pending, 200);
    assert!(c.iter().all(|c| c.len() * 91 <= 200 || c.len() == 1));
    assert_eq!(c.iter().map(Vec::len).sum::<usize>(), 10);
}

/// A batch's item list is kept for the next batch, not allocated,
/// page-faulted in and freed per request; a list grown past
/// `MAX_KEPT_ITEMS` is not kept.
#[tokio::test]
async fn the_item_list_is_kept_between_batches() {
    let (url, seen) = crate::sinks::http::tests::serve(|_, _| {
        (200, "", r#"{"errors":false,"items":[]}"#.to_owned())
    })
    .await;
    let config = ElasticsearchConfig {
        http: crate::config::HttpSinkConfig {
            urls: vec![reqwest::Url::parse(&url).unwrap()],
            username: None,
            password: None,
            batch_max_bytes: 1 << 30,
            gzip: false,
            timeout: Duration::from_secs(5),
            dead_letter: None,
            ca_file: None,
        },
        index: "logs".into(),
        api_key: None,
        pipeline: None,
        document_ids: true,
        manage_template: false,
        template_name: None,
        data_stream: None,
        ilm_policy: None,
        captures: Vec::new(),
    };
    let retry = RetryPolicy::network(1, Duration::from_secs(5), Duration::from_secs(1));
    let histogram = prometheus_client::metrics::histogram::Histogram::new([0.1]);
    let sink = ElasticsearchSink::open("t", &config, retry, histogram).unwrap();
    // Set up already (no engine to detect): straight to `_bulk`.
    sink.setup.set(None).unwrap();
    let metrics = crate::telemetry::Telemetry::new().sink("t", "r");
    let batch = |n: usize| -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                payload: format!("{{\"n\":{i}}}").into(),
                time_nanos: 0,
                key: Some([1; 16]),
                kafka: None,
                ack: None,
            })
            .collect()
    };
    let kept = |sink: &ElasticsearchSink| {
        let items = sink.items_lock();
        (items.as_ptr() as usize, items.capacity(), items.len())
    };
    sink.write(&batch(1000), &metrics).await.unwrap();
    let (at, capacity, len) = kept(&sink);
    assert!(capacity >= 1000 && len == 0, "{capacity} {len}");
    sink.write(&batch(900), &metrics).await.unwrap();
    assert_eq!(kept(&sink), (at, capacity, 0), "the same list again");
    assert_eq!(seen.lock().unwrap().len(), 2, "two requests");
    // Too large to keep.
    sink.write(&batch(MAX_KEPT_ITEMS + 1), &metrics)
        .await
        .unwrap();
    assert_eq!(kept(&sink).1, 0, "a list past the bound goes");
}

/// att10: however an answer's bytes fall into chunks (its head across
/// several, cut at every byte up to past the head, an item failed in a
/// later chunk), a 200 with `errors: true` is kept whole and its failed
/// items are found; one with `errors: false` keeps its head, which says
/// no item failed.
#[tokio::test]
async fn failed_items_are_found_however_the_answer_is_chunked() {
    let n = 40;
    let whole = |errors: bool| -> Vec<u8> {
        let items: Vec<String> = (0..n)
            .map(|i| match i {
                37 if errors => r#"{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"full"}}}"#.to_owned(),
                39 if errors => r#"{"create":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"bad"}}}"#.to_owned(),
                _ => r#"{"create":{"status":201}}"#.to_owned(),
            })
            .collect();
        format!(r#"{{"errors":{errors},"items":[{}]}}"#, items.join(",")).into_bytes()
    };
    let chunk: Vec<usize> = (100..100 + n).collect();
    let cap = answer_cap(true, n);
    for errors in [true, false] {
        let body = whole(errors);
        // One byte a chunk, and every two-way cut up to past the head.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let mut shapes = vec![bytes];
        for at in 1..(ANSWER_HEAD + 40).min(body.len()) {
            shapes.push(vec![&body[..at], &body[at..]]);
            shapes.push(vec![&body[..at / 2], &body[at / 2..at], &body[at..]]);
        }
        for chunks in shapes {
            let kept = answer_body(answer(&chunks), true, cap).await;
            assert!(!kept.truncated);
            let a = read_items(&kept.bytes, &chunk).unwrap();
            if errors {
                assert_eq!(kept.bytes, body, "kept whole");
                assert_eq!(a.retry.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [137]);
                assert_eq!(
                    a.rejected.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
                    [139]
                );
            } else {
                assert_eq!(kept.bytes, body[..ANSWER_HEAD], "the head only");
                assert!(a.retry.is_empty() && a.rejected.is_empty());
            }
        }
    }
}

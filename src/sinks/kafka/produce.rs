//! One batch through the producer: produce every record, await every
//! delivery report, produce again only the ones that failed retryably.

use std::time::Instant;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureRecord};

use super::KafkaSink;
use crate::record::{Envelope, Record};
use crate::sinks::{SinkError, Written};
use crate::telemetry::SinkMetrics;

/// Why a record failed: a [`crate::telemetry::KafkaMetrics::REASONS`]
/// label, whether it is for good, and the error's text.
struct Failure {
    index: usize,
    reason: &'static str,
    permanent: bool,
    text: String,
}

fn failure(index: usize, e: &KafkaError) -> Failure {
    use RDKafkaErrorCode as C;
    let (reason, permanent) = match e.rdkafka_error_code() {
        Some(C::MessageSizeTooLarge | C::InvalidMessageSize) => ("message_too_large", true),
        Some(C::TopicAuthorizationFailed | C::ClusterAuthorizationFailed) => {
            ("topic_authorization", true)
        }
        Some(C::InvalidTopic | C::PolicyViolation | C::InvalidRecord) => ("invalid_topic", true),
        Some(C::MessageTimedOut | C::RequestTimedOut) => ("timed_out", false),
        Some(C::AllBrokersDown | C::BrokerTransportFailure | C::NetworkException) => {
            ("broker_unreachable", false)
        }
        Some(C::NotLeaderForPartition | C::LeaderNotAvailable | C::NotEnoughReplicas) => {
            ("not_leader", false)
        }
        _ => ("other", false),
    };
    Failure {
        index,
        reason,
        permanent,
        text: e.to_string(),
    }
}

/// Write `batch` (see the sink's module documentation).
pub(super) async fn write(
    sink: &KafkaSink,
    batch: &[Record],
    metrics: &SinkMetrics,
) -> Result<Written, SinkError> {
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut written = Written::default();
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        let round_started = Instant::now();
        let failed = round(sink, batch, &pending).await;
        sink.latency.observe(round_started.elapsed().as_secs_f64());
        count_delivered(sink, batch, &pending, &failed);
        let (permanent, retry): (Vec<Failure>, Vec<Failure>) =
            failed.into_iter().partition(|f| f.permanent);
        for f in &permanent {
            sink.metrics.failed(f.reason);
        }
        reject(sink, batch, &permanent, &mut written)?;
        let Some(first) = retry.first() else {
            return Ok(written);
        };
        for f in &retry {
            sink.metrics.failed(f.reason);
        }
        let message = format!(
            "{} of {} record(s) not delivered ({}): {}",
            retry.len(),
            batch.len(),
            first.reason,
            first.text
        );
        if attempt.saturating_add(1) >= sink.retry.max_attempts
            || started.elapsed() >= sink.retry.max_elapsed
        {
            // Only with limits configured: by default the sink retries
            // until the brokers take the records.
            let gave_up: Vec<Failure> = retry
                .into_iter()
                .map(|f| Failure {
                    text: format!("gave up after {} attempt(s): {}", attempt + 1, f.text),
                    ..f
                })
                .collect();
            reject(sink, batch, &gave_up, &mut written)?;
            return Ok(written);
        }
        metrics.retrying(&message);
        tokio::time::sleep(sink.retry.wait(attempt, None, started.elapsed())).await;
        attempt += 1;
        pending = retry.iter().map(|f| f.index).collect();
    }
}

/// Dead-letter `failed` records and count them as rejected.
fn reject(
    sink: &KafkaSink,
    batch: &[Record],
    failed: &[Failure],
    written: &mut Written,
) -> Result<(), SinkError> {
    let Some(first) = failed.first() else {
        return Ok(());
    };
    if written.reason.is_none() {
        written.reason = Some(format!("{}: {}", first.reason, first.text));
    }
    written.rejected += failed.len() as u64;
    if let Some(dl) = &sink.dead_letter {
        let entries: Vec<_> = failed
            .iter()
            .filter_map(|f| {
                batch
                    .get(f.index)
                    .map(|r| dead_entry(r, &format!("{}: {}", f.reason, f.text)))
            })
            .collect();
        dl.write(&entries)?;
    }
    tracing::warn!(sink = %sink.name, records = failed.len(), reason = first.reason, error = %first.text, "Kafka refused records for good: dead-lettered");
    Ok(())
}

fn count_delivered(sink: &KafkaSink, batch: &[Record], pending: &[usize], failed: &[Failure]) {
    let mut bytes = 0u64;
    let mut records = 0u64;
    let mut failed_at = failed.iter().map(|f| f.index).peekable();
    for &i in pending {
        if failed_at.peek() == Some(&i) {
            failed_at.next();
            continue;
        }
        if let Some(r) = batch.get(i) {
            records += 1;
            bytes += value(r).len() as u64;
        }
    }
    sink.metrics.produced_records.inc_by(records);
    sink.metrics.produced_bytes.inc_by(bytes);
}

/// Produce the records `pending` names, await every report; the ones
/// that failed, in `pending`'s order.
async fn round(sink: &KafkaSink, batch: &[Record], pending: &[usize]) -> Vec<Failure> {
    let mut waiting: Vec<(usize, DeliveryFuture)> = Vec::with_capacity(pending.len());
    let mut failed = Vec::new();
    let mut scratch = String::with_capacity(96);
    for &i in pending {
        let Some(r) = batch.get(i) else { continue };
        let Some(part) = r.kafka.as_deref() else {
            failed.push(Failure {
                index: i,
                reason: "no_topic",
                permanent: true,
                text: "record without a topic (not from a route to this sink)".to_owned(),
            });
            continue;
        };
        // Bounded: librdkafka's queue full means reports are due (each
        // within message_timeout_secs); wait for ours, or briefly when
        // another route's worker fills it.
        loop {
            let mut record = FutureRecord::to(&part.topic).payload(value(r));
            if let Some(k) = &part.key {
                record = record.key(k.as_str());
            }
            if let Some(e) = &part.envelope {
                record = record.headers(headers(e, &mut scratch));
            }
            match sink.producer.send_result(record) {
                Ok(future) => {
                    waiting.push((i, future));
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if waiting.is_empty() {
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    } else {
                        settle(&mut waiting, &mut failed).await;
                    }
                }
                Err((e, _)) => {
                    failed.push(failure(i, &e));
                    break;
                }
            }
        }
    }
    settle(&mut waiting, &mut failed).await;
    failed.sort_by_key(|f| f.index);
    failed
}

/// Await the reports of `waiting`; failures into `failed`.
async fn settle(waiting: &mut Vec<(usize, DeliveryFuture)>, failed: &mut Vec<Failure>) {
    for (i, future) in waiting.drain(..) {
        match future.await {
            Ok(Ok(_delivered)) => {}
            Ok(Err((e, _))) => failed.push(failure(i, &e)),
            Err(_canceled) => failed.push(failure(i, &KafkaError::Canceled)),
        }
    }
}

/// The record's value: the frame (raw envelope) or the encoded payload.
fn value(r: &Record) -> &[u8] {
    match r.kafka.as_deref().and_then(|k| k.envelope.as_ref()) {
        Some(e) => &e.frame,
        None => r.payload.as_bytes(),
    }
}

/// The envelope's headers (see `record::Envelope`). Their values are
/// written into `scratch` (librdkafka copies each): no allocation per
/// record beyond librdkafka's own.
fn headers(e: &Envelope, scratch: &mut String) -> OwnedHeaders {
    use std::fmt::Write as _;
    scratch.clear();
    // Writing to a String cannot fail.
    let _ = write!(scratch, "{}", e.received_nanos);
    let received_end = scratch.len();
    let _ = write!(scratch, "{:016x}{:016x}", e.nonce, e.frame_number);
    let id_end = scratch.len();
    if let Some(p) = e.peer {
        let _ = write!(scratch, "{p}");
    }
    let (received, rest) = scratch.split_at(received_end);
    let (id, peer) = rest.split_at(id_end - received_end);
    let mut h = OwnedHeaders::new_with_capacity(7)
        .insert(Header {
            key: "sluice.envelope",
            value: Some(Envelope::VERSION),
        })
        .insert(Header {
            key: "sluice.received",
            value: Some(received),
        });
    if e.peer.is_some() {
        h = h.insert(Header {
            key: "sluice.peer",
            value: Some(peer),
        });
    }
    h = h
        .insert(Header {
            key: "sluice.listener",
            value: Some(&*e.listener),
        })
        .insert(Header {
            key: "sluice.framing",
            value: Some(&*e.framing),
        })
        .insert(Header {
            key: "sluice.id",
            value: Some(id),
        });
    if let Some(tz) = &e.timezone {
        h = h.insert(Header {
            key: "sluice.timezone",
            value: Some(&**tz),
        });
    }
    h
}

/// A dead-letter line for `r`.
pub(super) fn dead_entry(r: &Record, reason: &str) -> serde_json::Value {
    let part = r.kafka.as_deref();
    let mut entry = serde_json::json!({
        "reason": reason,
        "topic": part.map(|p| p.topic.as_str()),
        "key": part.and_then(|p| p.key.as_deref()),
        "value": String::from_utf8_lossy(value(r)),
    });
    if let Some(e) = part.and_then(|p| p.envelope.as_ref()) {
        entry["envelope"] = serde_json::json!({
            "received": e.received_nanos,
            "peer": e.peer.map(|p| p.to_string()),
            "listener": &*e.listener,
            "framing": &*e.framing,
            "id": e.id(),
            "timezone": e.timezone.as_deref(),
        });
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;

    fn pairs(h: &OwnedHeaders) -> Vec<(String, String)> {
        h.iter()
            .map(|h| {
                let v = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                (h.key.to_owned(), v.into_owned())
            })
            .collect()
    }

    /// Each header holds its own value, though all are written into one
    /// scratch buffer, reused from record to record.
    #[test]
    fn envelope_headers_from_one_scratch_buffer() {
        let mut e = Envelope {
            frame: bytes::Bytes::from_static(b"<13>x"),
            received_nanos: 1_772_884_800_000_000_123,
            peer: Some("192.0.2.7:40001".parse().unwrap()),
            listener: "tcp".into(),
            framing: "auto".into(),
            nonce: 0x5eed,
            frame_number: 42,
            timezone: Some("Asia/Tokyo".into()),
        };
        let mut scratch = String::new();
        let kv = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            pairs(&headers(&e, &mut scratch)),
            vec![
                kv("sluice.envelope", "1"),
                kv("sluice.received", "1772884800000000123"),
                kv("sluice.peer", "192.0.2.7:40001"),
                kv("sluice.listener", "tcp"),
                kv("sluice.framing", "auto"),
                kv("sluice.id", &e.id()),
                kv("sluice.timezone", "Asia/Tokyo"),
            ]
        );
        e.peer = None;
        e.timezone = None;
        e.received_nanos = -5;
        e.frame_number = 7;
        assert_eq!(
            pairs(&headers(&e, &mut scratch)),
            vec![
                kv("sluice.envelope", "1"),
                kv("sluice.received", "-5"),
                kv("sluice.listener", "tcp"),
                kv("sluice.framing", "auto"),
                kv("sluice.id", "0000000000005eed0000000000000007"),
            ]
        );
    }
}

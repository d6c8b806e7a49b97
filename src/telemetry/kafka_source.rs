//! The Kafka listener's families (`sluice_listener_kafka_*`): records consumed by
//! kind, records dropped by reason, commits, consumer lag and in-flight
//! records per partition.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{Register, get};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerKind {
    listener: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerReason {
    listener: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabel {
    listener: String,
    topic: String,
    partition: String,
}

/// Why a Kafka record was dropped (counted) instead of decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KafkaDrop {
    /// `sluice.envelope` names a version this build does not read.
    EnvelopeVersion,
    /// An envelope header is missing or unreadable (`sluice.received`,
    /// `sluice.id`, `sluice.peer`, `sluice.timezone`).
    Envelope,
    /// A record without a value (a tombstone).
    NoValue,
    /// Longer than the listener's `max_frame_bytes`.
    Oversized,
}

impl KafkaDrop {
    pub(crate) const ALL: [KafkaDrop; 4] = [
        KafkaDrop::EnvelopeVersion,
        KafkaDrop::Envelope,
        KafkaDrop::NoValue,
        KafkaDrop::Oversized,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            KafkaDrop::EnvelopeVersion => "envelope_version",
            KafkaDrop::Envelope => "envelope",
            KafkaDrop::NoValue => "no_value",
            KafkaDrop::Oversized => "oversized",
        }
    }
}

/// The counters of one Kafka listener, resolved once.
#[derive(Clone, Default)]
pub(crate) struct KafkaSourceMetrics {
    /// Records that were raw envelopes.
    pub envelope_records: Counter,
    /// Records decoded as plain frames (no `sluice.envelope` header).
    pub plain_records: Counter,
    /// Indexed like [`KafkaDrop::ALL`].
    pub dropped: [Counter; 4],
    pub commits: Counter,
    pub commit_failures: Counter,
    pub in_flight: Gauge,
    pub paused_partitions: Gauge,
    /// Partitions paused (each pause of each partition counts one).
    pub pauses: Counter,
    pub rebalances: Counter,
    /// Offsets that went back below what was done with (a topic created
    /// again, offsets moved back): tracking started over there.
    pub offset_resets: Counter,
    lag: Family<PartitionLabel, Gauge>,
    listener: String,
}

impl KafkaSourceMetrics {
    /// Consumer lag of one partition (from librdkafka's statistics).
    pub(crate) fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabel {
                listener: self.listener.clone(),
                topic: topic.to_owned(),
                partition: partition.to_string(),
            })
            .set(lag);
    }

    /// A partition no longer assigned here: its lag is its new owner's to
    /// report.
    pub(crate) fn remove_lag(&self, topic: &str, partition: i32) {
        self.lag.remove(&PartitionLabel {
            listener: self.listener.clone(),
            topic: topic.to_owned(),
            partition: partition.to_string(),
        });
    }
}

/// The `sluice_listener_kafka_*` families.
pub(super) struct KafkaSourceFamilies {
    records: Family<ListenerKind, Counter>,
    dropped: Family<ListenerReason, Counter>,
    commits: Family<ListenerLabel, Counter>,
    commit_failures: Family<ListenerLabel, Counter>,
    in_flight: Family<ListenerLabel, Gauge>,
    paused: Family<ListenerLabel, Gauge>,
    pauses: Family<ListenerLabel, Counter>,
    rebalances: Family<ListenerLabel, Counter>,
    offset_resets: Family<ListenerLabel, Counter>,
    lag: Family<PartitionLabel, Gauge>,
}

impl KafkaSourceFamilies {
    pub(super) fn register(registry: &mut Registry) -> Self {
        KafkaSourceFamilies {
            records: registry.add("sluice_listener_kafka_records",
                "Records a kafka listener consumed, by kind: envelope (a raw envelope from an edge sluice), plain (no sluice.envelope header: decoded as a frame received now from no peer)",
            ),
            dropped: registry.add("sluice_listener_kafka_dropped_records",
                "Records a kafka listener consumed and dropped, by reason: envelope_version, envelope (a header missing or unreadable), no_value, oversized",
            ),
            commits: registry.add("sluice_listener_kafka_commits",
                "Offset commits a kafka listener made (of records every route was done with)",
            ),
            commit_failures: registry.add("sluice_listener_kafka_commit_failures",
                "Offset commits the broker refused or that failed",
            ),
            in_flight: registry.add("sluice_listener_kafka_in_flight_records",
                "Records consumed and not yet done with (delivered, spilled or dropped and counted): their offsets are not committed",
            ),
            paused: registry.add("sluice_listener_kafka_paused_partitions",
                "Partitions paused for backpressure (max_in_flight reached, or the pipeline took nothing for a second)",
            ),
            pauses: registry.add("sluice_listener_kafka_pauses",
                "Times a kafka listener paused a partition for backpressure (each partition paused counts one; librdkafka drops what it had prefetched of it and fetches it again on resume)",
            ),
            rebalances: registry.add("sluice_listener_kafka_rebalances",
                "Consumer group rebalances (assignments and revocations) a kafka listener took part in",
            ),
            offset_resets: registry.add("sluice_listener_kafka_offset_resets",
                "Partitions whose offsets went back below what the listener was done with (the topic deleted and created again, the group's offsets moved back): read on from there",
            ),
            lag: registry.add("sluice_listener_kafka_consumer_lag_records",
                "Records in a partition after its commit point (high watermark - committed offset; librdkafka statistics, or the broker's watermarks while the partition is paused)",
            ),
        }
    }

    /// Each lookup in its own statement: a family's read guard lives to
    /// the end of the statement, and a second lookup that creates a label
    /// set in the same family would wait for it forever.
    pub(super) fn listener(&self, name: &str) -> KafkaSourceMetrics {
        let l = ListenerLabel {
            listener: name.to_owned(),
        };
        let kind = |kind: &str| ListenerKind {
            listener: name.to_owned(),
            kind: kind.to_owned(),
        };
        let envelope_records = get(&self.records, &kind("envelope"));
        let plain_records = get(&self.records, &kind("plain"));
        let dropped = KafkaDrop::ALL.map(|d| {
            get(
                &self.dropped,
                &ListenerReason {
                    listener: name.to_owned(),
                    reason: d.as_str().to_owned(),
                },
            )
        });
        KafkaSourceMetrics {
            envelope_records,
            plain_records,
            dropped,
            commits: get(&self.commits, &l),
            commit_failures: get(&self.commit_failures, &l),
            in_flight: get(&self.in_flight, &l),
            paused_partitions: get(&self.paused, &l),
            pauses: get(&self.pauses, &l),
            rebalances: get(&self.rebalances, &l),
            offset_resets: get(&self.offset_resets, &l),
            lag: self.lag.clone(),
            listener: name.to_owned(),
        }
    }
}

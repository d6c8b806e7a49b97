//! The Kafka sinks' counters: delivery failures by reason, records and
//! bytes produced (the produce latency is the sink's request histogram).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::{Register, SinkLabel, Telemetry, get};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SinkReason {
    pub(super) sink: String,
    pub(super) reason: String,
}

/// A Kafka sink's counters (shared by the routes writing to it).
#[derive(Clone)]
pub(crate) struct KafkaMetrics {
    /// Delivery reports that said "failed", by reason, indexed like
    /// [`KafkaMetrics::REASONS`].
    pub failures: [Counter; 8],
    pub produced_records: Counter,
    /// Value bytes (the payload or frame) of the records delivered.
    pub produced_bytes: Counter,
}

impl KafkaMetrics {
    /// Why a record was not delivered: the first four are permanent
    /// (dead-lettered), the rest retried.
    pub(crate) const REASONS: [&'static str; 8] = [
        "message_too_large",
        "topic_authorization",
        "invalid_topic",
        "no_topic",
        "timed_out",
        "broker_unreachable",
        "not_leader",
        "other",
    ];

    pub(crate) fn failed(&self, reason: &str) {
        let i = Self::REASONS
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(Self::REASONS.len() - 1);
        if let Some(c) = self.failures.get(i) {
            c.inc();
        }
    }
}

/// The Kafka sinks' families.
pub(super) struct KafkaFamilies {
    pub(super) failures: Family<SinkReason, Counter>,
    pub(super) records: Family<SinkLabel, Counter>,
    pub(super) bytes: Family<SinkLabel, Counter>,
}

impl KafkaFamilies {
    pub(super) fn register(registry: &mut Registry) -> KafkaFamilies {
        let failures = registry.add("sluice_sink_kafka_delivery_failures",
            "Kafka delivery reports that said a record failed, by reason: message_too_large, topic_authorization, invalid_topic, no_topic (refused for good, dead-lettered); timed_out, broker_unreachable, not_leader, other (produced again)",
        );
        let records = registry.add(
            "sluice_sink_kafka_produced_records",
            "Records a Kafka sink's delivery reports say the brokers have",
        );
        let bytes = registry.add(
            "sluice_sink_kafka_produced_bytes",
            "Value bytes (payload or raw frame) of the records a Kafka sink delivered",
        );
        KafkaFamilies {
            failures,
            records,
            bytes,
        }
    }
}

impl Telemetry {
    /// The counters of Kafka sink `sink`.
    pub(crate) fn kafka(&self, sink: &str) -> KafkaMetrics {
        let l = SinkLabel {
            sink: sink.to_owned(),
        };
        KafkaMetrics {
            failures: KafkaMetrics::REASONS.map(|r| {
                get(
                    &self.kafka.failures,
                    &SinkReason {
                        sink: sink.to_owned(),
                        reason: r.to_owned(),
                    },
                )
            }),
            produced_records: get(&self.kafka.records, &l),
            produced_bytes: get(&self.kafka.bytes, &l),
        }
    }
}

//! Kafka (issue #24): the launcher and its helper against a real broker
//! (`launcher`), the Kafka sink through the real binary, and edge → Kafka
//! → indexer on a cluster losing a leader, an indexer or its broker
//! (`cluster`).

mod cluster;
mod launcher;
mod outage;
mod sink;

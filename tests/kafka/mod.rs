//! Kafka (issue #24): the launcher and its helper against a real broker
//! (`launcher`), the Kafka sink through the real binary, both tiers
//! (edge → Kafka → indexer) through two of them (`two_tier`), and both
//! tiers on a cluster losing a leader, an indexer or its broker
//! (`cluster`).

mod cluster;
mod launcher;
mod outage;
mod sink;
mod two_tier;

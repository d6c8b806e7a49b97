//! Kafka (issue #24): the launcher and its helper against a real broker
//! (`launcher`), the Kafka sink through the real binary, and both tiers
//! (edge → Kafka → indexer) through two of them (`two_tier`).

mod launcher;
mod outage;
mod sink;
mod two_tier;

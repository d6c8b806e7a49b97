//! Kafka (issue #24): the launcher and its helper against a real broker
//! (`launcher`), and the Kafka sink through the real binary.

mod launcher;
mod outage;
mod sink;

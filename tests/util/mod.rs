//! Helpers shared by every integration test: the `Sluice` process wrapper,
//! config builders, loud waits, metric scrapes and file readers.

pub(crate) mod config;
pub(crate) mod es;
pub(crate) mod files;
pub(crate) mod influx_stand_in;
pub(crate) mod influxd;
pub(crate) mod kafka;
pub(crate) mod net;
pub(crate) mod parse;
pub(crate) mod process;
pub(crate) mod tls;
pub(crate) mod tmpfs;
pub(crate) mod tools;
pub(crate) mod wait;

pub(crate) use crate::es_server::EsServer;
pub(crate) use config::*;
pub(crate) use es::*;
pub(crate) use files::*;
pub(crate) use influx_stand_in::*;
pub(crate) use influxd::*;
pub(crate) use kafka::{Kafka, KafkaRecord, kafka_available};
pub(crate) use net::*;
pub(crate) use parse::*;
pub(crate) use process::*;
pub(crate) use tls::*;
pub(crate) use tmpfs::*;
pub(crate) use tools::*;
pub(crate) use wait::*;

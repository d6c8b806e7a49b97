//! Integration tests: the real `sluice` binary on ephemeral ports, real
//! sockets, real files. Every test ends with SIGTERM and checks the exit
//! code, what was delivered and the final counters. Helpers live in
//! `util/`; each module below is one topic.

mod blaster_e2e;
mod config;
mod connections;
mod elasticsearch;
mod engines;
mod es_server;
mod example_files;
mod fault_admin;
mod fault_disk;
mod fault_sinks;
mod fix_admin;
mod fix_sinks;
mod fix_spill;
mod fixlisten;
mod fixparse;
mod flume_shape;
mod framing;
mod influxdb;
mod kafka;
mod kafka_source;
mod lenient_decode;
mod listener;
mod log4j_e2e;
mod migrator;
mod multiline;
mod queue;
mod reload;
mod routing;
mod tls_listener;
mod udp_listener;
mod util;

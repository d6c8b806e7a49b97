//! Sluice's own telemetry: the Prometheus registry and its metric families,
//! per listener, route, queue and sink, and the health state `/health`
//! reports (served by `admin`). A foundation: it imports no stage;
//! the label enums the stages count by (multiline [`Flush`], TLS
//! [`HandshakeFailure`]) and the queue's counters live here.
//!
//! Counters are resolved once at start-up (each stage holds its own handles),
//! so the hot path only increments atomics. Names follow
//! `sluice_<stage>_<noun>_<unit>_total`; drops carry a `reason` label.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::event::{LenientRule, PerRule};

mod health;
mod kafka;
mod kafka_source;
mod labels;

use crate::config::DEFAULT_UNHEALTHY_AFTER_SECS;
pub(crate) use health::{Degraded, ListenerHealth, SinkHealth};
use kafka::KafkaFamilies;
pub(crate) use kafka::KafkaMetrics;
pub(crate) use kafka_source::{KafkaDrop, KafkaSourceMetrics};
pub(crate) use labels::{Flush, HandshakeFailure, QueueMetrics};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabel {
    listener: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerReason {
    listener: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerRule {
    listener: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteReason {
    route: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SinkLabel {
    pub(crate) sink: String,
}

/// Request latency buckets: 1 ms doubling to about 33 s.
fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkRoute {
    sink: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkRouteReason {
    sink: String,
    route: String,
    reason: String,
}

/// Counters of one listener.
#[derive(Clone, Default)]
pub(crate) struct ListenerMetrics {
    pub frames: Counter,
    pub bytes: Counter,
    pub invalid_frames: Counter,
    pub lossy_utf8_frames: Counter,
    pub oversized_frames: Counter,
    pub truncated_frames: Counter,
    pub octet_count_fallbacks: Counter,
    pub bad_octet_counts: Counter,
    /// Octet counts above `max_frame_bytes`: that frame read as LF.
    pub count_over_max_fallbacks: Counter,
    pub connections_accepted: Counter,
    /// Failed `accept` calls (EMFILE and the like).
    pub accept_errors: Counter,
    pub connections_rejected: Counter,
    /// Connections closed at accept: the peer already held
    /// `max_connections_per_peer`.
    pub connections_rejected_per_peer: Counter,
    pub connections_open: Gauge,
    /// UDP: the receive buffer the kernel granted (`SO_RCVBUF` read back).
    pub receive_buffer_bytes: Gauge,
    pub idle_timeouts: Counter,
    /// Connections closed because a frame stayed incomplete for
    /// `frame_timeout_secs`.
    pub frame_timeouts: Counter,
    pub read_errors: Counter,
    /// Frames split at a `<PRI>1 ` boundary (log4j2 TCP `newLine=false`).
    pub undelimited_splits: Counter,
    /// Frames appended to an earlier event by the multi-line joiner.
    pub multiline_joined_frames: Counter,
    /// Events the joiner emitted, indexed like `multiline::Flush::ALL`.
    pub multiline_flushes: [Counter; 6],
    /// UDP datagrams the kernel dropped for a full receive buffer.
    pub kernel_drops: Counter,
    /// TCP/TLS connections closed at accept: source not in `allow`.
    pub connections_denied: Counter,
    /// UDP datagrams dropped: source not in `allow`.
    pub denied_frames: Counter,
    /// TLS handshakes that failed, indexed like [`HandshakeFailure::ALL`].
    pub tls_handshakes_failed: [Counter; 6],
    /// Frames read with each lenient rule, indexed like [`LenientRule::ALL`].
    pub lenient_frames: PerRule<Counter>,
    /// Frames a `decode = "strict"` listener rejected (they needed a
    /// lenient rule).
    pub strict_rejected_frames: Counter,
}

/// Counters of one route (its queue's included).
#[derive(Clone, Default)]
pub(crate) struct RouteMetrics {
    pub matched: Counter,
    pub emitted: Counter,
    pub conversion_bad_value: Counter,
    pub conversion_no_fields: Counter,
    pub conversion_no_measurement: Counter,
    pub conversion_dropped_point: Counter,
    pub queue: QueueMetrics,
}

/// Counters of the admin port and of reloads.
#[derive(Clone, Default)]
pub(crate) struct AdminMetrics {
    /// Reload requests received (`POST /reload` accepted, SIGHUP).
    pub reload_requests: Counter,
    /// Reloads performed; a burst of requests is served by one or two.
    pub reloads: Counter,
    /// Mutating requests refused: `Host` not the admin address.
    pub refused_host: Counter,
    /// Mutating requests refused: `Origin` not the admin address.
    pub refused_origin: Counter,
    /// Mutating requests refused: missing or wrong bearer token.
    pub refused_token: Counter,
    /// Admin connections closed at accept: `admin::ADMIN_MAX_CONNECTIONS` open.
    pub refused_connections: Counter,
}

/// Counters of one route's sink worker.
#[derive(Clone, Default)]
pub(crate) struct SinkMetrics {
    pub batches: Counter,
    pub records_sent: Counter,
    pub retries: Counter,
    pub failed_records: Counter,
    /// Records the destination rejected for good (dead-lettered).
    pub rejected_records: Counter,
    /// 1 while the last write worked, 0 while it is failing.
    pub up: Gauge,
    /// Records in batches held until an operator acts (shared by the
    /// workers of a (sink, route) across a reload: each adds its own).
    pub held_records: Gauge,
    pub health: SinkHealth,
}

impl SinkMetrics {
    /// A write (or the part of it that failed) is to be tried again:
    /// counted in `sluice_sink_retries_total`, and shown by
    /// `sluice_sink_up` 0 and on `/health` until a write works. Item
    /// retries inside a sink report here as well as whole-request ones.
    pub(crate) fn retrying(&self, error: &str) {
        self.retries.inc();
        self.up.set(0);
        self.health.failing(error);
    }
}

/// Resolve one labelled metric. The family's read guard must be dropped
/// before the next lookup: a lookup that creates a new label set takes the
/// write lock.
pub(super) fn get<S, M>(family: &Family<S, M>, labels: &S) -> M
where
    S: Clone + std::hash::Hash + Eq,
    M: Clone + prometheus_client::metrics::TypedMetric + Default,
{
    family.get_or_create(labels).clone()
}

/// Registering a new metric (a family, a counter, a gauge) and keeping
/// the handle that updates it, in one call.
pub(super) trait Register {
    fn add<M>(&mut self, name: &str, help: &str) -> M
    where
        M: prometheus_client::registry::Metric + Clone + Default;
}

impl Register for Registry {
    fn add<M>(&mut self, name: &str, help: &str) -> M
    where
        M: prometheus_client::registry::Metric + Clone + Default,
    {
        let metric = M::default();
        self.register(name, help, metric.clone());
        metric
    }
}

/// The route and queue families (`sluice_router_*`, `sluice_route_*`,
/// `sluice_queue_*`).
struct RouteFamilies {
    r_matched: Family<RouteLabel, Counter>,
    r_emitted: Family<RouteLabel, Counter>,
    r_conversion: Family<RouteReason, Counter>,
    q_pushed: Family<RouteLabel, Counter>,
    q_popped: Family<RouteLabel, Counter>,
    q_dropped: Family<RouteReason, Counter>,
    q_spilled: Family<RouteLabel, Counter>,
    q_spill_pending: Family<RouteLabel, Gauge>,
    q_spill_corrupt: Family<RouteLabel, Counter>,
}

impl RouteFamilies {
    fn register(registry: &mut Registry) -> Self {
        RouteFamilies {
            r_matched: registry.add("sluice_router_matched_events",
                "Events a route matched",
            ),
            r_emitted: registry.add("sluice_route_emitted_records",
                "Records a route produced",
            ),
            r_conversion: registry.add("sluice_route_conversion_errors",
                "Fields or points a route could not produce, by reason",
            ),
            q_pushed: registry.add("sluice_queue_pushed_records",
                "Records pushed into a route's queue",
            ),
            q_popped: registry.add("sluice_queue_popped_records",
                "Records taken from a route's queue by its sink",
            ),
            q_dropped: registry.add("sluice_queue_dropped_records",
                "Records dropped by a route's queue, by reason: full (drop_newest), full_oldest (drop_oldest), full_udp (block on UDP), block_timeout, spill_full, spill_error, shutdown",
            ),
            q_spilled: registry.add("sluice_queue_spilled_records",
                "Records a route's queue wrote to its spill log on disk",
            ),
            q_spill_pending: registry.add("sluice_queue_spill_pending_records",
                "Records in a route's spill log not yet acknowledged by its sink",
            ),
            q_spill_corrupt: registry.add("sluice_queue_spill_corrupt_records",
                "Records lost to corruption in a route's spill log: exact (from the gap in record sequence numbers) for a corrupt region the sink's reader passed; a torn or corrupt tail at the log's end, truncated at start, counts as one (its record count is unknowable)",
            ),
        }
    }
}

impl AdminMetrics {
    /// Register the admin port's counters, resolved once.
    fn register(registry: &mut Registry) -> Self {
        let requests = registry.add(
            "sluice_admin_reload_requests",
            "Reload requests received (POST /reload let through, SIGHUP)",
        );
        let reloads = registry.add(
            "sluice_admin_reloads",
            "Reloads performed; requests waiting while one runs share the next",
        );
        let refused: Family<ReasonLabel, Counter> = registry.add("sluice_admin_refused_requests",
            "Mutating admin requests refused, by reason: host (Host not the admin address), origin (Origin not the admin address), token (missing or wrong bearer token); connections: admin connections closed at accept because the connection limit was reached",
        );
        let r = |reason: &str| {
            get(
                &refused,
                &ReasonLabel {
                    reason: reason.to_owned(),
                },
            )
        };
        AdminMetrics {
            reload_requests: requests,
            reloads,
            refused_host: r("host"),
            refused_origin: r("origin"),
            refused_token: r("token"),
            refused_connections: r("connections"),
        }
    }
}

/// All families, registered once.
pub(crate) struct Telemetry {
    registry: Registry,
    kafka_source: kafka_source::KafkaSourceFamilies,
    l_frames: Family<ListenerLabel, Counter>,
    l_bytes: Family<ListenerLabel, Counter>,
    l_invalid: Family<ListenerLabel, Counter>,
    l_lossy: Family<ListenerLabel, Counter>,
    l_skipped: Family<ListenerReason, Counter>,
    d_lenient: Family<ListenerRule, Counter>,
    l_fallbacks: Family<ListenerReason, Counter>,
    l_accepted: Family<ListenerLabel, Counter>,
    l_accept_errors: Family<ListenerLabel, Counter>,
    l_rejected: Family<ListenerReason, Counter>,
    l_open: Family<ListenerLabel, Gauge>,
    l_receive_buffer: Family<ListenerLabel, Gauge>,
    l_closed: Family<ListenerReason, Counter>,
    l_undelimited: Family<ListenerLabel, Counter>,
    l_joined: Family<ListenerLabel, Counter>,
    l_join_flushes: Family<ListenerReason, Counter>,
    l_tls_failed: Family<ListenerReason, Counter>,
    l_kernel_drops: Family<ListenerLabel, Counter>,
    l_denied: Family<ListenerLabel, Counter>,
    routes: RouteFamilies,
    s_batches: Family<SinkRoute, Counter>,
    s_sent: Family<SinkRoute, Counter>,
    s_retries: Family<SinkRoute, Counter>,
    s_failed: Family<SinkRouteReason, Counter>,
    s_up: Family<SinkRoute, Gauge>,
    s_held: Family<SinkRoute, Gauge>,
    s_request: Family<SinkLabel, Histogram, fn() -> Histogram>,
    kafka: KafkaFamilies,
    /// The admin port's counters, resolved once.
    pub admin: AdminMetrics,
    /// (sink, route) → state, for /health; `true`: a worker a reload
    /// replaced, listed while it still holds records.
    sink_health: std::sync::Mutex<Vec<(String, String, SinkHealth, bool)>>,
    listener_health: std::sync::Mutex<Vec<ListenerHealth>>,
    /// Sink → why its client reaches no destination while idle (a Kafka
    /// sink whose brokers are all down), shown on its /health entries.
    sink_degraded: std::sync::Mutex<Vec<(String, Degraded)>>,
    /// A sink failing longer than this makes /health answer 503.
    unhealthy_after: std::time::Duration,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        Telemetry {
            l_frames: r.add("sluice_listener_frames", "Frames received"),
            l_bytes: r.add("sluice_listener_bytes",
                "Bytes of frames received",
            ),
            l_invalid: r.add("sluice_listener_invalid_frames",
                "Frames that could not be decoded (routed as valid=false events)",
            ),
            l_lossy: r.add("sluice_listener_lossy_utf8_frames",
                "Frames that were not valid UTF-8 (kept, with replacement characters)",
            ),
            l_skipped: r.add("sluice_listener_skipped_frames",
                "Frames skipped (lost) by reason: oversized, truncated, strict (a decode = \"strict\" listener rejected a frame that needed a lenient rule)",
            ),
            d_lenient: r.add("sluice_decode_lenient_frames",
                "Frames the decoder read with a lenient rule (one that breaks the RFC grammar, as real senders do), by rule",
            ),
            l_fallbacks: r.add("sluice_listener_framing_fallbacks",
                "Frames read as newline-delimited although they started like an octet count, by reason: count_not_followed_by_pri, bad_octet_count, count_over_max",
            ),
            l_accepted: r.add("sluice_listener_connections_accepted",
                "TCP connections accepted",
            ),
            l_accept_errors: r.add("sluice_listener_accept_errors",
                "TCP accept calls that failed (out of file descriptors and the like); the listener backs off 50 ms after each",
            ),
            l_rejected: r.add("sluice_listener_connections_rejected",
                "TCP connections refused, by reason: max_connections, max_connections_per_peer, not_allowed",
            ),
            l_open: r.add("sluice_listener_connections_open",
                "TCP connections open now",
            ),
            l_receive_buffer: r.add("sluice_listener_receive_buffer_bytes",
                "UDP: the socket receive buffer the kernel granted (SO_RCVBUF as read back)",
            ),
            l_closed: r.add("sluice_listener_connections_closed_abnormally",
                "TCP connections closed by sluice, by reason: idle_timeout, frame_timeout, read_error",
            ),
            l_undelimited: r.add("sluice_listener_undelimited_splits",
                "Frames cut at a `<PRI>1 ` boundary in a stream without delimiters (listeners with framing = log4j2_undelimited)",
            ),
            l_joined: r.add("sluice_listener_multiline_joined_frames",
                "Frames appended to an earlier event (stack-trace lines, split-message parts)",
            ),
            l_join_flushes: r.add("sluice_listener_multiline_events",
                "Events emitted by the multi-line joiner, by reason: window, next_event, line_limit, byte_limit, capacity, close",
            ),
            l_tls_failed: r.add("sluice_listener_tls_handshakes_failed",
                "TLS connections closed before the handshake completed, by reason: timeout, not_tls, no_client_certificate, bad_client_certificate, closed, error",
            ),
            l_kernel_drops: r.add("sluice_listener_kernel_drops",
                "UDP datagrams the kernel dropped because the socket's receive buffer was full (SO_MEMINFO, read after each wake-up's reads)",
            ),
            l_denied: r.add("sluice_listener_denied_frames",
                "UDP datagrams dropped because their source is not in the listener's allow list",
            ),
            routes: RouteFamilies::register(r),
            s_batches: r.add("sluice_sink_batches",
                "Batches written by a sink",
            ),
            s_sent: r.add("sluice_sink_records_sent",
                "Records a sink wrote",
            ),
            s_retries: r.add("sluice_sink_retries",
                "Batch writes retried: a whole batch, or a round of the items of one a sink sends again (Elasticsearch 429/5xx items)",
            ),
            s_failed: r.add("sluice_sink_failed_records",
                "Records a sink did not deliver, by reason: gave_up (permanent error or retries exhausted), rejected (refused by the destination, dead-lettered)",
            ),
            s_up: r.add("sluice_sink_up",
                "1 while a sink's last write for a route worked, 0 while it is failing",
            ),
            s_held: r.add("sluice_sink_held_records",
                "Records in batches a sink holds until an operator acts (Elasticsearch: a data_stream name a plain index holds), the workers of a previous config's included",
            ),
            s_request: {
                let f: Family<SinkLabel, Histogram, fn() -> Histogram> =
                    Family::new_with_constructor(request_histogram);
                r.register(
                    "sluice_sink_request_duration_seconds",
                    "Requests of a sink, any outcome: HTTP (InfluxDB /write, Elasticsearch _bulk) from send to the answer's headers; Kafka produce rounds from a batch's first record produced to its last delivery report",
                    f.clone(),
                );
                f
            },
            kafka: KafkaFamilies::register(r),
            admin: AdminMetrics::register(r),
            kafka_source: kafka_source::KafkaSourceFamilies::register(r),
            sink_health: std::sync::Mutex::new(Vec::new()),
            listener_health: std::sync::Mutex::new(Vec::new()),
            sink_degraded: std::sync::Mutex::new(Vec::new()),
            unhealthy_after: std::time::Duration::from_secs(DEFAULT_UNHEALTHY_AFTER_SECS),
            registry,
        }
    }

    pub(crate) fn listener(&self, name: &str) -> ListenerMetrics {
        let l = ListenerLabel {
            listener: name.to_owned(),
        };
        let r = |reason: &str| ListenerReason {
            listener: name.to_owned(),
            reason: reason.to_owned(),
        };
        ListenerMetrics {
            frames: get(&self.l_frames, &l),
            bytes: get(&self.l_bytes, &l),
            invalid_frames: get(&self.l_invalid, &l),
            lossy_utf8_frames: get(&self.l_lossy, &l),
            oversized_frames: get(&self.l_skipped, &r("oversized")),
            truncated_frames: get(&self.l_skipped, &r("truncated")),
            octet_count_fallbacks: get(&self.l_fallbacks, &r("count_not_followed_by_pri")),
            bad_octet_counts: get(&self.l_fallbacks, &r("bad_octet_count")),
            count_over_max_fallbacks: get(&self.l_fallbacks, &r("count_over_max")),
            connections_rejected_per_peer: get(&self.l_rejected, &r("max_connections_per_peer")),
            frame_timeouts: get(&self.l_closed, &r("frame_timeout")),
            connections_accepted: get(&self.l_accepted, &l),
            accept_errors: get(&self.l_accept_errors, &l),
            connections_rejected: get(&self.l_rejected, &r("max_connections")),
            connections_open: get(&self.l_open, &l),
            receive_buffer_bytes: get(&self.l_receive_buffer, &l),
            idle_timeouts: get(&self.l_closed, &r("idle_timeout")),
            read_errors: get(&self.l_closed, &r("read_error")),
            undelimited_splits: get(&self.l_undelimited, &l),
            multiline_joined_frames: get(&self.l_joined, &l),
            multiline_flushes: Flush::ALL.map(|f| get(&self.l_join_flushes, &r(f.as_str()))),
            kernel_drops: get(&self.l_kernel_drops, &l),
            connections_denied: get(&self.l_rejected, &r("not_allowed")),
            denied_frames: get(&self.l_denied, &l),
            tls_handshakes_failed: HandshakeFailure::ALL
                .map(|f| get(&self.l_tls_failed, &r(f.as_str()))),
            lenient_frames: PerRule(LenientRule::ALL.map(|rule| {
                get(
                    &self.d_lenient,
                    &ListenerRule {
                        listener: name.to_owned(),
                        rule: rule.as_str().to_owned(),
                    },
                )
            })),
            strict_rejected_frames: get(&self.l_skipped, &r("strict")),
        }
    }

    /// The `sluice_listener_kafka_*` counters of a kafka listener.
    pub(crate) fn kafka_source(&self, listener: &str) -> KafkaSourceMetrics {
        self.kafka_source.listener(listener)
    }

    pub(crate) fn route(&self, name: &str) -> RouteMetrics {
        let l = RouteLabel {
            route: name.to_owned(),
        };
        let r = |reason: &str| RouteReason {
            route: name.to_owned(),
            reason: reason.to_owned(),
        };
        RouteMetrics {
            matched: get(&self.routes.r_matched, &l),
            emitted: get(&self.routes.r_emitted, &l),
            conversion_bad_value: get(&self.routes.r_conversion, &r("bad_value")),
            conversion_no_fields: get(&self.routes.r_conversion, &r("no_fields")),
            conversion_no_measurement: get(&self.routes.r_conversion, &r("no_measurement")),
            conversion_dropped_point: get(&self.routes.r_conversion, &r("dropped_point")),
            queue: QueueMetrics {
                pushed: get(&self.routes.q_pushed, &l),
                popped: get(&self.routes.q_popped, &l),
                dropped_full: get(&self.routes.q_dropped, &r("full")),
                dropped_oldest: get(&self.routes.q_dropped, &r("full_oldest")),
                dropped_block_timeout: get(&self.routes.q_dropped, &r("block_timeout")),
                dropped_full_udp: get(&self.routes.q_dropped, &r("full_udp")),
                dropped_shutdown: get(&self.routes.q_dropped, &r("shutdown")),
                spilled: get(&self.routes.q_spilled, &l),
                dropped_spill_full: get(&self.routes.q_dropped, &r("spill_full")),
                dropped_spill_error: get(&self.routes.q_dropped, &r("spill_error")),
                spill_pending: get(&self.routes.q_spill_pending, &l),
                spill_corrupt: get(&self.routes.q_spill_corrupt, &l),
            },
        }
    }

    /// The request latency histogram of sink `sink`.
    pub(crate) fn sink_requests(&self, sink: &str) -> Histogram {
        self.s_request
            .get_or_create(&SinkLabel {
                sink: sink.to_owned(),
            })
            .clone()
    }

    pub(crate) fn sink(&self, sink: &str, route: &str) -> SinkMetrics {
        let l = SinkRoute {
            sink: sink.to_owned(),
            route: route.to_owned(),
        };
        let r = |reason: &str| SinkRouteReason {
            sink: sink.to_owned(),
            route: route.to_owned(),
            reason: reason.to_owned(),
        };
        SinkMetrics {
            batches: get(&self.s_batches, &l),
            records_sent: get(&self.s_sent, &l),
            retries: get(&self.s_retries, &l),
            failed_records: get(&self.s_failed, &r("gave_up")),
            rejected_records: get(&self.s_failed, &r("rejected")),
            up: {
                let g: Gauge = get(&self.s_up, &l);
                g.set(1);
                g
            },
            held_records: get(&self.s_held, &l),
            health: {
                let h = SinkHealth::default();
                if let Ok(mut all) = self.sink_health.lock() {
                    // A reload replaces the worker of a (sink, route); the
                    // replaced one stays listed while it holds records.
                    for e in all.iter_mut().filter(|e| e.0 == sink && e.1 == route) {
                        e.3 = true;
                    }
                    all.retain(|e| !e.3 || e.2.still_holding());
                    all.push((sink.to_owned(), route.to_owned(), h.clone(), false));
                }
                h
            },
        }
    }

    /// Set how long a sink may fail before `/health` answers 503.
    pub(crate) fn set_unhealthy_after(&mut self, d: std::time::Duration) {
        self.unhealthy_after = d;
    }

    /// After a reload: `/health` lists only these (sink, route) pairs.
    pub(crate) fn keep_sinks(&self, pairs: &[(String, String)]) {
        if let Ok(mut all) = self.sink_health.lock() {
            for e in all.iter_mut() {
                if !pairs.iter().any(|(s, r)| *s == e.0 && *r == e.1) {
                    e.3 = true;
                }
            }
            all.retain(|e| !e.3 || e.2.still_holding());
        }
    }

    /// A listener stopped on purpose (removed or moved by a reload).
    pub(crate) fn forget_listener(&self, name: &str) {
        if let Ok(mut all) = self.listener_health.lock() {
            all.retain(|l| l.name != name);
        }
    }

    /// Register a bound listener for `/health`; the flag stays true while
    /// its task serves.
    pub(crate) fn listener_bound(&self, name: &str) -> Arc<std::sync::atomic::AtomicBool> {
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        if let Ok(mut all) = self.listener_health.lock() {
            all.push(ListenerHealth {
                name: name.to_owned(),
                up: up.clone(),
                degraded: Degraded::default(),
            });
        }
        up
    }

    /// The degraded state of bound listener `name` (registered by
    /// [`Telemetry::listener_bound`]).
    pub(crate) fn listener_degraded(&self, name: &str) -> Degraded {
        self.listener_health
            .lock()
            .ok()
            .and_then(|all| {
                all.iter()
                    .rev()
                    .find(|l| l.name == name)
                    .map(|l| l.degraded.clone())
            })
            .unwrap_or_default()
    }

    /// The degraded state of sink `sink` (one per name: a reload's new
    /// client takes over its predecessor's).
    pub(crate) fn sink_degraded(&self, sink: &str) -> Degraded {
        let Ok(mut all) = self.sink_degraded.lock() else {
            return Degraded::default();
        };
        if let Some((_, d)) = all.iter().find(|(s, _)| s == sink) {
            return d.clone();
        }
        let d = Degraded::default();
        all.push((sink.to_owned(), d.clone()));
        d
    }

    /// `/health`: 200 `"ok"` when every listener is serving and no sink is
    /// failing; 200 `"degraded"` while a sink has been failing for less
    /// than `unhealthy_after` (it retries, its queue holds the data) or an
    /// idle sink's client reaches no destination (`sink_degraded`); 503
    /// `"failing"` with the reasons when a listener stopped or a sink has
    /// been failing for longer.
    pub(crate) fn health(&self) -> (u16, String) {
        let mut sinks = Vec::new();
        let mut reasons = Vec::new();
        let mut degraded = false;
        let sink_degraded: Vec<(String, String)> = self
            .sink_degraded
            .lock()
            .map(|all| {
                all.iter()
                    .filter_map(|(s, d)| Some((s.clone(), d.lock().ok()?.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(mut all) = self.sink_health.lock() {
            all.retain(|e| !e.3 || e.2.still_holding());
            for (sink, route, h, retired) in all.iter() {
                let state = h.state();
                let held = h.held();
                let failing_secs = state.as_ref().map(|(_, d)| d.as_secs());
                let whose = if *retired {
                    ", a previous config's worker"
                } else {
                    ""
                };
                if let Some((error, for_how_long)) = &state {
                    degraded = true;
                    if *for_how_long > self.unhealthy_after {
                        reasons.push(format!(
                            "sink {sink} (route {route}{whose}) failing for {} s, holding {held} records: {error}",
                            for_how_long.as_secs()
                        ));
                    }
                }
                degraded |= held > 0;
                let why = sink_degraded.iter().find(|(s, _)| s == sink).map(|d| &d.1);
                degraded |= why.is_some();
                sinks.push(serde_json::json!({
                    "sink": sink,
                    "route": route,
                    "state": if state.is_some() { "failing" } else { "ok" },
                    "failing_secs": failing_secs,
                    "error": state.map(|(e, _)| e),
                    "held_records": held,
                    "degraded": why,
                    "previous_config": retired,
                }));
            }
        }
        let mut listeners = Vec::new();
        if let Ok(all) = self.listener_health.lock() {
            for l in all.iter() {
                let up = l.up.load(std::sync::atomic::Ordering::Relaxed);
                if !up {
                    reasons.push(format!("listener {} is not serving", l.name));
                }
                let why = l.degraded.lock().ok().and_then(|d| d.clone());
                degraded |= why.is_some();
                listeners
                    .push(serde_json::json!({ "listener": l.name, "up": up, "degraded": why }));
            }
        }
        let (code, status) = if !reasons.is_empty() {
            (503, "failing")
        } else if degraded {
            (200, "degraded")
        } else {
            (200, "ok")
        };
        let body = serde_json::json!({
            "status": status,
            "reasons": reasons,
            "listeners": listeners,
            "sinks": sinks,
        });
        (code, body.to_string())
    }

    /// The Prometheus text exposition.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests;

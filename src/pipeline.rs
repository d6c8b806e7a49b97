//! One frame through the stages: decode → route → encode → push into each
//! matching route's queue. Shared by every listener.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::{OutputConfig, RouteConfig};
use crate::decode::{DecodeOptions, decode};
use crate::queue::RouteQueue;
use crate::route::{ConversionError, encode};
use crate::router::{Router, RouterError};
use crate::telemetry::{ListenerMetrics, RouteMetrics, Telemetry};

/// A route at run time: its output, its queue, its counters.
pub struct RouteRuntime {
    pub name: String,
    pub output: OutputConfig,
    pub capture_names: Vec<(usize, String)>,
    pub queue: Arc<RouteQueue>,
    pub metrics: RouteMetrics,
}

pub struct Pipeline {
    router: Router,
    routes: Vec<RouteRuntime>,
}

impl Pipeline {
    pub fn new(configs: &[RouteConfig], telemetry: &Telemetry) -> Result<Pipeline, RouterError> {
        let router = Router::new(configs)?;
        let routes = configs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let metrics = telemetry.route(&r.name);
                RouteRuntime {
                    name: r.name.clone(),
                    output: r.output.clone(),
                    capture_names: router.capture_names(i).to_vec(),
                    queue: Arc::new(RouteQueue::new(&r.queue, metrics.queue.clone())),
                    metrics,
                }
            })
            .collect();
        Ok(Pipeline { router, routes })
    }

    pub fn routes(&self) -> &[RouteRuntime] {
        &self.routes
    }

    /// Take one frame through every stage. `may_wait`: the reader can stop
    /// reading (TCP) when a `block` queue is full; UDP passes false.
    pub async fn ingest(
        &self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
        opts: &DecodeOptions,
        listener: &ListenerMetrics,
        may_wait: bool,
    ) {
        listener.frames.inc();
        let event = decode(frame, peer, received_nanos, opts);
        if !event.valid {
            listener.invalid_frames.inc();
        }
        if event.lossy_utf8 {
            listener.lossy_utf8_frames.inc();
        }
        let mut matches = Vec::with_capacity(2);
        self.router.route(&event, &mut matches);
        let mut errors: Vec<ConversionError> = Vec::new();
        for m in &matches {
            let Some(route) = self.routes.get(m.route) else {
                continue;
            };
            route.metrics.matched.inc();
            let record = encode(
                &route.output,
                &route.name,
                &route.capture_names,
                &event,
                m.captures.as_ref(),
                &mut errors,
            );
            for e in errors.drain(..) {
                let counter = match e {
                    ConversionError::BadValue { .. } => &route.metrics.conversion_bad_value,
                    ConversionError::NoFields => &route.metrics.conversion_no_fields,
                };
                counter.inc();
                tracing::debug!(route = %route.name, error = %e, "conversion error");
            }
            if let Some(record) = record {
                route.metrics.emitted.inc();
                route.queue.push(record, may_wait).await;
            }
        }
    }
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

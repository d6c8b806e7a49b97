//! One frame through the stages: decode → (multi-line join) → route →
//! encode → push into each matching route's queue. Shared by every listener.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use tokio::time::Instant;

use crate::config::{ListenerConfig, OutputConfig, RouteConfig};
use crate::decode::{DecodeOptions, decode};
use crate::event::Event;
use crate::multiline::Joiner;
use crate::queue::{RouteQueue, SpillShared};
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

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("route {route:?}: {source}")]
    Spill {
        route: String,
        source: crate::spill::SpillError,
    },
}

/// The spill logs of every route that has one, opened once per process
/// and shared by the pipelines a reload creates (one log per directory).
pub struct SpillRegistry {
    dir: std::path::PathBuf,
    logs: std::sync::Mutex<std::collections::HashMap<String, Arc<SpillShared>>>,
}

impl SpillRegistry {
    /// Logs under `<data_dir>/spill/<route>/`.
    pub fn new(data_dir: &std::path::Path) -> SpillRegistry {
        SpillRegistry {
            dir: data_dir.join("spill"),
            logs: Default::default(),
        }
    }

    fn get(
        &self,
        route: &RouteConfig,
        metrics: &crate::queue::QueueMetrics,
    ) -> Result<Option<Arc<SpillShared>>, PipelineError> {
        let Some(config) = &route.queue.spill else {
            return Ok(None);
        };
        let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(log) = logs.get(&route.name) {
            return Ok(Some(log.clone()));
        }
        let log = Arc::new(
            SpillShared::open(&self.dir.join(&route.name), config, metrics).map_err(|source| {
                PipelineError::Spill {
                    route: route.name.clone(),
                    source,
                }
            })?,
        );
        logs.insert(route.name.clone(), log.clone());
        Ok(Some(log))
    }
}

impl Pipeline {
    pub fn new(
        configs: &[RouteConfig],
        telemetry: &Telemetry,
        spills: &SpillRegistry,
    ) -> Result<Pipeline, PipelineError> {
        let router = Router::new(configs)?;
        let mut routes = Vec::with_capacity(configs.len());
        for (i, r) in configs.iter().enumerate() {
            let metrics = telemetry.route(&r.name);
            let spill = spills.get(r, &metrics.queue)?;
            routes.push(RouteRuntime {
                name: r.name.clone(),
                output: r.output.clone(),
                capture_names: router.capture_names(i).to_vec(),
                queue: Arc::new(RouteQueue::with_spill(
                    &r.queue,
                    metrics.queue.clone(),
                    spill,
                )),
                metrics,
            });
        }
        Ok(Pipeline { router, routes })
    }

    pub fn routes(&self) -> &[RouteRuntime] {
        &self.routes
    }

    /// A reader finished a batch of frames (a TCP read, a UDP receive):
    /// spill logs with `fsync = "batch"` sync what it wrote.
    pub fn flush_spills(&self) {
        for r in &self.routes {
            r.queue.flush_spill();
        }
    }

    /// Decode one frame and count what its decoding showed.
    pub fn decode(
        &self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
        opts: &DecodeOptions,
        listener: &ListenerMetrics,
    ) -> Event {
        listener.frames.inc();
        let event = decode(frame, peer, received_nanos, opts);
        if !event.valid {
            listener.invalid_frames.inc();
        }
        if event.lossy_utf8 {
            listener.lossy_utf8_frames.inc();
        }
        event
    }

    /// Route one event, encode it for every matching route and push the
    /// records. `may_wait`: the reader can stop reading (TCP) when a `block`
    /// queue is full; UDP passes false.
    pub async fn dispatch(&self, event: &Event, may_wait: bool) {
        let mut matches = Vec::with_capacity(2);
        self.router.route(event, &mut matches);
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
                event,
                m.captures.as_ref(),
                &mut errors,
            );
            for e in errors.drain(..) {
                let counter = match e {
                    ConversionError::BadValue { .. } => &route.metrics.conversion_bad_value,
                    ConversionError::NoFields => &route.metrics.conversion_no_fields,
                    ConversionError::NoMeasurement { .. } => {
                        &route.metrics.conversion_no_measurement
                    }
                    ConversionError::DroppedPoint => &route.metrics.conversion_dropped_point,
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

/// The pipeline in force, swapped whole by a reload. Readers take the
/// current one per frame (an `Arc`, so a retired pipeline is known to be
/// unused once only its owner holds it).
pub struct PipelineHandle(arc_swap::ArcSwap<Pipeline>);

impl PipelineHandle {
    pub fn new(pipeline: Arc<Pipeline>) -> PipelineHandle {
        PipelineHandle(arc_swap::ArcSwap::new(pipeline))
    }

    pub fn current(&self) -> Arc<Pipeline> {
        self.0.load_full()
    }

    /// Put `new` in force; the previous pipeline is returned.
    pub fn replace(&self, new: Arc<Pipeline>) -> Arc<Pipeline> {
        self.0.swap(new)
    }
}

/// One reader's path into the pipeline (a UDP socket, a TCP connection):
/// decode, join multi-frame messages when configured, dispatch.
pub struct Reader<'a> {
    pipeline: &'a PipelineHandle,
    opts: &'a DecodeOptions,
    metrics: &'a ListenerMetrics,
    joiner: Option<Joiner>,
    ready: Vec<Event>,
    may_wait: bool,
}

impl<'a> Reader<'a> {
    pub fn new(
        pipeline: &'a PipelineHandle,
        config: &'a ListenerConfig,
        metrics: &'a ListenerMetrics,
        may_wait: bool,
    ) -> Self {
        Reader {
            pipeline,
            opts: &config.decode,
            metrics,
            joiner: config.multiline.clone().map(Joiner::new),
            ready: Vec::new(),
            may_wait,
        }
    }

    /// Take one frame.
    pub async fn frame(&mut self, frame: Bytes, peer: Option<SocketAddr>, received_nanos: i64) {
        let pipeline = self.pipeline.current();
        let event = pipeline.decode(frame, peer, received_nanos, self.opts, self.metrics);
        match &mut self.joiner {
            None => pipeline.dispatch(&event, self.may_wait).await,
            Some(joiner) => {
                let now = Instant::now();
                joiner.push(event, now, &mut self.ready);
                // Readers take frames before timers (a frame already in hand
                // may continue an event whose window just passed), so
                // windows are also checked here.
                joiner.expire(now, &mut self.ready);
                self.dispatch_ready().await;
            }
        }
    }

    /// The frames of one read are in: spill logs that sync per batch do so.
    pub fn end_of_batch(&self) {
        self.pipeline.current().flush_spills();
    }

    /// When [`Reader::expire`] has work, if ever.
    pub fn deadline(&self) -> Option<Instant> {
        self.joiner.as_ref().and_then(Joiner::next_deadline)
    }

    /// Emit joined events whose window has passed.
    pub async fn expire(&mut self) {
        if let Some(joiner) = &mut self.joiner {
            joiner.expire(Instant::now(), &mut self.ready);
            self.dispatch_ready().await;
        }
    }

    /// Emit everything pending: the reader is closing.
    pub async fn close(&mut self) {
        if let Some(joiner) = &mut self.joiner {
            joiner.close(&mut self.ready);
            self.dispatch_ready().await;
        }
    }

    async fn dispatch_ready(&mut self) {
        if let Some(joiner) = &mut self.joiner {
            let stats = joiner.take_stats();
            self.metrics
                .multiline_joined_frames
                .inc_by(stats.joined_frames);
            for (counter, n) in self.metrics.multiline_flushes.iter().zip(stats.flushes) {
                if n > 0 {
                    counter.inc_by(n);
                }
            }
        }
        if self.ready.is_empty() {
            return;
        }
        // Drained, not taken: the buffer is kept for the next frame.
        let (pipeline, may_wait) = (self.pipeline.current(), self.may_wait);
        for event in self.ready.drain(..) {
            pipeline.dispatch(&event, may_wait).await;
        }
    }
}

/// Now, in nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

//! One frame through the stages: decode → (multi-line join) → route →
//! encode → push into each matching route's queue.
//!
//! [`FramePath`] is the one frame → decode → join path: the listeners'
//! readers ([`Reader`]), `sluice parse` (`cli::parse`) and the fuzz
//! harness all take their frames through it, so `parse` cannot drift from
//! `run`. [`Reader`] adds routing, encoding and the push into the queues.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;

use tokio::time::Instant;

use crate::config::{ListenerConfig, OutputConfig, RouteConfig};
use crate::decode::{DecodeMode, DecodeOptions, decode, decode_into};
use crate::event::Event;
use crate::event::{LenientRule, PerRule};
use crate::multiline::{Joiner, MultilineConfig};
use crate::output::{Origin, RouteText, kafka_part};
use crate::queue::{RouteQueue, SpillShared};
use crate::record::SlabPool;

mod encode;
mod staged;
use crate::router::{Router, RouterError};
use crate::telemetry::{ListenerMetrics, RouteMetrics, Telemetry};
pub(crate) use staged::StagingPool;
use staged::{Batch, StagedRoute, recycle};

/// A route at run time: its output, its queue, its counters.
pub(crate) struct RouteRuntime {
    pub(crate) name: String,
    /// The name as documents carry it, and their keys' seed.
    text: RouteText,
    pub(crate) output: OutputConfig,
    pub(crate) capture_names: Vec<(usize, String)>,
    /// A route to a Kafka sink: its topic and key templates.
    pub(crate) kafka: Option<crate::config::KafkaRoute>,
    /// A route to an Elasticsearch sink: its action lines' settings and
    /// their framing (see [`crate::record::Payload`]).
    pub(crate) bulk: Option<(crate::config::BulkRoute, u64)>,
    /// Emptied slabs, for readers to stage the route's records in: one
    /// pool for all the pipeline's routes, so what it keeps is bounded
    /// once, not per route.
    pub(crate) slabs: Arc<SlabPool>,
    pub(crate) queue: Arc<RouteQueue>,
    pub(crate) metrics: RouteMetrics,
}

pub(crate) struct Pipeline {
    router: Router,
    routes: Vec<RouteRuntime>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PipelineError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("route {route:?}: {source}")]
    Spill {
        route: String,
        source: crate::queue::spill::SpillError,
    },
}

/// The spill logs of every route that has one, opened once per process
/// and shared by the pipelines a reload creates (one log per directory).
pub(crate) struct SpillRegistry {
    dir: std::path::PathBuf,
    logs: std::sync::Mutex<std::collections::HashMap<String, Arc<SpillShared>>>,
}

impl SpillRegistry {
    /// Logs under `<data_dir>/spill/<route>/`.
    pub(crate) fn new(data_dir: &std::path::Path) -> SpillRegistry {
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
    pub(crate) fn new(
        configs: &[RouteConfig],
        telemetry: &Telemetry,
        spills: &SpillRegistry,
    ) -> Result<Pipeline, PipelineError> {
        let router = Router::new(configs)?;
        let mut routes = Vec::with_capacity(configs.len());
        let slabs = Arc::new(SlabPool::default());
        for (i, r) in configs.iter().enumerate() {
            let metrics = telemetry.route(&r.name);
            let spill = spills.get(r, &metrics.queue)?;
            routes.push(RouteRuntime {
                name: r.name.clone(),
                text: RouteText::new(&r.name),
                output: r.output.clone(),
                capture_names: router.capture_names(i).to_vec(),
                kafka: r.kafka.clone(),
                bulk: r.bulk.clone().map(|b| {
                    let framing = b.framing();
                    (b, framing)
                }),
                slabs: slabs.clone(),
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

    pub(crate) fn routes(&self) -> &[RouteRuntime] {
        &self.routes
    }

    /// A reader finished a batch of frames (a TCP read, a UDP receive):
    /// spill logs with `fsync = "batch"` sync what it wrote.
    pub(crate) async fn flush_spills(&self) {
        for r in &self.routes {
            r.queue.flush_spill().await;
        }
    }

    /// Route one event and encode it for every matching route, into
    /// `batch` (pushed by [`Pipeline::push_batch`]).
    fn dispatch(&self, event: &Event, origin: &Origin, batch: &mut Batch) {
        // Empty, and borrowing nothing: usable for this event as it is.
        let mut matches: Vec<crate::router::RouteMatch<'_>> = std::mem::take(&mut batch.matches);
        self.router.route(event, &mut matches);
        for m in &matches {
            let (Some(route), Some(staged)) =
                (self.routes.get(m.route), batch.routes.get_mut(m.route))
            else {
                continue;
            };
            staged.matched += 1;
            if !Self::encode(route, staged, event, m.captures.as_ref(), &mut batch.errors) {
                continue;
            }
            if let (Some(k), Some(record)) = (&route.kafka, staged.records.last_mut()) {
                let raw = matches!(route.output, OutputConfig::Raw);
                record.kafka = Some(Box::new(kafka_part(k, &route.name, event, origin, raw)));
            }
            batch.records += 1;
        }
        batch.matches = recycle(matches);
    }

    /// Count what `batch` matched and push its records into their queues,
    /// one lock and one wake-up per route. `may_wait`: the reader can stop
    /// reading (TCP) when a `block` queue is full; UDP passes false.
    async fn push_batch(&self, batch: &mut Batch, may_wait: bool) {
        for (route, staged) in self.routes.iter().zip(&mut batch.routes) {
            if staged.matched > 0 {
                route.metrics.matched.inc_by(staged.matched);
                staged.matched = 0;
            }
            if !staged.records.is_empty() {
                staged.seal(&route.slabs);
                route.metrics.emitted.inc_by(staged.records.len() as u64);
                route.queue.push_all(&mut staged.records, may_wait).await;
            }
        }
        batch.records = 0;
    }
}

/// Records a reader stages before it pushes them even mid-read: bounds the
/// memory a read of many small frames holds outside the queues.
const MAX_STAGED: usize = 1024;

/// The pipeline in force, swapped whole by a reload. Readers take the
/// current one per batch of frames (an `Arc`, so a retired pipeline is known to be
/// unused once only its owner holds it).
pub(crate) struct PipelineHandle(arc_swap::ArcSwap<Pipeline>);

impl PipelineHandle {
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> PipelineHandle {
        PipelineHandle(arc_swap::ArcSwap::new(pipeline))
    }

    pub(crate) fn current(&self) -> Arc<Pipeline> {
        self.0.load_full()
    }

    /// Put `new` in force; the previous pipeline is returned.
    pub(crate) fn replace(&self, new: Arc<Pipeline>) -> Arc<Pipeline> {
        self.0.swap(new)
    }
}

/// One reader's path into the pipeline (a UDP socket, a TCP connection):
/// decode, join multi-frame messages when configured, route and encode.
/// The records of one read are staged and pushed together at
/// [`Reader::end_of_batch`] (or after [`MAX_STAGED`]), one lock and one
/// wake-up per route rather than per record; counters go the same way.
pub(crate) struct Reader<'a> {
    pipeline: &'a PipelineHandle,
    path: FramePath<'a>,
    metrics: &'a ListenerMetrics,
    ready: Vec<Event>,
    may_wait: bool,
    /// The pipeline in force when this batch began; released at the push,
    /// so a reload is not held up by an idle reader.
    current: Option<Arc<Pipeline>>,
    batch: Batch,
    numbers: FrameNumbers,
    /// The listener, as a raw envelope names it.
    origin: Origin,
}

/// The per-frame path shared by every reader of frames (listeners,
/// `sluice parse`, the fuzz harness): decode one frame, reject it in strict
/// mode when a lenient rule fired, and join multi-frame messages when
/// configured. Completed events come out in `ready`, in order; the frames
/// taken are counted until [`FramePath::take_counts`].
pub(crate) struct FramePath<'a> {
    opts: &'a DecodeOptions,
    /// The options with another zone, for frames that bring their own
    /// (Kafka envelopes); the last one built, reused while it fits.
    zoned: Option<DecodeOptions>,
    joiner: Option<Joiner>,
    counts: FrameCounts,
}

/// Where a frame that another process received comes from (a Kafka raw
/// envelope): it is decoded as if this process had received it then, from
/// that peer, on a listener with that zone, and its documents get the ids
/// the receiving process would have given them.
pub(crate) struct Received {
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) received_nanos: i64,
    /// (nonce, frame number) of the receiving process; `None`: this
    /// process numbers the frame.
    pub(crate) identity: Option<(u64, u64)>,
    /// The receiving listener's zone; `None`: this listener's.
    pub(crate) timezone: Option<chrono_tz::Tz>,
    pub(crate) ack: Option<crate::record::Ack>,
    /// The join stream within this listener (a Kafka record's topic and
    /// partition): frames of different streams never join, whatever
    /// their peers.
    pub(crate) stream: u64,
}

/// What became of a frame [`FramePath::frame`] took.
#[must_use]
pub(crate) enum Fate {
    /// Decoded, and joined or emitted.
    Accepted,
    /// Strict mode and a lenient rule fired: counted, it goes no further.
    Rejected(Box<Event>),
}

impl<'a> FramePath<'a> {
    pub(crate) fn new(opts: &'a DecodeOptions, multiline: Option<MultilineConfig>) -> Self {
        FramePath {
            opts,
            zoned: None,
            joiner: multiline.map(Joiner::new),
            counts: FrameCounts::default(),
        }
    }

    /// Take one frame received at `received_nanos` (`now` on the joiner's
    /// clock); events it completes go to `ready`.
    pub(crate) fn frame(
        &mut self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
        frame_number: u64,
        now: Instant,
        ready: &mut Vec<Event>,
    ) -> Fate {
        match self.accept(frame, peer, received_nanos, frame_number) {
            Ok(event) => {
                self.join(event, now, ready);
                Fate::Accepted
            }
            Err(fate) => fate,
        }
    }

    /// [`FramePath::frame`] for a frame received elsewhere (see [`Received`]).
    pub(crate) fn frame_from(
        &mut self,
        frame: Bytes,
        origin: Received,
        frame_number: u64,
        now: Instant,
        ready: &mut Vec<Event>,
    ) -> Fate {
        let opts = match origin.timezone {
            Some(tz) if tz != self.opts.timezone => {
                if self.zoned.as_ref().is_none_or(|z| z.timezone != tz) {
                    let mut zoned = self.opts.clone();
                    zoned.timezone = tz;
                    self.zoned = Some(zoned);
                }
                self.zoned.as_ref().unwrap_or(self.opts)
            }
            _ => self.opts,
        };
        let mut event = decode(frame, origin.peer, origin.received_nanos, opts);
        event.frame_number = frame_number;
        event.id_nonce = origin.identity.map(|(nonce, _)| nonce);
        event.ack = origin.ack;
        if self.count(origin.stream, &event) {
            self.join_on(origin.stream, event, now, ready);
            Fate::Accepted
        } else {
            Fate::Rejected(Box::new(event))
        }
    }

    /// Decode and count one frame: its event, or why it goes no further.
    pub(crate) fn accept(
        &mut self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
        frame_number: u64,
    ) -> Result<Event, Fate> {
        let mut event = decode(frame, peer, received_nanos, self.opts);
        event.frame_number = frame_number;
        if self.count(0, &event) {
            Ok(event)
        } else {
            Err(Fate::Rejected(Box::new(event)))
        }
    }

    /// Count a decoded frame of join stream `stream`; `false` when it goes
    /// no further (strict mode and a lenient rule fired). A line without
    /// PRI that continues a pending event is joined whole, whatever the
    /// decoder read of it (`pri_missing`, `space_before_pri`): counted as
    /// the undecoded line it stays, never rejected.
    #[inline]
    fn count(&mut self, stream: u64, event: &Event) -> bool {
        let bare = (event.lenient.contains(LenientRule::PriMissing)
            || event.lenient.contains(LenientRule::SpaceBeforePri))
            && self
                .joiner
                .as_ref()
                .is_some_and(|j| j.continues_bare(stream, event));
        self.counts.frames += 1;
        self.counts.invalid += u64::from(!event.valid || bare);
        self.counts.lossy_utf8 += u64::from(event.lossy_utf8);
        if !event.lenient.is_empty() && !bare {
            for (k, rule) in LenientRule::ALL.iter().enumerate() {
                self.counts.lenient[k] += u64::from(event.lenient.contains(*rule));
            }
            if self.opts.mode == DecodeMode::Strict {
                self.counts.strict_rejected += 1;
                return false;
            }
        }
        true
    }

    /// An accepted event through the joiner (when the path joins); what is
    /// complete goes to `ready`.
    pub(crate) fn join(&mut self, event: Event, now: Instant, ready: &mut Vec<Event>) {
        self.join_on(0, event, now, ready);
    }

    /// [`FramePath::join`] on join stream `stream` ([`Received::stream`]).
    fn join_on(&mut self, stream: u64, event: Event, now: Instant, ready: &mut Vec<Event>) {
        match &mut self.joiner {
            None => ready.push(event),
            Some(joiner) => {
                joiner.push_on(stream, event, now, ready);
                // Readers take frames before timers (a frame already in hand
                // may continue an event whose window just passed), so
                // windows are also checked here.
                joiner.expire(now, ready);
            }
        }
    }

    /// Whether events wait in a joiner ([`FramePath::join`] is more than a push).
    pub(crate) fn joins(&self) -> bool {
        self.joiner.is_some()
    }

    /// The counts of the frames taken since the last call.
    fn take_counts(&mut self) -> FrameCounts {
        std::mem::take(&mut self.counts)
    }

    /// The joiner's counters since the last call, if it joins.
    fn take_join_stats(&mut self) -> Option<crate::multiline::JoinStats> {
        self.joiner.as_mut().map(Joiner::take_stats)
    }

    /// When [`FramePath::expire`] has work, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.joiner.as_ref().and_then(Joiner::next_deadline)
    }

    /// Emit joined events whose window has passed at `now`; `false` when
    /// this path does not join.
    pub(crate) fn expire(&mut self, now: Instant, ready: &mut Vec<Event>) -> bool {
        match &mut self.joiner {
            Some(joiner) => {
                joiner.expire(now, ready);
                true
            }
            None => false,
        }
    }

    /// Emit everything pending: the input ended.
    pub(crate) fn close(&mut self, ready: &mut Vec<Event>) {
        if let Some(joiner) = &mut self.joiner {
            joiner.close(ready);
        }
    }
}

/// Frame numbers unique in the process: each reader takes a block of
/// [`FrameNumbers::BLOCK`] from one shared counter and numbers its frames
/// from it, so readers on different threads do not share a counter's
/// cache line per frame.
#[derive(Default)]
struct FrameNumbers {
    next: u64,
    end: u64,
}

impl FrameNumbers {
    const BLOCK: u64 = 4096;

    fn next(&mut self) -> u64 {
        static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        if self.next == self.end {
            self.next = TAKEN.fetch_add(Self::BLOCK, std::sync::atomic::Ordering::Relaxed);
            self.end = self.next + Self::BLOCK;
        }
        let n = self.next;
        self.next += 1;
        n
    }
}

/// Listener counters of the frames staged.
#[derive(Default)]
struct FrameCounts {
    frames: u64,
    invalid: u64,
    lossy_utf8: u64,
    /// Frames per lenient rule, indexed like [`LenientRule::ALL`].
    lenient: PerRule<u64>,
    strict_rejected: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        pipeline: &'a PipelineHandle,
        config: &'a ListenerConfig,
        metrics: &'a ListenerMetrics,
        may_wait: bool,
    ) -> Self {
        Reader {
            pipeline,
            path: FramePath::new(&config.decode, config.multiline.clone()),
            metrics,
            ready: Vec::new(),
            may_wait,
            current: None,
            batch: Batch {
                routes: Vec::new(),
                records: 0,
                matches: Vec::new(),
                errors: Vec::new(),
            },
            numbers: FrameNumbers::default(),
            origin: Origin::of(config),
        }
    }

    /// Take one frame.
    pub(crate) async fn frame(
        &mut self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
    ) {
        if self.take_frame(frame, peer, received_nanos) {
            self.push().await;
        }
    }

    /// [`Reader::frame`] without a future, for a caller that takes many
    /// frames in a row (a TCP read's): `true` when the staged records
    /// reached [`MAX_STAGED`], and the caller pushes them
    /// ([`Reader::push`]) before the next frame. Setting up, polling and
    /// dropping `frame`'s future cost about 50 instructions a frame
    /// (callgrind, tcp-one-route).
    #[must_use]
    #[inline]
    pub(crate) fn take_frame(
        &mut self,
        frame: Bytes,
        peer: Option<SocketAddr>,
        received_nanos: i64,
    ) -> bool {
        self.take(frame, peer, received_nanos);
        self.batch.records >= MAX_STAGED
    }

    /// Take one frame another process received (a Kafka envelope), or
    /// one received now without a peer, carrying `origin.ack`.
    pub(crate) async fn frame_from(&mut self, frame: Bytes, origin: Received) {
        let number = match origin.identity {
            Some((_, number)) => number,
            None => self.numbers.next(),
        };
        if let Fate::Accepted =
            self.path
                .frame_from(frame, origin, number, Instant::now(), &mut self.ready)
        {
            self.dispatch_ready();
        }
        if self.batch.records >= MAX_STAGED {
            self.push().await;
        }
    }

    /// Decode, join and route one frame into the batch (no await: the
    /// event lives on this stack frame, not in the reader's future).
    fn take(&mut self, frame: Bytes, peer: Option<SocketAddr>, received_nanos: i64) {
        let number = self.numbers.next();
        if self.path.joins() {
            // A rejected frame is counted by the path and goes no further.
            if let Ok(event) = self.path.accept(frame, peer, received_nanos, number) {
                self.path.join(event, Instant::now(), &mut self.ready);
                self.dispatch_ready();
            }
            return;
        }
        // Nothing to join: decoded in place and routed by reference, never
        // moved (through `ready`, out of `accept`'s result or out of
        // `decode`'s: each move is a copy of the whole event).
        let mut event = Event::without_text(0, None, peer, received_nanos);
        decode_into(&mut event, frame, self.path.opts);
        event.frame_number = number;
        if self.path.count(0, &event) {
            begin(&mut self.current, self.pipeline, &mut self.batch).dispatch(
                &event,
                &self.origin,
                &mut self.batch,
            );
        }
    }

    /// The frames of one read are in: push what they produced, and spill
    /// logs that sync per batch do so.
    pub(crate) async fn end_of_batch(&mut self) {
        let pipeline = self.current.clone();
        self.push().await;
        if let Some(p) = pipeline {
            p.flush_spills().await;
        }
    }

    /// Give back the staging lists' allocations once a batch is pushed:
    /// for a reader of one of many connections, whose lists, sized for
    /// its largest read (a 64 KiB read stages about 256 records of 72
    /// bytes for one route), would otherwise stay with it while it waits
    /// for bytes. They go to `pool`, for the next reader that reads
    /// ([`Reader::reuse_staging`]), rather than being freed and grown
    /// again from nothing by every read.
    pub(crate) fn release_staging(&mut self, pool: &StagingPool) {
        if self.current.is_some() || !self.batch.lend(pool) {
            for staged in &mut self.batch.routes {
                if staged.records.is_empty() {
                    staged.records = Vec::new();
                }
                if staged.scratch.capacity() > 0 {
                    staged.scratch = String::new();
                }
            }
        }
        if self.ready.is_empty() {
            self.ready = Vec::new();
        }
    }

    /// Before a read: stage into lists another reader released to `pool`
    /// ([`Reader::release_staging`]), if this one holds none.
    pub(crate) fn reuse_staging(&mut self, pool: &StagingPool) {
        if self.current.is_none() {
            self.batch.borrow(pool);
        }
    }

    /// Count the staged frames and push the staged records.
    pub(crate) async fn push(&mut self) {
        let counts = self.path.take_counts();
        if counts.frames > 0 {
            self.metrics.frames.inc_by(counts.frames);
        }
        if counts.invalid > 0 {
            self.metrics.invalid_frames.inc_by(counts.invalid);
        }
        if counts.lossy_utf8 > 0 {
            self.metrics.lossy_utf8_frames.inc_by(counts.lossy_utf8);
        }
        for (counter, n) in self.metrics.lenient_frames.iter().zip(counts.lenient.0) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
        if counts.strict_rejected > 0 {
            self.metrics
                .strict_rejected_frames
                .inc_by(counts.strict_rejected);
        }
        if let Some(p) = self.current.take() {
            p.push_batch(&mut self.batch, self.may_wait).await;
        }
    }

    /// When [`Reader::expire`] has work, if ever.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.path.deadline()
    }

    /// Emit joined events whose window has passed.
    pub(crate) async fn expire(&mut self) {
        if self.path.expire(Instant::now(), &mut self.ready) {
            self.dispatch_ready();
            self.end_of_batch().await;
        }
    }

    /// Emit everything pending: the reader is closing.
    pub(crate) async fn close(&mut self) {
        self.path.close(&mut self.ready);
        self.dispatch_ready();
        self.end_of_batch().await;
    }

    fn dispatch_ready(&mut self) {
        if let Some(stats) = self.path.take_join_stats() {
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
        let pipeline = begin(&mut self.current, self.pipeline, &mut self.batch);
        // Drained, not taken: the buffer is kept for the next frame.
        for event in self.ready.drain(..) {
            pipeline.dispatch(&event, &self.origin, &mut self.batch);
        }
    }
}

/// The pipeline a reader's batch is routed by: the one in force, taken at
/// the batch's first frame (with a staging slot per route). Inlined, its
/// first frame's work kept out of line: every frame asks.
#[inline]
fn begin<'p>(
    current: &'p mut Option<Arc<Pipeline>>,
    handle: &PipelineHandle,
    batch: &mut Batch,
) -> &'p Arc<Pipeline> {
    current.get_or_insert_with(|| begin_batch(handle, batch))
}

/// [`begin`] at a batch's first frame.
#[cold]
#[inline(never)]
fn begin_batch(handle: &PipelineHandle, batch: &mut Batch) -> Arc<Pipeline> {
    let p = handle.current();
    batch
        .routes
        .resize_with(p.routes.len(), StagedRoute::default);
    p
}

/// Now, in nanoseconds since the Unix epoch.
pub(crate) fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "ingest_tests.rs"]
mod tests;

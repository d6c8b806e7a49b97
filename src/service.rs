//! `sluice run`: build every stage from a [`Config`], serve, and shut down
//! gracefully.
//!
//! Shutdown: the root token is cancelled (first SIGINT/SIGTERM); listeners
//! stop accepting and finish the frames in hand; then every queue is closed
//! and its sink worker drains it; all within `shutdown_timeout_secs`. What a
//! queue still holds at the deadline is counted as lost and reported.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::serve_admin;
use crate::config::Config;
use crate::ingest::{Pipeline, PipelineHandle, SpillRegistry};
use crate::listener::{BindError, BoundListener, protocol_name};
use crate::queue::deliver::run_worker;
use crate::reload::{ReloadRequest, answer_all, coalesce};
use crate::router::RouterError;
use crate::sinks::{Sink, SinkOpenError};
use crate::telemetry::Telemetry;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Sink(#[from] SinkOpenError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Pipeline(#[from] crate::ingest::PipelineError),
    #[error("admin listener: cannot bind {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What is bound, for the readiness line.
#[derive(Debug, Clone)]
pub(crate) struct Ready {
    /// (name, protocol, address)
    pub listeners: Vec<(String, &'static str, SocketAddr)>,
    pub admin: Option<SocketAddr>,
}

impl Ready {
    /// The one machine-readable readiness line.
    pub(crate) fn to_json_line(&self) -> String {
        let listeners: Vec<serde_json::Value> = self
            .listeners
            .iter()
            .map(|(name, protocol, addr)| {
                serde_json::json!({"name": name, "protocol": protocol, "address": addr.to_string()})
            })
            .collect();
        serde_json::json!({
            "ready": true,
            "listeners": listeners,
            "admin": self.admin.map(|a| a.to_string()),
        })
        .to_string()
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunReport {
    /// Records lost to the shutdown: still queued at its deadline, or
    /// pushed into a queue after it closed (both counted in /metrics as
    /// `sluice_queue_dropped_records_total{reason="shutdown"}`).
    pub lost_records: usize,
}

/// One configuration's routes and sinks: the pipeline, its queues and the
/// sink workers draining them.
struct Generation {
    pipeline: Arc<Pipeline>,
    workers: TaskTracker,
}

impl Generation {
    /// Open the sinks, build the pipeline and start a worker per route.
    fn start(
        config: &Config,
        telemetry: &Arc<Telemetry>,
        spills: &SpillRegistry,
    ) -> Result<Generation, ServiceError> {
        let mut sinks = Vec::with_capacity(config.sinks.len());
        for s in &config.sinks {
            sinks.push(Arc::new(Sink::open(s, telemetry)?));
        }
        let pipeline = Arc::new(Pipeline::new(&config.routes, telemetry, spills)?);
        let workers = TaskTracker::new();
        for (route, rt) in config.routes.iter().zip(pipeline.routes()) {
            let (Some(sink_config), Some(sink)) =
                (config.sinks.get(route.sink), sinks.get(route.sink))
            else {
                continue;
            };
            workers.spawn(run_worker(
                route.name.clone(),
                rt.queue.clone(),
                sink.clone(),
                sink_config.clone(),
                telemetry.sink(&sink_config.name, &route.name),
            ));
        }
        workers.close();
        Ok(Generation { pipeline, workers })
    }

    /// Close the queues once no reader holds the pipeline any more; the
    /// workers then drain what is queued and stop.
    async fn retire(&self) {
        while Arc::strong_count(&self.pipeline) > 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for rt in self.pipeline.routes() {
            rt.queue.close();
        }
    }

    /// At the shutdown deadline: drop what is left, counted.
    fn abandon(&self) -> usize {
        let mut lost = 0;
        for rt in self.pipeline.routes() {
            let n = rt.queue.abandon();
            if n > 0 {
                tracing::error!(route = %rt.name, lost = n, "shutdown deadline reached: records still queued are lost");
            }
            lost += n;
        }
        lost
    }
}

/// A listener being served, with the token that stops it alone.
struct Serving {
    config: crate::config::ListenerConfig,
    local_addr: SocketAddr,
    stop: CancellationToken,
}

/// Start serving `b` on `readers`, stopped by a child of `shutdown`.
fn serve_listener(
    b: BoundListener,
    handle: &Arc<PipelineHandle>,
    telemetry: &Arc<Telemetry>,
    shutdown: &CancellationToken,
    readers: &TaskTracker,
) -> Serving {
    let stop = shutdown.child_token();
    let metrics = telemetry.listener(&b.config.name);
    let up = telemetry.listener_bound(&b.config.name);
    let serving = Serving {
        config: b.config.clone(),
        local_addr: b.local_addr,
        stop: stop.clone(),
    };
    let kafka = (b.config.protocol == crate::config::ListenerProtocol::Kafka).then(|| {
        (
            telemetry.kafka_source(&b.config.name),
            telemetry.listener_degraded(&b.config.name),
        )
    });
    let serve = b.serve(handle.clone(), metrics, kafka, stop, readers.clone());
    readers.spawn(async move {
        serve.await;
        // Listeners serve until stopped; one that ends earlier shows on
        // /health (and one that was stopped is no longer listed there).
        up.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    serving
}

/// Run until `shutdown` is cancelled, reloading the config from its file on
/// each request from `reloads`. `on_ready` is called once everything is
/// bound and serving.
pub(crate) async fn run(
    config: Config,
    shutdown: CancellationToken,
    mut reloads: tokio::sync::mpsc::Receiver<ReloadRequest>,
    reload_sender: Option<tokio::sync::mpsc::Sender<ReloadRequest>>,
    on_ready: impl FnOnce(&Ready),
) -> Result<RunReport, ServiceError> {
    let mut telemetry = Telemetry::new();
    telemetry.set_unhealthy_after(config.unhealthy_after);
    let telemetry = Arc::new(telemetry);

    let spills = SpillRegistry::new(&config.data_dir);
    // Marks the data dir for `sluice spill verify`, durable routes or not;
    // a durable route's log fails to open (and says why) without it.
    if let Err(e) = crate::queue::spill::verify::create_spill_folder(&config.data_dir) {
        tracing::warn!(error = %e, "data dir: cannot create its spill folder");
    }
    let mut current = Generation::start(&config, &telemetry, &spills)?;
    let handle = Arc::new(PipelineHandle::new(current.pipeline.clone()));

    let mut bound = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        bound.push(BoundListener::bind(l).await?);
    }
    let admin = bind_admin(&config).await?;

    let ready = Ready {
        listeners: bound
            .iter()
            .map(|b| {
                (
                    b.config.name.clone(),
                    protocol_name(b.config.protocol),
                    b.local_addr,
                )
            })
            .collect(),
        admin: admin.as_ref().map(|(_, a)| *a),
    };

    let readers = TaskTracker::new();
    let mut serving: Vec<Serving> = bound
        .into_iter()
        .map(|b| serve_listener(b, &handle, &telemetry, &shutdown, &readers))
        .collect();
    let admin_stop = CancellationToken::new();
    let admin_task = admin.map(|(l, _)| {
        let telemetry = telemetry.clone();
        let stop = admin_stop.clone();
        let reload = reload_sender.clone();
        let access = config.admin_access.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_admin(l, telemetry, reload, access, stop).await {
                tracing::error!(error = %e, "admin listener failed");
            }
        })
    });
    drop(reload_sender);

    on_ready(&ready);
    let mut config = config;
    let retiring = TaskTracker::new();
    // Generations still draining after a reload, for the shutdown deadline.
    // Weak: the retiring task owns each one and frees it (router, queues,
    // sinks) once its workers are done; holding them here kept every
    // generation alive for the life of the process (issue #20).
    let mut retired: Vec<std::sync::Weak<Generation>> = Vec::new();
    loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = reloads.recv() => r,
        };
        let Some(request) = request else {
            shutdown.cancelled().await;
            break;
        };
        let replies = coalesce(request, &mut reloads);
        telemetry.admin.reload_requests.inc_by(replies.len() as u64);
        telemetry.admin.reloads.inc();
        let outcome = reload(
            &config,
            &handle,
            &telemetry,
            &spills,
            &shutdown,
            &readers,
            &mut serving,
        )
        .await;
        let answer = match outcome {
            Ok((new_config, generation, summary)) => {
                let old = std::mem::replace(&mut current, generation);
                config = new_config;
                let old = Arc::new(old);
                retired.retain(|g| g.strong_count() > 0);
                retired.push(Arc::downgrade(&old));
                retiring.spawn(async move {
                    old.retire().await;
                    old.workers.wait().await;
                });
                tracing::info!(config = %config.origin, "reloaded: {summary}");
                Ok(summary)
            }
            Err(e) => {
                tracing::error!(config = %config.origin, error = %e, "reload refused: the running config stays");
                Err(e)
            }
        };
        answer_all(replies, &answer);
    }

    let report = drain(&config, current, &retired, handle, readers, retiring).await;
    admin_stop.cancel();
    if let Some(t) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
    }
    tracing::info!(lost = report.lost_records, "stopped");
    Ok(report)
}

/// Shut down within `config.shutdown_timeout`: the readers finish the
/// frames in hand, the queues of every generation still alive drain, and
/// what is left at the deadline is dropped and counted (reason
/// `shutdown`); the report says how many records that was.
async fn drain(
    config: &Config,
    current: Generation,
    retired: &[std::sync::Weak<Generation>],
    handle: Arc<PipelineHandle>,
    readers: TaskTracker,
    retiring: TaskTracker,
) -> RunReport {
    let deadline = Instant::now() + config.shutdown_timeout;
    let retired: Vec<Arc<Generation>> = retired.iter().filter_map(|g| g.upgrade()).collect();
    // What the shutdown loses is what it counts under reason "shutdown",
    // from here on, over every route of every generation still alive.
    let mut shutdown_drops: Vec<(&str, prometheus_client::metrics::counter::Counter, u64)> =
        Vec::new();
    for rt in std::iter::once(&current)
        .chain(retired.iter().map(|g| &**g))
        .flat_map(|g| g.pipeline.routes())
    {
        if !shutdown_drops.iter().any(|(name, _, _)| *name == rt.name) {
            let c = rt.metrics.queue.dropped_shutdown.clone();
            let before = c.get();
            shutdown_drops.push((&rt.name, c, before));
        }
    }
    tracing::info!(timeout = ?config.shutdown_timeout, "shutting down: finishing frames in hand, draining queues");
    readers.close();
    if tokio::time::timeout_at(deadline, readers.wait())
        .await
        .is_err()
    {
        tracing::warn!("listeners did not finish before the shutdown deadline");
    }
    drop(handle);
    for rt in current.pipeline.routes() {
        rt.queue.close();
    }
    retiring.close();
    let mut report = RunReport::default();
    let all_done = async {
        current.workers.wait().await;
        retiring.wait().await;
    };
    if tokio::time::timeout_at(deadline, all_done).await.is_err() {
        current.abandon();
        for g in &retired {
            g.abandon();
        }
        // Give workers a moment to notice their queues are gone.
        let _ = tokio::time::timeout(Duration::from_millis(500), current.workers.wait()).await;
    }
    // Readers that were still waiting to push found the queues closed and
    // counted what they held; give them a moment to finish doing so.
    let _ = tokio::time::timeout(Duration::from_millis(500), readers.wait()).await;
    report.lost_records = shutdown_drops
        .iter()
        .map(|(_, c, before)| c.get().saturating_sub(*before) as usize)
        .sum();
    report
}

/// Bind the admin listener, if the config has one; warn when it listens
/// beyond loopback without a token.
async fn bind_admin(
    config: &Config,
) -> Result<Option<(tokio::net::TcpListener, SocketAddr)>, ServiceError> {
    let Some(addr) = config.admin else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Admin { addr, source })?;
    let local = l
        .local_addr()
        .map_err(|source| ServiceError::Admin { addr, source })?;
    if !local.ip().is_loopback() && config.admin_access.token.is_none() {
        tracing::warn!(
            admin = %local,
            "admin listens beyond loopback without a token: anyone who can reach it can POST /reload; set [admin] token (e.g. token = \"${{SLUICE_ADMIN_TOKEN}}\") or listen on 127.0.0.1"
        );
    }
    Ok(Some((l, local)))
}

/// Where a listener reads, in a reload answer: `udp 127.0.0.1:5514`, or
/// `kafka topics a,b group g` (a consumer binds no address).
fn listener_where(l: &crate::config::ListenerConfig, local: SocketAddr) -> String {
    match &l.kafka {
        Some(k) => format!("kafka {}", k.summary()),
        None => format!("{} {local}", protocol_name(l.protocol)),
    }
}

/// Re-read the config file; on success the new generation is in force
/// (listeners added, removed or rebound where their address changed) and
/// returned with a summary; on failure nothing changed.
async fn reload(
    running: &Config,
    handle: &Arc<PipelineHandle>,
    telemetry: &Arc<Telemetry>,
    spills: &SpillRegistry,
    shutdown: &CancellationToken,
    readers: &TaskTracker,
    serving: &mut Vec<Serving>,
) -> Result<(Config, Generation, String), String> {
    if running.origin.starts_with('<') {
        return Err("the embedded default has no file to re-read; start with -c FILE".into());
    }
    // The router is built (and so validated) once, by Generation::start
    // below, before anything changes.
    let new = Config::load_relative_to(std::path::Path::new(&running.origin), &running.base_dir)
        .map_err(|e| e.to_string())?;
    let mut notes = Vec::new();

    // Listeners: bind what is new or moved before anything changes, so a
    // failed bind refuses the whole reload.
    let same_socket = |a: &crate::config::ListenerConfig, b: &crate::config::ListenerConfig| {
        a.protocol == b.protocol
            && a.listen == b.listen
            && format!("{:?}", a.kafka) == format!("{:?}", b.kafka)
    };
    let mut to_bind = Vec::new();
    for l in &new.listeners {
        match serving.iter().find(|s| s.config.name == l.name) {
            Some(s) if same_socket(&s.config, l) => {
                if format!("{:?}", s.config) != format!("{:?}", l) {
                    notes.push(format!(
                        "listener {}: settings other than {} apply after a restart",
                        l.name,
                        if l.kafka.is_some() {
                            "its consumer's (brokers, topics, group_id, …)"
                        } else {
                            "its address"
                        }
                    ));
                }
            }
            _ => to_bind.push(l.clone()),
        }
    }
    let mut bound = Vec::new();
    for l in &to_bind {
        // A moved listener's old socket may hold the address only when the
        // protocol changed; the address itself changed otherwise.
        bound.push(BoundListener::bind(l).await.map_err(|e| e.to_string())?);
    }
    let generation = Generation::start(&new, telemetry, spills).map_err(|e| e.to_string())?;

    // In force from here on.
    let old = handle.replace(generation.pipeline.clone());
    drop(old);
    let keep: Vec<String> = new
        .listeners
        .iter()
        .filter(|l| !to_bind.iter().any(|b| b.name == l.name))
        .map(|l| l.name.clone())
        .collect();
    serving.retain(|s| {
        let stays = keep.contains(&s.config.name);
        if !stays {
            s.stop.cancel();
            telemetry.forget_listener(&s.config.name);
            notes.push(format!(
                "listener {} stopped ({})",
                s.config.name,
                listener_where(&s.config, s.local_addr)
            ));
        }
        stays
    });
    for b in bound {
        notes.push(format!(
            "listener {} listening on {}",
            b.config.name,
            listener_where(&b.config, b.local_addr)
        ));
        serving.push(serve_listener(b, handle, telemetry, shutdown, readers));
    }
    if running.admin != new.admin || running.admin_access != new.admin_access {
        notes.push("admin: a new address, token or allowed_hosts applies after a restart".into());
    }
    let routes: Vec<&str> = new.routes.iter().map(|r| r.name.as_str()).collect();
    telemetry.keep_sinks(
        &new.routes
            .iter()
            .filter_map(|r| {
                new.sinks
                    .get(r.sink)
                    .map(|s| (s.name.clone(), r.name.clone()))
            })
            .collect::<Vec<_>>(),
    );
    notes.insert(0, format!("routes: {}", routes.join(", ")));
    Ok((new, generation, notes.join("; ")))
}

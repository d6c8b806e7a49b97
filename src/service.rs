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

use crate::config::Config;
use crate::listener::{BindError, BoundListener, protocol_name};
use crate::pipeline::Pipeline;
use crate::router::RouterError;
use crate::sinks::{RetryPolicy, Sink, SinkOpenError, run_worker};
use crate::telemetry::{Telemetry, serve_admin};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Sink(#[from] SinkOpenError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("admin listener: cannot bind {addr}: {source}")]
    Admin {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What is bound, for the readiness line.
#[derive(Debug, Clone)]
pub struct Ready {
    /// (name, protocol, address)
    pub listeners: Vec<(String, &'static str, SocketAddr)>,
    pub admin: Option<SocketAddr>,
}

impl Ready {
    /// The one machine-readable readiness line.
    pub fn to_json_line(&self) -> String {
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

/// How a sink's worker retries: HTTP sinks retry for a long time (the queue
/// absorbs new data meanwhile), local ones briefly.
fn retry_policy(kind: &crate::config::SinkKind) -> RetryPolicy {
    match kind {
        crate::config::SinkKind::Influxdb(c) => RetryPolicy {
            max_attempts: c.max_retries.max(1),
            max_elapsed: c.max_retry_time,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        },
        crate::config::SinkKind::Elasticsearch(c) => RetryPolicy {
            max_attempts: c.max_retries.max(1),
            max_elapsed: c.max_retry_time,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        },
        _ => RetryPolicy::default(),
    }
}

/// How a run ended.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// Records still queued at the shutdown deadline, dropped.
    pub lost_records: usize,
}

/// Run until `shutdown` is cancelled. `on_ready` is called once everything is
/// bound and serving.
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(&Ready),
) -> Result<RunReport, ServiceError> {
    let mut telemetry = Telemetry::new();
    telemetry.set_unhealthy_after(config.unhealthy_after);
    let telemetry = Arc::new(telemetry);

    let mut sinks = Vec::with_capacity(config.sinks.len());
    for s in &config.sinks {
        sinks.push(Arc::new(Sink::open(s, telemetry.sink_requests(&s.name))?));
    }
    let pipeline = Arc::new(Pipeline::new(&config.routes, &telemetry)?);

    let mut bound = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        bound.push(BoundListener::bind(l).await?);
    }
    let admin = match config.admin {
        Some(addr) => {
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| ServiceError::Admin { addr, source })?;
            let local = l
                .local_addr()
                .map_err(|source| ServiceError::Admin { addr, source })?;
            Some((l, local))
        }
        None => None,
    };

    // Sink workers, one per route.
    let workers = TaskTracker::new();
    for (route, rt) in config.routes.iter().zip(pipeline.routes()) {
        let Some(sink_config) = config.sinks.get(route.sink) else {
            continue;
        };
        let sink = sinks[route.sink].clone();
        workers.spawn(run_worker(
            route.name.clone(),
            rt.queue.clone(),
            sink,
            sink_config.clone(),
            retry_policy(&sink_config.kind),
            telemetry.sink(&sink_config.name, &route.name),
        ));
    }

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
    for b in bound {
        let metrics = telemetry.listener(&b.config.name);
        let up = telemetry.listener_bound(&b.config.name);
        let serve = b.serve(pipeline.clone(), metrics, shutdown.clone(), readers.clone());
        readers.spawn(async move {
            serve.await;
            // Listeners serve until shutdown; one that ends earlier shows
            // on /health.
            up.store(false, std::sync::atomic::Ordering::Relaxed);
        });
    }
    let admin_stop = CancellationToken::new();
    let admin_task = admin.map(|(l, _)| {
        let telemetry = telemetry.clone();
        let stop = admin_stop.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_admin(l, telemetry, stop).await {
                tracing::error!(error = %e, "admin listener failed");
            }
        })
    });

    on_ready(&ready);
    shutdown.cancelled().await;

    let deadline = Instant::now() + config.shutdown_timeout;
    tracing::info!(timeout = ?config.shutdown_timeout, "shutting down: finishing frames in hand, draining queues");
    readers.close();
    if tokio::time::timeout_at(deadline, readers.wait())
        .await
        .is_err()
    {
        tracing::warn!("listeners did not finish before the shutdown deadline");
    }
    for rt in pipeline.routes() {
        rt.queue.close();
    }
    workers.close();
    let mut report = RunReport::default();
    if tokio::time::timeout_at(deadline, workers.wait())
        .await
        .is_err()
    {
        for rt in pipeline.routes() {
            let lost = rt.queue.abandon();
            if lost > 0 {
                tracing::error!(route = %rt.name, lost, "shutdown deadline reached: records still queued are lost");
            }
            report.lost_records += lost;
        }
        // Give workers a moment to notice their queues are gone.
        let _ = tokio::time::timeout(Duration::from_millis(500), workers.wait()).await;
    }
    admin_stop.cancel();
    if let Some(t) = admin_task {
        let _ = tokio::time::timeout(Duration::from_secs(1), t).await;
    }
    tracing::info!(lost = report.lost_records, "stopped");
    Ok(report)
}

//! InfluxDB sink: line protocol over HTTP, 1.x `/write` or 2.x
//! `/api/v2/write`.
//!
//! A batch is one request (gzip by default). What the answer means decides
//! what happens to the batch:
//!
//! - 2xx: written.
//! - 400 (1.x) naming the rejected lines (`unable to parse '<line>'`) or
//!   their number (`partial write: ... dropped=N`): a partial write — the
//!   lines InfluxDB could parse are already stored and must not be sent
//!   again; the rejected lines are written to the dead-letter file with its
//!   reason and counted. 422 (2.x) likewise. A field type conflict's
//!   lines are found by their field's type; when the answer cannot single
//!   the lines out, every line of the request is dead-lettered as an
//!   `"ambiguous"` candidate and exactly `dropped=N` counted
//!   ([`partial_rejects`]).
//!   A 400 that names no line (1.x `{"error":"gzip: invalid header"}`, any
//!   2.x 400) rejected the whole request: it is bisected until the bad
//!   lines are found (and dead-lettered with the reason) and the rest
//!   delivered; nothing of it is counted as written before it is.
//! - 413: the batch is split in halves and each is sent.
//! - 401, 403, 404: configuration (credentials, database): no retry, a clear
//!   error, counted.
//! - 429, 5xx, transport errors: retry later (honouring `Retry-After`) on the
//!   next URL of the sink; the worker bounds the attempts and the time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::{InfluxApi, InfluxConfig};
use crate::record::Record;

use super::http::{Failover, Nodes, Sent, Transport, endpoint};
use super::retry::{Outcome as Status, classify};
use super::{Cause, DeadLetter, OpenError, SinkError, Written};

mod partial;

use partial::*;

/// Longest InfluxDB error text kept in a dead-letter entry.
const MAX_REASON: usize = 1024;
/// After 401/403/404 the queue is held (not dropped): the next try waits
/// at least this long, so a fixed credential or database lets data flow.
const CONFIG_ERROR_WAIT: Duration = Duration::from_secs(10);

pub(crate) struct InfluxSink {
    name: String,
    /// Rejections are logged at most every 10 s (counted always).
    reject_log: crate::log_limit::LogLimiter,
    config: InfluxConfig,
    /// Client, signing, gzip, request timing, body buffer.
    http: Transport,
    /// The URL in use, kept until a failure there.
    nodes: Nodes,
    dead_letter: Option<DeadLetter>,
    /// The database (and retention policy) exist, as far as we know.
    prepared: AtomicBool,
}

/// What an InfluxQL statement's answer means.
enum Answer {
    Done,
    /// It exists already (the error text).
    Exists(String),
    /// 401/403: the user may not (status, error text).
    Refused(u16, String),
}

/// A line to dead-letter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DeadLine {
    line: String,
    reason: String,
    /// One of several candidates: InfluxDB rejected some of them without
    /// saying which (it may have stored this one).
    ambiguous: bool,
}

/// What a partial write rejected: the lines to dead-letter and how many
/// lines InfluxDB says it rejected (fewer than the entries when they are
/// ambiguous candidates).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejects {
    entries: Vec<DeadLine>,
    count: u64,
}

/// What one request's answer means.
enum Outcome {
    Written,
    /// Some lines were rejected (with InfluxDB's reason); the others were
    /// written.
    Partial(Rejects),
    /// The whole request was rejected as malformed (2.x 400): bisect.
    Rejected(String),
    TooLarge,
}

impl InfluxSink {
    pub(crate) fn open(
        name: &str,
        config: &InfluxConfig,
        requests: prometheus_client::metrics::histogram::Histogram,
    ) -> Result<InfluxSink, OpenError> {
        let dead_letter = DeadLetter::open(config.http.dead_letter.as_deref())?;
        // A 2.x token, else the 1.x user (basic authentication).
        let token = config.token.as_ref().map(|t| format!("Token {t}"));
        let http = Transport::new(&config.http, requests, token)?;
        Ok(InfluxSink {
            reject_log: crate::log_limit::LogLimiter::new(10_000),
            name: name.to_owned(),
            config: config.clone(),
            http,
            nodes: Nodes::new(config.http.urls.len(), Failover::Sticky),
            dead_letter,
            prepared: AtomicBool::new(!config.create_database),
        })
    }

    /// 1.x with `create_database`: make sure the database (and retention
    /// policy) exist. Run at start-up by the worker and again before a
    /// write after a 404.
    ///
    /// - `SHOW DATABASES` first: a database that is there is not created.
    /// - Not there: `CREATE DATABASE db [WITH DURATION d REPLICATION 1 NAME
    ///   rp]` — a policy created with the database is its default, so
    ///   `SELECT * FROM m` finds the points.
    /// - There, with a policy configured: `CREATE RETENTION POLICY` (not
    ///   the default: the database's owner decides that).
    /// - Refused (401/403: a user without admin rights): an empty write
    ///   probes whether the database takes our writes (204) — then the
    ///   sink proceeds; a 404 or 403 there is the error `/health` shows.
    pub(crate) async fn prepare(&self) -> Result<(), SinkError> {
        if self.prepared.load(Ordering::Relaxed) {
            return Ok(());
        }
        let c = &self.config;
        let name = c.database.as_deref().unwrap_or("");
        let db = quote_ident(name);
        let policy = match (&c.retention_policy, &c.retention_duration) {
            (Some(rp), Some(duration)) => Some((quote_ident(rp), duration)),
            _ => None,
        };
        let exists = self.database_listed(name).await?;
        let statement = match (exists, &policy) {
            (false, Some((rp, duration))) => Some(format!(
                "CREATE DATABASE {db} WITH DURATION {duration} REPLICATION 1 NAME {rp}"
            )),
            (false, None) => Some(format!("CREATE DATABASE {db}")),
            (true, Some((rp, duration))) => Some(format!(
                "CREATE RETENTION POLICY {rp} ON {db} DURATION {duration} REPLICATION 1"
            )),
            (true, None) => None,
        };
        if let Some(q) = statement {
            match self.query(&q).await? {
                Answer::Done => {
                    tracing::info!(sink = %self.name, statement = %q, "InfluxDB: done");
                }
                Answer::Exists(e) => {
                    tracing::warn!(sink = %self.name, statement = %q, error = %e, "InfluxDB: kept the existing one");
                }
                Answer::Refused(status, e) => {
                    // Not allowed to create: fine if what we need is there.
                    self.probe_write()
                        .await
                        .map_err(|probe| SinkError::Retryable {
                            cause: Cause::Database {
                                name: name.to_owned(),
                                status,
                                statement: q.clone(),
                                says: e,
                                probe,
                            },
                            after: Some(CONFIG_ERROR_WAIT),
                        })?;
                    tracing::info!(sink = %self.name, statement = %q, status, "InfluxDB: not allowed to run it, but the database takes our writes: proceeding");
                }
            }
        }
        self.prepared.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The base URL in use (as configured, for `/query` and messages) and
    /// its index.
    fn base(&self) -> (usize, String) {
        let i = self.index();
        let base = self
            .config
            .http
            .urls
            .get(i)
            .map_or("", crate::config::url_text)
            .to_owned();
        (i, base)
    }

    /// The index into `config.http.urls` of the URL in use.
    fn index(&self) -> usize {
        self.nodes.pick()
    }

    /// Send the `/query` request for statement `q` that `build` makes
    /// for the URL in use (its base, also given back), with the sink's
    /// user: no answer moves on to the next URL and is worth retrying.
    async fn send_query(
        &self,
        q: &str,
        build: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    ) -> Result<(reqwest::Response, String), SinkError> {
        let (i, base) = self.base();
        let mut req = build(&self.http.client, &base);
        if let Some(user) = &self.config.http.username {
            req = req.basic_auth(user, self.config.http.password.as_deref());
        }
        match req.send().await {
            Ok(response) => Ok((response, base)),
            Err(e) => {
                self.fail_over(i);
                Err(SinkError::retry(Cause::transport(
                    format!("{base}/query ({q})"),
                    e,
                )))
            }
        }
    }

    /// Whether `SHOW DATABASES` lists `name` (a user without admin rights
    /// sees only the databases it may read: false may mean "not shown").
    async fn database_listed(&self, name: &str) -> Result<bool, SinkError> {
        let (response, _) = self
            .send_query("SHOW DATABASES", |client, base| {
                client
                    .get(format!("{base}/query"))
                    .query(&[("q", "SHOW DATABASES")])
            })
            .await?;
        // A listing of many databases: 1 MiB holds tens of thousands of names.
        let body = crate::sinks::read_capped(response, 1 << 20).await.text();
        let listed = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["results"][0]["series"][0]["values"]
                    .as_array()
                    .map(|rows| rows.iter().any(|r| r[0].as_str() == Some(name)))
            })
            .unwrap_or(false);
        Ok(listed)
    }

    /// Run one InfluxQL statement (POST /query).
    async fn query(&self, q: &str) -> Result<Answer, SinkError> {
        let (response, base) = self
            .send_query(q, |client, base| {
                client
                    .post(format!("{base}/query"))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(format!("q={}", encode(q)))
            })
            .await?;
        let status = response.status().as_u16();
        let body = crate::sinks::read_capped(response, crate::sinks::MAX_ERROR_BODY_BYTES)
            .await
            .text();
        let error = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v["results"][0]["error"]
                    .as_str()
                    .or_else(|| v["error"].as_str())
                    .map(str::to_owned)
            });
        match (status, error) {
            (200, None) => Ok(Answer::Done),
            (200, Some(e)) if e.contains("already exists") => Ok(Answer::Exists(e)),
            (401 | 403, e) => Ok(Answer::Refused(status, e.unwrap_or(body))),
            (status, e) => Err(SinkError::retry(Cause::Status {
                at: format!("{base}/query ({q})"),
                status,
                says: e.unwrap_or(body),
            })),
        }
    }

    /// An empty write to the database (and policy): 204 when it exists and
    /// we may write; otherwise why not.
    async fn probe_write(&self) -> Result<(), String> {
        let (i, Some(url)) = self.url() else {
            return Err(Cause::NoUrl.to_string());
        };
        let mut req = self.http.client.post(url).body("");
        if let Some(user) = &self.config.http.username {
            req = req.basic_auth(user, self.config.http.password.as_deref());
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail_over(i);
                return Err(format!("write probe: {}", crate::sinks::transport_error(e)));
            }
        };
        let status = response.status().as_u16();
        let reason = error_text(
            &crate::sinks::read_capped(response, crate::sinks::MAX_ERROR_BODY_BYTES)
                .await
                .text(),
        );
        match status {
            200..=299 => Ok(()),
            404 => Err(format!(
                "it does not exist ({reason}): an admin must create it, or give the sink's user admin rights"
            )),
            401 | 403 => Err(format!(
                "the sink's user may not write to it ({status} {reason}): GRANT WRITE"
            )),
            _ => Err(format!("write probe: {status} {reason}")),
        }
    }

    /// The write URL of the URL in use (built from the parsed one) and its
    /// index; none only if `urls` is empty, which validation refuses.
    fn url(&self) -> (usize, Option<reqwest::Url>) {
        let i = self.index();
        let Some(base) = self.config.http.urls.get(i) else {
            return (i, None);
        };
        let c = &self.config;
        let url = match c.api {
            InfluxApi::V1 => {
                let mut q = format!(
                    "precision={}&db={}",
                    c.precision.query_value(true),
                    encode(c.database.as_deref().unwrap_or(""))
                );
                if let Some(rp) = &c.retention_policy {
                    q.push_str("&rp=");
                    q.push_str(&encode(rp));
                }
                endpoint(base, "write", &q)
            }
            InfluxApi::V2 => endpoint(
                base,
                "api/v2/write",
                &format!(
                    "precision={}&org={}&bucket={}",
                    c.precision.query_value(false),
                    encode(c.org.as_deref().unwrap_or("")),
                    encode(c.bucket.as_deref().unwrap_or(""))
                ),
            ),
        };
        (i, Some(url))
    }

    /// Move on to the next URL after a failure at URL `i`.
    fn fail_over(&self, i: usize) {
        self.nodes.failed(i);
    }

    /// Write `batch`. `Ok(w)`: written, except the `w.rejected` lines
    /// InfluxDB rejected (they are in the dead-letter file).
    pub(crate) async fn write(&self, batch: &[Record]) -> Result<Written, SinkError> {
        let lines: Vec<&str> = batch.iter().map(|r| r.payload.as_str()).collect();
        // Requests bounded by batch_max_bytes (uncompressed), in order.
        let mut written = Written::default();
        let mut start = 0;
        let mut bytes = 0;
        for (i, l) in lines.iter().enumerate() {
            if i > start && bytes + l.len() + 1 > self.config.http.batch_max_bytes {
                self.write_lines(&lines[start..i], &mut written).await?;
                start = i;
                bytes = 0;
            }
            bytes += l.len() + 1;
        }
        self.write_lines(&lines[start..], &mut written).await?;
        Ok(written)
    }

    /// The worker gave up on `batch`: every line to the dead-letter file
    /// with `reason`. `Ok(false)`: no dead-letter file.
    pub(crate) fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        let Some(file) = &self.dead_letter else {
            return Ok(false);
        };
        let entries: Vec<DeadLine> = batch
            .iter()
            .map(|r| DeadLine {
                line: r.payload.to_string(),
                reason: reason.to_owned(),
                ambiguous: false,
            })
            .collect();
        file.write(&self.entries(&entries))?;
        Ok(true)
    }

    /// Write `lines`, adding what InfluxDB rejected to `written`.
    async fn write_lines(&self, lines: &[&str], written: &mut Written) -> Result<(), SinkError> {
        self.prepare().await?;
        // Halves are written one after the other (413, 2.x bisection).
        let mut work: Vec<&[&str]> = vec![lines];
        while let Some(part) = work.pop() {
            if part.is_empty() {
                continue;
            }
            let bad = match self.request(part).await? {
                Outcome::Written => continue,
                Outcome::Partial(bad) => bad,
                Outcome::Rejected(reason) if part.len() == 1 => Rejects {
                    entries: vec![DeadLine {
                        line: part[0].to_owned(),
                        reason,
                        ambiguous: false,
                    }],
                    count: 1,
                },
                Outcome::Rejected(_) | Outcome::TooLarge if part.len() > 1 => {
                    let (a, b) = part.split_at(part.len() / 2);
                    // Popped last-in first: `a` is written first.
                    work.push(b);
                    work.push(a);
                    continue;
                }
                Outcome::TooLarge | Outcome::Rejected(_) => Rejects {
                    entries: vec![DeadLine {
                        line: part.first().map_or(String::new(), |l| (*l).to_owned()),
                        reason: "a single line is larger than the server accepts (413)".to_owned(),
                        ambiguous: false,
                    }],
                    count: 1,
                },
            };
            written.rejected += self.dead_letter(&bad)?;
            if written.reason.is_none() {
                written.reason = bad.entries.first().map(|e| e.reason.clone());
            }
        }
        Ok(())
    }

    async fn request(&self, lines: &[&str]) -> Result<Outcome, SinkError> {
        let size = lines.iter().map(|l| l.len() + 1).sum();
        let mut body = crate::sinks::body_buffer(self.http.spare.take(), size);
        for l in lines {
            body.extend_from_slice(l.as_bytes());
            body.push(b'\n');
        }
        let (i, Some(url)) = self.url() else {
            return Err(SinkError::retry(Cause::NoUrl));
        };
        let at = redact(&url);
        let c = &self.config;
        let Sent { response, kept } = self
            .http
            .post(url, "text/plain; charset=utf-8", body, at.clone(), || {
                self.fail_over(i)
            })
            .await?;
        let status = response.status().as_u16();
        let outcome = classify(status, response.headers(), std::time::SystemTime::now());
        // A 1.x partial write quotes each line it rejects: room for all of
        // them, and bounded.
        let cap = crate::sinks::MAX_ERROR_BODY_BYTES.saturating_add(size.saturating_mul(2));
        let text = crate::sinks::read_capped(response, cap).await.text();
        self.http.give_back(kept);
        let reason = error_text(&text);
        match outcome {
            Status::Done => Ok(Outcome::Written),
            // A partial write only when the answer says which lines (or
            // how many) were rejected; any other 1.x 400 ("gzip: invalid
            // header", a proxy's refusal) refused the whole request, and
            // is bisected like 2.x's (writes are idempotent: a line sent
            // again overwrites itself).
            Status::BadRequest if c.api == InfluxApi::V1 || status == 422 => {
                match partial_rejects(&reason, lines) {
                    Some(bad) => Ok(Outcome::Partial(bad)),
                    None => Ok(Outcome::Rejected(reason)),
                }
            }
            Status::BadRequest => Ok(Outcome::Rejected(reason)),
            Status::TooLarge => Ok(Outcome::TooLarge),
            // Configuration errors hold the queue rather than drop it: the
            // batch is retried slowly (and counted as lost only when the
            // retry time runs out), so fixing the server lets it through.
            Status::Unauthorized => Err(SinkError::Retryable {
                cause: Cause::NotAllowed {
                    at,
                    status,
                    says: reason,
                },
                after: Some(CONFIG_ERROR_WAIT),
            }),
            Status::NotFound => {
                if c.create_database {
                    self.prepared.store(false, Ordering::Relaxed);
                }
                Err(SinkError::Retryable {
                    cause: Cause::NotFound { at, says: reason },
                    after: Some(if c.create_database {
                        Duration::ZERO
                    } else {
                        CONFIG_ERROR_WAIT
                    }),
                })
            }
            Status::Retryable { after } => {
                self.fail_over(i);
                Err(SinkError::Retryable {
                    cause: Cause::Status {
                        at,
                        status,
                        says: reason,
                    },
                    after,
                })
            }
            Status::Unexpected => Err(SinkError::Permanent(Cause::Unexpected {
                at,
                status,
                says: reason,
            })),
        }
    }

    /// Write the rejected lines with their reasons; returns how many lines
    /// InfluxDB rejected (`bad.count`: fewer than the entries when they
    /// are ambiguous candidates).
    fn dead_letter(&self, bad: &Rejects) -> Result<u64, SinkError> {
        let n = bad.count;
        let Some(DeadLine {
            reason: first_reason,
            ..
        }) = bad.entries.first()
        else {
            return Ok(n);
        };
        if let Some(suppressed) = self.reject_log.allow() {
            // InfluxDB's reason quotes the line: data, so DEBUG only.
            tracing::warn!(sink = %self.name, rejected = n, suppressed, dead_letter = %self.config.http.dead_letter.as_deref().map_or_else(|| "none".into(), std::path::Path::to_string_lossy), "InfluxDB rejected lines (reasons and lines in the dead-letter file)");
        }
        tracing::debug!(sink = %self.name, reason = %first_reason, "InfluxDB rejected a line");
        if let Some(file) = &self.dead_letter {
            file.write(&self.entries(&bad.entries))?;
        }
        Ok(n)
    }

    /// Dead-letter entries: `line`, `reason`, and `"ambiguous": true` on
    /// a candidate.
    fn entries(&self, lines: &[DeadLine]) -> Vec<serde_json::Value> {
        let at = chrono::Utc::now().to_rfc3339();
        lines
            .iter()
            .map(|d| {
                let reason: String = d.reason.chars().take(MAX_REASON).collect();
                let mut entry = serde_json::json!({"sink": self.name, "at": at, "reason": reason, "line": d.line});
                if d.ambiguous {
                    entry["ambiguous"] = serde_json::Value::Bool(true);
                }
                entry
            })
            .collect()
    }
}

/// The URL without its query (credentials, database names), for logs.
fn redact(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.into()
}

/// The error text of an InfluxDB answer: `{"error":"..."}` or the raw body.
fn error_text(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("error")
                .or_else(|| v.get("message"))
                .and_then(|e| e.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| body.trim().to_owned())
}

/// An InfluxQL identifier, double-quoted.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;

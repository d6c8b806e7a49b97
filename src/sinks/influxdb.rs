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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::config::{InfluxApi, InfluxConfig};
use crate::record::Record;

use super::{DeadLetter, SinkError, Written, gzip, retry_after};

/// Longest InfluxDB error text kept in a dead-letter entry.
const MAX_REASON: usize = 1024;
/// After 401/403/404 the queue is held (not dropped): the next try waits
/// at least this long, so a fixed credential or database lets data flow.
const CONFIG_ERROR_WAIT: Duration = Duration::from_secs(10);

pub struct InfluxSink {
    name: String,
    /// Request latency (`sluice_sink_request_duration_seconds`).
    requests: prometheus_client::metrics::histogram::Histogram,
    /// Rejections are logged at most every 10 s (counted always).
    reject_log: crate::log_limit::LogLimiter,
    config: InfluxConfig,
    client: reqwest::Client,
    /// Index into `config.urls` of the URL in use.
    current: AtomicUsize,
    dead_letter: Option<DeadLetter>,
    /// The database (and retention policy) exist, as far as we know.
    prepared: AtomicBool,
    spare_body: super::SpareBody,
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
    pub fn open(
        name: &str,
        config: &InfluxConfig,
        requests: prometheus_client::metrics::histogram::Histogram,
    ) -> Result<InfluxSink, String> {
        let client = super::http_client(config.timeout, config.ca_file.as_deref())?;
        let dead_letter = DeadLetter::open(config.dead_letter.as_deref())?;
        Ok(InfluxSink {
            requests,
            reject_log: crate::log_limit::LogLimiter::new(10_000),
            name: name.to_owned(),
            config: config.clone(),
            client,
            current: AtomicUsize::new(0),
            dead_letter,
            prepared: AtomicBool::new(!config.create_database),
            spare_body: super::SpareBody::default(),
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
    pub async fn prepare(&self) -> Result<(), SinkError> {
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
                            message: format!("database {name:?}: {status} on {q} ({e}); {probe}"),
                            retry_after: Some(CONFIG_ERROR_WAIT),
                        })?;
                    tracing::info!(sink = %self.name, statement = %q, status, "InfluxDB: not allowed to run it, but the database takes our writes: proceeding");
                }
            }
        }
        self.prepared.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// The base URL in use and its index.
    fn base(&self) -> (usize, String) {
        let (i, _) = self.url();
        let base = self
            .config
            .urls
            .get(i)
            .map_or("", String::as_str)
            .trim_end_matches('/')
            .to_owned();
        (i, base)
    }

    /// Whether `SHOW DATABASES` lists `name` (a user without admin rights
    /// sees only the databases it may read: false may mean "not shown").
    async fn database_listed(&self, name: &str) -> Result<bool, SinkError> {
        let (i, base) = self.base();
        let mut req = self
            .client
            .get(format!("{base}/query"))
            .query(&[("q", "SHOW DATABASES")]);
        if let Some(user) = &self.config.username {
            req = req.basic_auth(user, self.config.password.as_deref());
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail_over(i);
                return Err(SinkError::retry(format!(
                    "{base}/query (SHOW DATABASES): {}",
                    super::transport_error(e)
                )));
            }
        };
        // A listing of many databases: 1 MiB holds tens of thousands of names.
        let body = super::read_capped(response, 1 << 20).await.text();
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
        let (i, base) = self.base();
        let mut req = self
            .client
            .post(format!("{base}/query"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("q={}", encode(q)));
        if let Some(user) = &self.config.username {
            req = req.basic_auth(user, self.config.password.as_deref());
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail_over(i);
                return Err(SinkError::retry(format!(
                    "{base}/query ({q}): {}",
                    super::transport_error(e)
                )));
            }
        };
        let status = response.status().as_u16();
        let body = super::read_capped(response, super::MAX_ERROR_BODY_BYTES)
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
            (status, e) => Err(SinkError::retry(format!(
                "{base}/query ({q}): {status} {}",
                e.unwrap_or(body)
            ))),
        }
    }

    /// An empty write to the database (and policy): 204 when it exists and
    /// we may write; otherwise why not.
    async fn probe_write(&self) -> Result<(), String> {
        let (i, url) = self.url();
        let mut req = self.client.post(&url).body("");
        if let Some(user) = &self.config.username {
            req = req.basic_auth(user, self.config.password.as_deref());
        }
        let response = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                self.fail_over(i);
                return Err(format!("write probe: {}", super::transport_error(e)));
            }
        };
        let status = response.status().as_u16();
        let reason = error_text(
            &super::read_capped(response, super::MAX_ERROR_BODY_BYTES)
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

    fn url(&self) -> (usize, String) {
        let i = self.current.load(Ordering::Relaxed) % self.config.urls.len().max(1);
        let base = self
            .config
            .urls
            .get(i)
            .map_or("", String::as_str)
            .trim_end_matches('/');
        let c = &self.config;
        let url = match c.api {
            InfluxApi::V1 => {
                let mut u = format!(
                    "{base}/write?precision={}&db={}",
                    c.precision.query_value(true),
                    encode(c.database.as_deref().unwrap_or(""))
                );
                if let Some(rp) = &c.retention_policy {
                    u.push_str("&rp=");
                    u.push_str(&encode(rp));
                }
                u
            }
            InfluxApi::V2 => format!(
                "{base}/api/v2/write?precision={}&org={}&bucket={}",
                c.precision.query_value(false),
                encode(c.org.as_deref().unwrap_or("")),
                encode(c.bucket.as_deref().unwrap_or(""))
            ),
        };
        (i, url)
    }

    /// Move on to the next URL after a failure at URL `i`.
    fn fail_over(&self, i: usize) {
        if self.config.urls.len() > 1 {
            let _ = self.current.compare_exchange(
                i,
                (i + 1) % self.config.urls.len(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Write `batch`. `Ok(w)`: written, except the `w.rejected` lines
    /// InfluxDB rejected (they are in the dead-letter file).
    pub async fn write(&self, batch: &[Record]) -> Result<Written, SinkError> {
        let lines: Vec<&str> = batch.iter().map(|r| r.payload.as_str()).collect();
        // Requests bounded by batch_max_bytes (uncompressed), in order.
        let mut written = Written::default();
        let mut start = 0;
        let mut bytes = 0;
        for (i, l) in lines.iter().enumerate() {
            if i > start && bytes + l.len() + 1 > self.config.batch_max_bytes {
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
    pub fn give_up(&self, batch: &[Record], reason: &str) -> Result<bool, SinkError> {
        let Some(file) = &self.dead_letter else {
            return Ok(false);
        };
        let entries: Vec<DeadLine> = batch
            .iter()
            .map(|r| DeadLine {
                line: r.payload.clone(),
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
        let mut body = super::body_buffer(self.spare_body.take(), size);
        for l in lines {
            body.extend_from_slice(l.as_bytes());
            body.push(b'\n');
        }
        let (i, url) = self.url();
        let mut req = self
            .client
            .post(&url)
            .header("Content-Type", "text/plain; charset=utf-8");
        if self.config.gzip {
            let zipped = gzip(&body);
            self.spare_body.keep(std::mem::take(&mut body));
            body = zipped.map_err(|e| SinkError::Permanent(format!("gzip: {e}")))?;
            req = req.header("Content-Encoding", "gzip");
        }
        let body = bytes::Bytes::from(body);
        // A handle on the body: unique again once the request is done.
        let kept = body.clone();
        let c = &self.config;
        if let Some(token) = &c.token {
            req = req.header("Authorization", format!("Token {token}"));
        } else if let Some(user) = &c.username {
            req = req.basic_auth(user, c.password.as_deref());
        }
        let started = Instant::now();
        let sent = req.body(body).send().await;
        self.requests.observe(started.elapsed().as_secs_f64());
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                self.fail_over(i);
                return Err(SinkError::retry(format!(
                    "{}: {}",
                    self.redact(&url),
                    super::transport_error(e)
                )));
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        // A 1.x partial write quotes each line it rejects: room for all of
        // them, and bounded.
        let cap = super::MAX_ERROR_BODY_BYTES.saturating_add(size.saturating_mul(2));
        let text = super::read_capped(response, cap).await.text();
        if let Ok(body) = kept.try_into_mut() {
            self.spare_body.keep(body.into());
        }
        let reason = error_text(&text);
        let at = self.redact(&url);
        match status {
            200..=299 => Ok(Outcome::Written),
            // A partial write only when the answer says which lines (or
            // how many) were rejected; any other 1.x 400 ("gzip: invalid
            // header", a proxy's refusal) refused the whole request, and
            // is bisected like 2.x's (writes are idempotent: a line sent
            // again overwrites itself).
            400 | 422 if c.api == InfluxApi::V1 || status == 422 => {
                match partial_rejects(&reason, lines) {
                    Some(bad) => Ok(Outcome::Partial(bad)),
                    None => Ok(Outcome::Rejected(reason)),
                }
            }
            400 => Ok(Outcome::Rejected(reason)),
            413 => Ok(Outcome::TooLarge),
            // Configuration errors hold the queue rather than drop it: the
            // batch is retried slowly (and counted as lost only when the
            // retry time runs out), so fixing the server lets it through.
            401 | 403 => Err(SinkError::Retryable {
                message: format!(
                    "{at}: {status} not allowed: check the sink's credentials ({reason})"
                ),
                retry_after: Some(CONFIG_ERROR_WAIT),
            }),
            404 => {
                if c.create_database {
                    self.prepared.store(false, Ordering::Relaxed);
                }
                Err(SinkError::Retryable {
                    message: format!(
                        "{at}: 404 not found: does the database / bucket exist? ({reason})"
                    ),
                    retry_after: Some(if c.create_database {
                        Duration::ZERO
                    } else {
                        CONFIG_ERROR_WAIT
                    }),
                })
            }
            429 | 500..=599 => {
                self.fail_over(i);
                Err(SinkError::Retryable {
                    message: format!("{at}: {status} {reason}"),
                    retry_after,
                })
            }
            _ => Err(SinkError::Permanent(format!(
                "{at}: unexpected {status} {reason}"
            ))),
        }
    }

    /// The URL without credentials, for logs.
    fn redact(&self, url: &str) -> String {
        match url.split_once('?') {
            Some((base, _)) => base.to_owned(),
            None => url.to_owned(),
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
            tracing::warn!(sink = %self.name, rejected = n, suppressed, dead_letter = %self.config.dead_letter.as_deref().map_or_else(|| "none".into(), std::path::Path::to_string_lossy), "InfluxDB rejected lines (reasons and lines in the dead-letter file)");
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

/// What a 1.x 400 / 2.x 422 says was rejected of the `sent` lines, or
/// `None` when it says nothing of a partial write (the whole request was
/// refused: bisect).
///
/// - `unable to parse '<line>': why` names each rejected line.
/// - A field type conflict (`input field "f" on measurement "m" is type
///   integer, already exists as type float dropped=N`) names the field,
///   the measurement and the type already stored: the lines of `m` whose
///   `f` has another type are the rejected ones — when exactly `N` lines
///   are so.
/// - Otherwise (`dropped=N` alone, or a conflict that does not account
///   for `N` lines: InfluxDB reports only its first error) which lines
///   were stored is unknowable: every line sent is dead-lettered as an
///   ambiguous candidate, and exactly `N` are counted rejected. A line
///   that may have been stored is never passed off as the rejected one.
fn partial_rejects(reason: &str, sent: &[&str]) -> Option<Rejects> {
    let mut named = Vec::new();
    for line in sent {
        let quoted = format!("unable to parse '{line}'");
        if let Some(at) = reason.find(&quoted) {
            let why = reason[at + quoted.len()..]
                .trim_start_matches(':')
                .split(['\n'])
                .next()
                .unwrap_or("")
                .trim();
            let why = why.split(" dropped=").next().unwrap_or(why);
            named.push(DeadLine {
                line: (*line).to_owned(),
                reason: format!("unable to parse: {why}"),
                ambiguous: false,
            });
        }
    }
    if !named.is_empty() {
        let count = named.len() as u64;
        return Some(Rejects {
            entries: named,
            count,
        });
    }
    let dropped = reason
        .rsplit_once("dropped=")
        .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)?
        .min(sent.len());
    if let Some((field, measurement, existing)) = type_conflict(reason) {
        let conflicting: Vec<&str> = sent
            .iter()
            .copied()
            .filter(|line| {
                line_fields(line).is_some_and(|(m, fields)| {
                    m == measurement
                        && fields
                            .iter()
                            .any(|(k, v)| *k == field && field_type(v) != existing)
                })
            })
            .collect();
        if conflicting.len() == dropped {
            return Some(Rejects {
                entries: conflicting
                    .into_iter()
                    .map(|line| DeadLine {
                        line: line.to_owned(),
                        reason: reason.to_owned(),
                        ambiguous: false,
                    })
                    .collect(),
                count: dropped as u64,
            });
        }
    }
    let why = format!(
        "{reason} (InfluxDB rejected {dropped} of the {} lines of this request without saying which: this line is one of the candidates)",
        sent.len()
    );
    Some(Rejects {
        entries: sent
            .iter()
            .map(|line| DeadLine {
                line: (*line).to_owned(),
                reason: why.clone(),
                ambiguous: true,
            })
            .collect(),
        count: dropped as u64,
    })
}

/// A field type conflict's (field, measurement, type already stored):
/// `input field "f" on measurement "m" is type integer, already exists as
/// type float`.
fn type_conflict(reason: &str) -> Option<(String, String, &str)> {
    let rest = reason.split_once("input field \"")?.1;
    let (field, rest) = quoted_name(rest)?;
    let rest = rest.strip_prefix(" on measurement \"")?;
    let (measurement, rest) = quoted_name(rest)?;
    let existing = rest
        .split_once("already exists as type ")?
        .1
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()?;
    Some((field, measurement, existing))
}

/// A name up to its closing `"` (InfluxDB quotes with Go's `%q`: `\"` and
/// `\\` inside), and what follows the quote.
fn quoted_name(s: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((name, &s[i + 1..])),
            '\\' => name.push(chars.next()?.1),
            c => name.push(c),
        }
    }
    None
}

/// A line protocol line's measurement (unescaped) and its fields (key
/// unescaped, raw value); `None` when it does not read as one.
fn line_fields(line: &str) -> Option<(String, Vec<(String, &str)>)> {
    let b = line.as_bytes();
    let mut i = 0;
    // Measurement, then tags, up to an unescaped space.
    let mut measurement = Vec::new();
    let mut in_tags = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if b.get(i + 1).is_some() => {
                if !in_tags {
                    measurement.extend_from_slice(b.get(i + 1..i + 2)?);
                }
                i += 2;
                continue;
            }
            b' ' => break,
            b',' => in_tags = true,
            c if !in_tags => measurement.push(c),
            _ => {}
        }
        i += 1;
    }
    i += 1;
    let mut fields = Vec::new();
    loop {
        let mut key = Vec::new();
        loop {
            match *b.get(i)? {
                b'\\' => {
                    key.extend_from_slice(b.get(i + 1..i + 2)?);
                    i += 2;
                }
                b'=' => break,
                c => {
                    key.push(c);
                    i += 1;
                }
            }
        }
        i += 1;
        let start = i;
        if b.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match *b.get(i)? {
                    b'\\' => i += 2,
                    b'"' => break,
                    _ => i += 1,
                }
            }
            i += 1;
        } else {
            while b.get(i).is_some_and(|c| !matches!(c, b',' | b' ')) {
                i += 1;
            }
        }
        fields.push((String::from_utf8(key).ok()?, line.get(start..i)?));
        match b.get(i) {
            Some(b',') => i += 1,
            _ => break,
        }
    }
    Some((String::from_utf8(measurement).ok()?, fields))
}

/// A field value's type as InfluxDB names it.
fn field_type(raw: &str) -> &'static str {
    let digits = |d: &str| {
        let d = d.strip_prefix('-').unwrap_or(d);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    };
    if raw.starts_with('"') {
        "string"
    } else if matches!(
        raw,
        "t" | "T" | "true" | "True" | "TRUE" | "f" | "F" | "false" | "False" | "FALSE"
    ) {
        "boolean"
    } else if raw.strip_suffix('i').is_some_and(digits) {
        "integer"
    } else if raw
        .strip_suffix('u')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
    {
        "unsigned"
    } else {
        "float"
    }
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
mod tests {
    use super::*;

    fn dead(line: &str, reason: &str, ambiguous: bool) -> DeadLine {
        DeadLine {
            line: line.to_owned(),
            reason: reason.to_owned(),
            ambiguous,
        }
    }

    #[test]
    fn partial_write_errors_name_their_lines() {
        let sent = ["m,t=a x=1 1", "m,t=b x=oops 2", "m x= 3"];
        let reason = "partial write: unable to parse 'm,t=b x=oops 2': invalid boolean\nunable to parse 'm x= 3': missing field value dropped=0";
        let bad = partial_rejects(reason, &sent).unwrap();
        assert_eq!(
            bad.entries,
            [
                dead("m,t=b x=oops 2", "unable to parse: invalid boolean", false),
                dead("m x= 3", "unable to parse: missing field value", false),
            ]
        );
        assert_eq!(bad.count, 2);
        let sent = ["m_good,t=a x=1i 1", "m_bad,t=b x=2i 2", "m_bad2 x=3i 3"];
        let conflict = "partial write: field type conflict: input field \"x\" on measurement \"m_bad\" is type integer, already exists as type float dropped=1";
        let bad = partial_rejects(conflict, &sent).unwrap();
        assert_eq!(bad.entries, [dead("m_bad,t=b x=2i 2", conflict, false)]);
        assert_eq!(bad.count, 1);
    }

    /// Follow-up item 3: the lines of a field type conflict are those
    /// whose field has another type than the one stored — not the first
    /// lines of the measurement.
    #[test]
    fn a_field_type_conflict_names_the_lines_by_their_field_type() {
        let sent: Vec<String> = (0..10)
            .map(|i| {
                let v = if i == 5 || i == 7 {
                    format!("{i}i")
                } else {
                    format!("{i}")
                };
                format!("m,app=PC,host=h v=1,seq={v} {i}")
            })
            .collect();
        let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
        let conflict = "partial write: field type conflict: input field \"seq\" on measurement \"m\" is type integer, already exists as type float dropped=2";
        let bad = partial_rejects(conflict, &sent).unwrap();
        assert_eq!(
            bad.entries,
            [
                dead("m,app=PC,host=h v=1,seq=5i 5", conflict, false),
                dead("m,app=PC,host=h v=1,seq=7i 7", conflict, false),
            ]
        );
        assert_eq!(bad.count, 2);
        // Escaped names, string and boolean values are read as such.
        let sent = [
            r#"my\ m,t=a s="a \"b\", c",seq=1.5 1"#,
            r#"my\ m,t=a s="x",seq="one" 2"#,
            "my\\ m,t=a seq=true 3",
            "other seq=\"two\" 4",
        ];
        let conflict = r#"partial write: field type conflict: input field "seq" on measurement "my m" is type string, already exists as type float dropped=1"#;
        // Two lines are not float (a string and a boolean) but one was
        // dropped: which one cannot be told, so all are candidates.
        let bad = partial_rejects(conflict, &sent).unwrap();
        assert_eq!(bad.count, 1);
        assert_eq!(bad.entries.len(), sent.len());
        assert!(bad.entries.iter().all(|e| e.ambiguous), "{bad:?}");
        let conflict = r#"partial write: field type conflict: input field "seq" on measurement "my m" is type boolean, already exists as type float dropped=2"#;
        let bad = partial_rejects(conflict, &sent).unwrap();
        assert_eq!(
            bad.entries,
            [
                dead(sent[1], conflict, false),
                dead(sent[2], conflict, false)
            ]
        );
    }

    /// Follow-up item 3: when every line has the conflicting type (the
    /// answer cannot single them out), or the count does not add up, or
    /// nothing is named (3b): every line is an ambiguous candidate, and
    /// exactly InfluxDB's count is rejected.
    #[test]
    fn an_unidentifiable_partial_write_dead_letters_every_candidate_as_ambiguous() {
        let sent: Vec<String> = (0..10).map(|i| format!("m seq={i}i {i}")).collect();
        let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
        for reason in [
            "partial write: field type conflict: input field \"seq\" on measurement \"m\" is type integer, already exists as type float dropped=2",
            "partial write: field type conflict dropped=2",
            "partial write: points beyond retention policy dropped=2",
        ] {
            let bad = partial_rejects(reason, &sent).unwrap();
            assert_eq!(bad.count, 2, "{reason}");
            assert_eq!(bad.entries.len(), 10, "{reason}");
            for (e, line) in bad.entries.iter().zip(&sent) {
                assert_eq!(e.line, *line);
                assert!(e.ambiguous);
                assert!(e.reason.starts_with(reason), "{}", e.reason);
                assert!(
                    e.reason.contains("rejected 2 of the 10 lines"),
                    "{}",
                    e.reason
                );
            }
        }
        // A count larger than the request: at most every line.
        let bad = partial_rejects("partial write: dropped=50", &sent).unwrap();
        assert_eq!(bad.count, 10);
        // Saying nothing of a partial write: not one (bisected instead).
        assert_eq!(partial_rejects("gzip: invalid header", &sent), None);
        assert_eq!(partial_rejects("partial write: dropped=0", &sent), None);
    }

    #[test]
    fn field_types_are_read_as_influxdb_names_them() {
        for (raw, kind) in [
            ("1i", "integer"),
            ("-12i", "integer"),
            ("1", "float"),
            ("1.0", "float"),
            ("-1e3", "float"),
            ("7u", "unsigned"),
            ("\"x\"", "string"),
            ("t", "boolean"),
            ("FALSE", "boolean"),
        ] {
            assert_eq!(field_type(raw), kind, "{raw}");
        }
    }

    #[test]
    fn error_text_reads_json_or_raw() {
        assert_eq!(
            error_text(r#"{"error":"database not found: \"x\""}"#),
            "database not found: \"x\""
        );
        assert_eq!(error_text(r#"{"code":"invalid","message":"bad"}"#), "bad");
        assert_eq!(error_text(" plain \n"), "plain");
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("my db&x=1"), "my%20db%26x%3D1");
        assert_eq!(encode("telemetry"), "telemetry");
    }

    use crate::config::{Precision, UnsignedAs};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A stand-in HTTP server: each request (head, body) goes to `answer`,
    /// which returns (status, extra headers, body). Records what it saw.
    async fn serve(
        answer: impl Fn(&str, &str) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> (String, Arc<Mutex<Vec<(String, String)>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let (head, body) = loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).into_owned();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len: usize = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse().unwrap())
                                })
                                .unwrap_or(0);
                            if body.len() >= len {
                                break (head.to_owned(), body.to_owned());
                            }
                        }
                    };
                    log.lock().unwrap().push((head.clone(), body.clone()));
                    let (status, headers, text) = answer(&head, &body);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = s.write_all(response.as_bytes()).await;
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn sink(url: &str, api: InfluxApi) -> InfluxSink {
        InfluxSink::open(
            "t",
            &InfluxConfig {
                urls: vec![url.to_owned()],
                api,
                database: Some("db".into()),
                retention_policy: None,
                org: Some("o".into()),
                bucket: Some("b".into()),
                token: Some("secret".into()),
                username: None,
                password: None,
                batch_max_bytes: 1 << 20,
                gzip: false,
                timeout: Duration::from_secs(5),
                max_retries: 3,
                max_retry_time: Duration::from_secs(60),
                max_backoff: Duration::from_secs(30),
                dead_letter: None,
                create_database: false,
                retention_duration: None,
                unsigned: UnsignedAs::Unsigned,
                precision: Precision::Nanoseconds,
                ca_file: None,
            },
            prometheus_client::metrics::histogram::Histogram::new([0.1]),
        )
        .unwrap()
    }

    fn records(lines: &[&str]) -> Vec<Record> {
        lines
            .iter()
            .map(|l| Record {
                payload: (*l).to_owned(),
                time_nanos: 0,
                key: None,
            })
            .collect()
    }

    #[tokio::test]
    async fn retry_after_is_passed_on_with_the_retryable_error() {
        let (url, _) = serve(|_, _| (503, "Retry-After: 7\r\n", "busy".into())).await;
        match sink(&url, InfluxApi::V2)
            .write(&records(&["m x=1 1"]))
            .await
        {
            Err(SinkError::Retryable {
                retry_after,
                message,
            }) => {
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
                assert!(message.contains("503"), "{message}");
            }
            other => panic!("expected a retryable error, got {other:?}"),
        }
    }

    /// 2.x rejects a whole batch with 400 when one line is bad: the batch is
    /// bisected, the good lines delivered, the bad one dead-lettered.
    #[tokio::test]
    async fn v2_rejected_batch_is_bisected_down_to_the_bad_line() {
        let (url, seen) = serve(|head, body| {
            let path = head.split_whitespace().nth(1).unwrap_or("");
            assert!(
                path.starts_with("/api/v2/write?precision=ns&org=o&bucket=b"),
                "{path}"
            );
            if body.contains("bad") {
                (
                    400,
                    "",
                    r#"{"code":"invalid","message":"unable to parse 'bad': missing fields"}"#
                        .into(),
                )
            } else {
                (204, "", String::new())
            }
        })
        .await;
        let lines = ["m x=1 1", "m x=2 2", "bad", "m x=4 4", "m x=5 5"];
        let rejected = sink(&url, InfluxApi::V2)
            .write(&records(&lines))
            .await
            .unwrap();
        assert_eq!(rejected.rejected, 1);
        let delivered: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, body)| !body.contains("bad"))
            .flat_map(|(_, body)| body.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(delivered, ["m x=1 1", "m x=2 2", "m x=4 4", "m x=5 5"]);
    }

    /// 1.x 400 that names no line (issue 20, item 8): not a partial
    /// write. Bisected like 2.x's 400: the good lines are written, the bad
    /// one rejected; nothing of a refused request counts as written.
    #[tokio::test]
    async fn v1_400_naming_no_line_is_bisected() {
        let (url, seen) = serve(|_, body| {
            if body.contains("bad") {
                (400, "", r#"{"error":"gzip: invalid header"}"#.into())
            } else {
                (204, "", String::new())
            }
        })
        .await;
        let lines = ["m x=1 1", "bad x=2 2", "m x=3 3", "m x=4 4"];
        let rejected = sink(&url, InfluxApi::V1)
            .write(&records(&lines))
            .await
            .unwrap();
        assert_eq!(rejected.rejected, 1, "only the bad line is rejected");
        let delivered: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, body)| !body.contains("bad"))
            .flat_map(|(_, body)| body.lines().map(str::to_owned).collect::<Vec<_>>())
            .collect();
        assert_eq!(delivered, ["m x=1 1", "m x=3 3", "m x=4 4"]);
    }

    #[tokio::test]
    async fn v2_sends_the_token_and_a_401_holds_the_queue() {
        let (url, seen) = serve(|_, _| (401, "", r#"{"message":"unauthorized"}"#.into())).await;
        match sink(&url, InfluxApi::V2)
            .write(&records(&["m x=1 1"]))
            .await
        {
            Err(SinkError::Retryable {
                retry_after,
                message,
            }) => {
                assert_eq!(retry_after, Some(CONFIG_ERROR_WAIT), "held, not dropped");
                assert!(message.contains("credentials"), "{message}");
            }
            other => panic!("expected the queue to be held, got {other:?}"),
        }
        let head = seen.lock().unwrap()[0].0.to_ascii_lowercase();
        assert!(head.contains("authorization: token secret"), "{head}");
    }

    /// 2.x 422: a partial write. The accepted points are not resent.
    #[tokio::test]
    async fn v2_partial_write_is_not_resent() {
        let (url, seen) = serve(|_, _| {
            (
                422,
                "",
                r#"{"code":"unprocessable entity","message":"failure writing points to database: partial write: points beyond retention policy dropped=1"}"#.into(),
            )
        })
        .await;
        let rejected = sink(&url, InfluxApi::V2)
            .write(&records(&["m x=1 1", "m x=2 2"]))
            .await
            .unwrap();
        assert_eq!(rejected.rejected, 1);
        assert_eq!(seen.lock().unwrap().len(), 1, "one request, no resend");
    }
}

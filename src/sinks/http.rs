//! The HTTP transport both HTTP sinks share: the client (timeouts, an
//! extra CA), gzip, request-body buffers kept between requests, answers
//! read up to a cap, and transport errors that say why.

use std::time::Duration;

use super::OpenError;

/// An HTTP sink's last request-body buffer, taken back once the request
/// is done and written into by the next: a fresh multi-MiB body per
/// request page-faulted in, and freed on another thread it stayed
/// resident until the allocator purged it.
#[derive(Default)]
pub(super) struct SpareBody(std::sync::Mutex<Vec<u8>>);

impl SpareBody {
    /// The kept buffer (empty; a new one when none is kept).
    pub(super) fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Keep `body`'s allocation for the next request (emptied).
    pub(super) fn keep(&self, mut body: Vec<u8>) {
        body.clear();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = body;
    }
}

/// An emptied request-body buffer of at least `size` bytes: `spare`'s
/// allocation when it is large enough, else a new one with an eighth
/// more, so that the next, slightly larger, batch fits too. Not `reserve`
/// on the emptied buffer: the allocator's realloc would copy its old,
/// stale bytes into the new block.
pub(crate) fn body_buffer(mut spare: Vec<u8>, size: usize) -> Vec<u8> {
    spare.clear();
    if spare.capacity() >= size {
        return spare;
    }
    drop(spare);
    Vec::with_capacity(size.saturating_add(size / 8))
}

/// A request's body: one buffer, or runs of bytes that are records as
/// they were encoded (sent as they are: see [`crate::record::Payload`]).
pub(crate) enum RequestBody {
    Flat(Vec<u8>),
    Runs(Vec<bytes::Bytes>),
}

impl From<Vec<u8>> for RequestBody {
    fn from(body: Vec<u8>) -> RequestBody {
        RequestBody::Flat(body)
    }
}

/// Runs of bytes as an HTTP body of known length (sent with a
/// `Content-Length`, the runs handed to the connection one by one, so
/// written with vectored writes rather than copied together).
struct RunsBody {
    runs: std::collections::VecDeque<bytes::Bytes>,
    left: u64,
}

impl http_body::Body for RunsBody {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        let run = self.runs.pop_front();
        if let Some(r) = &run {
            self.left = self.left.saturating_sub(r.len() as u64);
        }
        std::task::Poll::Ready(run.map(|r| Ok(http_body::Frame::data(r))))
    }

    fn is_end_stream(&self) -> bool {
        self.runs.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.left)
    }
}

/// An HTTP client for a sink: timeouts, and the extra CA from `ca_file`.
pub(crate) fn http_client(
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<reqwest::Client, OpenError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| OpenError::CaRead {
            path: path.to_owned(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| OpenError::CaPem {
                path: path.to_owned(),
                source,
            })?;
        if certs.is_empty() {
            return Err(OpenError::CaEmpty {
                path: path.to_owned(),
            });
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(OpenError::Client)
}

/// How a sink signs its requests.
enum Auth {
    /// An `Authorization` header with this value (`ApiKey …`, `Token …`).
    Header(String),
    /// Basic authentication.
    Basic {
        user: String,
        password: Option<String>,
    },
    None,
}

/// An HTTP sink's transport: its client, how it signs and compresses a
/// request, the histogram each request is timed into, and the body buffer
/// kept between requests.
pub(crate) struct Transport {
    pub client: reqwest::Client,
    /// Request latency (`sluice_sink_request_duration_seconds`).
    requests: prometheus_client::metrics::histogram::Histogram,
    /// The last request's body buffer (see [`Transport::give_back`]).
    pub spare: SpareBody,
    gzip: bool,
    auth: Auth,
}

/// Why a [`Transport::post`] got no answer.
enum PostError {
    Gzip(std::io::Error),
    /// No answer (the sink names the node; see [`transport_error`]).
    Transport(reqwest::Error),
}

/// An answer, and a handle on the body sent: unique again once the
/// request is done, when [`Transport::give_back`] returns its buffer.
pub(crate) struct Sent {
    pub response: reqwest::Response,
    pub kept: bytes::Bytes,
}

impl Transport {
    /// Requests signed with an `Authorization: {header}` when the sink has
    /// a key or token, else with basic authentication when it has a user.
    /// The transport of a sink's `config` ([`http_client`]: its timeout
    /// and extra CA), signing with `Authorization: {header}` when the sink
    /// has a key or token, else with basic authentication when it has a
    /// user.
    pub(crate) fn new(
        config: &crate::config::HttpSinkConfig,
        requests: prometheus_client::metrics::histogram::Histogram,
        header: Option<String>,
    ) -> Result<Transport, OpenError> {
        let client = http_client(config.timeout, config.ca_file.as_deref())?;
        let auth = match (header, &config.username) {
            (Some(value), _) => Auth::Header(value),
            (None, Some(user)) => Auth::Basic {
                user: user.clone(),
                password: config.password.clone(),
            },
            (None, None) => Auth::None,
        };
        let gzip = config.gzip;
        Ok(Transport {
            client,
            requests,
            spare: SpareBody::default(),
            gzip,
            auth,
        })
    }

    /// POST `body` to `url` (gzipped when the sink says so: the
    /// uncompressed buffer goes back to the spare at once), signed, timed.
    /// No answer: `node_failed` runs (the sink's fail-over) and the error
    /// names `at`; both are retryable.
    pub(crate) async fn post(
        &self,
        url: reqwest::Url,
        content_type: &'static str,
        body: impl Into<RequestBody>,
        at: impl Into<String>,
        node_failed: impl FnOnce(),
    ) -> Result<Sent, super::SinkError> {
        use super::{Cause, SinkError};
        match self.post_once(url, content_type, body.into()).await {
            Ok(sent) => Ok(sent),
            // Compressing into memory does not fail for want of anything
            // a retry would bring; retried all the same (bounded by the
            // policy), as nothing is lost by it.
            Err(PostError::Gzip(e)) => Err(SinkError::retry(Cause::Gzip(e))),
            Err(PostError::Transport(e)) => {
                node_failed();
                Err(SinkError::retry(Cause::transport(at, e)))
            }
        }
    }

    async fn post_once(
        &self,
        url: reqwest::Url,
        content_type: &'static str,
        body: RequestBody,
    ) -> Result<Sent, PostError> {
        let mut req = self.client.post(url).header("Content-Type", content_type);
        let (body, kept) = match body {
            RequestBody::Runs(runs) if !self.gzip => {
                let left = runs.iter().map(|r| r.len() as u64).sum();
                let runs = RunsBody {
                    runs: runs.into(),
                    left,
                };
                (reqwest::Body::wrap(runs), bytes::Bytes::new())
            }
            body => {
                let body = match body {
                    RequestBody::Flat(body) => body,
                    RequestBody::Runs(runs) => runs.concat(),
                };
                let body = bytes::Bytes::from(if self.gzip {
                    req = req.header("Content-Encoding", "gzip");
                    let zipped = gzip(&body);
                    self.spare.keep(body);
                    zipped.map_err(PostError::Gzip)?
                } else {
                    body
                });
                // A handle on the body: unique again once the request is done.
                let kept = body.clone();
                (reqwest::Body::from(body), kept)
            }
        };
        req = match &self.auth {
            Auth::Header(value) => req.header("Authorization", value),
            Auth::Basic { user, password } => req.basic_auth(user, password.as_deref()),
            Auth::None => req,
        };
        let started = std::time::Instant::now();
        let sent = req.body(body).send().await;
        self.requests.observe(started.elapsed().as_secs_f64());
        sent.map(|response| Sent { response, kept })
            .map_err(PostError::Transport)
    }

    /// The answer to a [`Transport::post`] is read: the request's body
    /// buffer goes back to the spare.
    pub(crate) fn give_back(&self, kept: bytes::Bytes) {
        if let Ok(body) = kept.try_into_mut() {
            self.spare.keep(body.into());
        }
    }
}

/// `base` (a sink URL, parsed at validation) with `path` appended to its
/// path and `query` as its query: built from the parsed URL, not parsed
/// again.
pub(crate) fn endpoint(base: &reqwest::Url, path: &str, query: &str) -> reqwest::Url {
    let mut url = base.clone();
    let joined = format!("{}/{path}", base.path().trim_end_matches('/'));
    url.set_path(&joined);
    url.set_query(Some(query));
    url
}

/// Which of a sink's URLs the next request goes to, and what a failure
/// there changes: one type for both HTTP sinks, each with its policy.
pub(crate) struct Nodes {
    count: usize,
    policy: Failover,
    state: std::sync::Mutex<NodeState>,
}

/// How a sink spreads its requests over its URLs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Failover {
    /// Each request to the next node in turn (Elasticsearch); a node that
    /// failed is skipped for `cool_down`, unless all are.
    RoundRobin { cool_down: Duration },
    /// Stay on one URL (InfluxDB); after a failure there, the next one.
    Sticky,
}

struct NodeState {
    /// Round-robin: the next node to try; sticky: the node in use.
    next: usize,
    /// Round-robin: per node, skipped until this instant.
    skip_until: Vec<Option<std::time::Instant>>,
}

impl Nodes {
    pub(crate) fn new(count: usize, policy: Failover) -> Nodes {
        Nodes {
            count,
            policy,
            state: std::sync::Mutex::new(NodeState {
                next: 0,
                skip_until: vec![None; count],
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The index of the node the next request goes to.
    pub(crate) fn pick(&self) -> usize {
        let n = self.count.max(1);
        let mut state = self.state();
        match self.policy {
            Failover::Sticky => state.next % n,
            Failover::RoundRobin { .. } => {
                let now = std::time::Instant::now();
                let start = state.next;
                let mut pick = start % n;
                for k in 0..n {
                    let i = (start + k) % n;
                    if state
                        .skip_until
                        .get(i)
                        .copied()
                        .flatten()
                        .is_none_or(|until| until <= now)
                    {
                        pick = i;
                        break;
                    }
                }
                state.next = pick + 1;
                pick
            }
        }
    }

    /// A request to node `i` failed: round-robin skips it for its
    /// cool-down; sticky moves on to the next URL (unless another failure
    /// moved it already).
    pub(crate) fn failed(&self, i: usize) {
        let mut state = self.state();
        match self.policy {
            Failover::Sticky => {
                if self.count > 1 && state.next == i {
                    state.next = (i + 1) % self.count;
                }
            }
            Failover::RoundRobin { cool_down } => {
                if let Some(slot) = state.skip_until.get_mut(i) {
                    *slot = Some(std::time::Instant::now() + cool_down);
                }
            }
        }
    }
}

/// Gzip a request body.
pub(crate) fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(body)?;
    enc.finish()
}

/// At most this much of an answer that is only quoted in an error (a
/// non-2xx body) is kept.
pub(crate) const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

/// An answer's body, kept up to a cap: what came beyond it is not kept,
/// and [`CappedBody::text`] says so.
#[derive(Debug, Default)]
pub(crate) struct CappedBody {
    pub bytes: Vec<u8>,
    cap: usize,
    /// More arrived than the cap (it was discarded).
    pub truncated: bool,
}

impl CappedBody {
    pub(crate) fn new(cap: usize) -> CappedBody {
        CappedBody {
            bytes: Vec::new(),
            cap,
            truncated: false,
        }
    }

    /// Keep what of `chunk` fits; false once the cap is reached and
    /// something was left out.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> bool {
        let room = self.cap.saturating_sub(self.bytes.len());
        let take = chunk.len().min(room);
        self.bytes
            .extend_from_slice(chunk.get(..take).unwrap_or_default());
        if take < chunk.len() {
            self.truncated = true;
        }
        !self.truncated
    }

    /// The body as text (lossy), noting a truncation.
    pub(crate) fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.bytes).into_owned();
        if self.truncated {
            text.push_str(&format!(" [answer cut at {} bytes]", self.cap));
        }
        text
    }
}

/// Read `response`'s body, keeping at most `cap` bytes. Reading stops at
/// the cap (the rest is discarded with the connection), so a server that
/// answers without end costs `cap` bytes, not memory without bound; a
/// body cut short by an error is what arrived before it.
pub(crate) async fn read_capped(mut response: reqwest::Response, cap: usize) -> CappedBody {
    let mut body = CappedBody::new(cap);
    while let Ok(Some(chunk)) = response.chunk().await {
        if !body.push(&chunk) {
            break;
        }
    }
    body
}

/// A request that got no answer, with its causes ("operation timed out",
/// "Connection refused"): reqwest's own text says only "error sending
/// request", which told `/health` nothing. Without the URL (with its
/// query): the caller names the node.
pub(crate) fn transport_error(e: reqwest::Error) -> String {
    transport_text(&e.without_url())
}

/// A transport error's text with its causes (see [`transport_error`]).
pub(crate) fn transport_text(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    // Bounded: a cause chain is a few errors deep; the text is cut anyway
    // where it is shown (/health keeps 512 characters).
    for _ in 0..8 {
        let Some(cause) = source else { break };
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    /// The bounded read of an answer keeps the cap's worth, says it cut,
    /// and stops reading: a body twice the cap in many chunks.
    #[tokio::test]
    async fn answer_bodies_are_read_up_to_the_cap() {
        let chunks: Vec<Vec<u8>> = (0..64).map(|i| vec![b'a' + (i % 26) as u8; 1024]).collect();
        let whole: Vec<u8> = chunks.concat();
        let read = |cap: usize| super::read_capped(chunked_answer(&chunks), cap);
        let cut = read(32 * 1024 + 100).await;
        assert_eq!(cut.bytes.len(), 32 * 1024 + 100);
        assert_eq!(cut.bytes[..], whole[..32 * 1024 + 100]);
        assert!(cut.truncated);
        let text = cut.text();
        assert!(
            text.ends_with(" [answer cut at 32868 bytes]"),
            "{}",
            &text[text.len() - 40..]
        );
        // Exactly the cap, and under it: whole, not marked.
        for cap in [whole.len(), whole.len() + 1] {
            let all = read(cap).await;
            assert_eq!(all.bytes, whole);
            assert!(!all.truncated);
            assert!(!all.text().contains("answer cut"));
        }
    }

    /// A transport error names its cause and leaves out the URL's query.
    #[tokio::test]
    async fn transport_errors_say_why_without_the_query() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("http://127.0.0.1:{port}/write?db=secret_db"))
            .send()
            .await
            .unwrap_err();
        let text = super::transport_error(e);
        assert!(text.contains("refused"), "{text}");
        assert!(!text.contains("secret_db"), "{text}");
    }

    /// A stand-in HTTP server: each request (head, body) goes to `answer`,
    /// which returns (status, extra headers, body). Records what it saw.
    pub(crate) async fn serve(
        answer: impl Fn(&str, &str) -> (u16, &'static str, String) + Send + Sync + 'static,
    ) -> (
        String,
        std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    ) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer = std::sync::Arc::new(answer);
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

    /// An answer whose body arrives in `chunks`, one by one.
    pub(crate) fn chunked_answer<T: AsRef<[u8]>>(chunks: &[T]) -> reqwest::Response {
        let body = Chunked(
            chunks
                .iter()
                .map(|c| bytes::Bytes::copy_from_slice(c.as_ref()))
                .collect(),
        );
        reqwest::Response::from(http::Response::new(reqwest::Body::wrap(body)))
    }

    /// A body that yields its chunks one by one, as a socket delivers them.
    struct Chunked(std::collections::VecDeque<bytes::Bytes>);

    impl http_body::Body for Chunked {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|c| Ok(http_body::Frame::data(c))))
        }
    }

    /// Round-robin takes the nodes in turn and skips one in cool-down
    /// unless all are; sticky stays until its node fails, and a second
    /// report of the same failure does not move it twice.
    #[test]
    fn nodes_follow_their_failover_policy() {
        use super::{Failover, Nodes};
        let rr = Nodes::new(
            3,
            Failover::RoundRobin {
                cool_down: std::time::Duration::from_secs(3600),
            },
        );
        let picks: Vec<usize> = (0..4).map(|_| rr.pick()).collect();
        assert_eq!(picks, [0, 1, 2, 0]);
        rr.failed(1);
        let picks: Vec<usize> = (0..4).map(|_| rr.pick()).collect();
        assert_eq!(picks, [2, 0, 2, 0], "node 1 is cooling down");
        rr.failed(0);
        rr.failed(2);
        // All cooling down: still one of them, in turn.
        let picks: Vec<usize> = (0..3).map(|_| rr.pick()).collect();
        assert_eq!(picks, [1, 2, 0]);

        let sticky = Nodes::new(3, Failover::Sticky);
        assert_eq!([sticky.pick(), sticky.pick()], [0, 0]);
        sticky.failed(0);
        assert_eq!(sticky.pick(), 1);
        sticky.failed(0);
        assert_eq!(sticky.pick(), 1, "a stale failure does not move it");
        sticky.failed(1);
        sticky.failed(2);
        assert_eq!(sticky.pick(), 0, "wraps around");
        let single = Nodes::new(1, Failover::Sticky);
        single.failed(0);
        assert_eq!(single.pick(), 0);
    }

    /// Request URLs are built on the parsed sink URL: a base path (with
    /// or without its trailing `/`) is kept, the query replaced.
    #[test]
    fn endpoints_extend_the_base_path() {
        for base in ["http://h:8086", "http://h:8086/"] {
            let base = reqwest::Url::parse(base).unwrap();
            let url = super::endpoint(&base, "write", "db=d");
            assert_eq!(url.as_str(), "http://h:8086/write?db=d");
        }
        for base in ["https://h/influx", "https://h/influx/"] {
            let base = reqwest::Url::parse(base).unwrap();
            let url = super::endpoint(&base, "api/v2/write", "org=o&bucket=b");
            assert_eq!(url.as_str(), "https://h/influx/api/v2/write?org=o&bucket=b");
        }
    }

    #[test]
    fn body_buffer_reuses_a_large_enough_spare_and_replaces_a_small_one() {
        let mut spare = Vec::with_capacity(1000);
        spare.extend_from_slice(b"old");
        let at = spare.as_ptr();
        let reused = super::body_buffer(spare, 1000);
        assert!(reused.is_empty());
        assert_eq!(reused.as_ptr(), at, "a large enough spare is reused");
        let grown = super::body_buffer(reused, 8000);
        assert!(grown.is_empty());
        assert!(grown.capacity() >= 9000, "{}", grown.capacity());
    }
}

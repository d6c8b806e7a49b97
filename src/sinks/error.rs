//! Why a sink could not be opened or a batch not written: typed causes
//! whose text is what logs, `/health` and dead-letter reasons show.

use std::path::PathBuf;
use std::time::Duration;

use super::elasticsearch::setup::SetupError;

/// Why a batch was not written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SinkError {
    /// Worth trying again (I/O error, server busy), not before `after`
    /// when the server said so.
    #[error("{cause} (will retry)")]
    Retryable {
        cause: Cause,
        after: Option<Duration>,
    },
    /// Trying again cannot help.
    #[error("{0}")]
    Permanent(Cause),
    /// Only an operator can clear it (an Elasticsearch data stream whose
    /// name a plain index holds): the worker keeps the batch and tries
    /// again, without giving up on it.
    #[error("{0} (held)")]
    Held(Cause),
}

impl SinkError {
    /// Retryable, as soon as the worker's backoff allows.
    pub(crate) fn retry(cause: impl Into<Cause>) -> SinkError {
        SinkError::Retryable {
            cause: cause.into(),
            after: None,
        }
    }

    /// What went wrong.
    pub(crate) fn cause(&self) -> &Cause {
        match self {
            SinkError::Retryable { cause, .. }
            | SinkError::Permanent(cause)
            | SinkError::Held(cause) => cause,
        }
    }

    /// Not before this long, when the destination said so.
    pub(crate) fn after(&self) -> Option<Duration> {
        match self {
            SinkError::Retryable { after, .. } => *after,
            SinkError::Permanent(_) | SinkError::Held(_) => None,
        }
    }
}

/// What went wrong, where: `at` names the node or URL (without its query).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Cause {
    /// No answer: the transport's error, its URL already taken out.
    #[error("{at}: {}", super::http::transport_text(error))]
    Transport { at: String, error: reqwest::Error },
    /// An answer the sink cannot take (429, 5xx, a failed statement), with
    /// what the destination said.
    #[error("{at}: {status} {says}")]
    Status {
        at: String,
        status: u16,
        says: String,
    },
    /// 401/403: the credentials.
    #[error("{at}: {status} not allowed: check the sink's credentials ({says})")]
    NotAllowed {
        at: String,
        status: u16,
        says: String,
    },
    /// 404: the database or bucket.
    #[error("{at}: 404 not found: does the database / bucket exist? ({says})")]
    NotFound { at: String, says: String },
    /// A status the sink does not know what to do with.
    #[error("{at}: unexpected {status} {says}")]
    Unexpected {
        at: String,
        status: u16,
        says: String,
    },
    /// 413: the request is larger than the node takes.
    #[error("{at}: 413 request too large {says}")]
    TooLarge { at: String, says: String },
    /// A 2xx whose body is not the answer expected (`problem`).
    #[error("{at}: {status} but {problem}: {says}")]
    Garbled {
        at: String,
        status: u16,
        problem: String,
        says: String,
    },
    /// Every item of the requests was answered "retry": the first one's
    /// reason, as the destination gave it.
    #[error("{0}")]
    Item(String),
    /// InfluxDB would not create the database (or policy), and an empty
    /// write (`probe`) says why the sink cannot proceed without it.
    #[error("database {name:?}: {status} on {statement} ({says}); {probe}")]
    Database {
        name: String,
        status: u16,
        statement: String,
        says: String,
        probe: String,
    },
    /// Elasticsearch's index template or policy could not be installed.
    #[error("setup: {0}")]
    Setup(#[from] SetupError),
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    /// A local write (`what`: the file, stdout) failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("file writer task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("dead-letter file lock poisoned")]
    Poisoned,
    /// The Kafka producer or brokers (what librdkafka said).
    #[error("kafka: {0}")]
    Kafka(String),
    /// The sink has no URL (validation refuses that).
    #[error("no URL configured")]
    NoUrl,
}

impl Cause {
    /// No answer from `at`.
    pub(crate) fn transport(at: impl Into<String>, error: reqwest::Error) -> Cause {
        Cause::Transport {
            at: at.into(),
            error: error.without_url(),
        }
    }
}

/// A sink's transport or dead-letter file could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("ca_file {}: cannot read: {source}", path.display())]
    CaRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ca_file {}: not PEM certificates: {source}", path.display())]
    CaPem {
        path: PathBuf,
        source: reqwest::Error,
    },
    #[error("ca_file {}: no certificate in it", path.display())]
    CaEmpty { path: PathBuf },
    #[error("cannot create the Kafka producer: {0}")]
    Kafka(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("cannot create {}: {source}", dir.display())]
    DeadLetterDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open dead-letter file {}: {source}", path.display())]
    DeadLetterFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::{Cause, SinkError};
    use std::time::Duration;

    /// The typed causes read as the strings they replaced: logs, /health
    /// and dead-letter reasons are unchanged.
    #[test]
    fn causes_read_as_before() {
        let cases = [
            (
                Cause::Status {
                    at: "http://n1:9200".into(),
                    status: 503,
                    says: "busy".into(),
                },
                "http://n1:9200: 503 busy",
            ),
            (
                Cause::NotAllowed {
                    at: "http://i/write".into(),
                    status: 401,
                    says: "authorization failed".into(),
                },
                "http://i/write: 401 not allowed: check the sink's credentials (authorization failed)",
            ),
            (
                Cause::NotFound {
                    at: "http://i/write".into(),
                    says: "database not found: \"db\"".into(),
                },
                "http://i/write: 404 not found: does the database / bucket exist? (database not found: \"db\")",
            ),
            (
                Cause::Unexpected {
                    at: "http://i/write".into(),
                    status: 302,
                    says: "moved".into(),
                },
                "http://i/write: unexpected 302 moved",
            ),
            (
                Cause::TooLarge {
                    at: "http://n1:9200".into(),
                    says: "".into(),
                },
                "http://n1:9200: 413 request too large ",
            ),
            (
                Cause::Garbled {
                    at: "http://n1:9200".into(),
                    status: 200,
                    problem: "no items".into(),
                    says: "<html>".into(),
                },
                "http://n1:9200: 200 but no items: <html>",
            ),
            (
                Cause::Database {
                    name: "db".into(),
                    status: 403,
                    statement: "CREATE DATABASE \"db\"".into(),
                    says: "forbidden".into(),
                    probe: "write probe: 500 oops".into(),
                },
                "database \"db\": 403 on CREATE DATABASE \"db\" (forbidden); write probe: 500 oops",
            ),
            (
                Cause::Io {
                    what: "stdout".into(),
                    source: std::io::Error::other("broken pipe"),
                },
                "stdout: broken pipe",
            ),
            (Cause::Poisoned, "dead-letter file lock poisoned"),
        ];
        for (cause, text) in cases {
            assert_eq!(cause.to_string(), text);
        }
        let e = SinkError::Retryable {
            cause: Cause::Item("es_rejected_execution_exception".into()),
            after: Some(Duration::from_secs(7)),
        };
        assert_eq!(e.after(), Some(Duration::from_secs(7)));
        assert_eq!(e.cause().to_string(), "es_rejected_execution_exception");
        assert_eq!(
            SinkError::Permanent(Cause::Gzip(std::io::Error::other("x"))).after(),
            None
        );
    }
}

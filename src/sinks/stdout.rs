//! `type = "stdout"`: records as lines on standard output.

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Cause, SinkError, lines};
use crate::record::Record;

pub(crate) struct StdoutSink {
    out: Mutex<tokio::io::Stdout>,
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl StdoutSink {
    pub(crate) fn new() -> Self {
        StdoutSink {
            out: Mutex::new(tokio::io::stdout()),
        }
    }

    pub(crate) async fn write(&self, batch: &[Record]) -> Result<(), SinkError> {
        let buf = lines(batch);
        let mut out = self.out.lock().await;
        out.write_all(&buf).await.map_err(|source| {
            SinkError::retry(Cause::Io {
                what: "stdout".into(),
                source,
            })
        })?;
        out.flush().await.map_err(|source| {
            SinkError::retry(Cause::Io {
                what: "stdout".into(),
                source,
            })
        })
    }
}

//! `type = "file"`: append records as lines (line protocol or NDJSON) to a file.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Cause, SinkError, lines};
use crate::record::Record;

pub(crate) struct FileSink {
    file: Arc<Mutex<File>>,
}

impl FileSink {
    /// Open (creating it and its directory) for appending.
    pub(crate) fn open(path: &Path) -> std::io::Result<FileSink> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink {
            file: Arc::new(Mutex::new(file)),
        })
    }

    /// Append the batch with one write; the blocking write runs off the
    /// async workers. A write that fails is cut back to the file's length
    /// before it, so the retried batch is written once, whole. Routes sharing the file are serialised by the lock, so
    /// batches never interleave.
    pub(crate) async fn write(&self, batch: &[Record]) -> Result<(), SinkError> {
        let buf = lines(batch);
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = file.lock().unwrap_or_else(|p| p.into_inner());
            let before = f.metadata()?.len();
            let written = f.write_all(&buf);
            if written.is_err() {
                // A full disk: cut the torn part off, so the retry writes
                // the batch once and no half line is left behind.
                f.set_len(before)?;
            }
            written
        })
        .await
        .map_err(|e| SinkError::retry(Cause::Task(e)))?
        .map_err(|source| {
            SinkError::retry(Cause::Io {
                what: "write failed".into(),
                source,
            })
        })
    }
}

//! `sluice check`: can the configured files and folders be written?

use super::*;

impl Config {
    /// For `sluice check`: can `data_dir`, every file sink's file and every
    /// dead-letter file be written (created where missing)? The error names the path and the
    /// key. Probes with a file it creates and removes at once.
    pub fn check_writable(&self) -> Result<(), ConfigError> {
        let text = if self.origin.starts_with('<') {
            EMBEDDED_DEFAULT.to_owned()
        } else {
            std::fs::read_to_string(&self.origin)
                .ok()
                .and_then(|t| substitute_env(&t, &self.origin).ok())
                .unwrap_or_default()
        };
        let locator = Locator::new(&text, &self.origin, &self.base_dir);
        let fail = |at: &[Seg], path: &Path, why: String| {
            locator.error(at, &format!("{} cannot be written: {why}", path.display()))
        };
        probe_dir(&self.data_dir).map_err(|why| fail(&[key("data_dir")], &self.data_dir, why))?;
        for (i, s) in self.sinks.iter().enumerate() {
            // `run` creates a file sink's folder and opens it for appending.
            if let SinkKind::File { path } = &s.kind {
                probe_file(path)
                    .map_err(|why| fail(&[key("sinks"), Seg::Index(i), key("path")], path, why))?;
            }
            let dead_letter = match &s.kind {
                SinkKind::Influxdb(c) => c.http.dead_letter.as_ref(),
                SinkKind::Elasticsearch(c) => c.http.dead_letter.as_ref(),
                SinkKind::Kafka(c) => c.dead_letter.as_ref(),
                _ => None,
            };
            if let Some(p) = dead_letter {
                probe_file(p).map_err(|why| {
                    fail(
                        &[key("sinks"), Seg::Index(i), key("dead_letter_path")],
                        p,
                        why,
                    )
                })?;
            }
        }
        Ok(())
    }
}

/// Can a file be created in `dir` (or, where it does not exist yet, in
/// its nearest existing ancestor, which `run` would create it under)?
pub(super) fn probe_dir(dir: &Path) -> Result<(), String> {
    let mut d = dir;
    // Bounded by the path's depth.
    for _ in 0..=dir.components().count() {
        match std::fs::metadata(d) {
            Ok(m) if m.is_dir() => {
                let probe = d.join(format!(".sluice-check-{}", std::process::id()));
                return match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&probe)
                {
                    Ok(_) => {
                        let _ = std::fs::remove_file(&probe);
                        Ok(())
                    }
                    Err(e) => Err(format!("cannot create a file in {}: {e}", d.display())),
                };
            }
            Ok(_) => return Err(format!("{} is not a directory", d.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                d = match d.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
            }
            Err(e) => return Err(format!("{}: {e}", d.display())),
        }
    }
    Err(format!("no existing directory above {}", dir.display()))
}

/// Can `file` be appended to (or created)?
pub(super) fn probe_file(file: &Path) -> Result<(), String> {
    match std::fs::metadata(file) {
        Ok(m) if m.is_dir() => Err(format!("{} is a directory", file.display())),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .open(file)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir(p),
            _ => probe_dir(Path::new(".")),
        },
        Err(e) => Err(e.to_string()),
    }
}

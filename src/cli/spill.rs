//! `sluice spill verify`: read the spill logs under a data dir, change nothing.

use std::path::Path;
use std::process::ExitCode;

/// One JSON object per route's log (none, and a note on stderr, when no
/// route has one); exit 1 when one is corrupt, 2 when `data_dir` is
/// neither a data dir (it has a `spill` folder: `run` creates it) nor a
/// spill folder.
pub(super) fn verify(data_dir: &Path) -> ExitCode {
    match crate::queue::spill::verify::verify(data_dir) {
        Ok(reports) => {
            let mut out = String::new();
            for r in &reports {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
            print!("{out}");
            if reports.is_empty() {
                // A data dir whose routes have no spill log (yet).
                eprintln!(
                    "{}: no route has a spill log: nothing to verify (0 routes)",
                    data_dir.display()
                );
            }
            if reports.iter().any(|r| !r.corrupt.is_empty()) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

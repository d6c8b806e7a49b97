//! `sluice spill verify`: read the spill logs under a data dir, change nothing.

use std::path::Path;
use std::process::ExitCode;

/// One JSON object per route's log; exit 1 when one is corrupt, 2 when
/// `data_dir` is not a spill folder.
pub(super) fn verify(data_dir: &Path) -> ExitCode {
    match crate::queue::spill::verify::verify(data_dir) {
        Ok(reports) => {
            let mut out = String::new();
            for r in &reports {
                out.push_str(&serde_json::to_string(r).unwrap_or_default());
                out.push('\n');
            }
            print!("{out}");
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

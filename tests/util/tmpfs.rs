//! A small filesystem to fill: a tmpfs mounted on a temp dir (needs root;
//! CI runs as root).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::tool_available;

/// A tmpfs of a given size on a temp dir; unmounted on drop.
pub(crate) struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (after saying why) when mounting is refused; under
    /// `SLUICE_REQUIRE_TOOLS=1` or `CI=true` a refused mount fails the case.
    pub(crate) fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        let why = match out {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!(
                "{}: {}",
                o.status,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => e.to_string(),
        };
        tool_available(
            "a tmpfs",
            Some(format!(
                "mounting was refused ({why}); this case needs root"
            )),
        );
        None
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fill the filesystem of `dir` with a file, leaving `leave` bytes free
/// (4 KiB pages); returns the file, whose removal frees the space.
pub(crate) fn fill(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0x55u8; 4096];
    let mut len = 0u64;
    while f.write_all(&chunk).is_ok() {
        len += 4096;
    }
    drop(f);
    let keep = len.saturating_sub(leave);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(keep)
        .unwrap();
    path
}

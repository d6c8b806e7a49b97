//! External tools some tests need (influxd, javac/java, logger, the engine
//! zips): missing, the test skips with a printed reason on a developer's
//! machine, but fails under CI (`SLUICE_REQUIRE_TOOLS=1`, set by .ci/run,
//! or `CI=true`), so CI never passes on a skipped suite.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a missing tool fails the test instead of skipping it.
pub(crate) fn tools_required() -> bool {
    std::env::var("SLUICE_REQUIRE_TOOLS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// `true` when nothing is `missing`; otherwise print why `what` cannot run
/// and return `false` (the test returns early: skipped), or panic when
/// tools are required.
#[track_caller]
pub(crate) fn tool_available(what: &str, missing: Option<String>) -> bool {
    let Some(why) = missing else {
        return true;
    };
    if tools_required() {
        panic!("{what} cannot run and SLUICE_REQUIRE_TOOLS=1 or CI=true: {why}");
    }
    eprintln!("SKIPPED: {what} cannot run here: {why}");
    false
}

/// Why `program args…` cannot be started, or `None` when it starts.
pub(crate) fn missing_command(program: &str, args: &[&str], hint: &str) -> Option<String> {
    match Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => None,
        Err(e) => Some(format!("cannot start `{program}` ({e}); {hint}")),
    }
}

/// Why `path` is not there, or `None` when it is a file.
pub(crate) fn missing_file(path: &Path, hint: &str) -> Option<String> {
    (!path.is_file()).then(|| format!("{} is not there; {hint}", path.display()))
}

/// A real `influxd` can be started (Debian package `influxdb`).
#[track_caller]
pub(crate) fn influxd_available() -> bool {
    tool_available(
        "the InfluxDB test",
        missing_command(
            "influxd",
            &["version"],
            "install the Debian package influxdb (.ci/run does)",
        ),
    )
}

/// `logger` from util-linux is there.
#[track_caller]
pub(crate) fn logger_available() -> bool {
    tool_available(
        "the logger test",
        missing_command(
            "logger",
            &["--version"],
            "install bsdutils (util-linux; .ci/run does)",
        ),
    )
}

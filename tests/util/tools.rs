//! External tools some tests need (influxd, javac/java, logger, the engine
//! zips): missing, the test skips with a printed reason on a developer's
//! machine, but fails under CI (`SLUICE_REQUIRE_TOOLS=1`, set by .ci/run,
//! or `CI` set to anything but empty, `false` or `0`: CI services set
//! `true`, `1` or their name), so CI never passes on a skipped suite.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a missing tool fails the test instead of skipping it.
pub(crate) fn tools_required() -> bool {
    requires_tools(
        std::env::var("SLUICE_REQUIRE_TOOLS").ok().as_deref(),
        std::env::var("CI").ok().as_deref(),
    )
}

/// [`tools_required`] from the values of `SLUICE_REQUIRE_TOOLS` and `CI`.
fn requires_tools(require: Option<&str>, ci: Option<&str>) -> bool {
    require == Some("1") || ci.is_some_and(|v| !matches!(v.trim(), "" | "false" | "0"))
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
        panic!("{what} cannot run and SLUICE_REQUIRE_TOOLS=1 or CI is set: {why}");
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

/// Any `CI` value but empty, `false` or `0` requires the tools (GitHub and
/// GitLab set `true`, others `1` or a name); `SLUICE_REQUIRE_TOOLS=1` does.
#[test]
fn tools_required_under_any_ci_value() {
    for ci in ["true", "1", "yes", "woodpecker"] {
        assert!(requires_tools(None, Some(ci)), "CI={ci} must require tools");
    }
    for ci in [None, Some(""), Some("false"), Some("0")] {
        assert!(
            !requires_tools(None, ci),
            "CI={ci:?} must not require tools"
        );
    }
    assert!(requires_tools(Some("1"), None));
    assert!(!requires_tools(Some("0"), Some("false")));
}

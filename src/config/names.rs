//! Syslog facility and severity names (RFC 5424 tables).

pub(super) const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Facility name for a code (0..=23).
pub(crate) fn facility_name(code: u8) -> &'static str {
    FACILITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

pub(super) const SEVERITIES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// Severity name for a code (0..=7).
pub(crate) fn severity_name(code: u8) -> &'static str {
    SEVERITIES
        .get(usize::from(code))
        .copied()
        .unwrap_or("unknown")
}

pub(super) fn severity_code(name: &str) -> Option<u8> {
    let name = name.trim().to_ascii_lowercase();
    let name = match name.as_str() {
        "emergency" | "panic" => "emerg",
        "critical" => "crit",
        "error" => "err",
        "warn" => "warning",
        "informational" => "info",
        other => other,
    };
    if let Ok(n) = name.parse::<u8>() {
        return (n <= 7).then_some(n);
    }
    SEVERITIES.iter().position(|s| *s == name).map(|p| p as u8)
}

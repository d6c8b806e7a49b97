//! `sluice check`, config errors, the embedded default and `sluice parse`.

use std::path::Path;
use std::process::Command;

use crate::util::*;

#[test]
fn a_bad_config_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        config(
            "",
            "[[routes]]\nname = \"r\"\nsink = \"events\"\npattern = \"(unclosed\"\ndocument = {}\n",
        ),
    )
    .unwrap();
    let line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("pattern"))
        .unwrap()
        + 1;
    for cmd in ["run", "check"] {
        let out = Command::new(BIN)
            .args([cmd, "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "bad.toml:{line}:1: routes[0].pattern: route \"r\": invalid regex"
            )),
            "{cmd}: {err}"
        );
    }
    let out = Command::new(BIN).args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn every_config_in_config_and_examples_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    toml_files(&root.join("config"), &mut files);
    toml_files(&root.join("examples"), &mut files);
    for path in &files {
        let out = Command::new(BIN)
            .args(["check", "-c", path.to_str().unwrap()])
            .env("INFLUX_PASSWORD", "test")
            .env("ES_API_KEY", "test")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names: Vec<_> = files
        .iter()
        .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_owned())
        .collect();
    for expected in [
        "config/sluice.toml",
        "config/container.toml",
        "config/influxdb-elasticsearch.toml",
        "config/grok-routes.toml",
        "config/kafka-edge.toml",
        "examples/compose/sluice.toml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

#[test]
fn the_embedded_default_is_config_sluice_toml() {
    // Outside the repository (no config/sluice.toml), check resolves the embedded default.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("<embedded default>: ok"), "{text}");
    assert!(text.contains("listener udp: udp 127.0.0.1:5514"), "{text}");
    assert!(text.contains("listener tcp: tcp 127.0.0.1:5514"), "{text}");
    let embedded =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml"))
            .unwrap();
    assert_eq!(embedded, sluice::testing::EMBEDDED_DEFAULT);
}

#[test]
fn parse_prints_canonical_json_and_route_results() {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/sluice.toml");
    let reports = sluice_parse(
        &["-c", config.to_str().unwrap()],
        b"<14>1 2026-11-23T10:00:00.123+09:00 web01 billing 4711 GC [mdc@18060 user=\"kim\"] heap_used=1234 heap_max=4096\n",
    );
    assert_eq!(reports.len(), 1);
    let v = &reports[0];
    assert_eq!(v["timestamp"], "2026-11-23T10:00:00.123+09:00");
    assert_eq!(v["structured_data"]["mdc@18060"]["user"], "kim");
    assert_eq!(v["routes"][0]["route"], "status_metrics");
    assert_eq!(
        v["routes"][0]["line"],
        "status,app=billing,host=web01 heap_used=1234,heap_max=4096 1795395600123000000"
    );
    assert_eq!(
        v["routes"][1]["document"]["message"],
        "heap_used=1234 heap_max=4096"
    );
}

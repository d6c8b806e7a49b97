//! The compose files (examples/docker-compose*.yml) checked without a
//! Docker engine: every sluice config a compose service mounts passes
//! `sluice check` as that container sees it — at its mount point
//! (/etc/sluice, which the image's user cannot write), with the service's
//! environment, its named volumes as the only writable folders, and as a
//! user other than root (the image runs as `sluice`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{BIN, repo};

/// One service of a compose file: what these tests need of it.
#[derive(Default, Debug)]
struct Service {
    name: String,
    image: String,
    volumes: Vec<String>,
    environment: Vec<(String, String)>,
}

/// The services of a compose file written in this repository's style
/// (two-space indents, `volumes` and `environment` as block lists or maps).
fn services(path: &Path) -> Vec<Service> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut out: Vec<Service> = Vec::new();
    let (mut in_services, mut key) = (false, String::new());
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let unquote = |s: &str| s.trim().trim_matches('"').to_owned();
        match line.len() - line.trim_start().len() {
            0 => in_services = t == "services:",
            2 if in_services => out.push(Service {
                name: t.trim_end_matches(':').to_owned(),
                ..Service::default()
            }),
            4 if in_services => {
                let (k, v) = t.split_once(':').unwrap_or((t, ""));
                key = k.to_owned();
                if k == "image" {
                    out.last_mut().unwrap().image = unquote(v);
                }
            }
            6 if in_services => {
                let s = out.last_mut().unwrap();
                match (key.as_str(), t.strip_prefix("- ")) {
                    ("volumes", Some(item)) => s.volumes.push(unquote(item)),
                    ("environment", Some(item)) => {
                        let (k, v) = item.split_once('=').expect("KEY=value");
                        s.environment.push((k.to_owned(), unquote(v)));
                    }
                    ("environment", None) => {
                        let (k, v) = t.split_once(": ").expect("KEY: value");
                        s.environment.push((k.to_owned(), unquote(v)));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    out
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Whether `runuser -u sluicetest -- ARGS` runs and succeeds.
fn runs_as_sluicetest(args: &[&str]) -> bool {
    Command::new("runuser")
        .args(["-u", "sluicetest", "--"])
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `bin check -c config` with `env`, as user `sluicetest` under root.
fn check_as_container_user(
    bin: &Path,
    root: bool,
    config: &Path,
    env: &[(String, String)],
) -> std::process::Output {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "sluicetest", "--", "env"]);
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        c.arg(bin);
        c
    } else {
        let mut c = Command::new(bin);
        c.envs(env.iter().map(|(k, v)| (k, v)));
        c
    };
    cmd.args(["check", "-c"])
        .arg(config)
        .current_dir("/")
        .output()
        .unwrap()
}

#[test]
fn every_sluice_config_a_compose_file_mounts_passes_check_as_its_container_sees_it() {
    // Under root the check runs as `sluicetest` (the engines' user): the
    // image runs as a user who cannot write /etc/sluice.
    let root = running_as_root();
    if root
        && !crate::util::tool_available(
            "the compose config check",
            (!runs_as_sluicetest(&["true"]))
                .then(|| "no user sluicetest to run as (.ci/run creates it)".to_owned()),
        )
    {
        return;
    }
    // A binary that user may run: the build's, or a copy when the checkout
    // is not readable by others.
    let bin_dir = tempfile::tempdir().unwrap();
    let mut bin = PathBuf::from(BIN);
    if root && !runs_as_sluicetest(&[BIN, "--version"]) {
        std::fs::set_permissions(bin_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        bin = bin_dir.path().join("sluice");
        std::fs::copy(BIN, &bin).unwrap();
    }
    let examples = repo("examples");
    let mut composes: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with("docker-compose") && n.ends_with(".yml")
        })
        .collect();
    composes.sort();
    let mut checked = Vec::new();
    for compose in &composes {
        for s in services(compose)
            .iter()
            .filter(|s| s.image == "sluice:local")
        {
            let what = format!("{}: service {}", compose.display(), s.name);
            let mounted = s
                .volumes
                .iter()
                .find_map(|v| {
                    let mut parts = v.split(':');
                    let (src, dst) = (parts.next()?, parts.next()?);
                    (dst == "/etc/sluice/sluice.toml").then(|| examples.join(src))
                })
                .unwrap_or_else(|| panic!("{what} mounts no /etc/sluice/sluice.toml"));
            let text = std::fs::read_to_string(&mounted).unwrap();
            // The container's filesystem: /etc/sluice read-only to the
            // user, each named volume a folder the user owns.
            let fake = tempfile::tempdir().unwrap();
            let top = fake.path().to_owned();
            std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755)).unwrap();
            let etc = top.join("etc/sluice");
            std::fs::create_dir_all(&etc).unwrap();
            std::fs::set_permissions(top.join("etc"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            let mut targets = Vec::new();
            for v in &s.volumes {
                let mut parts = v.split(':');
                let (src, dst) = (parts.next().unwrap(), parts.next().unwrap());
                if !src.contains('/') && !src.starts_with('.') {
                    let dir = top.join(dst.trim_start_matches('/'));
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
                    targets.push(dst.to_owned());
                }
            }
            // Paths inside a volume, in the config or the environment, are
            // the fake root's.
            let mut inside = text.clone();
            for t in &targets {
                inside = inside.replace(&format!("\"{t}"), &format!("\"{}{t}", top.display()));
            }
            let config = etc.join("sluice.toml");
            std::fs::write(&config, &inside).unwrap();
            std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o555)).unwrap();
            let env: Vec<(String, String)> = s
                .environment
                .iter()
                .map(
                    |(k, v)| match targets.iter().find(|t| v.starts_with(t.as_str())) {
                        Some(_) => (k.clone(), format!("{}{v}", top.display())),
                        None => (k.clone(), v.clone()),
                    },
                )
                .collect();
            // Every `${NAME}` of the config is given by the service: no
            // default meant for another deployment (kafka1:9092, a path
            // beside the config) is left in the container.
            for name in text
                .split("${")
                .skip(1)
                .map(|r| r.split(['}', ':']).next().unwrap_or_default())
            {
                assert!(
                    s.environment.iter().any(|(k, _)| k == name),
                    "{what}: {} uses ${{{name}}}, the service does not set it",
                    mounted.display()
                );
            }
            let out = check_as_container_user(&bin, root, &config, &env);
            std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(
                out.status.success(),
                "{what}: sluice check -c {} failed:\n{}{}",
                mounted.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            checked.push(
                mounted
                    .canonicalize()
                    .unwrap()
                    .strip_prefix(repo(".").canonicalize().unwrap())
                    .unwrap()
                    .display()
                    .to_string(),
            );
        }
    }
    eprintln!("checked as mounted: {checked:?}");
    for expected in [
        "examples/compose/sluice.toml",
        "config/kafka-edge.toml",
        "config/kafka-indexer.toml",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} in {checked:?}"
        );
    }
}

//! The deployment files (`deploy/`): the compose file is valid for docker-compose, every variable they set is one
//! the service reads, every command they run exists with the flags given, and the Grafana dashboard queries only
//! series the service exports (checked here against the code that registers them; the serve and billing tests
//! check the same series in a live `/metrics`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

fn read(rel: &str) -> String {
    std::fs::read_to_string(common::repo_root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every `AUTOSUB_[A-Z_]+` word in `text`.
fn variables(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for prefix in ["AUTOSUB_", "AWS_"] {
        let mut rest = text;
        while let Some(i) = rest.find(prefix) {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(tail.len());
            out.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    out
}

/// The Rust sources of every crate, concatenated.
fn sources() -> String {
    fn walk(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = String::new();
    for c in std::fs::read_dir(common::repo_root().join("crates"))
        .unwrap()
        .flatten()
    {
        let src = c.path().join("src");
        if src.is_dir() {
            walk(&src, &mut out);
        }
    }
    out
}

const FILES: [&str; 8] = [
    "deploy/docker-compose.yml",
    "deploy/Dockerfile",
    "deploy/systemd/autosub.env.example",
    "deploy/systemd/autosub-bot.service",
    "deploy/systemd/autosub-billing.service",
    "deploy/systemd/autosub-api.service",
    "deploy/systemd/autosub-worker@.service",
    "deploy/prometheus.yml",
];

#[test]
fn every_variable_the_deployment_sets_is_read_by_the_service() {
    let src = sources();
    let mut all = BTreeSet::new();
    for f in FILES {
        for v in variables(&read(f)) {
            assert!(
                src.contains(&format!("\"{v}\"")),
                "{f} sets {v}, which no code reads"
            );
            all.insert(v);
        }
    }
    // The essentials are there.
    for v in [
        "AUTOSUB_DATABASE_URL",
        "AUTOSUB_TELEGRAM_TOKEN",
        "AUTOSUB_PLATEGA_SECRET",
        "AUTOSUB_PUBLIC_URL",
    ] {
        assert!(all.contains(v), "{v} missing from {all:?}");
    }
}

#[test]
fn every_command_the_deployment_runs_exists_with_its_flags() {
    let mut runs: Vec<Vec<String>> = vec![];
    let compose = read("deploy/docker-compose.yml");
    for line in compose.lines().map(str::trim) {
        if let Some(list) = line.strip_prefix("command: [") {
            runs.push(
                list.trim_end_matches(']')
                    .split(',')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .collect(),
            );
        }
    }
    for f in [
        "deploy/systemd/autosub-bot.service",
        "deploy/systemd/autosub-billing.service",
        "deploy/systemd/autosub-api.service",
        "deploy/systemd/autosub-worker@.service",
    ] {
        for line in read(f).lines() {
            if let Some(cmd) = line.strip_prefix("ExecStart=/usr/local/bin/autosub ") {
                runs.push(cmd.split_whitespace().map(str::to_owned).collect());
            }
        }
    }
    assert!(read("deploy/Dockerfile").contains("ENTRYPOINT [\"autosub\"]"));
    runs.push(vec!["serve".into()]);
    assert!(runs.len() >= 9, "{runs:?}");
    for run in runs {
        let out = Command::new(common::bin())
            .arg(&run[0])
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "autosub {} does not exist", run[0]);
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in run.iter().filter(|a| a.starts_with("--")) {
            assert!(
                help.contains(flag.as_str()),
                "autosub {} has no {flag}",
                run[0]
            );
        }
    }
}

#[test]
fn the_compose_file_is_valid_with_five_workers_and_health_checks() {
    let out = Command::new("docker-compose")
        .args(["-f", "deploy/docker-compose.yml", "config"])
        .current_dir(common::repo_root())
        .envs([
            ("POSTGRES_PASSWORD", "pw"),
            ("AUTOSUB_TELEGRAM_TOKEN", "1:x"),
            ("AUTOSUB_ADMINS", "1"),
            ("AUTOSUB_PUBLIC_URL", "https://autosub.example"),
            ("AUTOSUB_PLATEGA_MERCHANT_ID", "m"),
            ("AUTOSUB_PLATEGA_SECRET", "s"),
        ])
        .output()
        .expect("docker-compose (Debian package docker-compose; scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "replicas: 5",
        "/readyz",
        "/healthz",
        "pg_isready",
        "AUTOSUB_DATABASE_URL: postgres://autosub:pw@postgres:5432/autosub",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    for service in ["postgres:", "bot:", "billing:", "api:", "worker:"] {
        assert!(
            text.contains(&format!("  {service}")),
            "{service} not in:\n{text}"
        );
    }
}

#[test]
fn the_dashboard_queries_only_series_the_service_registers() {
    let src = sources();
    let series = common::dashboard_series();
    assert!(series.len() >= 14, "{series:?}");
    for s in &series {
        let (name, kind) = match s.strip_suffix("_bucket") {
            Some(h) => (h, "histogram"),
            None => (s.as_str(), ""),
        };
        let registered = ["counter", "gauge", "histogram"]
            .iter()
            .filter(|k| kind.is_empty() || **k == kind)
            .any(|k| src.contains(&format!("metrics::{k}!(\"{name}\"")));
        assert!(
            registered,
            "the dashboard queries {s}, which the service does not export"
        );
    }
    // Prometheus scrapes the ports the processes serve on.
    let prom = read("deploy/prometheus.yml");
    let compose = read("deploy/docker-compose.yml");
    assert!(prom.contains("port: 9101") && compose.contains("0.0.0.0:9101"));
    assert!(
        prom.contains("bot:8080")
            && prom.contains("billing:8080")
            && compose.contains("0.0.0.0:8080")
    );
}

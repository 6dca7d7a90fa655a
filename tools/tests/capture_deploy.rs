//! The files in `deploy/` agree with the code: the Grafana dashboard only
//! queries metrics the daemon exports, and the systemd unit runs the capture
//! verb with exactly the capabilities it needs and passes `systemd-analyze
//! verify` (when systemd is installed). The sample config is checked by the
//! config module's own tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use osprey_capture::metrics::{Metric, MetricType};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every `osprey_…` identifier in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("osprey_") {
        let start = i + pos;
        let mut end = start;
        while end < b.len() && (b[end].is_ascii_lowercase() || b[end].is_ascii_digit() || b[end] == b'_') {
            end += 1;
        }
        out.insert(text[start..end].to_string());
        i = end;
    }
    out
}

#[test]
fn the_dashboard_queries_only_exported_metrics_and_covers_them_all() {
    let text = std::fs::read_to_string(deploy().join("grafana/osprey-capture.json")).expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut exprs = String::new();
    for p in dash["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().into_iter().flatten() {
            exprs.push_str(t["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let mut known = BTreeSet::new();
    for m in Metric::ALL {
        let d = m.desc();
        known.insert(d.name.to_string());
        if d.kind == MetricType::Summary {
            known.insert(format!("{}_sum", d.name));
            known.insert(format!("{}_count", d.name));
        }
    }
    let used = metric_names(&exprs);
    let unknown: Vec<_> = used.difference(&known).collect();
    assert!(unknown.is_empty(), "the dashboard queries metrics nobody exports: {unknown:?}");
    let unused: Vec<_> = Metric::ALL.iter().map(|m| m.desc().name).filter(|n| !used.contains(*n)).collect();
    assert!(unused.is_empty(), "metrics missing from the dashboard: {unused:?}");
}

#[test]
fn the_systemd_unit_runs_capture_with_the_needed_capabilities() {
    let unit = std::fs::read_to_string(deploy().join("osprey-capture.service")).expect("unit");
    let exec = unit.lines().find(|l| l.starts_with("ExecStart=")).expect("ExecStart");
    assert!(exec.contains(" capture") && exec.contains("/etc/osprey/osprey.toml"), "{exec}");
    for cap in ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_BPF", "CAP_PERFMON"] {
        let line = unit.lines().find(|l| l.starts_with("AmbientCapabilities=")).expect("AmbientCapabilities");
        assert!(line.contains(cap), "{cap} missing from {line}");
        let bound = unit.lines().find(|l| l.starts_with("CapabilityBoundingSet=")).expect("CapabilityBoundingSet");
        assert!(bound.contains(cap), "{cap} missing from {bound}");
    }
    for hardening in ["NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=osprey", "KillSignal=SIGTERM"] {
        assert!(unit.contains(hardening), "{hardening} missing");
    }
    // systemd-analyze, with ExecStart pointing at the binary we built.
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        eprintln!("SKIP: systemd-analyze not installed; unit syntax not verified");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("osprey-capture.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/osprey", env!("CARGO_BIN_EXE_osprey"))).expect("write");
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().expect("systemd-analyze");
    let msg = String::from_utf8_lossy(&out.stderr);
    let problems: Vec<&str> = msg.lines().filter(|l| l.contains("osprey-capture.service")).collect();
    assert!(problems.is_empty() && out.status.success(), "systemd-analyze verify: {msg}");
}

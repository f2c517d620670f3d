//! The deployment files stay true to the binary: the Kubernetes
//! ConfigMap's `wasmserve.toml` passes `wasmserve check`, and the
//! Deployment's probes, paths and grace period match what wasmserve does.
//! (No Kubernetes API server runs here, so the manifests' schema is not
//! checked; kubectl's client-side validation needs one.)

use std::process::Command;

use crate::fixtures::ECHO;
use crate::support::WASMSERVE;

const CONFIGMAP: &str = include_str!("../../deploy/kubernetes/configmap.yaml");
const DEPLOYMENT: &str = include_str!("../../deploy/kubernetes/deployment.yaml");
const CONTAINERFILE: &str = include_str!("../../deploy/Containerfile");

/// The block under `wasmserve.toml: |`, unindented.
fn embedded_config() -> String {
    let mut lines = CONFIGMAP
        .lines()
        .skip_while(|line| !line.contains("wasmserve.toml: |"));
    lines.next();
    lines
        .take_while(|line| line.is_empty() || line.starts_with("    "))
        .map(|line| line.strip_prefix("    ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The number after `key:` in the Deployment.
fn number(key: &str) -> u64 {
    DEPLOYMENT
        .lines()
        .find_map(|line| line.trim().strip_prefix(key))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in deployment.yaml"))
}

#[test]
fn the_configmap_config_passes_wasmserve_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let handlers = std::path::Path::new(ECHO)
        .parent()
        .expect("the handlers' folder");
    let config = embedded_config().replace("/handlers/", &format!("{}/", handlers.display()));
    assert!(config.contains("[[service]]"), "{config}");
    let path = dir.path().join("wasmserve.toml");
    std::fs::write(&path, config).expect("write");
    let output = Command::new(WASMSERVE)
        .arg("check")
        .arg("--config")
        .arg(&path)
        .output()
        .expect("wasmserve check");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_deployment_probes_and_grace_period_fit_wasmserve() {
    for needed in [
        "path: /readyz",
        "path: /healthz",
        "--config=/etc/wasmserve/wasmserve.toml",
        "mountPath: /etc/wasmserve",
        "--metrics=0.0.0.0:9100",
        "mountPath: /var/cache/wasmserve",
    ] {
        assert!(
            DEPLOYMENT.contains(needed),
            "deployment.yaml lacks {needed}"
        );
    }
    let drain: u64 = DEPLOYMENT
        .split("--drain-timeout=")
        .nth(1)
        .and_then(|rest| rest.split('s').next()?.parse().ok())
        .expect("--drain-timeout=Ns");
    assert!(number("terminationGracePeriodSeconds:") >= number("seconds:") + drain);
    assert!(CONTAINERFILE.contains("WASMSERVE_CACHE_DIR=/var/cache/wasmserve"));
}

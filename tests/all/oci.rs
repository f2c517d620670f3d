//! Handlers from an OCI registry: `wasmserve push` into a real registry,
//! `--handler oci://…` pulled, verified and cached by digest, served again
//! offline from the cache, and swapped by SIGHUP when the tag moves.

use std::io::BufReader;
use std::process::Command;

use crate::fixtures::{ECHO, WHOAMI};
use crate::registry_server::Registry;
use crate::support::{Server, WASMSERVE, assert_one_line_error, exchange_line, first_line};

/// `wasmserve push FILE REFERENCE`; the digest it printed.
fn push(file: &str, reference: &str) -> String {
    let output = Command::new(WASMSERVE)
        .args(["push", file, reference])
        .output()
        .expect("wasmserve push");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    text.split("manifests/")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no digest in {text}"))
}

fn serve(reference: &str, cache: &std::path::Path) -> Server {
    let cache = cache.to_string_lossy().into_owned();
    let mut command = Command::new(WASMSERVE);
    command.args(["--handler", reference, "--tcp", "0", "--cache-dir", &cache]);
    Server::spawn(command, 1)
}

fn echoes(server: &Server) -> bool {
    let mut client = BufReader::new(server.connect());
    exchange_line(&mut client, "from the registry") == "from the registry\n"
}

#[test]
#[cfg_attr(
    wasmserve_no_registry,
    ignore = "docker-registry is not installed (Debian package docker-registry)"
)]
fn a_pushed_handler_is_served_from_the_registry_and_then_offline_from_the_cache() {
    let mut registry = Registry::start();
    let tagged = registry.reference("acme/echo:v1");
    let digest = push(ECHO, &tagged);
    let cache = tempfile::tempdir().expect("tempdir");
    let server = serve(&tagged, cache.path());
    assert!(echoes(&server));
    drop(server);
    // The registry goes away: the tag's last digest is served from the
    // cache, with a warning; a pinned digest needs no registry at all.
    registry.stop();
    let offline = serve(&tagged, cache.path());
    assert!(echoes(&offline));
    offline.wait_for_log(&["registry unreachable", &digest]);
    let pinned = serve(
        &registry.reference(&format!("acme/echo@{digest}")),
        cache.path(),
    );
    assert!(echoes(&pinned));
}

#[test]
#[cfg_attr(
    wasmserve_no_registry,
    ignore = "docker-registry is not installed (Debian package docker-registry)"
)]
fn sighup_swaps_the_handler_when_its_tag_moves() {
    let registry = Registry::start();
    let tag = registry.reference("acme/service:live");
    push(ECHO, &tag);
    let cache = tempfile::tempdir().expect("tempdir");
    let server = serve(&tag, cache.path());
    assert!(echoes(&server));
    push(WHOAMI, &tag);
    server.signal("HUP");
    server.wait_for_log(&["handler reloaded"]);
    let line = first_line(server.connect());
    assert!(line.starts_with("transport=tcp"), "{line}");
}

#[test]
#[cfg_attr(
    wasmserve_no_registry,
    ignore = "docker-registry is not installed (Debian package docker-registry)"
)]
fn a_missing_tag_or_a_bad_reference_is_one_line() {
    let registry = Registry::start();
    let missing = registry.reference("acme/nothing:v9");
    assert_one_line_error(
        &["--handler", &missing, "--tcp", "0"],
        &[&missing, "manifest"],
    );
    assert_one_line_error(
        &["--handler", "oci://echo", "--tcp", "0"],
        &["oci://echo", "no registry"],
    );
}

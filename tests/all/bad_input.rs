//! Bad input gets one clear error line and a non-zero exit, never a panic.

use std::net::TcpListener;

use crate::fixtures::NOT_A_HANDLER;
use crate::support::{assert_one_line_error, assert_usage_error};

fn temp_file_with(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".wasm")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), bytes).expect("write temp file");
    file
}

#[test]
fn missing_handler_file() {
    assert_one_line_error(
        &["--handler", "/nonexistent/echo.wasm", "--tcp", "0"],
        &["/nonexistent/echo.wasm", "does not exist"],
    );
}

#[test]
fn a_file_that_is_not_wasm() {
    let file = temp_file_with(b"#!/bin/sh\necho not wasm\n");
    let path = file.path().to_str().expect("utf-8 temp path");
    assert_one_line_error(
        &["--handler", path, "--tcp", "0"],
        &[path, "not a WebAssembly file"],
    );
}

#[test]
fn a_core_module_instead_of_a_component() {
    // The smallest valid core module: magic and version 1.
    let file = temp_file_with(b"\0asm\x01\0\0\0");
    let path = file.path().to_str().expect("utf-8 temp path");
    assert_one_line_error(
        &["--handler", path, "--tcp", "0"],
        &[
            path,
            "core WebAssembly module, not a component",
            "wasm32-wasip2",
        ],
    );
}

#[test]
fn an_empty_component_has_no_handle_export() {
    // The smallest valid component: magic, version 0xd, layer 1.
    let file = temp_file_with(b"\0asm\x0d\0\x01\0");
    let path = file.path().to_str().expect("utf-8 temp path");
    assert_one_line_error(
        &["--handler", path, "--tcp", "0"],
        &[
            "does not export `handle`",
            "wasmserve:handler/handler",
            "exports: nothing",
        ],
    );
}

#[test]
fn a_component_of_another_world() {
    assert_one_line_error(
        &["--handler", NOT_A_HANDLER, "--tcp", "0"],
        &["does not export `handle`", "wasi:cli/run"],
    );
}

#[test]
fn a_truncated_component() {
    let file = temp_file_with(b"\0asm\x0d\0\x01\0\x07\xff\xff");
    let path = file.path().to_str().expect("utf-8 temp path");
    assert_one_line_error(
        &["--handler", path, "--tcp", "0"],
        &[path, "not a valid component"],
    );
}

#[test]
fn a_port_already_in_use() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port to take");
    let port = taken.local_addr().expect("local addr").port().to_string();
    let (_, echo) = (0, crate::fixtures::ECHO);
    assert_one_line_error(
        &["--handler", echo, "--tcp", &port],
        &["address already in use", &format!("127.0.0.1:{port}")],
    );
}

#[test]
fn addresses_that_do_not_parse() {
    for bad in ["abc", "70000", "127.0.0.1:", "::1:80", "[::1]:port"] {
        assert_usage_error(
            &["--handler", "x.wasm", "--tcp", bad],
            "expected [HOST:]PORT",
        );
    }
}

#[test]
fn no_listener_is_a_usage_error() {
    assert_usage_error(&["--handler", "x.wasm"], "--tcp");
}

#[test]
fn a_state_backend_that_cannot_be_used() {
    use crate::fixtures::VISITS;
    assert_usage_error(
        &["--handler", VISITS, "--tcp", "0", "--state", "mongodb://x"],
        "use memory, file:PATH or redis://HOST:PORT",
    );
    assert_one_line_error(
        &[
            "--handler",
            VISITS,
            "--tcp",
            "0",
            "--state",
            "file:/nonexistent-folder/state.redb",
        ],
        &["state file:/nonexistent-folder/state.redb", "No such file"],
    );
}

#[test]
fn an_allow_list_entry_that_is_not_host_port() {
    use crate::fixtures::TCPCLIENT;
    for (entry, says) in [
        ("6379", "expected HOST:PORT"),
        ("10.0.0.0/33:80", "bad prefix length /33"),
    ] {
        assert_usage_error(
            &[
                "--handler",
                TCPCLIENT,
                "--tcp",
                "0",
                "--allow-connect",
                entry,
            ],
            says,
        );
    }
}

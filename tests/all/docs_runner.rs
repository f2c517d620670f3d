//! Every command block of README.md runs as written, so the README cannot
//! drift from the binary.
//!
//! Each fenced `sh` block is run line by line from a scratch directory,
//! with a `wasmserve` on the PATH (the binary under test), against the
//! handlers this crate's build script built. Only three things are
//! rewritten, the same way in every block: the ports 8100 and 8101 become
//! free ports, `/tmp/` becomes a scratch folder, and
//! `target/wasm32-wasip2/release/` becomes the folder of the built fixtures
//! (built by the very command the README shows). A `wasmserve` command that
//! listens runs in the background until the next one starts, and must have
//! printed its `listening` line first; every other command must exit 0. A
//! `toml` block is saved as `wasmserve.toml`. A `console` block (`$ command`
//! then its output) must print exactly that output.
//!
//! `cargo` commands are not run here (they are what runs this test, or a
//! release build of their own): each is checked instead — the packages it
//! names exist, `cargo install --path` names the binary's crate, and
//! `cargo run --bin wasmserve -- ARGS` runs as `wasmserve ARGS`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::fixtures::ECHO;
use crate::support::{CACHE_DIR, WASMSERVE};

const README: &str = include_str!("../../README.md");

/// The workspace's packages a README `cargo -p NAME` may name.
const PACKAGES: [&str; 4] = [
    "wasmserve",
    "wasmserve-bench",
    "wasmserve-sdk",
    "wasmserve-tests",
];

/// One fenced block of the README: its language and its lines.
#[derive(Debug)]
struct Block {
    lang: String,
    lines: Vec<String>,
    /// The README line the block starts at, for messages.
    at: usize,
}

fn blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (number, line) in README.lines().enumerate() {
        match (current.take(), line.strip_prefix("```")) {
            (None, Some(lang)) => {
                current = Some(Block {
                    lang: lang.trim().to_owned(),
                    lines: Vec::new(),
                    at: number + 1,
                })
            }
            (Some(block), Some(_)) => blocks.push(block),
            (Some(mut block), None) => {
                block.lines.push(line.to_owned());
                current = Some(block);
            }
            (None, None) => {}
        }
    }
    blocks
}

/// A port free for both TCP and UDP on 127.0.0.1.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The scratch world the README's commands run in.
struct Scratch {
    dir: tempfile::TempDir,
    bin: PathBuf,
    ports: [(String, String); 2],
    fixtures: String,
    /// The `wasmserve` serving in the background, if any.
    server: Option<Child>,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        std::fs::create_dir_all(dir.path().join("tmp")).expect("tmp dir");
        std::os::unix::fs::symlink(WASMSERVE, bin.join("wasmserve")).expect("symlink");
        let fixtures = Path::new(ECHO)
            .parent()
            .expect("fixtures folder")
            .display()
            .to_string();
        Scratch {
            bin,
            ports: [
                ("8100".to_owned(), free_port().to_string()),
                ("8101".to_owned(), free_port().to_string()),
            ],
            fixtures,
            server: None,
            dir,
        }
    }

    /// The README's `text` as run here. Ports first, then `/tmp/`, then the
    /// handlers: each replacement only touches what the README wrote, never
    /// a path an earlier one put in (the checkout itself may be under /tmp).
    fn rewrite(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (from, to) in &self.ports {
            text = text.replace(from, to);
        }
        text.replace("/tmp/", &format!("{}/tmp/", self.dir.path().display()))
            .replace(
                "target/wasm32-wasip2/release/",
                &format!("{}/", self.fixtures),
            )
    }

    fn command(&self, line: &str) -> Command {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("sh");
        command
            .args(["-c", line])
            .current_dir(self.dir.path())
            .env("PATH", path)
            .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
            .stdin(Stdio::null());
        command
    }

    fn stop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &server.id().to_string()])
                .status();
            let status = server.wait().expect("wait for wasmserve");
            assert!(status.success(), "a README server exited with {status}");
        }
    }

    /// Starts `line` (a listening wasmserve) and waits for its first
    /// `listening` line: every listener is bound by then.
    fn start_server(&mut self, line: &str, at: usize) {
        self.stop_server();
        let mut child = self
            .command(&format!("exec {line}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start wasmserve");
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let log = std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(first) if first.starts_with("listening ") => self.server = Some(child),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "README line {at}: `{line}` did not listen ({other:?}); log:\n{}",
                    log.join().unwrap_or_default()
                );
            }
        }
    }

    fn run(&self, line: &str, at: usize) -> String {
        let output = self
            .command(&format!("timeout 30 sh -c {}", shell_quote(line)))
            .output()
            .expect("run a README command");
        assert!(
            output.status.success(),
            "README line {at}: `{line}` failed with {}:\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Checks a `cargo` command without running it; returns the `wasmserve`
/// command it amounts to, for `cargo run --bin wasmserve -- ARGS`.
fn check_cargo(command: &str, at: usize) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    if let Some(args) = command.strip_prefix("cargo run --bin wasmserve -- ") {
        return Some(format!("wasmserve {args}"));
    }
    for pair in words.windows(2) {
        if pair[0] == "-p" {
            let name = pair[1];
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
            let handler = dir.join("../handlers").join(name).join("Cargo.toml");
            let fixture = dir.join("fixtures").join(name).join("Cargo.toml");
            assert!(
                PACKAGES.contains(&name) || handler.exists() || fixture.exists(),
                "README line {at}: `{command}` names no package {name:?}"
            );
        }
    }
    if let Some(path) = command.strip_prefix("cargo install --path ") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path.trim())
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("the installed crate exists");
        assert!(text.contains("name = \"wasmserve\""), "README line {at}");
    }
    None
}

/// Whether a `wasmserve` command serves (rather than checks or scaffolds).
fn serves(command: &str) -> bool {
    command.starts_with("wasmserve ")
        && !command.starts_with("wasmserve check")
        && !command.starts_with("wasmserve new")
        && ["--tcp", "--udp", "--unix", "--config"]
            .iter()
            .any(|flag| command.contains(flag))
}

#[test]
fn every_readme_command_block_runs_as_written() {
    let mut scratch = Scratch::new();
    let mut commands = 0;
    for block in blocks() {
        match block.lang.as_str() {
            "sh" => {
                for (offset, line) in block.lines.iter().enumerate() {
                    let at = block.at + 1 + offset;
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') || line.starts_with("export PATH=")
                    {
                        continue;
                    }
                    for part in line.split(" && ") {
                        commands += 1;
                        let part = match part.starts_with("cargo ") {
                            true => match check_cargo(part, at) {
                                Some(wasmserve) => wasmserve,
                                None => continue,
                            },
                            false => part.to_owned(),
                        };
                        if let Some(bench) = part.strip_prefix("target/release/wasmserve-bench") {
                            // A 4-minute release benchmark: check its flags exist.
                            let source = include_str!("../../bench/src/main.rs");
                            for flag in bench.split_whitespace() {
                                let field = flag.trim_start_matches("--").replace('-', "_");
                                assert!(source.contains(&field), "README line {at}: {flag}");
                            }
                            continue;
                        }
                        let rewritten = scratch.rewrite(&part);
                        match serves(&part) {
                            true => scratch.start_server(&rewritten, at),
                            false => drop(scratch.run(&rewritten, at)),
                        }
                    }
                }
            }
            "toml" => {
                let text = scratch.rewrite(&block.lines.join("\n"));
                std::fs::write(scratch.dir.path().join("wasmserve.toml"), text)
                    .expect("write wasmserve.toml");
            }
            "console" => {
                let Some(command) = block.lines.first().and_then(|l| l.strip_prefix("$ ")) else {
                    panic!("README line {}: a console block starts with `$ `", block.at);
                };
                commands += 1;
                let output = scratch.run(&scratch.rewrite(command), block.at);
                let expected = block.lines[1..].join("\n");
                assert_eq!(
                    output.trim_end(),
                    expected,
                    "README line {}: `{command}` printed something else",
                    block.at
                );
            }
            _ => {}
        }
    }
    scratch.stop_server();
    assert!(commands >= 20, "only {commands} README commands found");
}

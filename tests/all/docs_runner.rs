//! How a documentation page runs (for [`crate::docs`]).
//!
//! Each fenced `sh` block is run line by line from a scratch directory of
//! the page's own, with a `wasmserve` on the PATH (the binary under test),
//! against the handlers this crate's build script built. Only three things
//! are rewritten, the same way in every block: the ports 8100 to 8103 and
//! 5000 become free ports, `/tmp/` becomes a scratch folder, and
//! `target/wasm32-wasip2/release/` becomes the folder of the built fixtures.
//! A `wasmserve` command that listens runs in the background until the next
//! one starts, and must have printed its `listening` line first; a line
//! ending in ` &` (an upstream, a registry) runs in the background until the
//! page ends; every other command must exit 0. A `toml` block is saved as
//! `wasmserve.toml`, and a block whose first line is `# save as PATH` as
//! PATH. A `console` block (`$ command` then its output) must print exactly
//! that output.
//!
//! `cargo` commands are not run here (they are what runs this test, or a
//! release build of their own): each is checked instead — the packages it
//! names exist, `cargo install --path` names the binary's crate — and the
//! two that serve run as what they amount to: `cargo run --bin wasmserve --
//! ARGS` as `wasmserve ARGS`, `cargo serve NAME [FLAGS]` as `wasmserve
//! --handler NAME.wasm FLAGS` (`--tcp 8100` without flags).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::fixtures::ECHO;
use crate::support::{CACHE_DIR, WASMSERVE};

/// The workspace's packages a `cargo -p NAME` may name besides handlers.
const PACKAGES: [&str; 5] = [
    "wasmserve",
    "wasmserve-bench",
    "wasmserve-sdk",
    "wasmserve-tests",
    "xtask",
];

/// The ports the docs use, each replaced by a free one.
const PORTS: [&str; 5] = ["8100", "8101", "8102", "8103", "5000"];

/// One fenced block of a page: its language and its lines.
#[derive(Debug)]
pub struct Block {
    pub lang: String,
    pub lines: Vec<String>,
    /// The page line the block starts at, for messages.
    pub at: usize,
}

pub fn blocks(page: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (number, line) in page.lines().enumerate() {
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

/// `text` with every `from` that is a whole number (no digit either side)
/// replaced by `to`.
fn replace_number(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        let whole = !before.is_some_and(|c| c.is_ascii_digit())
            && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// The scratch world a page's commands run in.
struct Scratch {
    page: &'static str,
    dir: tempfile::TempDir,
    bin: PathBuf,
    ports: Vec<(&'static str, String)>,
    fixtures: String,
    /// The `wasmserve` serving in the foreground, if any.
    server: Option<Child>,
    /// What runs until the page ends (lines ending in ` &`).
    background: Vec<Child>,
}

impl Scratch {
    fn new(page: &'static str) -> Self {
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
            page,
            bin,
            ports: PORTS
                .iter()
                .map(|port| (*port, free_port().to_string()))
                .collect(),
            fixtures,
            server: None,
            background: Vec::new(),
            dir,
        }
    }

    /// `text` as run here. Ports first, then `/tmp/`, then the handlers:
    /// each replacement only touches what the page wrote, never a path an
    /// earlier one put in (the checkout itself may be under /tmp).
    fn rewrite(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (from, to) in &self.ports {
            text = replace_number(&text, from, to);
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
            assert!(
                status.success(),
                "{}: a server exited with {status}",
                self.page
            );
        }
    }

    /// Starts `part` (a listening wasmserve, as the page wrote it) and
    /// waits for its first `listening` line: every listener is bound by
    /// then. A port of the page's that something else took since it was
    /// picked (another test's connection may get it as its ephemeral port)
    /// is picked again, at most three times; the page's later lines use
    /// the new one.
    fn start_server(&mut self, part: &str, at: usize) -> Child {
        let mut attempts = 0;
        loop {
            let line = self.rewrite(part);
            match self.try_start_server(&line) {
                Ok(child) => return child,
                Err(log) if attempts < 3 && self.repick_taken_port(&log) => attempts += 1,
                Err(log) => panic!("{} line {at}: `{line}` did not listen {log}", self.page),
            }
        }
    }

    /// Picks another port for the page's port whose listener `log` says
    /// was taken (`cannot listen on tcp 127.0.0.1:PORT: address already in
    /// use`); whether there was one.
    fn repick_taken_port(&mut self, log: &str) -> bool {
        let Some(at) = log.find(": address already in use") else {
            return false;
        };
        let taken = log[..at].rsplit(':').next().unwrap_or_default();
        match self.ports.iter_mut().find(|(_, to)| to == taken) {
            Some((_, to)) => {
                *to = free_port().to_string();
                true
            }
            None => false,
        }
    }

    /// Starts `line` and waits for its first `listening` line; what it
    /// printed and logged otherwise.
    fn try_start_server(&self, line: &str) -> Result<Child, String> {
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
            Ok(first) if first.starts_with("listening ") => Ok(child),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "({other:?}); log:\n{}",
                    log.join().unwrap_or_default()
                ))
            }
        }
    }

    fn run(&self, line: &str, at: usize) -> String {
        let output = self
            .command(&format!("timeout 30 sh -c {}", shell_quote(line)))
            .output()
            .expect("run a command");
        assert!(
            output.status.success(),
            "{} line {at}: `{line}` failed with {}:\n{}{}",
            self.page,
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs one command of an `sh` block (already split at ` && `).
    fn run_command(&mut self, part: &str, at: usize) {
        let (part, background) = match part.strip_suffix(" &") {
            Some(part) => (part.trim(), true),
            None => (part, false),
        };
        let part = match part.starts_with("cargo ") {
            true => match check_cargo(self.page, part, at) {
                Some(wasmserve) => wasmserve,
                None => return,
            },
            false => part.to_owned(),
        };
        if let Some(bench) = part.strip_prefix("target/release/wasmserve-bench") {
            // A 4-minute release benchmark: check its flags exist.
            let source = include_str!("../../bench/src/main.rs");
            for flag in bench.split_whitespace() {
                let field = flag.trim_start_matches("--").replace('-', "_");
                assert!(source.contains(&field), "{} line {at}: {flag}", self.page);
            }
            return;
        }
        match (serves(&part), background) {
            (true, true) => {
                let child = self.start_server(&part, at);
                self.background.push(child);
            }
            (true, false) => {
                self.stop_server();
                self.server = Some(self.start_server(&part, at));
            }
            (false, true) => {
                let rewritten = self.rewrite(&part);
                let child = self
                    .command(&format!("exec {rewritten}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a background command");
                self.background.push(child);
            }
            (false, false) => drop(self.run(&self.rewrite(&part), at)),
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for mut child in self
            .server
            .take()
            .into_iter()
            .chain(self.background.drain(..))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Checks a `cargo` command without running it; returns the `wasmserve`
/// command it amounts to, for the two that serve.
fn check_cargo(page: &str, command: &str, at: usize) -> Option<String> {
    let words: Vec<&str> = command.split_whitespace().collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let is_package = |name: &str| {
        PACKAGES.contains(&name)
            || dir
                .join("../handlers")
                .join(name)
                .join("Cargo.toml")
                .exists()
            || dir.join("fixtures").join(name).join("Cargo.toml").exists()
    };
    if let Some(args) = command.strip_prefix("cargo run --bin wasmserve -- ") {
        return Some(format!("wasmserve {args}"));
    }
    if let ["cargo", "serve", name, flags @ ..] = &words[..] {
        assert!(
            is_package(name),
            "{page} line {at}: no bundled handler {name:?}"
        );
        let flags = match flags {
            [] => "--tcp 8100".to_owned(),
            flags => flags.join(" "),
        };
        let wasm = name.replace('-', "_");
        return Some(format!(
            "wasmserve --handler target/wasm32-wasip2/release/{wasm}.wasm {flags}"
        ));
    }
    for pair in words.windows(2).filter(|pair| pair[0] == "-p") {
        assert!(
            is_package(pair[1]),
            "{page} line {at}: `{command}` names no package {:?}",
            pair[1]
        );
    }
    if let Some(path) = command.strip_prefix("cargo install --path ") {
        let manifest = dir.join("..").join(path.trim()).join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).expect("the installed crate exists");
        assert!(text.contains("name = \"wasmserve\""), "{page} line {at}");
    }
    None
}

/// Whether a `wasmserve` command serves (rather than checks or scaffolds).
fn serves(command: &str) -> bool {
    command.starts_with("wasmserve ")
        && !command.starts_with("wasmserve check")
        && !command.starts_with("wasmserve new")
        && !command.starts_with("wasmserve push")
        && ["--tcp", "--udp", "--unix", "--config"]
            .iter()
            .any(|flag| command.contains(flag))
}

/// Runs every block of `page` (its path, for messages) in order.
pub fn run_page(page: &'static str, text: &str) {
    let mut scratch = Scratch::new(page);
    for block in blocks(text) {
        let save_as = block
            .lines
            .first()
            .and_then(|line| line.strip_prefix("# save as "))
            .map(str::trim);
        match (block.lang.as_str(), save_as) {
            (_, Some(path)) => {
                // An absolute path is under /tmp/ (rewritten to the scratch's).
                let file = scratch.dir.path().join(scratch.rewrite(path));
                std::fs::write(&file, scratch.rewrite(&block.lines[1..].join("\n")))
                    .expect("save a block");
            }
            ("sh", None) => {
                for (offset, line) in block.lines.iter().enumerate() {
                    let at = block.at + 1 + offset;
                    let line = line.trim();
                    if line.is_empty() || line.starts_with('#') || line.starts_with("export PATH=")
                    {
                        continue;
                    }
                    for part in line.split(" && ") {
                        scratch.run_command(part, at);
                    }
                }
            }
            ("toml", None) => {
                let text = scratch.rewrite(&block.lines.join("\n"));
                std::fs::write(scratch.dir.path().join("wasmserve.toml"), text)
                    .expect("write wasmserve.toml");
            }
            ("console", None) => {
                let Some(command) = block.lines.first().and_then(|l| l.strip_prefix("$ ")) else {
                    panic!("{page} line {}: a console block starts with `$ `", block.at);
                };
                let output = scratch.run(&scratch.rewrite(command), block.at);
                let expected = block.lines[1..].join("\n");
                assert_eq!(
                    output.trim_end(),
                    expected,
                    "{page} line {}: `{command}` printed something else",
                    block.at
                );
            }
            _ => {}
        }
    }
    scratch.stop_server();
}

//! Every page of the documentation — README.md and the book in `docs/` —
//! runs as written, so the docs cannot drift from the binary.
//!
//! Each page is a test of its own ([`crate::docs_runner`] says how its
//! blocks are run, from a scratch directory of its own). Beside them: every
//! page is tested and listed in `docs/SUMMARY.md`, every link between pages
//! resolves (file and heading), and every handler a page serves from
//! `target/wasm32-wasip2/release/` is built by an earlier line of that page.

use std::collections::BTreeSet;
use std::path::Path;

use crate::docs_runner::{Block, blocks, run_page};

/// Declares the pages: one test each, and the list the other tests read.
macro_rules! pages {
    ($($test:ident => $path:literal $(if $cfg:ident, $why:literal)?;)*) => {
        const PAGES: &[(&str, &str)] = &[$(($path, include_str!(concat!("../../", $path)))),*];
        $(
            #[test]
            $(#[cfg_attr($cfg, ignore = $why)])?
            fn $test() {
                run_page($path, include_str!(concat!("../../", $path)));
            }
        )*
    };
}

pages! {
    readme_runs_as_written => "README.md";
    getting_started_runs_as_written => "docs/getting-started.md";
    cli_page_runs_as_written => "docs/cli.md";
    limits_page_runs_as_written => "docs/limits.md";
    config_page_runs_as_written => "docs/config.md";
    state_page_runs_as_written => "docs/state.md";
    messaging_page_runs_as_written => "docs/messaging.md";
    outbound_page_runs_as_written => "docs/outbound.md";
    edge_page_runs_as_written => "docs/edge.md"
        if wasmserve_no_openssl, "openssl not found (Debian package openssl): the TLS example cannot run";
    deployment_page_runs_as_written => "docs/deployment.md"
        if wasmserve_no_registry, "docker-registry not found (Debian package docker-registry): the registry recipe cannot run";
    observing_page_runs_as_written => "docs/observing.md";
    speed_page_runs_as_written => "docs/speed.md";
    contract_page_runs_as_written => "docs/contract.md";
    rust_page_runs_as_written => "docs/rust.md";
    python_page_runs_as_written => "docs/python.md";
    javascript_page_runs_as_written => "docs/javascript.md";
    state_and_channels_page_runs_as_written => "docs/state-and-channels.md";
    bundled_page_runs_as_written => "docs/bundled.md";
    contributing_page_runs_as_written => "docs/contributing.md";
}

fn workspace() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn every_page_is_tested_and_listed_in_the_summary() {
    let summary = std::fs::read_to_string(workspace().join("docs/SUMMARY.md")).expect("SUMMARY");
    let tested: BTreeSet<&str> = PAGES.iter().map(|(path, _)| *path).collect();
    for entry in std::fs::read_dir(workspace().join("docs")).expect("docs/") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if !name.ends_with(".md") || name == "SUMMARY.md" {
            continue;
        }
        let path = format!("docs/{name}");
        assert!(
            tested.contains(path.as_str()),
            "{path} has no test in tests/all/docs.rs"
        );
        assert!(
            summary.contains(&format!("]({name})")),
            "docs/SUMMARY.md does not list {name}"
        );
    }
    let lines = PAGES[0].1.lines().count();
    assert!(
        lines <= 200,
        "README.md has {lines} lines; move detail into docs/"
    );
}

/// The slug mdBook (and GitHub) gives a heading: lower case, spaces to
/// dashes, other punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A page's lines outside fenced code blocks.
fn prose(text: &str) -> impl Iterator<Item = &str> {
    let mut inside = false;
    text.lines().filter(move |line| {
        if line.starts_with("```") {
            inside = !inside;
            return false;
        }
        !inside
    })
}

/// The anchors of a page's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .filter(|line| line.starts_with('#'))
        .map(|line| slug(line.trim_start_matches('#')))
        .collect()
}

/// The targets of a page's `[text](target)` links.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose(text) {
        for (at, _) in line.match_indices("](") {
            if let Some(end) = line[at + 2..].find(')') {
                targets.push(line[at + 2..at + 2 + end].to_owned());
            }
        }
    }
    targets
}

#[test]
fn every_link_between_pages_resolves() {
    let mut pages: Vec<(String, String)> = PAGES
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect();
    let summary = std::fs::read_to_string(workspace().join("docs/SUMMARY.md")).expect("SUMMARY");
    pages.push(("docs/SUMMARY.md".into(), summary));
    for (path, text) in &pages {
        let dir = Path::new(path).parent().unwrap_or(Path::new(""));
        for target in link_targets(text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let file_path = match file {
                "" => Path::new(path).to_path_buf(),
                file => dir.join(file),
            };
            let on_disk = workspace().join(&file_path);
            assert!(
                on_disk.exists(),
                "{path}: the link to {target} leads nowhere"
            );
            if path.starts_with("docs/") {
                assert!(
                    file_path.starts_with("docs"),
                    "{path}: {target} leaves the book (write the repository path as code instead)"
                );
            }
            if !anchor.is_empty() {
                let text = std::fs::read_to_string(&on_disk).expect("linked page");
                assert!(
                    anchors(&text).contains(anchor),
                    "{path}: {target} names no heading of {}",
                    file_path.display()
                );
            }
        }
    }
}

#[test]
fn every_handler_a_page_serves_is_built_first() {
    let mut commands = 0;
    for (path, text) in PAGES {
        let mut built = BTreeSet::new();
        for Block { lang, lines, at } in blocks(text) {
            if lang != "sh" {
                continue;
            }
            for (offset, line) in lines.iter().enumerate() {
                // Blank lines and comments are not commands.
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                commands += 1;
                let words: Vec<&str> = line.split_whitespace().collect();
                if line.starts_with("cargo build") && line.contains("wasm32-wasip2") {
                    for pair in words.windows(2).filter(|pair| pair[0] == "-p") {
                        built.insert(pair[1].replace('-', "_"));
                    }
                }
                for (at_path, _) in line.match_indices("target/wasm32-wasip2/release/") {
                    let rest = &line[at_path + "target/wasm32-wasip2/release/".len()..];
                    let name = rest.split(".wasm").next().unwrap_or_default();
                    assert!(
                        built.contains(name),
                        "{path} line {}: {name}.wasm is served before any line of the page builds it \
                         (add `cargo build --release --target wasm32-wasip2 -p {}` before it)",
                        at + 1 + offset,
                        name.replace('_', "-")
                    );
                }
            }
        }
    }
    assert!(commands >= 40, "only {commands} commands in the docs");
}

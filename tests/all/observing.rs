//! Metrics after a known workload, and JSON log lines.

use std::io::BufReader;
use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::fixtures::{ECHO, FAULTY};
use crate::support::{Server, exchange_line, read_to_end, round_trip};

/// Fetches `/metrics` with a real HTTP client (Python's urllib).
pub fn scrape(addr: &str) -> String {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())",
            &format!("http://{addr}/metrics"),
        ])
        .output()
        .expect("python3 is on every machine of this project");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// The `wasmserve_connections_active` line of the server whose metrics
/// listen at `addr` (its last word is the count), or `""`.
pub fn connections_active(addr: &str) -> String {
    scrape(addr)
        .lines()
        .find(|line| line.starts_with("wasmserve_connections_active{"))
        .map(str::to_owned)
        .unwrap_or_default()
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|line| Ok(line.to_owned())))
        .expect("the output parses as Prometheus text format")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|sample| {
            sample.metric == name
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(key) == Some(*value))
        })
        .unwrap_or_else(|| panic!("no sample {name} {labels:?}"));
    match &sample.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => *v,
        other => panic!("{name} is not a single value: {other:?}"),
    }
}

#[test]
fn metrics_count_a_known_workload_exactly() {
    let server = Server::start_with(
        &[
            "--handler",
            FAULTY,
            "--tcp",
            "0",
            "--udp",
            "0",
            "--metrics",
            "0",
        ],
        3,
    );
    assert!(server.listening[2].starts_with("listening metrics 127.0.0.1:"));
    let metrics_addr = server.addrs[2].clone();
    let service = [("service", "faulty.wasm")];

    let (mut bytes_in, mut bytes_out) = (0, 0);
    for i in 0..7 {
        let line = format!("hello {i}");
        let mut stream = BufReader::new(server.connect());
        assert_eq!(exchange_line(&mut stream, &line), format!("{line}\n"));
        stream
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
        assert!(read_to_end(stream.into_inner()).is_empty());
        bytes_in += line.len() + 1;
        bytes_out += line.len() + 1;
    }
    let udp = UdpSocket::bind("127.0.0.1:0").expect("bind");
    udp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for _ in 0..3 {
        udp.send_to(b"dgram\n", &server.addrs[1]).expect("send");
        let mut buf = [0u8; 16];
        let len = udp.recv(&mut buf).expect("receive");
        assert_eq!(&buf[..len], b"dgram\n");
        bytes_in += 6;
        bytes_out += 6;
    }
    let mut trap = server.connect();
    std::io::Write::write_all(&mut trap, b"panic\n").expect("send");
    assert!(read_to_end(trap).is_empty());
    bytes_in += 6;
    server.wait_for_log(&["cause=\"trap\""]);

    // Every request has ended once the active gauge is back to zero.
    let deadline = Instant::now() + Duration::from_secs(10);
    let scrape = loop {
        let scrape = parse(&scrape(&metrics_addr));
        if value(&scrape, "wasmserve_connections_active", &service) == 0.0 {
            break scrape;
        }
        assert!(Instant::now() < deadline, "requests still active");
        std::thread::sleep(Duration::from_millis(50));
    };
    let tcp = [("service", "faulty.wasm"), ("transport", "tcp")];
    assert_eq!(
        value(&scrape, "wasmserve_connections_accepted_total", &tcp),
        8.0
    );
    assert_eq!(
        value(&scrape, "wasmserve_datagrams_handled_total", &service),
        3.0
    );
    assert_eq!(
        value(&scrape, "wasmserve_bytes_in_total", &service),
        bytes_in as f64
    );
    assert_eq!(
        value(&scrape, "wasmserve_bytes_out_total", &service),
        bytes_out as f64
    );
    let cause = |cause| [("service", "faulty.wasm"), ("cause", cause)];
    assert_eq!(
        value(&scrape, "wasmserve_guest_failures_total", &cause("trap")),
        1.0
    );
    for other in [
        "out_of_memory",
        "cpu_budget",
        "stack_overflow",
        "idle_timeout",
        "max_lifetime",
    ] {
        assert_eq!(
            value(&scrape, "wasmserve_guest_failures_total", &cause(other)),
            0.0
        );
    }
    assert_eq!(
        value(
            &scrape,
            "wasmserve_handler_duration_seconds_count",
            &service
        ),
        11.0
    );
    assert_eq!(
        value(&scrape, "wasmserve_instantiation_seconds_count", &service),
        11.0
    );
    assert_eq!(value(&scrape, "wasmserve_build_info", &[]), 1.0);
}

#[test]
fn json_log_lines_carry_the_connection_fields() {
    let server = Server::start(FAULTY, &["--log-format", "json"]);
    let mut stream = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut stream, "print json"), "printed\n");
    let line = server.wait_for_log(&["stdout says json"]);
    let event: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(event["level"], "INFO");
    assert_eq!(event["fields"]["message"], "stdout says json");
    let span = &event["span"];
    assert_eq!(span["name"], "conn");
    assert_eq!(span["transport"], "tcp");
    assert_eq!(span["handler"], "faulty.wasm");
    assert!(
        span["peer"]
            .as_str()
            .is_some_and(|peer| peer.starts_with("127.0.0.1:")),
        "{line}"
    );
    assert!(span["id"].is_number(), "{line}");
    for line in server.log_text().lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every log line is JSON");
    }
}

/// `/metrics` body with the `Accept` header `accept` (if any): its content
/// type and text.
pub(crate) fn fetch_metrics(addr: &str, accept: Option<&str>) -> (String, String) {
    let output = Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request\nr = urllib.request.Request(sys.argv[1])\nif len(sys.argv) > 2: r.add_header('Accept', sys.argv[2])\nresp = urllib.request.urlopen(r)\nsys.stdout.write(resp.headers['Content-Type'] + '\\n' + resp.read().decode())",
            &format!("http://{addr}/metrics"),
        ])
        .args(accept)
        .output()
        .expect("python3 is on every machine of this project");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (content_type, body) = text.split_once('\n').unwrap_or_default();
    (content_type.to_owned(), body.to_owned())
}

#[test]
fn metrics_come_in_the_format_asked_for_with_its_content_type() {
    let server = Server::start_with(&["--handler", ECHO, "--tcp", "0", "--metrics", "0"], 2);
    let (content_type, body) = fetch_metrics(&server.addrs[1], None);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert!(
        body.contains("# TYPE wasmserve_bytes_in_total counter"),
        "{body}"
    );
    assert!(!body.contains("# EOF"));
    // What Prometheus itself asks for.
    let (content_type, body) = fetch_metrics(
        &server.addrs[1],
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(body.trim_end().ends_with("# EOF"), "{body}");
}

#[test]
#[cfg_attr(
    wasmserve_no_promtool,
    ignore = "promtool is not installed (Debian package prometheus; .ci/run installs it)"
)]
fn promtool_accepts_the_metrics() {
    let server = Server::start_with(&["--handler", ECHO, "--tcp", "0", "--metrics", "0"], 2);
    // Some traffic first, so every kind of series has samples.
    assert_eq!(round_trip(server.connect(), b"x".to_vec()), b"x");
    let (_, body) = fetch_metrics(&server.addrs[1], None);
    let output = crate::support::pipe_through(
        Command::new("promtool").args(["check", "metrics"]),
        body.as_bytes(),
    );
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_perf_map_names_the_handlers_functions() {
    let server = Server::start(ECHO, &["--perf-map"]);
    let mut stream = BufReader::new(server.connect());
    assert_eq!(exchange_line(&mut stream, "hi"), "hi\n");
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", server.pid()));
    let text = std::fs::read_to_string(&map).expect("--perf-map writes /tmp/perf-PID.map");
    let _ = std::fs::remove_file(&map);
    // perf's format, `START SIZE NAME` a line: the handler's own `handle`
    // among them, whether compiled now or taken from the cache.
    let handle = text
        .lines()
        .find(|line| line.ends_with(" handle"))
        .unwrap_or_else(|| panic!("no `handle` in the perf map:\n{text}"));
    let fields: Vec<&str> = handle.split(' ').collect();
    assert!(fields[0].starts_with("0x"), "{handle}");
    assert!(
        u64::from_str_radix(fields[1], 16).is_ok_and(|size| size > 0),
        "{handle}"
    );
}

//! Starting and stopping a `wasmserve` process, and small socket helpers.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const WASMSERVE: &str = env!("CARGO_BIN_EXE_wasmserve-under-test");

/// The compile cache every test server shares (so each handler is compiled
/// once per test run, not once per server).
pub const CACHE_DIR: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/compile-cache");

/// One lock per handler path: the first server of a handler holds it while
/// it compiles the handler into [`CACHE_DIR`], so tests starting the same
/// handler at that moment wait for that compile instead of repeating it (a
/// Python or JavaScript handler takes about 10 CPU-seconds). One lock per
/// language too: the first Python (or JavaScript) handler to start compiles
/// the interpreter into the cache's per-function store while the others of
/// its language wait, then they find it there (about 4 CPU-seconds each
/// instead of 11). `true` once a server of it has started.
static FIRST_STARTS: LazyLock<Mutex<HashMap<String, Arc<Mutex<bool>>>>> =
    LazyLock::new(Mutex::default);

/// How long a server may take to print its `listening` lines.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `wasmserve` process; killed on drop. If the test failed, the
/// server's log is printed so the failure can be understood.
pub struct Server {
    child: Option<Child>,
    /// The addresses from the `listening` lines, in order (`ip:port` or a
    /// socket path).
    pub addrs: Vec<String>,
    /// The `listening` lines themselves.
    pub listening: Vec<String>,
    /// Everything the server wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `wasmserve --handler <handler> --tcp 0` (plus `extra` flags)
    /// and waits until it listens.
    pub fn start(handler: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--handler", handler, "--tcp", "0"];
        args.extend_from_slice(extra);
        Server::start_with(&args, 1)
    }

    /// Starts `wasmserve --handler <handler> --tcp 0 --metrics 0` plus
    /// `extra` flags (which may add listeners) and waits until all listen.
    pub fn start_with_metrics(handler: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--handler", handler, "--tcp", "0", "--metrics", "0"];
        args.extend_from_slice(extra);
        let more = extra
            .iter()
            .filter(|flag| ["--tcp", "--udp", "--unix", "--unix-dgram"].contains(flag))
            .count();
        Server::start_with(&args, 2 + more)
    }

    /// Starts `wasmserve <args>` and waits for `listeners` listening lines.
    pub fn start_with(args: &[&str], listeners: usize) -> Server {
        let mut command = Command::new(WASMSERVE);
        command.args(args);
        Server::spawn(command, listeners)
    }

    /// Spawns `command` (a wasmserve invocation, possibly wrapped) and waits
    /// for `listeners` listening lines.
    pub fn spawn(mut command: Command, listeners: usize) -> Server {
        let args: Vec<_> = command.get_args().map(|arg| arg.to_owned()).collect();
        let handler = args
            .iter()
            .position(|arg| arg == "--handler")
            .and_then(|at| args.get(at + 1))
            .map(|path| path.to_string_lossy().into_owned());
        // The language's lock first, then the handler's (always in that
        // order), each held until this server listens if no server of it
        // has yet.
        let keys = handler.iter().flat_map(|path| {
            let language = [("-py.wasm", "python"), ("-js.wasm", "javascript")]
                .into_iter()
                .find(|(suffix, _)| path.ends_with(suffix))
                .map(|(_, language)| language.to_owned());
            language.into_iter().chain([path.clone()])
        });
        let first_starts: Vec<_> = keys
            .map(|key| {
                let mut starts = FIRST_STARTS.lock().unwrap_or_else(PoisonError::into_inner);
                Arc::clone(starts.entry(key).or_default())
            })
            .collect();
        let mut started: Vec<_> = first_starts
            .iter()
            .map(|lock| lock.lock().unwrap_or_else(PoisonError::into_inner))
            .filter(|done| !**done)
            .collect();
        let mut child = command
            .env("RUST_LOG", "info,wasmserve=debug")
            .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start wasmserve");

        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr is piped");
        let log_writer = Arc::clone(&log);
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log_writer.lock().expect("log lock").push(line);
            }
        });

        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });

        let mut server = Server {
            child: Some(child),
            addrs: Vec::new(),
            listening: Vec::new(),
            log,
        };
        while server.listening.len() < listeners {
            let line = lines_rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
                panic!(
                    "wasmserve {args:?} did not print a listening line; log:\n{}",
                    server.log_text()
                )
            });
            let addr = line
                .strip_prefix("listening ")
                .and_then(|rest| rest.split_whitespace().nth(1))
                .unwrap_or_else(|| panic!("unexpected listening line {line:?}"));
            server.addrs.push(addr.to_owned());
            server.listening.push(line);
        }
        for done in &mut started {
            **done = true;
        }
        server
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server is running").id()
    }

    /// The first listener's address, which must be an IP one.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
            .parse()
            .unwrap_or_else(|_| panic!("{} is not an IP address", self.addrs[0]))
    }

    /// A new TCP connection to the first listener.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr()).expect("cannot connect to wasmserve");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("set read timeout");
        stream
    }

    /// The server's stderr so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    /// Waits until a log line contains every one of `needles`; returns it.
    pub fn wait_for_log(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self
                .log
                .lock()
                .expect("log lock")
                .iter()
                .find(|line| needles.iter().all(|needle| line.contains(needle)))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line contains {needles:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until exactly `count` log lines contain `needle` (failing if
    /// more do, or if fewer do after 20 s).
    pub fn wait_for_count(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let seen = self
                .log
                .lock()
                .expect("log lock")
                .iter()
                .filter(|line| line.contains(needle))
                .count();
            assert!(
                seen <= count,
                "{seen} log lines contain {needle:?}, expected {count}"
            );
            if seen == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{seen} log lines contain {needle:?}, expected {count}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` (e.g. `HUP`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Sends SIGTERM (or SIGINT) and waits for the process to exit.
    pub fn stop(&mut self, signal: &str, within: Duration) -> ExitStatus {
        self.signal(signal);
        self.wait_exit(within)
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("server is running");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = child.try_wait().expect("wait for wasmserve") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "wasmserve did not exit within {within:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("--- wasmserve log ---\n{}\n---", self.log_text());
        }
    }
}

/// Runs `wasmserve <args>` that must fail; returns its exit status and stderr.
pub fn run_failing(args: &[&str]) -> (ExitStatus, String) {
    let output = Command::new(WASMSERVE)
        .args(args)
        .env("WASMSERVE_CACHE_DIR", CACHE_DIR)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run wasmserve");
    assert!(
        output.stdout.is_empty(),
        "a failed start printed on stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs wasmserve with `args`, expects exit code 1 with exactly one stderr
/// line, `error: ...`, that contains every one of `needles`.
pub fn assert_one_line_error(args: &[&str], needles: &[&str]) {
    let (status, stderr) = run_failing(args);
    assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?} should print one line, printed:\n{stderr}"
    );
    assert!(lines[0].starts_with("error: "), "{}", lines[0]);
    for needle in needles {
        assert!(lines[0].contains(needle), "{:?} lacks {needle:?}", lines[0]);
    }
}

/// Runs wasmserve with `args`, expects a usage error (exit code 2) whose
/// first line, `error: ...`, contains `needle`.
pub fn assert_usage_error(args: &[&str], needle: &str) {
    let (status, stderr) = run_failing(args);
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(needle),
        "{args:?}: {first}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Sends one line and reads one line back.
pub fn exchange_line(stream: &mut BufReader<TcpStream>, line: &str) -> String {
    use std::io::Write;
    stream
        .get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .expect("send");
    let mut reply = String::new();
    stream.read_line(&mut reply).expect("receive");
    reply
}

/// Sends `data` and, at the same time, reads until end of stream (so a large
/// payload cannot deadlock on full socket buffers); returns what came back.
pub fn round_trip(stream: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&data).expect("send");
        writer
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
    });
    let received = read_to_end(stream);
    sender.join().expect("sender thread");
    received
}

/// Reads until the server closes the connection.
pub fn read_to_end(mut stream: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    stream.read_to_end(&mut received).expect("receive");
    received
}

/// Deterministic bytes that differ per `seed`, so crossed streams show.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// Writes `text` as `wasmserve.toml` in `dir`; returns its path.
pub fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("wasmserve.toml");
    std::fs::write(&path, text).expect("write config");
    path.to_str().expect("utf-8").to_owned()
}

/// How many descriptors the server process holds now.
pub fn descriptors(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid())).map_or(0, Iterator::count)
}

/// Waits up to 5 s for `done`, failing the test with `what` if it is not.
pub fn within_5s(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server process's resident memory, in KiB.
pub fn rss_kib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

/// Runs `command` with `input` on its standard input; returns its output.
pub fn pipe_through(command: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the command");
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).expect("write its input");
    }
    child.wait_with_output().expect("wait for the command")
}

/// A TCP connection to `addr` from the loopback address `source`
/// (127.0.0.2, 127.0.0.3, ...: one machine playing several clients).
pub fn connect_from(source: [u8; 4], addr: &str) -> std::net::TcpStream {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local = std::net::SocketAddr::from((source, 0));
    socket.bind(&local.into()).expect("bind the source address");
    let addr: std::net::SocketAddr = addr.parse().expect("an IP address");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

/// Whether the server closed `stream` (end of stream or reset) within 5 s,
/// rather than serving it (bytes) or leaving it open (a timeout).
pub fn closed_by_server(stream: &mut std::net::TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => !matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Stops a helper server (Redis, HAProxy, a registry) the way an operator
/// would, by PID with `kill`, and waits for it to exit.
pub fn kill_and_wait(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
}

/// The first line `stream` yields (`""` when it ends or fails first).
pub fn first_line(stream: impl std::io::Read) -> String {
    let mut line = String::new();
    let _ = BufReader::new(stream).read_line(&mut line);
    line
}

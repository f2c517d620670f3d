//! A real HAProxy (Debian `haproxy`) for the tests: TCP mode, started in the
//! foreground on a free loopback port with the configuration a test gives,
//! stopped by PID when dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `haproxy`.
pub struct Haproxy {
    child: Option<Child>,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// Starts HAProxy in TCP mode on a free port, forwarding every
    /// connection to `backend` with the `server` line options `options`
    /// (e.g. `send-proxy-v2`).
    pub fn start(backend: &str, options: &str) -> Haproxy {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("haproxy.cfg");
        let text = format!(
            "global\n    maxconn 1000\ndefaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\nfrontend front\n    bind 127.0.0.1:{port}\n    default_backend back\nbackend back\n    server wasmserve {backend} {options}\n"
        );
        std::fs::write(&config, text).expect("write haproxy.cfg");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start haproxy");
        let haproxy = Haproxy {
            child: Some(child),
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "haproxy did not start on {port}");
            thread::sleep(Duration::from_millis(20));
        }
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        crate::support::kill_and_wait(&mut self.child);
    }
}

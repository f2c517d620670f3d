//! A real OCI registry (Debian's `docker-registry`, the CNCF
//! distribution) for the tests: started on a free loopback port with its
//! storage in a scratch folder, stopped by PID when dropped.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running `docker-registry`.
pub struct Registry {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free port")
            .port();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut registry = Registry {
            child: None,
            addr: format!("127.0.0.1:{port}"),
            dir,
        };
        registry.restart();
        registry
    }

    /// Starts it (again, after [`Registry::stop`]) with the same storage.
    pub fn restart(&mut self) {
        let config = self.dir.path().join("config.yml");
        let text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {}\n",
            self.dir.path().join("data").display(),
            self.addr
        );
        std::fs::write(&config, text).expect("write config.yml");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start docker-registry");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&self.addr).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `oci://ADDR/PATH`.
    pub fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// Kills it (by PID) and waits for it to exit.
    pub fn stop(&mut self) {
        crate::support::kill_and_wait(&mut self.child);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

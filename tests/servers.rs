//! Servers the shared-cache tests and the host's own Redis and S3 tests need (the host crate
//! has this crate as a dev-dependency), each started on a free port of 127.0.0.1 for one test
//! and killed when its guard is dropped: Redis (`redis-server`, Debian's package) and an
//! S3-compatible server (`moto_server`, from PyPI into `.tools/moto`). `make test-servers`
//! installs both; a missing one fails the test with that command.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{repo_root, wait_until};

/// A free TCP port on 127.0.0.1, different at every call of this process and outside the
/// kernel's ephemeral range (32768 and up by default). A port the kernel hands out for
/// `127.0.0.1:0` can be handed out again before the server binds it, and a test would then
/// talk to another test's server (seen: one test stopping "its" Redis under another).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let port = 20_000 + (start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    wait_until(&format!("{what} listening on port {port}"), || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before listening on port {port}");
        }
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -{name} {} failed", child.id());
}

/// Stops a server's process for good.
fn stop(child: &mut Child) {
    // A stopped (SIGSTOP) process dies of SIGKILL all the same.
    let _ = child.kill();
    let _ = child.wait();
}

/// A `redis-server` of one test, without persistence.
pub struct RedisServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts it and waits until it listens.
    pub fn start() -> RedisServer {
        let port = free_port();
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server ({e}): run `make test-servers` to install it"));
        wait_for_port(port, "redis-server", &mut child);
        RedisServer { child, port }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// How many keys match `pattern`, asked over the Redis protocol.
    pub fn count_keys(&self, pattern: &str) -> usize {
        // The reply starts `*<count>`; the count is all that is needed.
        let first = self.command(&["KEYS", pattern]);
        first
            .strip_prefix('*')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected KEYS reply {first:?}"))
    }

    /// Sends one command over the Redis protocol and returns the raw reply's first line
    /// (enough for the status and integer replies the tests need).
    pub fn command(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("redis answers");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut command = format!("*{}\r\n", args.len());
        for arg in args {
            command += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        stream.write_all(command.as_bytes()).unwrap();
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.windows(2).any(|w| w == b"\r\n") {
            let n = stream.read(&mut buf).expect("redis replies");
            assert!(n > 0, "redis closed the connection");
            reply.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&reply).split("\r\n").next().unwrap_or_default().to_owned()
    }

    /// Freezes it (SIGSTOP): connections are accepted by the kernel and never answered.
    pub fn pause(&self) {
        signal(&self.child, "STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, "CONT");
    }

    /// Kills it (SIGKILL): clients then find the port closed.
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A `moto_server` (S3-compatible) of one test; its request log is kept in a file.
pub struct S3Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    log: PathBuf,
}

/// The moto_server installed by `make test-servers`.
pub fn moto_server() -> PathBuf {
    let path = repo_root().join(".tools/moto/bin/moto_server");
    assert!(path.exists(), "{} is missing: run `make test-servers` to install it", path.display());
    path
}

impl S3Server {
    /// Starts it, logging its requests to a file in `dir`, and waits until it listens.
    pub fn start(dir: &Path) -> S3Server {
        let port = free_port();
        let log = dir.join(format!("moto-{port}.log"));
        let mut child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(File::create(&log).expect("a log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start moto_server ({e}): run `make test-servers` to install it"));
        wait_for_port(port, "moto_server", &mut child);
        S3Server { child, port, log }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("moto answers");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(
            reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.0 200"),
            "creating bucket {bucket}: {reply}"
        );
    }

    /// The request lines it logged so far, e.g. `"GET /bucket/key HTTP/1.1" 404`.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(" HTTP/1.1"))
            .map(str::to_owned)
            .collect()
    }

    /// Freezes it (SIGSTOP): connections are accepted by the kernel and never answered.
    pub fn pause(&self) {
        signal(&self.child, "STOP");
    }

    /// Lets a frozen server go on (SIGCONT), with everything it held.
    pub fn resume(&self) {
        signal(&self.child, "CONT");
    }

    /// Kills it (SIGKILL): clients then find the port closed (moto keeps nothing on disk).
    pub fn kill(&mut self) {
        stop(&mut self.child);
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

//! Servers for the host's own tests of the Redis lock manager and the S3 store: each started
//! on a free port of 127.0.0.1 for one test and killed when dropped. `make test-servers`
//! installs them; a missing one fails the test with that command.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A server process and its port.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Server {
    fn start(program: &Path, args: &[&str], port: u16) -> Server {
        let mut child = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}): run `make test-servers` to install it", program.display()));
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("{} exited with {status} before listening", program.display());
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{} did not listen within 60 s", program.display());
            thread::sleep(Duration::from_millis(10));
        }
        Server { child, port }
    }

    /// A redis-server without persistence.
    pub fn redis() -> Server {
        let port = free_port();
        let port_text = port.to_string();
        Server::start(Path::new("redis-server"), &["--port", &port_text, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], port)
    }

    /// A moto_server (S3-compatible) from the repository's `.tools/moto`.
    pub fn moto() -> Server {
        // At run time, as tests/lib.rs's repo_root says why: the checkout running the tests.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), std::path::PathBuf::from);
        let program = manifest.join("../.tools/moto/bin/moto_server");
        assert!(program.exists(), "{} is missing: run `make test-servers` to install it", program.display());
        let port = free_port();
        Server::start(&program, &["-H", "127.0.0.1", "-p", &port.to_string()], port)
    }

    /// Creates a bucket on a moto server (which takes unsigned requests).
    pub fn create_bucket(&self, bucket: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        let request = format!("PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", self.port);
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        assert!(reply.starts_with("HTTP/1.1 200"), "creating bucket {bucket}: {reply}");
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1, different at every call of this process and outside the
/// kernel's ephemeral range: a port handed out for `127.0.0.1:0` can be handed out again
/// before the server binds it (tests/servers.rs does the same in 20000–29999).
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let port = 10_000 + (start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

//! The servers the bench starts: `redis-server` and a `tansu` Kafka-protocol broker, each on a
//! free loopback port as a child process, killed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// `redis-server` on a free loopback port, without persistence; killed on drop.
pub struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts the server and waits until it answers, or `None` when the binary is missing
    /// (`$REDIS_SERVER`, then the `PATH`).
    pub fn start() -> Option<Self> {
        let binary = std::env::var_os("REDIS_SERVER")
            .map(PathBuf::from)
            .or_else(|| on_path("redis-server"))?;
        let port = free_loopback_port();
        let dir =
            std::env::temp_dir().join(format!("dataflow-bridges-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("server directory");
        let child = Command::new(binary)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        let server = Self { child, port, dir };
        server.wait_ready();
        Some(server)
    }

    /// Waits until the server answers `PING`.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut reply = [0u8; 64];
                if stream.write_all(b"PING\r\n").is_ok()
                    && stream.read(&mut reply).is_ok_and(|n| n > 0)
                    && reply.starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `tansu` broker (Kafka protocol) on a free loopback port with in-memory storage, as a
/// child process; killed on drop (its log is kept if the bench panicked).
pub struct Tansu {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Tansu {
    /// Starts the broker, or `None` when the binary is missing (`$TANSU`, then
    /// `$HOME/.cache/dataflow-ci/tansu-libsql/bin/tansu`, then the `PATH`).
    pub fn start() -> Option<Self> {
        let binary = std::env::var_os("TANSU")
            .map(PathBuf::from)
            .or_else(|| {
                let home = PathBuf::from(std::env::var_os("HOME")?);
                Some(home.join(".cache/dataflow-ci/tansu-libsql/bin/tansu"))
            })
            .filter(|p| p.is_file())
            .or_else(|| on_path("tansu"))?;
        let port = free_loopback_port();
        let log = std::env::temp_dir().join(format!(
            "dataflow-bridges-tansu-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("a log file for tansu");
        let err = out.try_clone().expect("a second handle on the log");
        let listener = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut broker = Self { child, port, log };
        // Accepting connections is enough: Kafka requests are served from then on.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited ({status}); log: {}", broker.log.display());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen within 30 s"
            );
            thread::sleep(Duration::from_millis(50));
        }
        Some(broker)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("tansu log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The first file named `name` in a directory of the `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port that was free a moment ago.
fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

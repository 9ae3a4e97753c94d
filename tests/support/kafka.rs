//! A `tansu` broker (Kafka protocol) on a free loopback port, as a child process of the test.
//!
//! The binary is looked up at `$TANSU`, then
//! `$HOME/.cache/dataflow-ci/tansu-libsql/bin/tansu`, then on `PATH`. When it is missing, a test skips (prints why) unless `CI=true`, where it fails.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;

use super::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `tansu broker`, killed on drop.
pub struct Tansu {
    binary: PathBuf,
    port: u16,
    log: PathBuf,
    /// Its working directory, where its SQLite storage lives.
    dir: PathBuf,
    child: Option<Child>,
}

fn find_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("TANSU") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    if let Some(home) = std::env::var_os("HOME") {
        let cached = Path::new(&home).join(".cache/dataflow-ci/tansu-libsql/bin/tansu");
        if cached.is_file() {
            return Some(cached);
        }
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file())
}

impl Tansu {
    /// Starts a broker with in-memory storage, or returns `None` (after printing why) when
    /// the binary is missing outside CI.
    pub fn start() -> Option<Self> {
        let binary = super::required(
            find_binary(),
            "tansu ($TANSU, ~/.cache/dataflow-ci/tansu-libsql/bin/tansu, or the PATH; \
             `cargo install tansu --locked --version 0.6.0 --features dynostore,libsql`)",
        )?;
        let port = free_port();
        let log =
            std::env::temp_dir().join(format!("dataflow-tansu-{}-{port}.log", std::process::id()));
        let dir =
            std::env::temp_dir().join(format!("dataflow-tansu-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for tansu's storage");
        let mut broker = Self {
            binary,
            port,
            log,
            dir,
            child: None,
        };
        broker.launch();
        Some(broker)
    }

    /// `kafka://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("kafka://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>`, for raw rdkafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn launch(&mut self) {
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file for tansu");
        let err = log.try_clone().expect("a second handle on the log");
        let child = Command::new(&self.binary)
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            // SQLite in a directory of its own: what the broker acknowledged survives a
            // SIGKILL (R10), as on a real Kafka broker.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.binary.display()));
        self.child = Some(child);
        // Ready once it answers a Kafka request, and only if the process that answers is still
        // ours: a broker that could not bind its port exits, and another one's answer must not
        // pass for its own.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answered = answers_api_versions(self.port);
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "tansu exited ({status}) at start; log: {}",
                    self.log.display()
                );
            }
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not answer on port {} within 30 s; log: {}",
                self.port,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Whether a Kafka broker on `port` answers an `ApiVersions` (v0) request.
fn answers_api_versions(port: u16) -> bool {
    const CORRELATION_ID: i32 = 7;
    let ask = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let client_id = b"dataflow-tests";
        let mut body = Vec::new();
        body.extend_from_slice(&18i16.to_be_bytes()); // api key: ApiVersions
        body.extend_from_slice(&0i16.to_be_bytes()); // api version
        body.extend_from_slice(&CORRELATION_ID.to_be_bytes());
        body.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
        body.extend_from_slice(client_id);
        let mut request = (body.len() as i32).to_be_bytes().to_vec();
        request.extend_from_slice(&body);
        stream.write_all(&request)?;
        // The response: its size, then the request's correlation id.
        let mut head = [0u8; 8];
        stream.read_exact(&mut head)?;
        Ok(head[4..8] == CORRELATION_ID.to_be_bytes())
    };
    ask().unwrap_or(false)
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("tansu log kept: {}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

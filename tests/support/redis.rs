//! A real `redis-server` on a free loopback port, started and stopped by the test.
//!
//! Under `CI=true` a missing binary fails the test; elsewhere the test is skipped with a
//! printed reason.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_binary, free_port, required};

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    binary: PathBuf,
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its working directory (the append-only file lives there).
    pub dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// A plaintext server without persistence; `None` if there is no `redis-server` (and not
    /// under CI).
    pub fn start() -> Option<Self> {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A server whose acknowledged writes survive a SIGKILL: every write is fsynced to its
    /// append-only file, which a [`restart`](Self::restart) reads back.
    pub fn start_durable() -> Option<Self> {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// A server with `args` added to the loopback port settings.
    pub fn start_with(args: &[&str]) -> Option<Self> {
        let binary = required(find_binary("REDIS_SERVER", "redis-server"), "redis-server")?;
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("dataflow-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("server directory");
        let mut server = Self {
            binary,
            child: None,
            port,
            dir,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        };
        server.spawn();
        Some(server)
    }

    /// A server that only speaks TLS on its port, with a certificate for 127.0.0.1 signed by
    /// a certificate authority of its own (made with `openssl`).
    pub fn start_tls() -> Option<Self> {
        Self::start_tls_with("no")
    }

    /// As [`start_tls`](Self::start_tls), and it asks clients for a certificate signed by
    /// the same authority (mutual TLS; see [`tls_client`](Self::tls_client)).
    pub fn start_mutual_tls() -> Option<Self> {
        Self::start_tls_with("yes")
    }

    fn start_tls_with(auth_clients: &str) -> Option<Self> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let openssl = required(find_binary("OPENSSL", "openssl"), "openssl")?;
        let dir = std::env::temp_dir().join(format!(
            "dataflow-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let file = |name: &str| path(&dir.join(name));
        // One openssl command, its words split on spaces (the temporary paths have none).
        let run = |command: &str| {
            let args: Vec<&str> = command.split_whitespace().collect();
            let made = Command::new(&openssl)
                .args(&args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(made.success(), "openssl {command} failed");
        };
        let (ca, ca_key) = (file("ca.pem"), file("ca.key"));
        run(&format!(
            "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=dataflow-test-CA \
             -keyout {ca_key} -out {ca}"
        ));
        // The server's identity (for 127.0.0.1), then a client's, both signed by the CA.
        for (name, extensions) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
            ),
            (
                "client",
                "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
            ),
        ] {
            let [key, csr, ext, cert] =
                ["key", "csr", "ext", "pem"].map(|kind| file(&format!("{name}.{kind}")));
            std::fs::write(&ext, extensions).expect("extensions file");
            run(&format!(
                "req -newkey rsa:2048 -nodes -subj /CN={name} -keyout {key} -out {csr}"
            ));
            run(&format!(
                "x509 -req -days 1 -CAcreateserial -in {csr} -CA {ca} -CAkey {ca_key} \
                 -out {cert} -extfile {ext}"
            ));
        }
        let port = free_port();
        let mut server = Self::start_with(&[
            "--save",
            "",
            "--tls-cert-file",
            &file("server.pem"),
            "--tls-key-file",
            &file("server.key"),
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            auth_clients,
            "--tls-port",
            &port.to_string(),
            "--port",
            "0",
        ])?;
        server.port = port;
        Some(server)
    }

    /// A client identity (certificate and key, PEM) signed by a TLS server's authority.
    pub fn tls_client(&self) -> (PathBuf, PathBuf) {
        let dir = self.tls_certificate();
        let dir = dir.parent().expect("the certificate directory");
        (dir.join("client.pem"), dir.join("client.key"))
    }

    /// The certificate authority that signed a TLS server's certificate.
    pub fn tls_certificate(&self) -> PathBuf {
        let i = self
            .args
            .iter()
            .position(|a| a == "--tls-ca-cert-file")
            .expect("a TLS server");
        PathBuf::from(&self.args[i + 1])
    }

    fn spawn(&mut self) {
        let tls = self.args.iter().any(|a| a == "--tls-port");
        let mut cmd = Command::new(&self.binary);
        if !tls {
            cmd.args(["--port", &self.port.to_string()]);
        }
        cmd.args(["--bind", "127.0.0.1", "--dir"])
            .arg(&self.dir)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.child = Some(cmd.spawn().expect("redis-server starts"));
        self.wait_ready(tls);
    }

    fn wait_ready(&mut self, tls: bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = if tls {
            // The TLS port is the one given after --tls-port.
            let i = self
                .args
                .iter()
                .position(|a| a == "--tls-port")
                .expect("tls");
            self.args[i + 1].parse().expect("port")
        } else {
            self.port
        };
        loop {
            let answered = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut stream| {
                if tls {
                    return true;
                }
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                let mut reply = [0u8; 64];
                stream.write_all(b"PING\r\n").is_ok()
                    && stream.read(&mut reply).is_ok_and(|n| n > 0)
                    && !reply.starts_with(b"-LOADING")
            });
            // Only our own server counts: one that could not bind its port has exited.
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited ({status}) at start, on port {port}");
            }
            if answered {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// SIGKILLs the server (no shutdown, no final save).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs `redis-cli` against the server; returns its standard output.
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = find_binary("REDIS_CLI", "redis-cli").expect("redis-cli beside redis-server");
        let out = Command::new(cli)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port where something that is not Redis listens, for the error tests.
pub struct NotRedis {
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl NotRedis {
    /// A server that answers every request as an HTTP server would (`400 Bad Request`).
    pub fn http() -> Self {
        Self::serve(|mut stream| {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        })
    }

    /// A server that accepts connections and never answers (a host behind a black hole
    /// looks the same to a client, minus the accept).
    pub fn silent() -> Self {
        Self::serve(|stream| {
            // Held open, unread, until the test process ends.
            std::mem::forget(stream);
        })
    }

    fn serve(handle: fn(TcpStream)) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || handle(stream));
            }
        });
        Self { port }
    }
}

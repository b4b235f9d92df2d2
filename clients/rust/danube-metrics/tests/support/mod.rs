//! A real `danube-metrics-agent` process for the tests that deliver to it, and a scrape of its `/metrics`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `$DANUBE_METRICS_AGENT`, else the Swift package's debug build (`swift build` at the repository root).
pub fn agent_binary() -> PathBuf {
    let path = std::env::var_os("DANUBE_METRICS_AGENT").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../.build/debug/danube-metrics-agent")
    });
    assert!(
        path.exists(),
        "no agent at {}: run `swift build` at the repository root or set DANUBE_METRICS_AGENT",
        path.display()
    );
    path
}

pub struct Agent {
    pub dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Agent {
    /// A work directory for one test process (removed on drop); the agent is not started yet.
    pub fn prepare(name: &str, extra: &[&str]) -> Agent {
        let dir = PathBuf::from(format!("/tmp/dma-rust-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        Agent { dir, port, child: None, extra: extra.iter().map(|s| (*s).to_owned()).collect() }
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("ingest.sock")
    }

    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("agent.log")).unwrap();
        let child = Command::new(agent_binary())
            .args(["--ingest-socket", self.socket().to_str().unwrap(), "--listen", &format!("127.0.0.1:{}", self.port)])
            .args([
                "--state-dir",
                self.dir.join("state").to_str().unwrap(),
                "--log-format",
                "text",
                "--checkpoint-interval",
                "200ms",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(self.port, "/healthz").is_none() {
            assert!(
                Instant::now() < deadline,
                "the agent did not serve within 30 s; see {}/agent.log",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn samples(&self) -> HashMap<String, f64> {
        parse(&get(self.port, "/metrics").expect("GET /metrics"))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The body of `GET path`, or None when the agent does not answer 200.
pub fn get(port: u16, path: &str) -> Option<String> {
    get_accepting(port, path, "text/plain")
}

/// As `get`, asking for the format `accept` names.
pub fn get_accepting(port: u16, path: &str, accept: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

pub fn parse(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            l.rsplit_once(' ')
                .map(|(k, v)| (k.to_owned(), if v == "+Inf" { f64::INFINITY } else { v.parse().unwrap_or(f64::NAN) }))
        })
        .collect()
}

/// Every sample `/metrics` must show for what this process recorded.
pub fn expected() -> Vec<(String, f64)> {
    danube_metrics::recorded_totals().iter().flat_map(danube_metrics::RecordedTotal::samples).collect()
}

/// The samples that differ between what was recorded and what the agent shows (sums to 1e-9 relative).
pub fn differences(shown: &HashMap<String, f64>) -> Vec<String> {
    expected()
        .into_iter()
        .filter(|(key, value)| match shown.get(key) {
            Some(actual) if key.contains("_sum") => (actual - value).abs() > 1e-9 * value.abs().max(1.0),
            Some(actual) => actual != value,
            None => true,
        })
        .map(|(key, value)| format!("{key}: recorded {value}, shown {:?}", shown.get(&key)))
        .collect()
}

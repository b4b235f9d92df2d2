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
    get_bytes(port, path, accept).map(|body| String::from_utf8_lossy(&body).into_owned())
}

/// The body of `GET path` as bytes (protobuf), or None when the agent does not answer 200.
pub fn get_bytes(port: u16, path: &str, accept: &str) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    response.starts_with(b"HTTP/1.1 200").then(|| response[split + 4..].to_vec())
}

/// Protobuf fields of one message: (field number, varint value or length-delimited bytes); fixed64 as varint.
pub fn protobuf_fields(mut bytes: &[u8]) -> Vec<(u64, u64, &[u8])> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let (mut value, mut shift) = (0u64, 0);
        while let Some((&byte, rest)) = bytes.split_first() {
            *bytes = rest;
            value |= u64::from(byte & 0x7F) << shift;
            if byte < 0x80 {
                break;
            }
            shift += 7;
        }
        value
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        match key & 7 {
            0 => fields.push((key >> 3, varint(&mut bytes), &[][..])),
            1 => {
                let (word, rest) = bytes.split_at(8);
                fields.push((key >> 3, u64::from_le_bytes(word.try_into().unwrap()), &[][..]));
                bytes = rest;
            }
            2 => {
                let length = varint(&mut bytes) as usize;
                let (body, rest) = bytes.split_at(length);
                fields.push((key >> 3, 0, body));
                bytes = rest;
            }
            _ => break,
        }
    }
    fields
}

/// For each histogram of `family` in a delimited protobuf scrape: (sample count, native schema if any, zero count
/// plus every native bucket's count).
pub fn native_histograms(stream: &[u8], family: &str) -> Vec<(u64, Option<u64>, u64)> {
    let mut found = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (length, used) = {
            let fields = protobuf_fields_prefix(rest);
            (fields.0, fields.1)
        };
        let message = &rest[used..used + length];
        rest = &rest[used + length..];
        let fields = protobuf_fields(message);
        if !fields.iter().any(|(n, _, b)| *n == 1 && *b == family.as_bytes()) {
            continue;
        }
        for (_, _, metric) in fields.iter().filter(|(n, ..)| *n == 4) {
            for (_, _, histogram) in protobuf_fields(metric).iter().filter(|(n, ..)| *n == 7) {
                let h = protobuf_fields(histogram);
                let get = |number: u64| h.iter().find(|(n, ..)| *n == number).map(|f| f.1);
                let (mut running, mut total) = (0i64, get(7).unwrap_or(0));
                for (_, delta, _) in h.iter().filter(|(n, ..)| *n == 13) {
                    running += (*delta >> 1) as i64 ^ -((*delta & 1) as i64);
                    total += running as u64;
                }
                found.push((get(1).unwrap_or(0), get(5), total));
            }
        }
    }
    found
}

/// A delimited message's length and the bytes its varint prefix takes.
fn protobuf_fields_prefix(bytes: &[u8]) -> (usize, usize) {
    let (mut value, mut shift, mut used) = (0usize, 0, 0);
    for &byte in bytes {
        used += 1;
        value |= usize::from(byte & 0x7F) << shift;
        if byte < 0x80 {
            break;
        }
        shift += 7;
    }
    (value, used)
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

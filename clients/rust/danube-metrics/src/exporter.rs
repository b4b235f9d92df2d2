//! The in-process exporter (`Sink::Exporter`): `/metrics` served by the recording process itself, in the
//! Prometheus text format 0.0.4, where a deployment scrapes the broker rather than running the agent
//! (upstream Danube's `--prom-exporter` port, its containers' `curl -f http://localhost:9040/metrics` health
//! checks, its Helm chart's scrape of the `prometheus` port). Values come straight from the cells; histograms
//! are histograms (cumulative `_bucket`, `_sum`, `_count`), not summaries. One thread serves one connection at a
//! time: a request must arrive within 5 s and be at most 8 KiB, and only GET and HEAD are answered.

use crate::flusher;
use crate::registry::registry;
use crate::wire::Kind;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const MAX_REQUEST_BYTES: usize = 8 << 10;

/// Binds `address` and serves it on a thread of its own; the address bound (port 0 picks one).
pub(crate) fn start(address: SocketAddr, global_labels: Vec<(String, String)>) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(address)?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new().name("danube-metrics-exporter".to_owned()).spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = serve(stream, &global_labels);
        }
    })?;
    Ok(bound)
}

fn serve(mut stream: TcpStream, global_labels: &[(String, String)]) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut request = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk)?;
        if n == 0 || request.len() + n > MAX_REQUEST_BYTES {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let line = request.split(|b| *b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|b| *b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|b| *b == b'?').next().unwrap_or_default();
    let (status, content_type, body) = match (method, path) {
        (b"GET" | b"HEAD", b"/metrics") => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(global_labels))
        }
        (b"GET" | b"HEAD", _) => ("404 Not Found", "text/plain; charset=utf-8", "not found: try /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain; charset=utf-8", "only GET and HEAD\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != b"HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// Every series registered so far, by family in registration order, with the `describe_*!` texts.
pub(crate) fn render(global_labels: &[(String, String)]) -> String {
    let (series, help) = {
        let state = registry().lock();
        (state.series.clone(), state.help.clone())
    };
    let mut families: Vec<&str> = Vec::new();
    for s in &series {
        if !families.contains(&&*s.name) {
            families.push(&s.name);
        }
    }
    let mut out = String::with_capacity(series.len() * 96);
    for family in families {
        let members: Vec<_> = series.iter().filter(|s| &*s.name == family).collect();
        let kind = match members[0].kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        };
        if let Some(text) = help.get(family) {
            let _ = writeln!(out, "# HELP {family} {}", text.replace('\\', "\\\\").replace('\n', "\\n"));
        }
        let _ = writeln!(out, "# TYPE {family} {kind}");
        for s in members {
            let mut labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (&**k, &**v)).collect();
            for (k, v) in global_labels {
                if !labels.iter().any(|(name, _)| name == k) {
                    labels.push((k, v));
                }
            }
            labels.sort();
            let values = flusher::read(s);
            match s.kind {
                Kind::Counter => sample(&mut out, family, "", &labels, None, &values[0].to_string()),
                Kind::Gauge => {
                    let value = f64::from_bits(s.word.load(std::sync::atomic::Ordering::Relaxed));
                    sample(&mut out, family, "", &labels, None, &number(value));
                }
                Kind::Histogram => {
                    let mut cumulative = 0u64;
                    for (index, count) in values.iter().take(s.bounds.len() + 1).enumerate() {
                        cumulative = cumulative.wrapping_add(*count);
                        let le = s.bounds.get(index).map_or("+Inf".to_owned(), |b| format!("{b:?}"));
                        sample(&mut out, family, "_bucket", &labels, Some(&le), &cumulative.to_string());
                    }
                    let sum = s.recorded_sum();
                    sample(&mut out, family, "_sum", &labels, None, &number(sum));
                    sample(&mut out, family, "_count", &labels, None, &cumulative.to_string());
                }
            }
        }
    }
    out
}

fn sample(out: &mut String, family: &str, suffix: &str, labels: &[(&str, &str)], le: Option<&str>, value: &str) {
    out.push_str(family);
    out.push_str(suffix);
    let pairs = labels.iter().copied().chain(le.map(|le| ("le", le)));
    let mut first = true;
    for (name, text) in pairs {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{name}=\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"));
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// A float as the text format writes it (`+Inf`, `-Inf`, `NaN`; integers without a fraction).
fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

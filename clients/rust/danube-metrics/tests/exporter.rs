//! `Sink::Exporter`: the process serves `/metrics` itself (upstream Danube's `--prom-exporter` port and the
//! `curl -f http://localhost:9040/metrics` health checks of its containers keep working), with real histograms,
//! the global labels, escaped label values and the `describe_*!` texts; promtool accepts the page.

use danube_metrics::{counter, describe_counter, gauge, histogram};
use std::io::{Read, Write};
use std::net::TcpStream;

fn get(address: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    answer
}

#[test]
fn the_process_serves_what_it_recorded() {
    // A taken address is an error naming it (and leaves the emitter installable).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    match danube_metrics::install(danube_metrics::Config {
        sink: danube_metrics::Sink::Exporter(address),
        log: Some(|_, _| {}),
        ..Default::default()
    }) {
        Err(error @ danube_metrics::Error::Exporter(failed, _)) => {
            assert_eq!(failed, address);
            assert!(error.to_string().starts_with(&format!("cannot serve /metrics on {address}: ")), "{error}");
        }
        other => panic!("{:?}", other.map(|_| ())),
    }
    drop(taken);

    let handle = danube_metrics::install(danube_metrics::Config {
        sink: danube_metrics::Sink::Exporter("127.0.0.1:0".parse().unwrap()),
        global_labels: vec![("broker".into(), "7".into())],
        log: Some(|_, _| {}),
        ..Default::default()
    })
    .expect("install");
    let address = handle.exporter_address().expect("bound");
    describe_counter!("danube_topic_messages_in_total", "Total messages published to the topic (msg).");
    let _bare = counter!("danube_topic_messages_in_total");
    counter!("danube_topic_messages_in_total", "topic" => "/default/orders").increment(41);
    counter!("danube_broker_rpc_total", "service" => "producer", "method" => "send \"x\"", "result" => "ok")
        .increment(2);
    gauge!("danube_broker_topics_owned").set(4.0);
    let latency = histogram!("danube_producer_send_latency_ms", "topic" => "/default/orders");
    for value in [0.2, 3.0, 3.0, 700.0] {
        latency.record(value);
    }

    let answer = get(address, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = answer.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200 OK") && head.contains("text/plain; version=0.0.4"), "{head}");
    for line in [
        "# HELP danube_topic_messages_in_total Total messages published to the topic (msg).",
        "# TYPE danube_topic_messages_in_total counter",
        "danube_topic_messages_in_total{broker=\"7\"} 0",
        "danube_topic_messages_in_total{broker=\"7\",topic=\"/default/orders\"} 41",
        "danube_broker_rpc_total{broker=\"7\",method=\"send \\\"x\\\"\",result=\"ok\",service=\"producer\"} 2",
        "danube_broker_topics_owned{broker=\"7\"} 4",
        "# TYPE danube_producer_send_latency_ms histogram",
        "danube_producer_send_latency_ms_bucket{broker=\"7\",topic=\"/default/orders\",le=\"0.25\"} 1",
        "danube_producer_send_latency_ms_bucket{broker=\"7\",topic=\"/default/orders\",le=\"5.0\"} 3",
        "danube_producer_send_latency_ms_bucket{broker=\"7\",topic=\"/default/orders\",le=\"+Inf\"} 4",
        "danube_producer_send_latency_ms_sum{broker=\"7\",topic=\"/default/orders\"} 706.2",
        "danube_producer_send_latency_ms_count{broker=\"7\",topic=\"/default/orders\"} 4",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line}\n{body}");
    }
    if std::path::Path::new("/usr/bin/promtool").exists() {
        let mut promtool = std::process::Command::new("/usr/bin/promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("promtool");
        promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
        let output = promtool.wait_with_output().unwrap();
        let findings = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        // It parses; the only remarks are lints on upstream's choices (millisecond names, families never described).
        assert!(
            findings
                .lines()
                .all(|l| l.contains("abbreviated units") || l.contains("no help text") || l.trim().is_empty()),
            "{findings}"
        );
    }
    assert!(get(address, "GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get(address, "POST /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    let head_only = get(address, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert!(head_only.starts_with("HTTP/1.1 200") && head_only.ends_with("\r\n\r\n"));
    // Nothing to deliver: shutdown returns at once.
    let stats = handle.shutdown();
    assert_eq!((stats.connects, stats.undelivered_series), (0, 0));
    // Still served after shutdown, as metrics-exporter-prometheus keeps serving until the process ends.
    assert!(get(address, "GET /metrics HTTP/1.1\r\n\r\n").contains("danube_broker_topics_owned{broker=\"7\"} 4"));
}

import Foundation
import ScaleFeed

// The scale benchmark: a release agent fed through real SEQPACKET connections by 10 sources until it holds
// `series` series (80% counters, 15% gauges, 5% histograms of 19 bounds, 4 labels), then what a user sees:
// render time as the agent reports it, `GET /metrics` as curl sees it (plain and gzip), memory per series, and
// checkpoints while 1% of the series change per interval. Prints a markdown table.
//   ScaleBench [series ...]        (default: 100000 1000000; needs ../.build/release/danube-metrics-agent)
// NATIVE=1: the histograms also keep native buckets (pushed as native histograms too with REMOTE_WRITE=1).
// With REMOTE_WRITE=1 the agent also pushes to a Prometheus remote write receiver (Debian's /usr/bin/prometheus)
// every 5 s, and a last row gives the agent's CPU per push and per series pushed.
let remoteWrite = ProcessInfo.processInfo.environment["REMOTE_WRITE"] == "1"
let agentPath = ProcessInfo.processInfo.environment["AGENT"] ?? "../.build/release/danube-metrics-agent"
/// CHECKPOINT_INTERVAL=1s: the agent's `--checkpoint-interval` (default: the agent's own).
let checkpointInterval = ProcessInfo.processInfo.environment["CHECKPOINT_INTERVAL"]
let sizes = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let sourceCount = 10

func shell(_ arguments: [String]) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try! process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

/// Seconds `curl` takes for one GET, and the bytes it received.
func curlGet(_ port: Int, gzip: Bool, accept: String? = nil) -> (seconds: Double, bytes: Int) {
    let out = shell(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"]
        + (gzip ? ["-H", "Accept-Encoding: gzip"] : []) + (accept.map { ["-H", "Accept: \($0)"] } ?? [])
        + ["http://127.0.0.1:\(port)/metrics"])
    let parts = out.split(separator: " ")
    return (Double(parts[0]) ?? .nan, Int(parts.count > 1 ? parts[1] : "0") ?? 0)
}

func sample(_ text: String, _ name: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.split(separator: " ")[1]) ?? .nan
    }
    return .nan
}

/// The value of the first sample whose name (with its labels) starts with `prefix`.
func sample(_ text: String, startingWith prefix: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
        return Double(line.split(separator: " ").last!) ?? .nan
    }
    return .nan
}

func scrape(_ port: Int) -> String { shell(["curl", "-s", "http://127.0.0.1:\(port)/metrics"]) }

func rssBytes(_ pid: Int32) -> Double { ProcessProbe.rssBytes(pid) }
func cpuSeconds(_ pid: Int32) -> Double { ProcessProbe.cpuSeconds(pid) }
func median(_ values: [Double]) -> Double { ProcessProbe.median(values) }

struct Row {
    var series: Int
    var render, get, getGzip, getProtobuf, getOpenMetrics, rssEmpty, rssLoaded, rssScraped, heapEmpty, heapLoaded, heapScraped, checkpoint, checkpointCPU,
        checkpointCPUEach, pushCPU, checkpointsPerSecond: Double
    var bytes, gzipBytes, protobufBytes, openMetricsBytes: Int
    /// 100 protobuf GETs at once: the median and slowest as curl saw them, and the renders the agent made for them.
    var concurrentMedian = Double.nan, concurrentMax = Double.nan, concurrentRenders = Double.nan
}

/// 100 protobuf GETs started together (curl processes), as Prometheus servers and dashboards asking at once would.
func concurrentProtobufGets(_ port: Int) -> (median: Double, max: Double, renders: Double) {
    let before = sample(scrape(port), "danube_agent_scrape_duration_seconds_count")
    let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    let script = "for i in $(seq 100); do curl -s -o /dev/null -w '%{time_total}\\n' -H 'Accept: \(protobuf)' http://127.0.0.1:\(port)/metrics & done; wait"
    let times = shell(["bash", "-c", script]).split(separator: "\n").compactMap { Double($0) }
    let renders = sample(scrape(port), "danube_agent_scrape_duration_seconds_count") - before - 1
    return (times.isEmpty ? .nan : median(times), times.max() ?? .nan, renders)
}

func measure(series: Int) -> Row {
    let agent = BenchAgent(name: "scale-\(series)")
    defer { agent.stop() }
    let directory = agent.directory
    let port = agent.port
    let receiverPort = Int.random(in: 20_000..<30_000)
    let receiver = Process()
    if remoteWrite {
        try! "global:\n  scrape_interval: 1m\n".write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/prometheus")
        receiver.arguments = ["--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/tsdb",
                              "--web.listen-address=127.0.0.1:\(receiverPort)", "--web.enable-remote-write-receiver", "--log.level=error"]
            + (ScaleSource.native != nil ? ["--enable-feature=native-histograms"] : [])
        try! receiver.run()
    }
    defer { if remoteWrite { receiver.terminate(); receiver.waitUntilExit() } }
    agent.start(path: agentPath, arguments: (remoteWrite ? ["--remote-write-url", "http://127.0.0.1:\(receiverPort)/api/v1/write", "--remote-write-interval", "5s"] : [])
        + (remoteWrite && ScaleSource.native != nil ? ["--remote-write-native-histograms"] : []) + ["--log-format", "logfmt"]
        + (checkpointInterval.map { ["--checkpoint-interval", $0] } ?? []))
    usleep(300_000)
    let pid = agent.process.processIdentifier
    let heapEmpty = sample(scrape(port), "danube_agent_heap_in_use_bytes")
    let rssEmpty = rssBytes(pid)

    let perSource = series / sourceCount
    let sources = (0..<sourceCount).map { try! ScaleSource(path: agent.socketPath, source: $0, series: perSource) }
    DispatchQueue.concurrentPerform(iterations: sourceCount) { sources[$0].defineAll(); sources[$0].update() }
    while sample(scrape(port), "danube_agent_series") < Double(series) { sleep(1) }
    sleep(11) // a checkpoint of everything, and the agent's first heap trim (every 10 s)
    let rssLoaded = rssBytes(pid)
    let heapLoaded = sample(scrape(port), "danube_agent_heap_in_use_bytes")

    func scrapeStats() -> (sum: Double, count: Double) {
        let text = scrape(port)
        return (sample(text, "danube_agent_scrape_duration_seconds_sum"), sample(text, "danube_agent_scrape_duration_seconds_count"))
    }
    let before = scrapeStats()
    var gets: [Double] = [], gzipGets: [Double] = []
    var bytes = 0, gzipBytes = 0
    for _ in 0..<5 {
        let plain = curlGet(port, gzip: false)
        gets.append(plain.seconds); bytes = plain.bytes
        let compressed = curlGet(port, gzip: true)
        gzipGets.append(compressed.seconds); gzipBytes = compressed.bytes
    }
    let after = scrapeStats()
    // The render inside each GET, as the agent measured it (11 renders between the two readings: 10 GETs and one scrape).
    let render = (after.sum - before.sum) / max(1, after.count - before.count)
    // What Prometheus with native histograms asks for: the protobuf exposition (after the text measurements).
    let protobuf = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
    // OpenMetrics alternating with it, so that the two are compared under the same conditions.
    var protobufGets: [(seconds: Double, bytes: Int)] = [], openMetricsGets: [(seconds: Double, bytes: Int)] = []
    for _ in 0..<3 {
        openMetricsGets.append(curlGet(port, gzip: false, accept: "application/openmetrics-text;version=1.0.0"))
        protobufGets.append(curlGet(port, gzip: false, accept: protobuf))
    }
    sleep(2)
    let rssScraped = rssBytes(pid)
    let heapScraped = sample(scrape(port), "danube_agent_heap_in_use_bytes")

    // 1% of the series change every second, a tenth of them every 100 ms (as emitters flushing every 200 ms
    // at different moments send them); the agent checkpoints every --checkpoint-interval when something changed.
    // No scrape meanwhile (a scrape of a million series costs more than all of this): the agent's CPU is ingest
    // plus checkpoints.
    let beforeWindow = scrape(port)
    let (checkpointCPUBefore, checkpointsBefore) = (sample(beforeWindow, "danube_agent_checkpoint_cpu_seconds_total"),
                                                    sample(beforeWindow, "danube_agent_checkpoints_total"))
    let cpuBefore = cpuSeconds(pid)
    let started = Date()
    for round in 0..<100 {
        DispatchQueue.concurrentPerform(iterations: sourceCount) { sources[$0].update(stride: 1_000, offset: round, round: UInt64(round % 10 + 2)) }
        usleep(100_000)
    }
    let windowSeconds = Date().timeIntervalSince(started)
    let cpuPerSecond = (cpuSeconds(pid) - cpuBefore) / windowSeconds
    let afterWindow = scrape(port)
    let checkpoints = [sample(afterWindow, "danube_agent_last_checkpoint_duration_seconds")]
    let checkpointsInWindow = sample(afterWindow, "danube_agent_checkpoints_total") - checkpointsBefore
    let checkpointCPUEach = (sample(afterWindow, "danube_agent_checkpoint_cpu_seconds_total") - checkpointCPUBefore) / max(1, checkpointsInWindow)
    // Remote write: with nothing changing, the agent's CPU is its pushes (every 5 s) to the receiver.
    var pushCPU = Double.nan
    if remoteWrite {
        let url = "{url=\"http://127.0.0.1:\(receiverPort)/api/v1/write\"}"
        let sentBefore = sample(scrape(port), startingWith: "danube_agent_remote_write_samples_sent_total" + url)
        let pushCPUBefore = cpuSeconds(pid)
        sleep(30)
        let pushCPUUsed = cpuSeconds(pid) - pushCPUBefore
        let sent = sample(scrape(port), startingWith: "danube_agent_remote_write_samples_sent_total" + url) - sentBefore
        pushCPU = pushCPUUsed / 6 // six pushes in 30 s
        print(String(format: "remote write: %.0f samples accepted in 30 s, agent CPU %.2f s, pending %.0f", sent, pushCPUUsed,
                     sample(scrape(port), startingWith: "danube_agent_remote_write_samples_pending" + url)))
    }
    let concurrent = concurrentProtobufGets(port)
    return Row(series: series, render: render, get: median(gets), getGzip: median(gzipGets),
               getProtobuf: median(protobufGets.map(\.seconds)), getOpenMetrics: median(openMetricsGets.map(\.seconds)), rssEmpty: rssEmpty, rssLoaded: rssLoaded,
               rssScraped: rssScraped, heapEmpty: heapEmpty, heapLoaded: heapLoaded, heapScraped: heapScraped, checkpoint: median(checkpoints), checkpointCPU: cpuPerSecond, checkpointCPUEach: checkpointCPUEach, pushCPU: pushCPU, checkpointsPerSecond: checkpointsInWindow / windowSeconds, bytes: bytes, gzipBytes: gzipBytes, protobufBytes: protobufGets.last?.bytes ?? 0, openMetricsBytes: openMetricsGets.last?.bytes ?? 0,
               concurrentMedian: concurrent.median, concurrentMax: concurrent.max, concurrentRenders: concurrent.renders)
}

let rows = (sizes.isEmpty ? [100_000, 1_000_000] : sizes).map { measure(series: $0) }
func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1_000) }
print("| measure | " + rows.map { "\($0.series / 1_000)k series" }.joined(separator: " | ") + " |")
print("| --- |" + String(repeating: " --- |", count: rows.count))
print("| render, server side (`danube_agent_scrape_duration_seconds`, mean) | " + rows.map { ms($0.render) }.joined(separator: " | ") + " |")
print("| `GET /metrics` as curl sees it (median of 5) | " + rows.map { "\(ms($0.get)) (\($0.bytes / 1_000_000) MB)" }.joined(separator: " | ") + " |")
print("| `GET /metrics` as OpenMetrics (median of 3, alternating with protobuf) | " + rows.map { "\(ms($0.getOpenMetrics)) (\($0.openMetricsBytes / 1_000_000) MB)" }.joined(separator: " | ") + " |")
print("| `GET /metrics` as protobuf (median of 3) | " + rows.map { "\(ms($0.getProtobuf)) (\($0.protobufBytes / 1_000_000) MB)" }.joined(separator: " | ") + " |")
print("| protobuf GET / OpenMetrics GET | " + rows.map { String(format: "%.2f", $0.getProtobuf / $0.getOpenMetrics) }.joined(separator: " | ") + " |")
print("| `GET /metrics` with `Accept-Encoding: gzip` (median of 5) | " + rows.map { "\(ms($0.getGzip)) (\(String(format: "%.1f", Double($0.gzipBytes) / 1e6)) MB)" }.joined(separator: " | ") + " |")
print("| agent heap in use above the empty agent (`danube_agent_heap_in_use_bytes`), per series: loaded / after 10 scrapes | "
      + rows.map { String(format: "%.0f B / %.0f B", ($0.heapLoaded - $0.heapEmpty) / Double($0.series), ($0.heapScraped - $0.heapEmpty) / Double($0.series)) }.joined(separator: " | ") + " |")
print("| agent RSS above the empty agent, per series: loaded / after 10 scrapes | "
      + rows.map { String(format: "%.0f B / %.0f B", ($0.rssLoaded - $0.rssEmpty) / Double($0.series), ($0.rssScraped - $0.rssEmpty) / Double($0.series)) }.joined(separator: " | ") + " |")
print("| 1% of series changing per second: checkpoints per second / CPU per checkpoint (mean) / last checkpoint's duration / agent CPU (ingest and checkpoints) | "
      + rows.map { String(format: "%.1f / %.1f ms / %@ / %.1f%% of a core", $0.checkpointsPerSecond, $0.checkpointCPUEach * 1_000, ms($0.checkpoint), $0.checkpointCPU * 100) }.joined(separator: " | ") + " |")
print("| 100 protobuf GETs at once: median / slowest (renders made) | "
      + rows.map { "\(ms($0.concurrentMedian)) / \(ms($0.concurrentMax)) (\(Int($0.concurrentRenders)))" }.joined(separator: " | ") + " |")
if remoteWrite {
    print("| remote write every 5 s: agent CPU per push / per series pushed | "
          + rows.map { String(format: "%.0f ms / %.0f ns", $0.pushCPU * 1_000, $0.pushCPU / Double($0.series) * 1e9) }.joined(separator: " | ") + " |")
}

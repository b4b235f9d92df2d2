import Foundation
import ScaleFeed
import Synchronization

// How far `/metrics` is behind what sources sent, with `--state-dir` (what it shows is only what is durable): a
// release agent holds `series` background series of which 1% change every second (as ScaleBench), and a probe
// source adds 1 to a counter now and then; the time from the probe's delta leaving the
// socket to the first `GET /metrics` that shows it is one sample. Prints p50, p99 and max per checkpoint interval.
// Each probe waits a random 0-1 s after the previous one was seen, so that it falls at every phase of the
// checkpoint cycle (a sample begins right after a checkpoint was seen: a short fixed wait would always land just
// after one).
//   FreshnessBench [series] [samples]      (default 10000 300; needs ../.build/release/danube-metrics-agent)
// INTERVALS=default,1s,100ms: the `--checkpoint-interval` values to run (default: the agent's own default).
let agentPath = ProcessInfo.processInfo.environment["AGENT"] ?? "../.build/release/danube-metrics-agent"
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let backgroundSeries = arguments.first ?? 10_000
let samples = arguments.dropFirst().first ?? 300
let intervals = (ProcessInfo.processInfo.environment["INTERVALS"] ?? "default").split(separator: ",").map(String.init)

/// One HTTP/1.1 GET of `/metrics` over a fresh loopback connection; the body.
func getMetrics(port: Int) -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return "" }
    let request = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    return String(decoding: response, as: UTF8.self)
}

/// The probe counter's value on `/metrics`, or -1.
func probeValue(_ text: String) -> Double {
    let prefix = "scale_0_total{namespace=\"ns1\",partition=\"1\",subscription=\"sub-1\",topic=\"topic-1-0\"} "
    guard let range = text.range(of: prefix) else { return -1 }
    let rest = text[range.upperBound...]
    return Double(rest.prefix { $0 != "\n" }) ?? -1
}

func percentile(_ sorted: [Double], _ p: Double) -> Double { sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)] }

func measure(interval: String) -> (p50: Double, p99: Double, max: Double) {
    let agent = BenchAgent(name: "freshness")
    defer { agent.stop() }
    agent.start(path: agentPath, arguments: interval == "default" ? [] : ["--checkpoint-interval", interval])
    let port = agent.port
    let background = try! ScaleSource(path: agent.socketPath, source: 0, series: backgroundSeries)
    background.defineAll()
    background.update()
    let probe = try! ScaleSource(path: agent.socketPath, source: 1, series: 1)
    probe.defineAll()
    let stop = StopFlag()
    // 1% of the background series change every second, a tenth of them every 100 ms.
    let churn = Thread {
        var round: UInt64 = 2
        while !stop.isSet {
            background.update(stride: 1_000, offset: Int(round), round: round)
            round += 1
            usleep(100_000)
        }
    }
    churn.start()
    while probeValue(getMetrics(port: port)) < 0 { usleep(20_000) }
    var latencies: [Double] = []
    var expected = probeValue(getMetrics(port: port))
    for _ in 0..<samples {
        usleep(UInt32.random(in: 0..<1_000_000))
        let sent = ContinuousClock.now
        probe.update(round: 1)
        expected += 1
        while probeValue(getMetrics(port: port)) < expected { usleep(2_000) }
        let elapsed = ContinuousClock.now - sent
        latencies.append(Double(elapsed.components.seconds) * 1e3 + Double(elapsed.components.attoseconds) / 1e15)
    }
    stop.set()
    latencies.sort()
    return (percentile(latencies, 0.5), percentile(latencies, 0.99), latencies.last ?? .nan)
}

/// A flag one thread sets and another polls.
final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

print("| --checkpoint-interval | background series | samples | p50 | p99 | max |")
print("| --- | --- | --- | --- | --- | --- |")
for interval in intervals {
    let result = measure(interval: interval)
    print(String(format: "| %@ | %d | %d | %.0f ms | %.0f ms | %.0f ms |", interval, backgroundSeries, samples, result.p50, result.p99, result.max))
}

import BenchmarkSupport
import DanubeMetricsAgent
import Foundation
import Logging

// Renders /metrics of a filled store again and again and prints ms per render, for a quick before/after and for
// profilers (valgrind --tool=callgrind). Usage: [NATIVE=1] RenderTiming [series] [renders]
// NATIVE=1: the histograms (5% of the series) keep native buckets too, which the protobuf row then carries.
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let series = arguments.first ?? 100_000
let renders = arguments.dropFirst().first ?? 20
let agent = try Agent(configuration: AgentConfiguration(ingestSocketPath: "/nonexistent"), logger: Logger(label: "bench"))
let native = ProcessInfo.processInfo.environment["NATIVE"] == "1"
fill(agent.store, counters: series * 80 / 100, gauges: series * 15 / 100, histograms: series * 5 / 100, native: native)
for format in [ScrapeFormat.text(.prometheusText), .text(.openMetrics), .protobuf] {
    var times: [Double] = []
    var bytes = 0
    for _ in 0..<renders {
        let start = ContinuousClock.now
        bytes = agent.renderMetrics(scrape: format).reduce(0) { $0 + $1.count }
        let elapsed = ContinuousClock.now - start
        times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3)
    }
    times.sort()
    // DUMP=path writes the last render, to compare outputs byte for byte across changes.
    if let path = ProcessInfo.processInfo.environment["DUMP"] {
        _ = FileManager.default.createFile(atPath: "\(path).\(format)", contents: Data(agent.renderMetrics(scrape: format).joined()))
    }
    print(String(format: "%@ %d series: p50 %.1f ms, min %.1f ms, %.1f MB", "\(format)", series, times[times.count / 2], times[0], Double(bytes) / 1e6))
}

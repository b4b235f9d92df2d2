import BenchmarkSupport
import DanubeMetricsAgent
import Foundation
import Synchronization
import Logging

// Deltas per second the agent applies from 2 sources over real SEQPACKET connections (a loadgen-like mix:
// 70% counter adds, 20% histogram deltas, 10% gauge sets over 2,000 series, 1,000 deltas per frame).
// Usage: swift run -c release IngestThroughput [rounds]   (each round: 2 x 200 frames = 400,000 deltas)
// With BACKGROUND_SERIES=n the store also holds n other series (80/15/5% counters, gauges, histograms), the agent
// checkpoints to a state directory, and a thread renders /metrics back to back for the whole run: ingest while a
// large scrape and checkpoints run. With SERIES_TTL=seconds, series expiry is on.
let rounds = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 25
let framesPerRound = 200
let socketPath = "/tmp/dma-ingest-bench-\(getpid()).sock"
var configuration = AgentConfiguration(ingestSocketPath: socketPath)
configuration.httpListen = [ListenAddress(host: "127.0.0.1", port: 0)]
let background = ProcessInfo.processInfo.environment["BACKGROUND_SERIES"].flatMap { Int($0) } ?? 0
let stateDirectory = "/tmp/dma-ingest-bench-\(getpid())-state"
if background > 0 { configuration.stateDirectory = stateDirectory }
// SERIES_TTL=seconds: with series expiry on (what a ttl costs ingest: one tick stored per delta).
configuration.storeLimits.seriesTTL = ProcessInfo.processInfo.environment["SERIES_TTL"].flatMap { Int($0) }.map { .seconds($0) }
var logger = Logger(label: "ingest-bench")
logger.logLevel = .warning
let agent = try Agent(configuration: configuration, logger: logger)
if background > 0 { fill(agent.store, counters: background * 80 / 100, gauges: background * 15 / 100, histograms: background * 5 / 100) }
try await agent.start()
let scraping = ScrapeLoop()
if background > 0 {
    Thread {
        while !scraping.stopped {
            let started = ContinuousClock.now
            _ = agent.renderMetrics(format: .prometheusText)
            scraping.record(ContinuousClock.now - started)
        }
    }.start()
}
let sources = try (0..<2).map { _ in try BlastSource(path: socketPath, frameCount: rounds * framesPerRound) }
var rates: [Double] = []
let ingestCPUBefore = threadCPUSeconds(named: "NIO-ELT")
let appliedBefore = agent.stats.applied
for round in 0..<rounds {
    let target = agent.stats.applied + UInt64(sources.count * framesPerRound * 1_000)
    let began = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for source in sources { group.addTask { try source.blast(from: round * framesPerRound, count: framesPerRound) } }
        try await group.waitForAll()
    }
    while agent.stats.applied < target { try await Task.sleep(for: .microseconds(100)) }
    let elapsed = ContinuousClock.now - began
    rates.append(Double(sources.count * framesPerRound * 1_000) / (Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)))
}
let ingestCPU = threadCPUSeconds(named: "NIO-ELT") - ingestCPUBefore
let appliedDuring = Double(agent.stats.applied - appliedBefore)
scraping.stop()
rates.sort()
print(String(format: "ingest: %d rounds of %d deltas; deltas applied per second: min %.1f M, median %.1f M, max %.1f M",
             rounds, sources.count * framesPerRound * 1_000, rates.first! / 1e6, rates[rates.count / 2] / 1e6, rates.last! / 1e6))
print(String(format: "per core of ingest: %.1f M deltas per CPU-second of the agent's event loops (%.2f s of CPU for %.0f M deltas)",
             appliedDuring / ingestCPU / 1e6, ingestCPU, appliedDuring / 1e6))
if background > 0 {
    print(String(format: "meanwhile: %d renders of %d other series back to back (median %.0f ms), checkpoints to %@",
                 scraping.count, background, scraping.median * 1e3, stateDirectory))
}
await agent.stop()
try? FileManager.default.removeItem(atPath: stateDirectory)

/// Render times of the background scrape loop.
final class ScrapeLoop: Sendable {
    private let state = Mutex<(times: [Double], done: Bool)>(([], false))
    var stopped: Bool { state.withLock { $0.done } }
    var count: Int { state.withLock { $0.times.count } }
    var median: Double { state.withLock { $0.times.sorted()[$0.times.count / 2] } }
    func stop() { state.withLock { $0.done = true } }
    func record(_ elapsed: Duration) {
        state.withLock { $0.times.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) }
    }
}

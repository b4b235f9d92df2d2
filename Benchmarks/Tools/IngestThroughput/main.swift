import DanubeMetricsAgent
import Foundation
import Logging

// Deltas per second the agent applies from 2 sources over real SEQPACKET connections (a loadgen-like mix:
// 70% counter adds, 20% histogram deltas, 10% gauge sets over 2,000 series, 1,000 deltas per frame).
// Usage: swift run -c release IngestThroughput [rounds]   (each round: 2 x 200 frames = 400,000 deltas)
let rounds = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 25
let framesPerRound = 200
let socketPath = "/tmp/dma-ingest-bench-\(getpid()).sock"
var configuration = AgentConfiguration(ingestSocketPath: socketPath)
configuration.httpListen = [ListenAddress(host: "127.0.0.1", port: 0)]
var logger = Logger(label: "ingest-bench")
logger.logLevel = .warning
let agent = Agent(configuration: configuration, logger: logger)
try await agent.start()
let sources = try (0..<2).map { _ in try BlastSource(path: socketPath, frameCount: rounds * framesPerRound) }
var rates: [Double] = []
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
rates.sort()
print(String(format: "ingest: %d rounds of %d deltas; deltas applied per second: min %.1f M, median %.1f M, max %.1f M",
             rounds, sources.count * framesPerRound * 1_000, rates.first! / 1e6, rates[rates.count / 2] / 1e6, rates.last! / 1e6))
await agent.stop()

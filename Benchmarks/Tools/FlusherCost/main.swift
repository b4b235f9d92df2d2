import BenchmarkSupport
import DanubeMetricsEmitter
import Foundation
import Synchronization

// The emitter's flusher at scale: `series` counters, 8 recording threads, 1% of the series changing per flush
// (200 ms), delivered to a release agent; prints the flusher thread's CPU. Issue 12's goal: <= 1% of a core.
//   FlusherCost [series] [seconds]     (needs ../.build/release/danube-metrics-agent)
let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let seriesCount = arguments.first ?? 100_000
let seconds = arguments.dropFirst().first ?? 20
let threads = 8
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flusher-\(getpid())").path
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
let agent = Process()
agent.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["AGENT"] ?? "../.build/release/danube-metrics-agent")
agent.arguments = ["--ingest-socket", "\(directory)/ingest.sock", "--listen", "127.0.0.1:\(Int.random(in: 30_000..<40_000))",
                   "--log-level", "error", "--log-format", "text", "--max-series-per-family", "200000"]
try agent.run()
defer {
    agent.terminate()
    agent.waitUntilExit()
    try? FileManager.default.removeItem(atPath: directory)
}
while !FileManager.default.fileExists(atPath: "\(directory)/ingest.sock") { usleep(50_000) }

var configuration = EmitterConfiguration(socketPath: "\(directory)/ingest.sock", sourceName: "flusher-cost")
configuration.reportsProcessMetrics = false
let emitter = Emitter(configuration: configuration)
let counters = try (0..<seriesCount).map { try emitter.counter("flusher_cost_total", labels: [("n", "\($0)")]) }

/// CPU seconds of the emitter's flusher thread (named "danube-flusher").
func flusherCPU() -> Double { threadCPUSeconds(named: "danube-flusher") }

// Every thread touches every series once, so each thread's slab covers all of them (the flusher reads them all).
let warm = DispatchGroup()
for _ in 0..<threads {
    warm.enter()
    Thread { counters.forEach { $0.increment() }; warm.leave() }.start()
}
warm.wait()
precondition(emitter.waitUntilDelivered(timeout: .seconds(60)), "the agent did not take the series")

let stop = ManagedAtomicFlag()
let perFlush = seriesCount / 100
let running = DispatchGroup()
for t in 0..<threads {
    running.enter()
    Thread {
        var round = 0
        while !stop.isSet {
            // This thread's share of the 1% changing this interval.
            for i in stride(from: t, to: perFlush, by: threads) { counters[(round * perFlush + i * 97) % seriesCount].increment() }
            round += 1
            Thread.sleep(forTimeInterval: 0.2)
        }
        running.leave()
    }.start()
}
let before = flusherCPU()
let started = Date()
Thread.sleep(forTimeInterval: Double(seconds))
let used = flusherCPU() - before
let elapsed = Date().timeIntervalSince(started)
stop.set()
running.wait()
emitter.shutdown()
print(String(format: "%d series x %d threads, 1%% changing per 200 ms flush: flusher %.2f%% of a core (%.1f ms per flush)",
             seriesCount, threads, used / elapsed * 100, used / (elapsed / 0.2) * 1_000))

final class ManagedAtomicFlag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .relaxed) }
    func set() { value.store(true, ordering: .relaxed) }
}

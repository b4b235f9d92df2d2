import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// A hostile peer floods an agent process with malformed and random frames over thousands of connections while a
/// well-behaved emitter keeps counting: the agent's memory stays flat and the bystander's count exact.
@Suite struct FloodTests {
    static func residentKiB(_ pid: pid_t) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// One hostile connection: random bytes, a HELLO then garbage, or valid frames out of order.
    static func attack(_ path: String, _ random: inout SplitMix) throws {
        let source = try RawSource(path: path)
        let length = Int(random.next(below: 4_096)) + 1
        let garbage = (0..<length).map { _ in UInt8(random.next(below: 256)) }
        switch random.next(below: 4) {
        case 0:
            source.send(garbage)
        case 1:
            source.handshake(name: "hostile")
            source.send(garbage)
        case 2:
            source.handshake(name: "hostile")
            source.send(.deltas(DeltaBatch(sequence: 9)))
        default:
            source.handshake(name: "hostile")
            // A frame header claiming more than was sent, then a huge record.
            source.send([0xFF, 0xFF, 0x00, 0x00, 0x11, 0x00] + garbage)
            source.send([UInt8](repeating: 0x41, count: 70_000))
        }
        _ = source.isClosedByAgent()
    }

    @Test func malformedFloodLeavesMemoryFlatAndOtherSourcesExact() async throws {
        let socket = TestAgent.temporarySocketPath()
        let port = unusedPort()
        let agent = try ChildProcess(Executables.agent.path, [
            "--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--log-format", "text", "--log-level", "error",
        ], output: socket + ".log")
        defer { agent.stop() }
        #expect(eventually { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })

        let bystander = TestAgent.emitter(socketPath: socket, name: "bystander")
        let counter = try bystander.counter("test_bystander_total")
        var random = SplitMix(seed: 99)
        var recorded: UInt64 = 0
        for _ in 0..<500 {
            try Self.attack(socket, &random)
            counter.increment()
            recorded += 1
        }
        let warm = Self.residentKiB(agent.pid)
        for _ in 0..<4_000 {
            try Self.attack(socket, &random)
            counter.increment()
            recorded += 1
        }
        let after = Self.residentKiB(agent.pid)
        print("flood: agent RSS \(warm) KiB after 500 hostile connections, \(after) KiB after 4,500")
        #expect(bystander.waitUntilDelivered(timeout: .seconds(10)))
        let samples = Samples(parsing: try HTTPClient.get(port: port, path: "/metrics").text)
        #expect(samples["test_bystander_total"] == Double(recorded))
        #expect(samples.sum("danube_agent_decode_errors_total") >= 4_000)
        // Flat: 4,000 more hostile connections add less than 4 MiB (about a KiB each would show).
        #expect(warm > 0 && after - warm < 4_096, "RSS \(warm) KiB after warm-up, \(after) KiB after the flood")
        bystander.shutdown()
    }
}

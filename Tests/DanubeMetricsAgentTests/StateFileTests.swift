@testable import DanubeMetricsAgent
import DanubeMetricsWire
import Foundation
import Logging
import Testing

/// The state file: format round trip, migration of version 1, and files the agent must not misread.
@Suite struct StateFileTests {
    static func directory() -> String {
        Scratch.makeDirectory("state")
    }

    static let snapshot = StoreSnapshot(
        series: [
            StoreSnapshot.Series(name: "a_total", kind: .counter, help: "A.", bounds: [], labels: [Label("x", "1")],
                                 counterInteger: 42, counterFloat: 0.5, buckets: [], sum: 0),
            StoreSnapshot.Series(name: "h_ms", kind: .histogram, help: "H.", bounds: [1, 10], labels: [],
                                 counterInteger: 0, counterFloat: 0, buckets: [3, 4, 5], sum: 61.25),
        ],
        sources: [StoreSnapshot.Source(instance: 0xABCD, sequence: 17, lastSeen: 1_700_000_000)])

    /// The code a decode fails with (nil when it reads).
    static func failure(_ bytes: [UInt8]) -> StateFormat.Unreadable.Code? {
        do { _ = try StateFormat.decode(bytes) } catch { return (error as? StateFormat.Unreadable)?.code }
        return nil
    }

    @Test func theFormatRoundTripsAndDetectsEveryDamage() throws {
        let bytes = StateFormat.encode(Self.snapshot, writtenAt: 1)
        #expect(try StateFormat.decode(bytes) == Self.snapshot)
        var flipped = bytes
        flipped[bytes.count - 3] ^= 0x40
        #expect(Self.failure(flipped) == .corrupt)
        #expect(Self.failure(Array(bytes.dropLast(5))) == .truncated)
        var future = bytes
        future[4] = 9
        #expect(Self.failure(future) == .unsupportedVersion)
        #expect(Self.failure(Array("PNG".utf8) + [UInt8](repeating: 0, count: 30)) == .notAStateFile)
    }

    /// Version 3 added native histograms; a version 2 file (the same bytes without them) still reads, and a
    /// native family in a file that claims version 2 is refused.
    @Test func versionTwoFilesStillReadAndNativeFamiliesNeedVersionThree() throws {
        var version2 = StateFormat.encode(Self.snapshot, writtenAt: 1)
        version2[4] = 2
        #expect(try StateFormat.decode(version2) == Self.snapshot)
        var native = Self.snapshot
        native.series = [StoreSnapshot.Series(
            name: "n_ms", kind: .histogram, help: "", bounds: [1], labels: [Label("op", "put")], counterInteger: 0, counterFloat: 0,
            buckets: [1, 0, 0], sum: 3, native: NativeHistogramSpec(schema: 0, zeroThreshold: 1, maxBuckets: 8), nativeBuckets: [7, 1])]
        let bytes = StateFormat.encode(native, writtenAt: 1)
        #expect(try StateFormat.decode(bytes) == native)
        var claimsTwo = bytes
        claimsTwo[4] = 2
        #expect(Self.failure(claimsTwo) == .malformed)
    }

    /// A version 2 file naming one family twice (a state the store cannot have) is refused, not half-read.
    @Test func aFamilyListedTwiceIsRefused() {
        var payload = ByteWriter()
        payload.f64(0)
        payload.uvarint(0)
        payload.uvarint(2)
        for kind in [MetricKind.counter, .histogram] {
            payload.string("twice")
            payload.u8(kind.rawValue)
            payload.string("")
            payload.uvarint(kind == .histogram ? 1 : 0)
            if kind == .histogram { payload.f64(1) }
        }
        payload.uvarint(0)
        var file = ByteWriter()
        file.raw(StateFormat.magic)
        file.u16(2)
        file.u16(0)
        file.u64(UInt64(payload.count))
        file.u32(CRC32.checksum(payload.bytes))
        file.u32(0)
        file.raw(payload.bytes)
        #expect(Self.failure(file.bytes) == .malformed)
    }

    @Test(arguments: [
        ("foreign", FileBytes(Array("\u{89}PNG\r\n\u{1A}\nnot a state file at all".utf8)), "no DNBS header"),
        ("future", FileBytes(Array("DNBS".utf8) + [7, 0] + [UInt8](repeating: 0, count: 30)), "format version 7"),
        ("empty", FileBytes([]), "no DNBS header"),
        ("json", FileBytes(Array("{\"version\": 3, \"series\": [], \"sources\": {}}".utf8)), "JSON state file format version 3"),
        // Found by fuzzing: version 1 entries a version 2 file could not hold faithfully.
        ("json", FileBytes(Array(#"{"version": 1, "sources": {}, "series": [{"name": "g", "kind": 2, "help": "", "bounds": [1, 10], "labels": [], "counterInteger": 0, "counterFloat": 0, "buckets": [1, 2, 3], "sum": 1}]}"#.utf8)), "entry 0 is inconsistent"),
        ("json", FileBytes(Array(#"{"version": 1, "sources": {}, "series": [{"name": "h_ms", "kind": 3, "help": "", "bounds": [1, 10], "labels": [], "counterInteger": 0, "counterFloat": 0, "buckets": [1, 2], "sum": 1}]}"#.utf8)), "entry 0 is inconsistent"),
        ("json", FileBytes(Array(#"{"version": 1, "sources": {}, "series": [{"name": "h_ms", "kind": 1, "help": "", "bounds": [], "labels": [], "counterInteger": 1, "counterFloat": 0, "buckets": [], "sum": 0}, {"name": "h_ms", "kind": 3, "help": "", "bounds": [1], "labels": [["a", "b"]], "counterInteger": 0, "counterFloat": 0, "buckets": [1, 2], "sum": 1}]}"#.utf8)), "defines h_ms twice"),
    ])
    func anUnusableStateFileIsMovedAsideAndTheAgentStartsEmpty(name: String, file: FileBytes, reason: String) async throws {
        let bytes = file.bytes
        let directory = Self.directory()
        let path = "\(directory)/\(name == "json" ? "state.json" : "state.bin")"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        let agent = try await TestAgent { $0.stateDirectory = directory }
        #expect(agent.logs.contains("saved state is unusable", reason), "\(agent.logs.all)")
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).contains { $0.contains(".unusable-") })
        #expect(try agent.scrape().status == 200)
        await agent.stop()
    }

    @Test func aVersionOneFileIsMigrated() async throws {
        let directory = Self.directory()
        let legacy = """
            {"version": 1, "sources": {"abcd": 17}, "series": [
              {"name": "old_total", "kind": 1, "help": "Old.", "bounds": [], "labels": [["x", "1"]],
               "counterInteger": 40, "counterFloat": 0, "buckets": [], "sum": 0}]}
            """
        #expect(FileManager.default.createFile(atPath: "\(directory)/state.json", contents: Data(legacy.utf8)))
        let agent = try await TestAgent { $0.stateDirectory = directory }
        #expect(agent.logs.contains("restored saved state", "state.json"))
        #expect(try agent.samples()["old_total{x=\"1\"}"] == 40)
        // A source sends more: the next checkpoint writes version 2 and retires the old file.
        let emitter = agent.emitter()
        try emitter.counter("old_total", labels: [("x", "1")]).increment(by: 2)
        #expect(emitter.waitUntilDelivered())
        #expect(try agent.samples()["old_total{x=\"1\"}"] == 42)
        #expect(FileManager.default.fileExists(atPath: "\(directory)/state.bin"))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/state.json"))
        #expect(agent.agent.store.appliedSequences[0xABCD] == 17)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func sourcesAwayLongerThanTheRetentionAreForgotten() {
        let store = AggregationStore(gaugeGrace: .seconds(1))
        _ = store.claim(instance: 1, connection: 10, now: 1_000)
        _ = store.claim(instance: 2, connection: 11, now: 1_000)
        #expect(store.recordApplied(instance: 1, connection: 10, sequence: 5, now: 1_000))
        store.release(instance: 1, connection: 10, now: 1_000)
        #expect(store.forgetSources(awayLongerThan: 60, now: 1_030) == 0)
        #expect(store.forgetSources(awayLongerThan: 60, now: 1_100) == 1) // 1 left at 1000; 2 is still connected
        #expect(store.appliedSequences == [2: 0])
        // A connection that was replaced by a newer one of the same emitter applies nothing.
        _ = store.claim(instance: 2, connection: 12, now: 1_100)
        #expect(!store.recordApplied(instance: 2, connection: 11, sequence: 9, now: 1_100))
        #expect(store.appliedSequences[2] == 0)
    }

    /// Restored series pass the same gate as new ones: a reserved `danube_agent_*` name (a CRC-valid file can hold
    /// one) is dropped instead of duplicating the agent's own family, and a catalog that lowered a family's
    /// `max_series` keeps only that many; the rest are counted and named in one log line.
    @Test func restoredSeriesPassTheGateAsNewOnesDo() async throws {
        let directory = Self.directory()
        var snapshot = StoreSnapshot()
        snapshot.series.append(StoreSnapshot.Series(name: "danube_agent_series", kind: .counter, help: "forged", bounds: [],
                                                    labels: [], counterInteger: 7, counterFloat: 0, buckets: [], sum: 0))
        for i in 0..<8 {
            snapshot.series.append(StoreSnapshot.Series(name: "test_limited_total", kind: .counter, help: "", bounds: [],
                                                        labels: [Label("n", "\(i)")], counterInteger: 1, counterFloat: 0, buckets: [], sum: 0))
        }
        let file = StateFile(directory: directory)
        #expect(FileManager.default.createFile(atPath: file.path, contents: Data(StateFormat.encode(snapshot, writtenAt: 1))))
        let agent = try await TestAgent { configuration in
            configuration.stateDirectory = directory
            configuration.uncataloguedFamilyLimit = 3
        }
        let text = try agent.scrape().text
        let typeLines = text.split(separator: "\n").filter { $0 == "# TYPE danube_agent_series gauge" }
        #expect(typeLines.count == 1, "one family of that name, the agent's own")
        #expect(!text.contains("forged"))
        let samples = try agent.samples()
        #expect(samples.values.keys.filter { $0.hasPrefix("test_limited_total") }.count == 3)
        #expect(samples["danube_agent_series_rejected_total{family=\"uncatalogued\",reason=\"reserved_name\"}"] == 1)
        #expect(samples["danube_agent_series_rejected_total{family=\"uncatalogued\",reason=\"family_series_limit\"}"] == 5)
        #expect(agent.logs.contains("restored saved state", "series=3"))
        #expect(agent.logs.contains("restored series refused and dropped", "series=6"))
        await agent.stop()
    }
}

/// A state file write that never returns is seen, so the watchdog can stop vouching for the agent.
@Suite struct CheckpointHangTests {
    @Test func aHungWriteMakesTheCheckpointerReportItselfStuck() throws {
        let directory = StateFileTests.directory()
        // Opening a FIFO for writing blocks until somebody reads it: a write that hangs.
        #expect(mkfifo("\(directory)/state.bin.tmp", 0o600) == 0)
        let store = AggregationStore(gaugeGrace: .seconds(1))
        let checkpointer = Checkpointer(store: store, file: StateFile(directory: directory), interval: .milliseconds(50),
                                        stats: AgentStats(startTime: 0), logger: Logger(label: "test")) { _ in }
        checkpointer.start()
        _ = store.claim(instance: 1, connection: 1, now: 0)
        #expect(eventually(timeout: .seconds(5)) { checkpointer.isStuck(longerThan: .milliseconds(200)) })
        // Let the write through: the checkpointer recovers and can stop.
        let reader = open("\(directory)/state.bin.tmp", O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        #expect(eventually(timeout: .seconds(5)) {
            var buffer = [UInt8](repeating: 0, count: 65_536)
            _ = read(reader, &buffer, buffer.count)
            return !checkpointer.isStuck(longerThan: .milliseconds(200))
        })
        close(reader)
        checkpointer.stop()
    }
}

/// A file's bytes as a test argument: shown by their count, not byte by byte, in the test's name.
struct FileBytes: Sendable, CustomTestStringConvertible {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var testDescription: String { "\(bytes.count) bytes" }
}

import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// Native histograms end to end: recorded by the emitter, carried by protocol version 3, merged and checkpointed
/// by the agent, served in protobuf beside the classic buckets, and left out where they would be wrong.
@Suite(.serialized) struct NativeHistogramTests {
    static let protobuf = ProtobufExpositionTests.protobuf
    static let latency = BuiltinCatalog.latencyNative

    @Test func nativeBucketsReachTheProtobufExpositionAndSurviveARestart() async throws {
        let directory = Scratch.makeDirectory("native-state")
        var agent = try await TestAgent { $0.stateDirectory = directory }
        let emitter = agent.emitter()
        let histogram = try emitter.histogram("nh_latency_ms", buckets: [1, 10], native: Self.latency, labels: [("op", "put")])
        // Zero bucket: 0.01 and a negative; index 0 (upper bound 1): 1 twice; 3 is in bucket 13 (2^(13/8) = 3.08);
        // 1e9 is above the window and counts in its last bucket (-39 + 183 = 144).
        for value in [0.01, -2, 1, 1, 3, 1e9] { histogram.observe(value) }
        #expect(emitter.waitUntilDelivered())
        emitter.shutdown()

        func check(_ agent: TestAgent, _ when: String) throws {
            let body = try agent.scrape(accept: Self.protobuf).body
            let message = try #require(ProtobufMessage.histogram(in: body, family: "nh_latency_ms", labels: ["op": "put"]), "\(when)")
            #expect(message.varint(1) == 6, "\(when): sample count")
            #expect(message.sint(5) == 3, "\(when): schema")
            #expect(message.double(6) == 0x1p-5, "\(when): zero threshold")
            #expect(message.varint(7) == 2, "\(when): zero count")
            #expect(message.nativeBuckets == [0: 2, 13: 1, 144: 1], "\(when)")
            #expect(message.messages(3).count == 3, "\(when): the classic buckets stay for old dashboards")
            let text = try agent.scrape(accept: "application/openmetrics-text;version=1.0.0").text
            #expect(!text.contains("# native"), "\(when): text formats are unchanged")
            #expect(text.contains("nh_latency_ms_bucket{op=\"put\",le=\"1.0\"} 4"), "\(when): \(text)")
        }
        try check(agent, "live")
        // What a crash leaves: a second agent restores from the files the running one has checkpointed (it has
        // not drained or written a last checkpoint, as after SIGKILL).
        let afterCrash = try await TestAgent { $0.stateDirectory = directory }
        try check(afterCrash, "restored from the running agent's checkpoints, as after a crash")
        await afterCrash.stop()
        await agent.stop()
        agent = try await TestAgent { $0.stateDirectory = directory }
        try check(agent, "after a restart from the state files")
        await agent.stop()
    }

    /// An emitter older than version 3 records classic buckets only; where it contributes to a series, the native
    /// buckets no longer hold every observation, so that series is served without them (classic only).
    @Test func olderEmittersAreAcceptedAndTheirSeriesServedClassic() async throws {
        let agent = try await TestAgent()
        let name = DanubeFamily.producerSendLatency.rawValue
        let labels = [Label("namespace", "default"), Label("partition", "0"), Label("reliable", "false"), Label("topic", "/default/orders")]
        let bounds = BuiltinCatalog.latencyBuckets
        let old = try RawSource(path: agent.socketPath)
        #expect(old.handshake(versions: 1...2)?.version == 2)
        old.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(id: 0, kind: .histogram, name: name, help: "", labels: labels, bounds: bounds)])))
        old.send(.deltas(DeltaBatch(sequence: 2, deltas: [Delta(op: .histogram, seriesID: 0, bucketStart: 0, bucketCount: 1, sum: 0.7)],
                                    buckets: [BucketDelta(index: 5, count: 1)])))
        let emitter = agent.emitter()
        let pairs = labels.map { ($0.name, $0.value) }
        let current = try emitter.histogram(name, buckets: bounds, native: Self.latency, labels: pairs)
        current.observe(0.7)
        let other = try emitter.histogram(name, buckets: bounds, native: Self.latency, labels: pairs.map { $0.0 == "partition" ? ($0.0, "1") : $0 })
        other.observe(0.7)
        #expect(emitter.waitUntilDelivered())
        #expect(try await eventuallyAsync { try agent.samples().sum("\(name)_count", matching: ["partition=\"0\""]) == 2 })
        let body = try agent.scrape(accept: Self.protobuf).body
        let mixed = try #require(ProtobufMessage.histogram(in: body, family: name, labels: ["partition": "0"]))
        #expect(mixed.varint(1) == 2 && mixed.nativeBuckets == nil, "a series an old emitter fed is classic only")
        let native = try #require(ProtobufMessage.histogram(in: body, family: name, labels: ["partition": "1"]))
        #expect(native.nativeBuckets == [-4: 1], "0.7 is in bucket -4 (upper bound 2^(-4/8) = 0.707)")

        // A version 2 connection cannot carry native buckets; a catalogued family's must be the catalog's.
        let wrongVersion = try RawSource(path: agent.socketPath)
        #expect(wrongVersion.handshake(name: "v2", versions: 2...2, instance: 43) != nil)
        wrongVersion.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(
            id: 0, kind: .histogram, name: name, help: "", labels: labels, bounds: bounds, native: Self.latency)])))
        guard case .refuse(let refusal) = wrongVersion.receive() else { Issue.record("no refusal"); return }
        #expect(refusal.code == .malformed)
        let wrongSpec = try RawSource(path: agent.socketPath)
        #expect(wrongSpec.handshake(name: "v3", instance: 44)?.version == 3)
        wrongSpec.send(.define(DefineBatch(sequence: 1, definitions: [SeriesDefinition(
            id: 0, kind: .histogram, name: name, help: "", labels: labels, bounds: bounds,
            native: NativeHistogramSpec(schema: 2, zeroThreshold: 0x1p-5, maxBuckets: 92))])))
        guard case .seriesRefused(let refused) = wrongSpec.receive() else { Issue.record("no series refusal"); return }
        #expect(refused.code == .catalogViolation, "\(refused.message)")
        emitter.shutdown()
        await agent.stop()
    }

    /// An operator file may turn a family's native buckets off: emitters built with the shipped catalog still
    /// send them, and the agent keeps the series with its classic buckets, dropping the native ones.
    @Test func aCatalogWithoutNativeBucketsKeepsTheSeriesClassic() async throws {
        var family = try #require(BuiltinCatalog.catalog.family(named: DanubeFamily.walAppendLatency.rawValue))
        family.native = nil
        let catalog = try BuiltinCatalog.catalog.overlaid(with: CatalogFile(forbiddenLabels: nil, families: [family]))
        let agent = try await TestAgent { $0.catalog = catalog; $0.catalogMode = .strict }
        let emitter = agent.emitter()
        let labels = [("namespace", "default"), ("topic", "/default/orders"), ("partition", "0")]
        let latency = try emitter.histogram(family.name, buckets: family.buckets!, native: Self.latency, labels: labels)
        for value in [0.2, 3, 3, 700] { latency.observe(value) }
        #expect(emitter.waitUntilDelivered())
        #expect(emitter.stats.refusedSeries == 0)
        let shown = try agent.samples()
        #expect(shown.sum("\(family.name)_count") == 4)
        #expect(shown.sum("\(family.name)_bucket", matching: ["le=\"5.0\""]) == 3)
        let message = try #require(ProtobufMessage.histogram(in: try agent.scrape(accept: Self.protobuf).body, family: family.name))
        #expect(message.varint(1) == 4 && message.nativeBuckets == nil)
        emitter.shutdown()
        await agent.stop()
    }

    /// An emitter talking to an agent older than version 3 defines its histograms with classic buckets only and
    /// sends no native bucket indexes (the old agent would refuse both).
    @Test func anOldAgentGetsClassicBucketsOnly() throws {
        let old = try SilentAgent(path: TestAgent.temporarySocketPath(), recordsFrames: true)
        defer { old.stop() }
        let emitter = TestAgent.emitter(socketPath: old.path)
        let latency = try emitter.histogram("nh_old_agent_ms", buckets: [1, 10], native: Self.latency)
        for value in [0.5, 5, 50, 0] { latency.observe(value) }
        emitter.flush()
        var definitions: [SeriesDefinition] = [], buckets: [BucketDelta] = []
        #expect(eventually {
            definitions = old.frames.flatMap { frame -> [SeriesDefinition] in if case .define(let batch) = frame { batch.definitions } else { [] } }
            buckets = old.frames.flatMap { frame -> [BucketDelta] in if case .deltas(let batch) = frame { batch.buckets } else { [] } }
            return !definitions.isEmpty && !buckets.isEmpty
        })
        #expect(definitions.map(\.native) == [nil])
        #expect(buckets == [BucketDelta(index: 0, count: 2), BucketDelta(index: 1, count: 1), BucketDelta(index: 2, count: 1)])
        emitter.shutdown(timeout: .zero)
    }

    /// Native counts an old agent was not sent are not taken as sent: once the emitter reconnects to an agent of
    /// version 3 (an upgrade), its first delta carries every native observation, the ones made meanwhile included.
    @Test func nativeCountsNotSentToAnOldAgentReachTheNextNewOne() throws {
        let path = TestAgent.temporarySocketPath()
        let old = try SilentAgent(path: path, recordsFrames: true, acknowledges: true, version: 2)
        let emitter = TestAgent.emitter(socketPath: path)
        let latency = try emitter.histogram("nh_upgrade_ms", buckets: [1, 10], native: Self.latency)
        for value in [0.5, 5, 50, 0] { latency.observe(value) }
        #expect(emitter.waitUntilDelivered())
        old.stop()
        let new = try SilentAgent(path: path, recordsFrames: true, acknowledges: true, version: 3)
        defer { new.stop() }
        latency.observe(3)
        var buckets: [BucketDelta] = []
        #expect(eventually {
            emitter.flush()
            buckets = new.frames.flatMap { frame -> [BucketDelta] in if case .deltas(let batch) = frame { batch.buckets } else { [] } }
            return !buckets.isEmpty
        })
        let classic = buckets.filter { $0.index <= 2 }.reduce(0) { $0 + $1.count }
        let native = buckets.filter { $0.index > 2 }.reduce(0) { $0 + $1.count }
        #expect(classic == 1, "only the observation made since: the old agent has the others")
        #expect(native == 5, "every native observation: the old agent had none of them (\(buckets))")
        emitter.shutdown(timeout: .zero)
    }

    /// With `--remote-write-native-histograms`, remote write carries the native histogram beside the classic
    /// samples: a Prometheus receiver with native histograms stores count, sum and buckets as pushed.
    @Test func remoteWriteCarriesNativeHistogramsWhenAsked() async throws {
        let port = unusedPort()
        let prometheus = try PrometheusServer(remoteWriteReceiverOn: port, flags: ["--enable-feature=native-histograms"])
        defer { prometheus.stop() }
        let agent = try await TestAgent { configuration in
            configuration.remoteWrite.urls = ["http://127.0.0.1:\(port)/api/v1/write"]
            configuration.remoteWrite.interval = .milliseconds(300)
            configuration.remoteWrite.nativeHistograms = true
        }
        let emitter = agent.emitter()
        let histogram = try emitter.histogram("nh_pushed_ms", buckets: [1, 10], native: Self.latency, labels: [("op", "put")])
        for value in [0.01, 1, 1, 3, 1e9] { histogram.observe(value) }
        #expect(emitter.waitUntilDelivered())
        func value(_ query: String) -> Double? {
            ((try? prometheus.query(query).first?["value"] as? [Any])?.last as? String).flatMap(Double.init)
        }
        #expect(await eventuallyAsync(timeout: .seconds(30)) { value("histogram_count(nh_pushed_ms)") == 5 }, "\(prometheus.log)")
        #expect(value("histogram_sum(nh_pushed_ms)") == 0.01 + 1 + 1 + 3 + 1e9)
        // Buckets as pushed: 2 observations at most 1 (the zero bucket and bucket 0), 4 at most 3.08 (bucket 13).
        #expect(value("histogram_fraction(0, 1, nh_pushed_ms)") == 0.6)
        #expect(value("histogram_fraction(0, 3.1, nh_pushed_ms)") == 0.8)
        #expect(value("nh_pushed_ms_count") == 5, "the classic samples are pushed as well")
        emitter.shutdown()
        await agent.stop()
    }

    /// Prometheus 2.42 with native histograms scrapes the agent (protobuf) while the load generator runs: the 0.99
    /// quantile of the producer send latency's native histogram is within the schema's relative error (one bucket,
    /// 2^(1/8) - 1 = 9% at schema 3) of the exact 0.99 quantile of every latency the load generator recorded.
    @Test func prometheusQuantileOfTheNativeHistogramIsWithinTheSchemaError() async throws {
        let agent = try await TestAgent()
        let prometheus = try PrometheusServer(agentPort: agent.port, ruleFiles: [], flags: ["--enable-feature=native-histograms"])
        defer { prometheus.stop() }
        #expect(await eventuallyAsync(timeout: .seconds(30)) {
            (try? prometheus.query("up").first?["value"] as? [Any])?.last as? String == "1"
        }, "Prometheus never scraped the agent: \(prometheus.log)")
        // Every series is defined at zero 3 s (3 scrapes) before the first message, so rate() over the window
        // covers exactly the recorded latencies.
        let recorded = Scratch.path("latencies", suffix: ".txt")
        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", agent.socketPath, "--messages", "5000", "--rate", "0", "--threads", "2", "--flush-interval-ms", "20",
            "--start-delay-ms", "3000", "--record-latencies", recorded,
        ], output: Scratch.path("loadgen-quantile", suffix: ".log"))
        #expect(ChildProcess.exitedCleanly(loadgen.wait(timeout: .seconds(60))))
        let latencies = try String(contentsOfFile: recorded, encoding: .utf8).split(separator: "\n").compactMap { Double($0) }.sorted()
        #expect(latencies.count == 10_000)
        let family = DanubeFamily.producerSendLatency.rawValue
        var count = 0.0
        _ = await eventuallyAsync(timeout: .seconds(30)) {
            let value = (try? prometheus.query("histogram_count(sum(\(family)))").first?["value"] as? [Any])?.last as? String
            count = value.flatMap(Double.init) ?? 0
            return count == Double(latencies.count)
        }
        #expect(count == Double(latencies.count), "Prometheus holds \(count) observations: \(prometheus.log)")
        let query = "histogram_quantile(0.99, sum(rate(\(family)[1m])))"
        let result = try #require(prometheus.query(query).first?["value"] as? [Any], "\(query) returned nothing")
        let estimate = try #require((result.last as? String).flatMap(Double.init))
        let exact = latencies[Int((0.99 * Double(latencies.count)).rounded(.up)) - 1]
        let bound = pow(2, 1.0 / 8) - 1
        #expect(abs(estimate - exact) / exact <= bound, "p99 estimate \(estimate), exact \(exact), allowed relative error \(bound)")
        await agent.stop()
    }
}

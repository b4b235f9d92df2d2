import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsCatalog
import DanubeMetricsEmitter
import Foundation
import Testing

/// The catalog at work over real sockets: refusals with their reasons, counted and logged once; limits; dropped
/// labels; the catalog's help text.
@Suite struct CatalogEnforcementTests {
    static let partition = [("namespace", "default"), ("topic", "orders"), ("partition", "0")]

    static func rejected(_ family: String, _ reason: RejectionReason) -> String {
        "danube_agent_series_rejected_total{family=\"\(family)\",reason=\"\(reason.rawValue)\"}"
    }

    @Test func eachBreachIsRefusedWithItsReasonWhileGoodSeriesCount() async throws {
        let agent = try await TestAgent { $0.catalogMode = .strict }
        let emitter = agent.emitter(name: "breaker")
        let good = try emitter.counter("danube_wal_fsync_total", labels: Self.partition)
        try emitter.gauge("danube_wal_checkpoint_write_total", labels: Self.partition).set(1)                        // wrong type
        try emitter.counter("danube_wal_cache_hits_total", labels: Self.partition + [("disk", "sda")]).increment()    // unknown label
        try emitter.counter("danube_wal_file_rotate_total", labels: Self.partition + [("reason", "disk_full")]).increment() // bad value
        try emitter.counter("danube_consumer_receive_total", labels: [("namespace", "default"), ("topic", "orders"),
                                                                       ("subscription", "s"), ("consumer_id", "c-17")]).increment() // forbidden
        try emitter.counter("danube_wal_cache_misses_total", labels: [("namespace", "default"), ("topic", "orders")]).increment() // missing labels
        _ = try emitter.histogram("danube_wal_append_latency_ms", buckets: [1, 10, 100], labels: Self.partition)    // wrong buckets
        try emitter.counter("my_requests_total").increment()                                                         // unknown family
        good.increment(by: 5)
        #expect(eventually { emitter.stats.refusedSeries == 7 })
        for _ in 0..<100 { good.increment() }
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples["danube_wal_fsync_total{namespace=\"default\",partition=\"0\",topic=\"orders\"}"] == 105)
        #expect(samples[Self.rejected("danube_wal_checkpoint_write_total", .wrongType)] == 1)
        #expect(samples[Self.rejected("danube_wal_cache_hits_total", .unknownLabel)] == 1)
        #expect(samples[Self.rejected("danube_wal_file_rotate_total", .badLabelValue)] == 1)
        #expect(samples[Self.rejected("danube_consumer_receive_total", .forbiddenLabel)] == 1)
        #expect(samples[Self.rejected("danube_wal_cache_misses_total", .missingLabel)] == 1)
        #expect(samples[Self.rejected("danube_wal_append_latency_ms", .wrongBuckets)] == 1)
        #expect(samples[Self.rejected("uncatalogued", .unknownFamily)] == 1)
        #expect(samples.sum("danube_wal_checkpoint_write_total") == 0 && samples.sum("my_requests_total") == 0)
        #expect(agent.logs.contains("series refused", "reason=bad_label_value", "disk_full", "source=breaker"))
        #expect(agent.logs.contains("series refused", "reason=forbidden_label", "consumer_id"))
        #expect(emitter.stats.connected)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func aFamilyLimitCapsNewSeriesAndLogsOnceWhileAcceptedOnesKeepCounting() async throws {
        let overlay = try CatalogFile.decode(Data("""
            {"version": 1, "families": [{"name": "danube_wal_fsync_total", "type": "counter", "help": "Capped fsyncs.",
             "unit": "calls", "area": "WAL", "max_series": 3,
             "labels": [{"name": "namespace"}, {"name": "topic"}, {"name": "partition"}]}]}
            """.utf8), source: "test")
        let catalog = try BuiltinCatalog.catalog.overlaid(with: overlay)
        let agent = try await TestAgent { $0.catalog = catalog; $0.uncataloguedFamilyLimit = 2 }
        let emitter = agent.emitter()
        let counters = try (0..<5).map { p in
            try emitter.counter("danube_wal_fsync_total", labels: [("namespace", "n"), ("topic", "t"), ("partition", "\(p)")])
        }
        let free = try (0..<4).map { try emitter.counter("free_form_total", labels: [("i", "\($0)")]) }
        for (i, counter) in counters.enumerated() { counter.increment(by: UInt64(i + 1)) }
        for counter in free { counter.increment() }
        #expect(eventually { emitter.stats.refusedSeries == 4 })
        counters[0].increment(by: 10)
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples.sum("danube_wal_fsync_total") == 1 + 10 + 2 + 3)
        #expect(samples.sum("free_form_total") == 2)
        #expect(samples[Self.rejected("danube_wal_fsync_total", .familySeriesLimit)] == 2)
        #expect(samples[Self.rejected("uncatalogued", .familySeriesLimit)] == 2)
        #expect(agent.logs.all.filter { $0.contains("series refused") && $0.contains("series=\"danube_wal_fsync_total{") }.count == 1)
        #expect(try agent.scrape().text.contains("# HELP danube_wal_fsync_total Capped fsyncs."))
        emitter.shutdown()
        await agent.stop()
    }

    @Test func droppedLabelsAreSummedAwayAndHelpComesFromTheCatalog() async throws {
        let agent = try await TestAgent { $0.catalogMode = .strict }
        let first = agent.emitter(name: "wal-a")
        let second = agent.emitter(name: "wal-b")
        try first.counter("danube_wal_append_total", labels: Self.partition + [("file_seq", "41")], help: "mine").increment(by: 7)
        try first.counter("danube_wal_append_total", labels: Self.partition + [("file_seq", "42")]).increment(by: 3)
        try second.counter("danube_wal_append_total", labels: Self.partition + [("file_seq", "42")]).increment(by: 5)
        #expect(first.waitUntilDelivered() && second.waitUntilDelivered())
        let text = try agent.scrape().text
        #expect(Samples(parsing: text)["danube_wal_append_total{namespace=\"default\",partition=\"0\",topic=\"orders\"}"] == 15)
        #expect(!text.contains("file_seq"))
        #expect(text.contains("# HELP danube_wal_append_total Frames appended to the WAL.\n"))
        first.shutdown()
        second.shutdown()
        await agent.stop()
    }

    @Test func permissiveModeStillRefusesForbiddenLabels() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter()
        try emitter.counter("app_jobs_total", labels: [("queue", "a")]).increment(by: 2)
        try emitter.counter("app_jobs_total", labels: [("producer_id", "p-1")]).increment()
        #expect(eventually { emitter.stats.refusedSeries == 1 })
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples["app_jobs_total{queue=\"a\"}"] == 2)
        #expect(samples[Self.rejected("uncatalogued", .forbiddenLabel)] == 1)
        emitter.shutdown()
        await agent.stop()
    }
}

import DanubeMetricsAgent
import DanubeMetricsEmitter
import Testing

/// The reliable backlog the agent derives from WAL end and subscription progress reported by different sources.
@Suite struct DerivedBacklogTests {
    static func key(_ family: String, _ subscription: String) -> String {
        "\(family){namespace=\"ns\",reliable=\"true\",subscription=\"\(subscription)\",topic=\"t\"}"
    }

    @Test func backlogIsWALEndMinusProgressSummedOverPartitionsUnlessReported() async throws {
        let agent = try await TestAgent(gaugeGrace: .milliseconds(300)) { $0.catalogMode = .strict }
        let wal = agent.emitter(name: "wal")
        let broker = agent.emitter(name: "broker")
        func progress(_ subscription: String, _ partition: Int) throws -> Gauge {
            try broker.gauge("danube_sub_progress_offset", labels: [("namespace", "ns"), ("topic", "t"), ("subscription", subscription), ("partition", "\(partition)")])
        }
        for (partition, end) in [(0, 1_000.0), (1, 500.0)] {
            try wal.gauge("danube_wal_end_offset", labels: [("namespace", "ns"), ("topic", "t"), ("partition", "\(partition)")]).set(end)
        }
        try progress("a", 0).set(900)   // 100 behind
        try progress("a", 1).set(450)   // 50 behind
        try progress("b", 0).set(1_000) // caught up
        try progress("c", 2).set(10)    // partition 2 has no WAL end: not derived
        try progress("d", 0).set(0)
        // The broker reports d's backlog itself: the reported value wins.
        try broker.gauge("danube_topic_backlog_messages", labels: [("namespace", "ns"), ("topic", "t"), ("subscription", "d"), ("reliable", "true")]).set(7)
        #expect(wal.waitUntilDelivered() && broker.waitUntilDelivered())
        let samples = try agent.samples()
        for family in ["danube_topic_backlog_messages", "danube_consumer_lag_messages"] {
            #expect(samples[Self.key(family, "a")] == 150, "\(family)")
            #expect(samples[Self.key(family, "b")] == 0, "\(family)")
            #expect(samples[Self.key(family, "c")] == nil, "\(family)")
        }
        #expect(samples[Self.key("danube_topic_backlog_messages", "d")] == 7)
        #expect(samples[Self.key("danube_consumer_lag_messages", "d")] == 1_000)

        // When the WAL writer goes away, its gauges expire after the grace period and nothing is derived.
        wal.shutdown()
        #expect(try eventually { try agent.samples()[Self.key("danube_consumer_lag_messages", "a")] == nil })
        #expect(try agent.samples()[Self.key("danube_topic_backlog_messages", "d")] == 7)
        broker.shutdown()
        await agent.stop()
    }
}

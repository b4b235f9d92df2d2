import CoreMetrics
import DanubeMetrics
import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsSwiftMetrics
import Testing

/// The typed catalog API and the swift-metrics back end, end to end against a strict agent.
@Suite struct TypedAPITests {
    @Test func everyFamilyReachableThroughTheTypedAPIPassesAStrictAgent() async throws {
        let agent = try await TestAgent { $0.catalogMode = .strict }
        let emitter = agent.emitter(name: "typed", processMetrics: true)
        let metrics = DanubeMetrics(emitter: emitter)
        let topic = try metrics.topic(namespace: "ns", topic: "t")
        let partition = try metrics.partition(namespace: "ns", topic: "t", partition: 0, reliability: .reliable)
        let reliable = try metrics.subscription(namespace: "ns", topic: "t", subscription: "s", type: .shared, reliability: .reliable)
        let plain = try metrics.subscription(namespace: "ns", topic: "u", subscription: "s", type: .exclusive, reliability: .nonReliable)
        let wal = try metrics.wal(namespace: "ns", topic: "t", partition: 0)
        let provider = try metrics.cloud(provider: "s3")
        let cloud = try metrics.cloud(namespace: "ns", topic: "t", partition: 0, provider: "s3")
        let broker = try metrics.broker(id: "b1")
        let leader = try metrics.leaderElection()

        topic.activeProducers.set(2)
        topic.activeSubscriptions.set(1)
        try topic.producerCreates.failed(.unauthorized).increment()
        partition.messagesIn.increment(by: 3)
        partition.messageSize.observe(512)
        try partition.sends.failed(.timeout).increment()
        #expect(reliable.backlog == nil && reliable.lag == nil)
        plain.backlog?.set(4)
        plain.lag?.set(4)
        for subscription in [reliable, plain] {
            subscription.activeConsumers.set(1)
            subscription.queueDepth.set(2)
            subscription.pendingMessages.set(1)
            subscription.lagSeconds.set(0.25)
            subscription.bytesOut.increment(by: 512)
        }
        try reliable.progress(partition: 0).set(90)
        wal.endOffset.set(100)
        wal.diskBytes.set(4_096)
        cloud.storedBytes.set(65_536)
        wal.rotations[.size].increment()
        cloud.uploads[.error].increment()
        provider.uploadLatency.observe(250)
        broker.topicsOwned.set(1)
        leader.set(.leading)
        let rpc = metrics.rpc
        try rpc.brokerRPC(method: "Send", outcome: .ok).increment()
        try rpc.brokerRPCDuration(method: "Send").observe(0.002)
        try rpc.adminRPC(method: "ListTopics", outcome: .ok).increment()
        try rpc.error(service: "Producer", code: .unavailable).increment()
        try rpc.clientRedirect(service: "Discovery", reason: "not_owner").increment()
        try rpc.retryAttempt(component: "uploader", reason: "timeout").increment()
        #expect(emitter.waitUntilDelivered(), "\(emitter.stats)")
        #expect(emitter.stats.refusedSeries == 0)

        let text = try agent.scrape().text
        for family in DanubeFamily.allCases {
            #expect(text.contains("# TYPE \(family.name) "), "\(family.name) missing")
        }
        let samples = Samples(parsing: text)
        #expect(samples.sum("danube_agent_series_rejected_total") == 0)
        #expect(samples["danube_topic_backlog_messages{namespace=\"ns\",reliable=\"true\",subscription=\"s\",topic=\"t\"}"] == 10)
        #expect(samples["danube_leader_election_state{state=\"leading\"}"] == 1)
        #expect(samples["danube_topic_storage_bytes{namespace=\"ns\",partition=\"0\",tier=\"cloud\",topic=\"t\"}"] == 65_536)
        // The emitter reports its process: this test process, alive and using memory.
        #expect(samples["danube_process_resident_memory_bytes{source=\"typed\"}"] ?? 0 > 1_000_000)
        #expect(samples["danube_process_threads{source=\"typed\"}"] ?? 0 >= 2)
        #expect(samples["danube_leader_election_state{state=\"following\"}"] == 0)
        #expect(samples["danube_producer_send_total{error_type=\"timeout\",namespace=\"ns\",partition=\"0\",reliable=\"true\",result=\"error\",topic=\"t\"}"] == 1)
        emitter.shutdown()
        await agent.stop()
    }

    @Test func swiftMetricsCodeReportsThroughTheAgent() async throws {
        let agent = try await TestAgent()
        let emitter = agent.emitter(name: "swift-metrics")
        let factory = DanubeMetricsFactory(emitter: emitter)
        CoreMetrics.Counter(label: "http.requests", dimensions: [("route", "/orders")], factory: factory).increment(by: 3)
        CoreMetrics.Counter(label: "danube_broker_rpc_total", dimensions: [("method", "Send"), ("result", "ok")], factory: factory).increment()
        CoreMetrics.Timer(label: "danube_producer_send_latency_ms", dimensions: [("namespace", "ns"), ("topic", "t"), ("partition", "0"), ("reliable", "true")],
                          factory: factory).recordMilliseconds(3)
        CoreMetrics.Timer(label: "db-query", factory: factory).recordNanoseconds(2_000_000)
        CoreMetrics.Recorder(label: "payload_size", factory: factory).record(0.3)
        CoreMetrics.Gauge(label: "queue depth", factory: factory).record(12)
        CoreMetrics.Meter(label: "workers", factory: factory).increment(by: 2)
        #expect(emitter.waitUntilDelivered())
        let samples = try agent.samples()
        #expect(samples["http_requests_total{route=\"/orders\"}"] == 3)
        #expect(samples["danube_broker_rpc_total{method=\"Send\",result=\"ok\"}"] == 1)
        // A catalogued timer in milliseconds with the catalog's buckets: 3 ms falls in le="5".
        #expect(samples["danube_producer_send_latency_ms_bucket{namespace=\"ns\",partition=\"0\",reliable=\"true\",topic=\"t\",le=\"2.5\"}"] == 0)
        #expect(samples["danube_producer_send_latency_ms_bucket{namespace=\"ns\",partition=\"0\",reliable=\"true\",topic=\"t\",le=\"5.0\"}"] == 1)
        #expect(samples["danube_producer_send_latency_ms_sum{namespace=\"ns\",partition=\"0\",reliable=\"true\",topic=\"t\"}"] == 3)
        #expect(samples["db_query_seconds_sum"] == 0.002)
        #expect(samples["payload_size_bucket{le=\"0.5\"}"] == 1)
        #expect(samples["queue_depth"] == 12)
        #expect(samples["workers"] == 2)
        #expect(samples.sum("danube_agent_series_rejected_total") == 0)
        emitter.shutdown()
        await agent.stop()
    }
}

import DanubeMetricsCatalog
import DanubeMetricsEmitter

/// danube-edge's MQTT gateway inside the simulated broker (Danube's broker links it): devices connect and publish
/// telemetry, the ingester writes batches to the WAL, and now and then a message is dropped or a connection
/// refused. Recorded under upstream's `mqtt_*` names through the emitter's generic API, as danube-edge's call
/// sites record them (the typed API covers the plan's families only).
struct EdgeGateway: Sendable {
    static let devices = 8
    /// Where the gateway's topic mapping sends device telemetry.
    static let danubeTopic = "/edge/telemetry"

    let connections: Counter
    let active: Gauge
    let rejected: Counter
    let received: [Counter]
    let dropped: [Counter]
    let flushes: Counter
    let batchSize: Histogram
    let flushLatency: Histogram

    init(emitter: Emitter) throws(EmitterError) {
        connections = try emitter.counter("mqtt_connections_total")
        active = try emitter.gauge("mqtt_connections_active")
        rejected = try emitter.counter("mqtt_connections_rejected_total")
        received = try (0..<Self.devices).map { device throws(EmitterError) in
            try emitter.counter("mqtt_messages_received_total", labels: [("topic", "device/\(device)/telemetry")])
        }
        dropped = try [("device/3/telemetry", "validation_failed"), ("device/unmapped/status", "no_mapping"),
                       ("_session", "keep_alive_timeout")].map { topic, reason throws(EmitterError) in
            try emitter.counter("mqtt_messages_dropped_total", labels: [("topic", topic), ("reason", reason)])
        }
        let topic = [("topic", Self.danubeTopic)]
        flushes = try emitter.counter("mqtt_ingester_batch_flushes_total", labels: topic)
        batchSize = try Self.histogram(emitter, "mqtt_ingester_batch_size", labels: topic)
        flushLatency = try Self.histogram(emitter, "mqtt_ingester_flush_latency_ms", labels: topic)
    }

    /// A histogram with its family's buckets from the catalog, classic and native (the latency one has both).
    private static func histogram(_ emitter: Emitter, _ family: String, labels: [(String, String)]) throws(EmitterError) -> Histogram {
        let spec = BuiltinCatalog.catalog.family(named: family)
        return try emitter.histogram(family, buckets: spec?.buckets ?? [], native: spec?.native, labels: labels)
    }

    /// One 100 ms step: the first steps connect the devices; then each device publishes 5 messages, the ingester
    /// flushes them as one batch, and every few seconds a message is dropped, a connection refused, or a device
    /// reconnects.
    func tick(_ step: Int) {
        if step <= Self.devices {
            connections.increment()
            active.add(1)
            return
        }
        for device in received { device.increment(by: 5) }
        flushes.increment()
        batchSize.observe(Double(5 * Self.devices))
        flushLatency.observe(1.5 + Double(step % 7) * 0.5)
        if step % 20 == 0 { dropped[step % 40 == 0 ? 0 : 1].increment() }
        if step % 50 == 0 {
            dropped[2].increment()  // a device missed its keep-alive and reconnects
            active.add(-1)
            connections.increment()
            active.add(1)
        }
        if step % 30 == 0 { rejected.increment() }
    }
}

import DanubeMetricsCatalog
import DanubeMetricsWire
import Testing

/// Every name upstream Danube records today must pass a strict agent's catalog exactly as upstream's call sites
/// record it, with the global `broker` label, and also as registered once without labels at start.
@Suite struct UpstreamNamesTests {
    private func definition(_ usage: UpstreamNames.Usage, labels: [(String, String)]) -> SeriesDefinition {
        let bounds = usage.type == .histogram ? BuiltinCatalog.catalog.family(named: usage.name)?.buckets ?? [] : []
        let candidate = SeriesDefinition(
            id: 0, kind: usage.type.kind, name: usage.name, help: "",
            labels: labels.map { Label($0.0, $0.1) }, bounds: bounds)
        return try! SeriesRules.validate(candidate)
    }

    /// A value upstream records for `label`; the plan's closed sets hold where upstream shares a family.
    static func sampleValue(of label: String, in family: String) -> String {
        switch (label, family) {
        case ("topic", _): return "/default/orders"
        case ("result", _): return "ok"
        case ("action", _): return "assign"
        case ("reason", "danube_wal_delete_total"): return "retention"
        case ("reason", "danube_wal_file_rotate_total"): return "size"
        default: return "x"
        }
    }

    /// Every name the v0.15.1 workspace records: 45 `danube_*` (broker, persistent storage, schema) and danube-edge's
    /// 8 `mqtt_*`, each once.
    @Test func fiftyThreeNamesFromEveryCrateOfTheWorkspace() {
        #expect(UpstreamNames.usages.count == 53)
        #expect(Set(UpstreamNames.usages.map(\.name)).count == 53)
        #expect(UpstreamNames.usages.filter { $0.name.hasPrefix("danube_") }.count == 45)
        let edge = UpstreamNames.usages.filter { $0.area == UpstreamNames.edgeArea }.map(\.name)
        #expect(Set(edge) == ["mqtt_connections_total", "mqtt_connections_active", "mqtt_connections_rejected_total",
                              "mqtt_messages_received_total", "mqtt_messages_dropped_total", "mqtt_ingester_batch_flushes_total",
                              "mqtt_ingester_batch_size", "mqtt_ingester_flush_latency_ms"])
    }

    /// danube-edge's call sites, value for value (session.rs, ingester.rs, server.rs), in a strict agent.
    @Test func edgesCallSitesAreAdmittedAsTheyRecord() {
        let catalog = BuiltinCatalog.catalog
        let calls: [(String, [(String, String)])] = [
            ("mqtt_connections_total", []), ("mqtt_connections_active", []), ("mqtt_connections_rejected_total", []),
            ("mqtt_messages_received_total", [("topic", "device/42/telemetry")]),
            ("mqtt_messages_dropped_total", [("topic", "_session"), ("reason", "keep_alive_timeout")]),
            ("mqtt_messages_dropped_total", [("topic", "device/42/telemetry"), ("reason", "validation_failed")]),
            ("mqtt_ingester_batch_flushes_total", [("topic", "/edge1/telemetry")]),
            ("mqtt_ingester_batch_size", [("topic", "/edge1/telemetry")]),
            ("mqtt_ingester_flush_latency_ms", [("topic", "/edge1/telemetry")]),
        ]
        for (name, labels) in calls {
            let usage = UpstreamNames.usages.first { $0.name == name }!
            guard case .catalogued = catalog.admit(definition(usage, labels: labels + [("broker", "7")]), mode: .strict) else {
                Issue.record("\(name) \(labels) refused")
                continue
            }
        }
    }

    @Test func everyUpstreamSeriesIsAdmittedInStrictMode() {
        let catalog = BuiltinCatalog.catalog
        for usage in UpstreamNames.usages {
            let full = usage.labels.map { ($0, Self.sampleValue(of: $0, in: usage.name)) }
            for labels in [full + [("broker", "7")], [("broker", "7")], []] {
                let admission = catalog.admit(definition(usage, labels: labels), mode: .strict)
                guard case .catalogued(let admitted, _) = admission else {
                    Issue.record("\(usage.name) \(labels) refused: \(admission)")
                    continue
                }
                #expect(admitted.labels.count == labels.count, "\(usage.name): a label was dropped")
            }
        }
    }

    @Test func aPlannedSeriesStillNeedsTheCatalogsClosedValues() {
        let catalog = BuiltinCatalog.catalog
        let usage = UpstreamNames.usages.first { $0.name == "danube_wal_file_rotate_total" }!
        guard case .refused(let rejection) = catalog.admit(definition(usage, labels: [("reason", "weekly")]), mode: .strict) else {
            Issue.record("a value outside the closed set was admitted")
            return
        }
        #expect(rejection.reason == .badLabelValue)
    }

    @Test func aGlobalLabelIsAcceptedOnAnOperatorFamilyToo() throws {
        let file = CatalogFile(forbiddenLabels: nil, globalLabels: ["cluster"], families: [
            FamilySpec("shop_orders_total", .counter, help: "Orders.", unit: "", labels: [], maxSeries: 10, area: "Shop"),
        ])
        let catalog = try BuiltinCatalog.catalog.overlaid(with: file)
        let definition = try SeriesRules.validate(SeriesDefinition(
            id: 0, kind: .counter, name: "shop_orders_total", help: "", labels: [Label("cluster", "eu"), Label("broker", "1")]))
        guard case .catalogued(let admitted, _) = catalog.admit(definition, mode: .strict) else {
            Issue.record("global labels refused")
            return
        }
        #expect(admitted.labels.map(\.name) == ["broker", "cluster"])
        let bad = CatalogFile(forbiddenLabels: nil, globalLabels: ["producer_id"], families: [])
        #expect { try BuiltinCatalog.catalog.overlaid(with: bad) } throws: { ($0 as? CatalogError)?.code == .invalidName }
    }
}

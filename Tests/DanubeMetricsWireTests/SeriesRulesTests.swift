import DanubeMetricsWire
import Testing

@Suite struct SeriesRulesTests {
    @Test func metricAndLabelNames() {
        #expect(SeriesRules.isValidMetricName("danube_topic_messages_in_total"))
        #expect(SeriesRules.isValidMetricName("a:b_c9"))
        #expect(!SeriesRules.isValidMetricName(""))
        #expect(!SeriesRules.isValidMetricName("9lives"))
        #expect(!SeriesRules.isValidMetricName("has-dash"))
        #expect(!SeriesRules.isValidMetricName("ünïcode"))
        #expect(SeriesRules.isValidLabelName("namespace"))
        #expect(!SeriesRules.isValidLabelName("__reserved"))
        #expect(!SeriesRules.isValidLabelName("a:b"))
    }

    @Test func validationSortsLabelsAndRejectsDuplicatesAndLe() throws {
        let sorted = try SeriesRules.validate(SeriesDefinition(id: 0, kind: .counter, name: "c", help: "",
                                                               labels: [Label("b", "2"), Label("a", "1")]))
        #expect(sorted.labels == [Label("a", "1"), Label("b", "2")])
        #expect(throws: WireError.self) {
            try SeriesRules.validate(SeriesDefinition(id: 0, kind: .counter, name: "c", help: "", labels: [Label("a", "1"), Label("a", "2")]))
        }
        #expect(throws: WireError.self) {
            try SeriesRules.validate(SeriesDefinition(id: 0, kind: .histogram, name: "h", help: "", labels: [Label("le", "1")], bounds: [1]))
        }
        #expect(throws: WireError.self) {
            try SeriesRules.validate(SeriesDefinition(id: 0, kind: .histogram, name: "h_bucket", help: "", labels: [], bounds: [1]))
        }
        #expect(throws: WireError.self) {
            try SeriesRules.validate(SeriesDefinition(id: 0, kind: .gauge, name: "g", help: "", labels: [], bounds: [1]))
        }
    }
}

@Suite struct DefaultPathsTests {
    @Test func anEmitterFindsTheInstalledServicesSocketWhenItExists() {
        let installed = DefaultPaths.emitterSocket(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], exists: { $0 == DefaultPaths.systemSocket })
        #expect(installed == DefaultPaths.systemSocket)
        let explicit = DefaultPaths.emitterSocket(environment: ["DANUBE_METRICS_SOCKET": "/x.sock"], exists: { _ in true })
        #expect(explicit == "/x.sock")
        let fallback = DefaultPaths.emitterSocket(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"], exists: { _ in false })
        #expect(fallback == DefaultPaths.ingestSocket(environment: ["XDG_RUNTIME_DIR": "/run/user/1000"]))
    }
}

import DanubeMetricsCatalog
import DanubeMetricsWire
import Testing

@Suite struct AdmissionTests {
    let catalog = BuiltinCatalog.catalog

    func definition(_ kind: MetricKind, _ name: String, _ labels: [(String, String)], bounds: [Double] = []) -> SeriesDefinition {
        try! SeriesRules.validate(SeriesDefinition(id: 0, kind: kind, name: name, help: "from the emitter", labels: labels.map { Label($0.0, $0.1) }, bounds: bounds))
    }

    func reason(_ admission: Admission) -> RejectionReason? {
        if case .refused(let rejection) = admission { return rejection.reason }
        return nil
    }

    let partition = [("namespace", "default"), ("topic", "orders"), ("partition", "0")]

    @Test func aConformingSeriesGetsTheCatalogsHelpAndLosesDroppedLabels() {
        let admission = catalog.admit(definition(.counter, "danube_wal_append_total", partition + [("file_seq", "42")]), mode: .strict)
        guard case .catalogued(let admitted, let maxSeries) = admission else { Issue.record("\(admission)"); return }
        #expect(admitted.labels.map(\.name) == ["namespace", "partition", "topic"])
        #expect(admitted.help == "Frames appended to the WAL.")
        #expect(maxSeries == 50_000)
    }

    @Test func eachBreachHasItsReason() {
        #expect(reason(catalog.admit(definition(.gauge, "danube_wal_append_total", partition), mode: .permissive)) == .wrongType)
        #expect(reason(catalog.admit(definition(.counter, "danube_wal_fsync_total", partition + [("disk", "sda")]), mode: .permissive)) == .unknownLabel)
        #expect(reason(catalog.admit(definition(.counter, "danube_wal_fsync_total", [("namespace", "default"), ("topic", "orders")]), mode: .permissive)) == .missingLabel)
        #expect(reason(catalog.admit(definition(.counter, "danube_wal_file_rotate_total", partition + [("reason", "disk_full")]), mode: .permissive)) == .badLabelValue)
        #expect(reason(catalog.admit(definition(.counter, "danube_topic_messages_in_total", partition + [("producer_id", "7")]), mode: .permissive)) == .forbiddenLabel)
        #expect(reason(catalog.admit(definition(.histogram, "danube_wal_append_latency_ms", partition, bounds: [1, 2]), mode: .permissive)) == .wrongBuckets)
        #expect(reason(catalog.admit(definition(.counter, "my_requests_total", []), mode: .strict)) == .unknownFamily)
    }

    @Test func permissiveModeAcceptsUnknownFamiliesButNotForbiddenLabels() {
        #expect(catalog.admit(definition(.counter, "my_requests_total", [("route", "/")]), mode: .permissive) == .uncatalogued(definition(.counter, "my_requests_total", [("route", "/")])))
        let refused = catalog.admit(definition(.counter, "my_requests_total", [("consumer_id", "9")]), mode: .permissive)
        #expect(refused == .refused(SeriesRejection(.forbiddenLabel, family: "uncatalogued",
                                                     "my_requests_total carries label consumer_id, an unbounded id that belongs in logs or traces, not in labels")))
    }

    @Test func optionalLabelsMayBeAbsent() {
        let ok = catalog.admit(definition(.counter, "danube_producer_send_total", partition + [("result", "ok"), ("reliable", "true")]), mode: .strict)
        guard case .catalogued = ok else { Issue.record("\(ok)"); return }
        let failed = catalog.admit(definition(.counter, "danube_producer_send_total", partition + [("result", "error"), ("error_type", "timeout"), ("reliable", "false")]), mode: .strict)
        guard case .catalogued = failed else { Issue.record("\(failed)"); return }
    }
}

@testable import DanubeMetricsCatalog
import Foundation
import Testing

@Suite struct CatalogTests {
    /// The families and labels of the broker team's metrics plan (issue text), checked against the catalog.
    static let plan: [String: [String]] = [
        "danube_topic_messages_in_total": ["namespace", "topic", "partition", "producer_name"],
        "danube_topic_bytes_in_total": ["namespace", "topic", "partition", "producer_name"],
        "danube_topic_active_producers": ["namespace", "topic"],
        "danube_topic_active_subscriptions": ["namespace", "topic"],
        "danube_topic_dispatch_latency_ms": ["namespace", "topic", "subscription", "sub_type", "reliable"],
        "danube_topic_backlog_messages": ["namespace", "topic", "subscription", "reliable"],
        "danube_producer_create_total": ["namespace", "topic", "result", "error_type"],
        "danube_producer_send_total": ["namespace", "topic", "partition", "result", "error_type", "reliable"],
        "danube_producer_send_latency_ms": ["namespace", "topic", "partition", "reliable"],
        "danube_consumer_subscribe_total": ["namespace", "topic", "subscription", "sub_type", "result"],
        "danube_consumer_active": ["namespace", "topic", "subscription", "sub_type"],
        "danube_consumer_receive_total": ["namespace", "topic", "subscription"],
        "danube_consumer_ack_total": ["namespace", "topic", "subscription", "result"],
        "danube_consumer_lag_messages": ["namespace", "topic", "subscription", "reliable"],
        "danube_dispatcher_queue_depth": ["namespace", "topic", "subscription", "reliable"],
        "danube_dispatcher_enqueue_total": ["namespace", "topic", "subscription"],
        "danube_dispatcher_dequeue_total": ["namespace", "topic", "subscription"],
        "danube_dispatcher_commit_latency_ms": ["namespace", "topic", "subscription", "reliable"],
        "danube_wal_append_total": ["namespace", "topic", "partition", "file_seq"],
        "danube_wal_append_bytes_total": ["namespace", "topic", "partition"],
        "danube_wal_append_latency_ms": ["namespace", "topic", "partition"],
        "danube_wal_fsync_total": ["namespace", "topic", "partition"],
        "danube_wal_fsync_batch_bytes": ["namespace", "topic", "partition"],
        "danube_wal_checkpoint_write_total": ["namespace", "topic", "partition"],
        "danube_wal_reader_read_total": ["namespace", "topic", "partition"],
        "danube_wal_reader_read_latency_ms": ["namespace", "topic", "partition"],
        "danube_wal_cache_hits_total": ["namespace", "topic", "partition"],
        "danube_wal_cache_misses_total": ["namespace", "topic", "partition"],
        "danube_wal_file_rotate_total": ["namespace", "topic", "partition", "reason"],
        "danube_wal_reader_create_total": ["namespace", "topic", "partition", "start_pos"],
        "danube_wal_delete_total": ["namespace", "topic", "partition", "reason"],
        "danube_cloud_upload_objects_total": ["namespace", "topic", "partition", "provider", "result"],
        "danube_cloud_upload_bytes_total": ["namespace", "topic", "partition", "provider"],
        "danube_cloud_upload_object_size_bytes": ["namespace", "topic", "partition", "provider"],
        "danube_cloud_download_bytes_total": ["namespace", "topic", "partition", "provider"],
        "danube_cloud_upload_latency_ms": ["provider"],
        "danube_cloud_list_total": ["provider"],
        "danube_cloud_list_latency_ms": ["provider"],
        "danube_handoff_cloud_to_wal_total": ["namespace", "topic", "partition", "path"],
        "danube_sub_progress_offset": ["namespace", "topic", "subscription", "partition"],
        "danube_sub_pending_messages": ["namespace", "topic", "subscription"],
        "danube_sub_redelivery_total": ["namespace", "topic", "subscription", "reason"],
        "danube_broker_topics_owned": ["broker_id"],
        "danube_broker_assignments_total": ["broker_id", "action"],
        "danube_leader_election_state": ["state"],
        "danube_broker_rpc_total": ["method", "result"],
        "danube_admin_rpc_total": ["method", "result"],
        "danube_rpc_errors_total": ["service", "code"],
        "danube_client_redirects_total": ["service", "reason"],
        "danube_retry_attempts_total": ["component", "reason"],
    ]

    @Test func everyPlannedFamilyIsCataloguedWithThePlansLabels() {
        let catalog = BuiltinCatalog.catalog
        for (name, labels) in Self.plan {
            guard let family = catalog.family(named: name) else { Issue.record("\(name) is missing"); continue }
            // The plan's labels, plus the ones upstream Danube records under the same name.
            let upstream = UpstreamNames.usages.first { $0.name == name }?.labels ?? []
            #expect(Set(family.labels.map(\.name)) == Set(labels + upstream), "\(name)")
            #expect(Set(DanubeFamily(rawValue: name)!.spec.labels.map(\.name)) == Set(labels), "\(name)")
        }
        let upstreamOnly = Set(UpstreamNames.usages.map(\.name)).subtracting(Self.plan.keys)
        // Beyond the plan and upstream: what the agent needs (the WAL end offset, for the derived backlog) and what
        // operators expect on the dashboards (storage size, lag in time, RPC latency, the broker's process health).
        let additions = Set(DanubeFamily.allCases.map(\.name)).subtracting(Self.plan.keys).subtracting(upstreamOnly)
        #expect(additions == [
            "danube_wal_end_offset", "danube_topic_storage_bytes", "danube_consumer_lag_seconds", "danube_broker_rpc_duration_seconds",
            "danube_process_cpu_usage_cores", "danube_process_resident_memory_bytes", "danube_process_open_fds",
            "danube_process_max_fds", "danube_process_threads", "danube_process_start_time_seconds",
        ])
        #expect(catalog.families.count == Self.plan.count + additions.count + upstreamOnly.count)
    }

    @Test func typesFollowTheTaxonomy() {
        for family in BuiltinCatalog.catalog.families {
            switch family.type {
            case .counter: #expect(family.name.hasSuffix("_total"))
            case .histogram:
                // Upstream's names are kept as upstream records them (danube-edge's batch size counts messages).
                #expect(["_ms", "_bytes", "_seconds"].contains { family.name.hasSuffix($0) } || family.name == "mqtt_ingester_batch_size",
                        "\(family.name)")
            case .gauge: #expect(!family.name.hasSuffix("_total"))
            }
        }
    }

    @Test func latencyBucketsSpanSubMillisecondToMinutesAndBytesReachHundredsOfMiB() {
        #expect(BuiltinCatalog.latencyBuckets.first! < 1 && BuiltinCatalog.latencyBuckets.last! >= 60_000)
        #expect(BuiltinCatalog.objectSizeBuckets.last! >= 500 * 1_048_576)
        #expect(BuiltinCatalog.fsyncBatchBuckets.last! >= 100 * 1_048_576)
    }

    @Test func theJSONFormRoundTripsAndAnOverlayReplacesAndAdds() throws {
        let builtin = BuiltinCatalog.catalog
        let decoded = try CatalogFile.decode(CatalogFile(builtin).encoded(), source: "test")
        #expect(try Catalog(families: decoded.families, forbiddenLabels: decoded.forbiddenLabels ?? [], globalLabels: decoded.globalLabels ?? []) == builtin)

        let overlay = try CatalogFile.decode(Data("""
            {"version": 1, "forbidden_labels": ["tenant_id"], "families": [
              {"name": "danube_topic_messages_in_total", "type": "counter", "help": "Messages.", "unit": "messages",
               "area": "Topic", "max_series": 10, "labels": [{"name": "namespace"}, {"name": "topic"}]},
              {"name": "shop_orders_total", "type": "counter", "help": "Orders."}
            ]}
            """.utf8), source: "overlay.json")
        let merged = try builtin.overlaid(with: overlay)
        #expect(merged.family(named: "danube_topic_messages_in_total")?.maxSeries == 10)
        #expect(merged.family(named: "shop_orders_total")?.maxSeries == FamilySpec.defaultMaxSeries)
        #expect(merged.family(named: "shop_orders_total")?.labels == [])
        #expect(merged.forbiddenLabels.contains("tenant_id") && merged.forbiddenLabels.contains("producer_id"))
        #expect(merged.families.count == builtin.families.count + 1)
    }

    /// Each fault has its code; a file that does not decode also names the field at fault (its path).
    @Test(arguments: ([
        (#"{"version": 1, "families": [{"name": "x_total", "type": "counter"}]}"#, CatalogError.Code.malformedFile, ".families[0]"),
        (#"{"version": 1, "families": [{"name": "x_total", "type": "counter", "help": "h", "labels": [{"values": ["a"]}]}]}"#, .malformedFile, ".families[0].labels[0]"),
        (#"{"version": 2, "families": []}"#, .unsupportedVersion, nil),
        (#"{"version": 1, "families": [{"name": "x", "type": "counter", "help": "h", "unit": "u", "area": "a", "max_series": 1, "labels": []}]}"#, .invalidName, nil),
        (#"{"version": 1, "families": [{"name": "g", "type": "gauge", "help": "h", "unit": "u", "area": "a", "max_series": 1, "labels": [{"name": "l", "required": false, "policy": "drop"}]}]}"#, .invalidLabels, nil),
        (#"{"version": 1, "families": [{"name": "h_ms", "type": "histogram", "help": "h", "unit": "u", "area": "a", "max_series": 1, "labels": [], "buckets": [2, 1]}]}"#, .invalidBuckets, nil),
        (#"{"version": 1, "families": [{"name": "n_ms", "type": "histogram", "help": "h", "buckets": [1], "native": {"schema": 12, "zero_threshold": 1, "max_buckets": 8}}]}"#, .invalidBuckets, nil),
        (#"{"version": 1, "families": [{"name": "y_total", "type": "summary", "help": "h", "unit": "u", "area": "a", "max_series": 1, "labels": []}]}"#, .malformedFile, "families[0].type"),
        (#"{"version": 1, "families": [{"name": "z_total", "type": "counter", "help": "h", "unit": "u", "area": "a", "max_series": 1, "labels": [{"name": "producer_id"}]}]}"#, .invalidLabels, nil),
        (#"{"version": 1, "families": [{"name": "w_total", "type": "counter", "help": "", "max_series": 1}]}"#, .invalidFamily, nil),
        (#"{"version": 1, "families": [{"name": "v_total", "type": "counter", "help": "h"}, {"name": "v_total", "type": "counter", "help": "h"}]}"#, .duplicateFamily, nil),
        // A key twice in one object (the decoder would keep one silently), also behind an escape: refused where it is.
        (#"{"version": 1, "families": [{"name": "d_total", "type": "counter", "help": "h", "help": "other"}]}"#, .malformedFile, "line 1, column 81"),
        ("{\"version\": 1,\n \"families\": [],\n \"famil\\u0069es\": []}", .malformedFile, "line 3, column 2"),
        // A name longer than the protocol carries; a string longer than any the file may hold.
        (#"{"version": 1, "families": [{"name": "\#(String(repeating: "a", count: 201))_total", "type": "counter", "help": "h"}]}"#, .invalidName, "207 bytes"),
        (#"{"version": 1, "families": [{"name": "\#(String(repeating: "a", count: 1 << 20))", "type": "counter", "help": "h"}]}"#, .malformedFile, "line 1, column 38: a string of 1048576 bytes"),
        (#"{"version": 1, "families": [{"name": "\#(String(repeating: "a", count: 30 << 20))", "type": "counter", "help": "h"}]}"#, .malformedFile, "at most 4194304"),
        // Syntax errors said where (Foundation's decoder says only "The given data was not valid JSON.").
        ("{\"version\": 1,\n \"families\": [{\"name\": \"x\",}]}", .malformedFile, "line 2, column 28: expected a key in double quotes, found '}'"),
        ("{\"version\": 1, \"families\": [1 2]}", .malformedFile, "line 1, column 31: expected ',' or ']' in an array, found '2'"),
        ("{\"version\": 1, \"families\": [\"open]}", .malformedFile, "line 1, column 29: a string that is never closed"),
        ("{\"version\": 1, \"families\": [tru]}", .malformedFile, "line 1, column 29: unexpected 't' where a value was expected"),
        ("{\"version\": 01}", .malformedFile, "line 1, column 14: expected ',' or '}' in an object, found '1'"),
        ("{\"version\": 1} {}", .malformedFile, "line 1, column 16: text after the end of the document"),
        (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), .malformedFile, "nested deeper than 64 levels"),
    ] as [(String, CatalogError.Code, String?)]).map { (CatalogText($0.0), $0.1, $0.2) })
    func badOperatorFilesAreRefusedWithTheFieldAtFault(file: CatalogText, code: CatalogError.Code, field: String?) {
        let json = file.json
        do {
            let file = try CatalogFile.decode(Data(json.utf8), source: "ops.json")
            _ = try BuiltinCatalog.catalog.overlaid(with: file)
            Issue.record("accepted: \(json)")
        } catch {
            #expect(error.code == code, "\(error.message)")
            if let field { #expect(error.message.contains(field), "\(error.message)") }
        }
    }

    @Test func docsCatalogIsGeneratedFromTheCatalog() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../docs/CATALOG.md").standardized
        let committed = try String(contentsOf: path, encoding: .utf8)
        #expect(committed == CatalogDocument.markdown(BuiltinCatalog.catalog),
                "docs/CATALOG.md is stale: run `swift run danube-metrics-agent --print-catalog markdown > docs/CATALOG.md`")
    }

    @Test func theRustEmittersBucketTableIsGeneratedFromTheCatalog() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../clients/rust/danube-metrics/src/catalog.rs").standardized
        let committed = try String(contentsOf: path, encoding: .utf8)
        #expect(committed == RustCatalogTable.render(BuiltinCatalog.catalog),
                "clients/rust/danube-metrics/src/catalog.rs is stale: run `swift run danube-metrics-agent --print-catalog rust > clients/rust/danube-metrics/src/catalog.rs`")
    }

    @Test func rustLiteralsReadBackExactly() {
        #expect(RustCatalogTable.literal(1) == "1.0")
        #expect(RustCatalogTable.literal(0.05) == "0.05")
        #expect(RustCatalogTable.literal(1_073_741_824) == "1073741824.0")
        #expect(Double(RustCatalogTable.literal(0.1)) == 0.1)
    }
}

/// A catalog file's text as a test argument: its start and length in the test's name (some are megabytes).
struct CatalogText: Sendable, CustomTestStringConvertible {
    let json: String
    init(_ json: String) { self.json = json }
    var testDescription: String { json.utf8.count <= 80 ? json : "\(json.prefix(60))... (\(json.utf8.count) bytes)" }
}

/// What Danube records today (v0.15.1, through the `metrics` crate): every name any crate of its workspace
/// records, with the label names its call sites use: 45 `danube_*` names (danube-broker, danube-persistent-storage,
/// danube-schema) and danube-edge's 8 `mqtt_*` names (its MQTT gateway, which the broker links); danube-iceberg
/// records none. (Taken from every `counter!`, `gauge!` and `histogram!` of the v0.15.1 workspace.) The built-in catalog accepts all of it, so that a broker switched to the Rust emitter
/// (`clients/rust/danube-metrics`) loses no series even in strict mode and danube-admin's PromQL keeps working:
///
/// - A name the plan also has (`danube_topic_messages_in_total`, ...) keeps the plan's specification, widened:
///   upstream's label names are added, and every label becomes optional, because upstream records these with
///   `topic` alone (the full `/namespace/topic` path) and registers each name once without labels at start.
/// - A name only upstream has becomes a family of its own, with upstream's labels, all optional for the same
///   reason, under the area "Upstream broker".
/// - Every family accepts the global label `broker` (upstream's exporter adds it to every series).
public enum UpstreamNames {
    /// The global label upstream's `PrometheusBuilder::add_global_label` puts on every series.
    public static let globalLabels = ["broker"]

    /// One name upstream records.
    public struct Usage: Sendable {
        public var name: String
        public var type: FamilyType
        /// Every label name its call sites use.
        public var labels: [String]
        /// Upstream's description (for names only upstream has).
        public var help: String
        /// The plan's family that carries the same information, and how, for `docs/CATALOG.md`.
        public var planEquivalent: String?
        public var maxSeries: Int
        public var buckets: [Double]?
        /// The area of `docs/CATALOG.md` its family goes in (names only upstream has).
        public var area: String
        /// What a label holds, where upstream's meaning needs saying.
        public var labelNotes: [String: String]

        init(_ name: String, _ type: FamilyType, _ labels: [String], help: String = "", plan: String? = nil,
             max: Int = 50_000, buckets: [Double]? = nil, area: String = UpstreamNames.area, labelNotes: [String: String] = [:]) {
            self.name = name
            self.type = type
            self.labels = labels
            self.help = help
            planEquivalent = plan
            maxSeries = max
            self.buckets = buckets
            self.area = area
            self.labelNotes = labelNotes
        }
    }

    /// Durations of the load manager's rebalancing cycle, in seconds: 10 ms to 10 minutes.
    public static let rebalancingCycleBuckets: [Double] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600]

    /// Messages per batch the Edge MQTT ingester writes to the WAL (its default batch is 100): 1 to 10,000.
    public static let batchSizeBuckets: [Double] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000]

    /// What `topic` holds on the gateway's message counters.
    static let mqttTopicNote = "The MQTT topic the device published to, as it sent it (`device/42/telemetry`; `_session` for a keep-alive timeout): one series per device topic, hence the limit."

    /// The area of danube-edge's MQTT gateway families.
    public static let edgeArea = "Upstream Edge (MQTT)"

    /// The 53 names, as upstream's call sites record them.
    public static let usages: [Usage] = [
        // Names the plan has too: the plan's family, widened.
        Usage("danube_topic_messages_in_total", .counter, ["topic"]),
        Usage("danube_topic_bytes_in_total", .counter, ["topic"]),
        Usage("danube_topic_active_producers", .gauge, ["topic"]),
        Usage("danube_topic_active_subscriptions", .gauge, ["topic"]),
        Usage("danube_producer_send_total", .counter, ["topic", "result", "error_code"]),
        Usage("danube_producer_send_latency_ms", .histogram, ["topic"]),
        Usage("danube_wal_append_total", .counter, ["topic"]),
        Usage("danube_wal_append_bytes_total", .counter, ["topic"]),
        Usage("danube_wal_delete_total", .counter, ["topic", "reason"]),
        Usage("danube_wal_file_rotate_total", .counter, ["topic", "reason"]),
        Usage("danube_wal_reader_create_total", .counter, ["topic", "mode"]),
        Usage("danube_broker_topics_owned", .gauge, []),
        Usage("danube_broker_assignments_total", .counter, ["action", "broker_id"]),
        Usage("danube_leader_election_state", .gauge, []),
        Usage("danube_broker_rpc_total", .counter, ["service", "method", "result"]),
        Usage("danube_client_redirects_total", .counter, ["topic_ns", "reason"]),
        Usage("danube_consumer_bytes_out_total", .counter, ["topic", "subscription"]),
        Usage("danube_topic_message_size_bytes", .histogram, ["topic"]),
        // Names only upstream has.
        Usage("danube_authz_allow_total", .counter, ["resource", "permission"],
              help: "Total number of successful authorization decisions", max: 500),
        Usage("danube_authz_deny_total", .counter, ["resource", "permission"],
              help: "Total number of denied authorization decisions", max: 500),
        Usage("danube_consumer_messages_out_total", .counter, ["topic", "subscription"],
              help: "Total messages delivered to consumer (msg).", plan: "danube_consumer_receive_total"),
        Usage("danube_dispatcher_heartbeat_polls_total", .counter, [],
              help: "Total number of polls triggered by the heartbeat watchdog (indicates missed notifications)", max: 16),
        Usage("danube_dispatcher_notifier_polls_total", .counter, [],
              help: "Total number of polls triggered by notifier (normal fast path)", max: 16),
        Usage("danube_durable_history_read_bytes_total", .counter, ["topic", "provider"],
              help: "Bytes read from durable history (the cloud tier).", plan: "danube_cloud_download_bytes_total"),
        Usage("danube_durable_history_reader_errors_total", .counter, ["provider", "reason"],
              help: "Errors of durable history readers.", max: 500),
        Usage("danube_durable_history_segments_read_total", .counter, ["topic", "provider"],
              help: "Segments read from durable history (the cloud tier)."),
        Usage("danube_handoff_durable_history_to_hot_total", .counter, ["topic"],
              help: "Readers handed over from durable history to the hot WAL.", plan: "danube_handoff_cloud_to_wal_total"),
        Usage("danube_rebalancing_moves_total", .counter, ["reason"],
              help: "Total number of topic rebalancing moves executed", max: 100),
        Usage("danube_rebalancing_failures_total", .counter, [],
              help: "Total number of failed rebalancing move attempts", max: 16),
        Usage("danube_schema_validation_total", .counter, ["topic", "policy"],
              help: "Total number of schema validation attempts"),
        Usage("danube_schema_validation_failures_total", .counter, ["topic", "reason"],
              help: "Total number of schema validation failures"),
        Usage("danube_subscription_ack_timeout_total", .counter, ["topic", "subscription"],
              help: "Total number of ack timeouts detected for a reliable subscription",
              plan: "danube_sub_redelivery_total{reason=\"timeout\"}"),
        Usage("danube_subscription_dlq_total", .counter, ["topic", "subscription", "poison_policy"],
              help: "Total number of messages successfully routed to a dead letter topic for a reliable subscription"),
        Usage("danube_subscription_nack_total", .counter, ["topic", "subscription"],
              help: "Total number of negative acknowledgments accepted for a reliable subscription",
              plan: "danube_sub_redelivery_total{reason=\"nack\"}"),
        Usage("danube_subscription_redelivery_total", .counter, ["topic", "subscription"],
              help: "Total number of retry deliveries successfully re-sent for a reliable subscription",
              plan: "danube_sub_redelivery_total"),
        Usage("danube_subscription_retry_exhausted_total", .counter, ["topic", "subscription", "poison_policy"],
              help: "Total number of times a reliable subscription exhausted retry attempts and entered terminal poison handling"),
        Usage("danube_wal_flush_total", .counter, ["topic"],
              help: "WAL flushes (write and fsync of a batch).", plan: "danube_wal_fsync_total"),
        Usage("danube_cluster_imbalance_cv", .gauge, [],
              help: "Current cluster load imbalance coefficient of variation (CV). Lower is better, 0 is perfectly balanced.", max: 16),
        Usage("danube_subscription_active_consumers", .gauge, ["topic", "subscription"],
              help: "Total number of active consumers per subscription", plan: "danube_consumer_active"),
        Usage("danube_subscription_lag_messages", .gauge, ["topic", "subscription"],
              help: "Number of messages the subscription is behind the topic WAL head", plan: "danube_consumer_lag_messages"),
        Usage("danube_subscription_pending_redelivery", .gauge, ["topic", "subscription"],
              help: "Whether a reliable subscription currently has a message waiting for redelivery (0 or 1)"),
        Usage("danube_subscription_terminal_blocked", .gauge, ["topic", "subscription"],
              help: "Whether a reliable subscription is currently blocked on a retry-exhausted poison message (0 or 1)"),
        Usage("danube_topic_active_consumers", .gauge, ["topic"],
              help: "Total number of consumers per topic", plan: "sum by (namespace, topic) (danube_consumer_active)", max: 20_000),
        Usage("danube_wal_flush_latency_ms", .histogram, ["topic"],
              help: "WAL flush latency (write and fsync of a batch), in milliseconds.", plan: "danube_wal_append_latency_ms",
              buckets: BuiltinCatalog.latencyBuckets),
        Usage("danube_rebalancing_cycle_duration_seconds", .histogram, [],
              help: "Duration of rebalancing cycle execution in seconds", max: 16, buckets: rebalancingCycleBuckets),
        // danube-edge's MQTT gateway (src/mqtt/metrics.rs), recorded in the broker that links it.
        Usage("mqtt_connections_total", .counter, [], help: "MQTT sessions established (after CONNACK).", max: 16, area: edgeArea),
        Usage("mqtt_connections_active", .gauge, [], help: "MQTT sessions open now.", max: 16, area: edgeArea),
        Usage("mqtt_connections_rejected_total", .counter, [], help: "MQTT connections rejected (max_connections reached).",
              max: 16, area: edgeArea),
        Usage("mqtt_messages_received_total", .counter, ["topic"], help: "PUBLISH packets received from devices.", max: 10_000,
              area: edgeArea, labelNotes: ["topic": mqttTopicNote]),
        Usage("mqtt_messages_dropped_total", .counter, ["topic", "reason"],
              help: "Messages dropped by the gateway (no topic mapping, failed validation, a transient error, a keep-alive timeout).",
              max: 10_000, area: edgeArea,
              labelNotes: ["topic": mqttTopicNote,
                           "reason": "no_mapping, validation_failed, transient_error or keep_alive_timeout (upstream's values in v0.15.1)."]),
        Usage("mqtt_ingester_batch_flushes_total", .counter, ["topic"], help: "Batches of MQTT messages written to the WAL.",
              max: 1_000, area: edgeArea, labelNotes: ["topic": "The Danube topic the batch went to (the mapping's `danube_topic`)."]),
        Usage("mqtt_ingester_batch_size", .histogram, ["topic"], help: "Messages per batch written to the WAL.", max: 1_000,
              buckets: batchSizeBuckets, area: edgeArea, labelNotes: ["topic": "The Danube topic the batch went to."]),
        Usage("mqtt_ingester_flush_latency_ms", .histogram, ["topic"], help: "Time to write one batch to the WAL, in milliseconds.",
              max: 1_000, buckets: BuiltinCatalog.latencyBuckets, area: edgeArea,
              labelNotes: ["topic": "The Danube topic the batch went to."]),
    ]
}

extension UpstreamNames {
    /// The area of the families only upstream's broker has, in `docs/CATALOG.md`.
    public static let area = "Upstream broker"

    /// `spec` with upstream's labels added and every label optional, when upstream records the same name.
    static func widened(_ spec: FamilySpec) -> FamilySpec {
        guard let usage = usages.first(where: { $0.name == spec.name }) else { return spec }
        var widened = spec
        for index in widened.labels.indices { widened.labels[index].required = false }
        for name in usage.labels where widened.label(name) == nil {
            widened.labels.append(LabelSpec(name, required: false, note: upstreamLabelNote(name)))
        }
        return widened
    }

    /// Families for the names only upstream records.
    static func families(besides planned: Set<String>) -> [FamilySpec] {
        usages.filter { !planned.contains($0.name) }.map { usage in
            FamilySpec(
                usage.name, usage.type, help: usage.help, unit: unit(of: usage.name),
                labels: usage.labels.map { LabelSpec($0, required: false, note: usage.labelNotes[$0] ?? upstreamLabelNote($0)) },
                buckets: usage.buckets,
                native: usage.type == .histogram ? BuiltinCatalog.nativeBuckets(unit: unit(of: usage.name), buckets: usage.buckets) : nil,
                maxSeries: usage.maxSeries, area: usage.area,
                note: usage.planEquivalent.map { "The plan records this as `\($0)`." })
        }
    }

    private static func unit(of name: String) -> String {
        if name.hasSuffix("_bytes_total") || name.hasSuffix("_bytes") { return "bytes" }
        if name.hasSuffix("_ms") { return "milliseconds" }
        if name.hasSuffix("_seconds") { return "seconds" }
        return ""
    }

    private static func upstreamLabelNote(_ name: String) -> String? {
        switch name {
        case "topic": return "Upstream records the full `/namespace/topic` path here, with no namespace or partition label; the plan's emitters record the topic name beside `namespace` and `partition`."
        case "error_code": return "Upstream's gRPC status name (OK, InvalidArgument, PermissionDenied, ...): bounded by the status codes."
        case "topic_ns": return "Upstream's namespace of the looked-up topic."
        default: return nil
        }
    }
}

import DanubeMetricsWire
/// The Danube metric catalog as shipped: the broker team's metrics plan, with its labels held against the
/// plan's own cardinality guideline (see the notes, rendered into `docs/CATALOG.md`).
public enum BuiltinCatalog {
    /// Label names that are unbounded ids; no series of any family may carry them.
    public static let forbiddenLabels = [
        "producer_id", "consumer_id", "message_id", "request_id", "connection_id", "session_id", "offset", "trace_id",
    ]

    /// The built-in catalog: the plan's families and every name Danube records today (`UpstreamNames`). It is
    /// checked by the tests, so building it cannot fail at run time.
    public static let catalog: Catalog = {
        do {
            let planned = DanubeFamily.allCases.map { UpstreamNames.widened(spec($0)) }
            let upstreamOnly = UpstreamNames.families(besides: Set(planned.map(\.name)))
            return try Catalog(families: planned + upstreamOnly, forbiddenLabels: forbiddenLabels, globalLabels: UpstreamNames.globalLabels)
        } catch {
            fatalError("the built-in catalog is invalid: \(error)")
        }
    }()

    // MARK: buckets

    /// Latencies of in-broker work: 50 µs to 5 minutes.
    public static let latencyBuckets: [Double] = [
        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000,
    ]
    /// Latencies of object-store calls: 5 ms to 10 minutes.
    public static let cloudLatencyBuckets: [Double] = [
        5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
    ]
    /// Native buckets of in-broker latencies, recorded beside the classic ones: schema 3 (each bucket 9% wider than
    /// the one below, so a quantile is off by at most 9%), from 2^-5 ms (31 µs; below is the zero bucket) to
    /// 2^18 ms (4.4 minutes). 185 cells per series and recording thread in the emitters.
    public static let latencyNative = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184)
    /// Native buckets of object-store calls: schema 3, 1 ms to 2^20 ms (17 minutes).
    public static let cloudLatencyNative = NativeHistogramSpec(schema: 3, zeroThreshold: 1, maxBuckets: 160)
    /// The native buckets a histogram family of this unit records: every latency family (milliseconds) has them.
    static func nativeBuckets(unit: String, buckets: [Double]?) -> NativeHistogramSpec? {
        guard unit == "milliseconds" else { return nil }
        return buckets == cloudLatencyBuckets ? cloudLatencyNative : latencyNative
    }
    /// Bytes made durable by one fsync: 512 B to 128 MiB, powers of 4.
    public static let fsyncBatchBuckets: [Double] = (0..<11).map { 512 * pow4($0) }
    /// Uploaded object sizes: 64 KiB to 1 GiB.
    public static let objectSizeBuckets: [Double] = [
        65_536, 262_144, 1_048_576, 4_194_304, 16_777_216, 67_108_864, 134_217_728, 268_435_456, 536_870_912, 1_073_741_824,
    ]

    /// Sizes of published messages: 64 B to 16 MiB, powers of 4 (upstream Danube's buckets).
    public static let messageSizeBuckets: [Double] = (0..<10).map { 64 * pow4($0) }
    /// Durations of broker RPCs, in seconds: 100 µs to 30 s.
    public static let rpcDurationBuckets: [Double] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

    private static func pow4(_ exponent: Int) -> Double { (0..<exponent).reduce(1.0) { value, _ in value * 4 } }

    // MARK: labels

    private static func open(_ name: DanubeLabel, note: String? = nil) -> LabelSpec { LabelSpec(name.rawValue, note: note) }
    private static func closed<Values: ClosedLabelValues>(_ name: DanubeLabel, _ values: Values.Type, required: Bool = true) -> LabelSpec {
        LabelSpec(name.rawValue, values: Values.catalogValues, required: required)
    }

    private static let namespace = open(.namespace)
    private static let topic = open(.topic)
    private static let partition = open(.partition, note: "The partition index; bounded by the topic's partition count.")
    private static let subscription = open(.subscription)
    private static let subType = closed(.subType, SubscriptionType.self)
    private static let reliable = closed(.reliable, Reliability.self)
    private static let result = closed(.result, Outcome.self)
    private static let provider = open(.provider, note: "The OpenDAL service (s3, gcs, azblob, fs, ...); a handful per cluster.")
    private static let errorType = LabelSpec(
        DanubeLabel.errorType.rawValue, values: ProducerErrorType.catalogValues, required: false,
        note: "Absent when result=\"ok\". The plan leaves it open; a closed set keeps a new error message from becoming a new series.")
    private static let producerName = LabelSpec(
        DanubeLabel.producerName.rawValue, required: false, policy: .drop,
        note: "Dropped: clients choose producer names and often make them unique per connection, so the label would grow with producer churn. The agent sums series that differ only in it; per-producer attribution belongs in logs and traces. An operator file can keep it (policy keep) for a cluster with few, stable producers.")
    private static let fileSeq = LabelSpec(
        DanubeLabel.fileSeq.rawValue, required: false, policy: .drop,
        note: "Dropped: the WAL file sequence grows forever, so every rotation would start a new series. Rotations are counted by danube_wal_file_rotate_total.")
    private static let startPos = LabelSpec(
        DanubeLabel.startPos.rawValue, values: ReaderStart.catalogValues,
        note: "Closed to the kind of start position: an offset value would be a new series per reader.")

    private static let topicLabels = [namespace, topic]
    private static let partitionLabels = [namespace, topic, partition]
    private static let subscriptionLabels = [namespace, topic, subscription]

    // MARK: families

    /// The specification of each family. Limits: per partition or subscription families allow 50,000 series,
    /// per topic 20,000, per provider or broker a few hundred; an operator file changes them per family.
    public static func spec(_ family: DanubeFamily) -> FamilySpec {
        let name = family.rawValue
        func counter(_ help: String, _ unit: String, _ labels: [LabelSpec], max: Int = 50_000, area: String, note: String? = nil) -> FamilySpec {
            FamilySpec(name, .counter, help: help, unit: unit, labels: labels, maxSeries: max, area: area, note: note)
        }
        func gauge(_ help: String, _ unit: String, _ labels: [LabelSpec], max: Int = 50_000, area: String, note: String? = nil) -> FamilySpec {
            FamilySpec(name, .gauge, help: help, unit: unit, labels: labels, maxSeries: max, area: area, note: note)
        }
        /// Every latency family (unit milliseconds, name ending in `_ms`) records native buckets too.
        func histogram(_ help: String, _ unit: String, _ labels: [LabelSpec], _ buckets: [Double], max: Int = 50_000, area: String) -> FamilySpec {
            FamilySpec(name, .histogram, help: help, unit: unit, labels: labels, buckets: buckets,
                       native: nativeBuckets(unit: unit, buckets: buckets), maxSeries: max, area: area)
        }
        func processGauge(_ help: String, _ unit: String) -> FamilySpec {
            gauge(help, unit, [open(.source, note: "The emitter's source name (its HELLO); bounded by the agent's source cap.")],
                  max: 1_024, area: "Emitter process",
                  note: "Not in the plan: reported by the emitters (Swift and Rust) every 5 s, so the broker's process health sits beside the agent's own process_* metrics.")
        }
        let backlogNote = "Reported by the broker for non-reliable topics (dispatcher queue depth). For reliable=\"true\" the agent derives it from danube_wal_end_offset and danube_sub_progress_offset unless the broker reports it; see Derived series."
        switch family {
        case .topicMessagesIn:
            return counter("Messages published to the topic.", "messages", partitionLabels + [producerName], area: "Topic")
        case .topicBytesIn:
            return counter("Payload bytes published to the topic.", "bytes", partitionLabels + [producerName], area: "Topic")
        case .topicActiveProducers:
            return gauge("Producers connected to the topic.", "producers", topicLabels, max: 20_000, area: "Topic")
        case .topicActiveSubscriptions:
            return gauge("Subscriptions on the topic.", "subscriptions", topicLabels, max: 20_000, area: "Topic")
        case .topicDispatchLatency:
            return histogram("Time from handing a message to the dispatcher to its enqueue or ack gate, in milliseconds.", "milliseconds",
                             subscriptionLabels + [subType, reliable], latencyBuckets, area: "Topic")
        case .topicBacklog:
            return gauge("Messages not yet acknowledged by the subscription.", "messages", subscriptionLabels + [reliable], area: "Topic", note: backlogNote)
        case .topicMessageSize:
            return histogram("Size of published messages.", "bytes", partitionLabels, messageSizeBuckets, area: "Topic")
        case .topicStorage:
            return gauge("Bytes of the partition's data kept in each storage tier (WAL files on local disk, objects in the cloud tier).",
                         "bytes", partitionLabels + [closed(.tier, StorageTier.self)], area: "Topic",
                         note: "Not in the plan: storage size per topic, as operators of Pulsar (pulsar_storage_size) and Kafka (log size) expect.")
        case .producerCreate:
            return counter("Producer create requests.", "requests", topicLabels + [result, errorType], max: 20_000, area: "Producer")
        case .producerSend:
            return counter("Producer send requests.", "requests", partitionLabels + [result, errorType, reliable], area: "Producer")
        case .producerSendLatency:
            return histogram("Producer send latency, request to append or dispatch, in milliseconds.", "milliseconds",
                             partitionLabels + [reliable], latencyBuckets, area: "Producer")
        case .consumerSubscribe:
            return counter("Subscribe requests.", "requests", subscriptionLabels + [subType, result], area: "Consumer")
        case .consumerActive:
            return gauge("Consumers attached to the subscription.", "consumers", subscriptionLabels + [subType], area: "Consumer")
        case .consumerReceive:
            return counter("Messages dispatched to consumers.", "messages", subscriptionLabels, area: "Consumer")
        case .consumerAck:
            return counter("Consumer acknowledgements.", "acks", subscriptionLabels + [result], area: "Consumer")
        case .consumerLag:
            return gauge("Messages the subscription's consumers are behind.", "messages", subscriptionLabels + [reliable], area: "Consumer", note: backlogNote)
        case .consumerLagSeconds:
            return gauge("Age of the oldest message the subscription has not acknowledged, in seconds (0 when caught up).", "seconds",
                         subscriptionLabels + [reliable], area: "Consumer",
                         note: "Not in the plan: lag in time, which stays comparable across topics of different rates.")
        case .consumerBytesOut:
            return counter("Payload bytes dispatched to consumers.", "bytes", subscriptionLabels, area: "Consumer")
        case .dispatcherQueueDepth:
            return gauge("Messages queued in the subscription's dispatcher.", "messages", subscriptionLabels + [reliable], area: "Dispatcher")
        case .dispatcherEnqueue:
            return counter("Messages enqueued to the dispatcher.", "messages", subscriptionLabels, area: "Dispatcher")
        case .dispatcherDequeue:
            return counter("Messages dequeued from the dispatcher.", "messages", subscriptionLabels, area: "Dispatcher")
        case .dispatcherCommitLatency:
            return histogram("Store-to-ack time (reliable) or enqueue-to-deliver time (non-reliable), in milliseconds.", "milliseconds",
                             subscriptionLabels + [reliable], latencyBuckets, area: "Dispatcher")
        case .walAppend:
            return counter("Frames appended to the WAL.", "frames", partitionLabels + [fileSeq], area: "WAL")
        case .walAppendBytes:
            return counter("Bytes appended to the WAL.", "bytes", partitionLabels, area: "WAL")
        case .walAppendLatency:
            return histogram("WAL append latency, enqueue to fsync, in milliseconds.", "milliseconds", partitionLabels, latencyBuckets, area: "WAL")
        case .walFsync:
            return counter("WAL fsync calls.", "calls", partitionLabels, area: "WAL")
        case .walFsyncBatchBytes:
            return histogram("Bytes made durable per WAL fsync.", "bytes", partitionLabels, fsyncBatchBuckets, area: "WAL")
        case .walFileRotate:
            return counter("WAL file rotations.", "rotations", partitionLabels + [closed(.reason, RotateReason.self)], area: "WAL")
        case .walCheckpointWrite:
            return counter("WAL checkpoints written.", "checkpoints", partitionLabels, area: "WAL")
        case .walReaderCreate:
            return counter("WAL readers created.", "readers", partitionLabels + [startPos], area: "WAL")
        case .walReaderRead:
            return counter("Reads by WAL readers.", "reads", partitionLabels, area: "WAL")
        case .walReaderReadLatency:
            return histogram("WAL reader read latency, in milliseconds.", "milliseconds", partitionLabels, latencyBuckets, area: "WAL")
        case .walCacheHits:
            return counter("WAL cache hits.", "reads", partitionLabels, area: "WAL")
        case .walCacheMisses:
            return counter("WAL cache misses.", "reads", partitionLabels, area: "WAL")
        case .walDelete:
            return counter("WAL files deleted.", "files", partitionLabels + [closed(.reason, DeleteReason.self)], area: "WAL")
        case .walEndOffset:
            return gauge("Offset the next message appended to the partition's WAL will get.", "offset", partitionLabels, area: "WAL",
                         note: "Not in the plan: the WAL writer reports it so that the agent can derive the reliable backlog.")
        case .cloudUploadObjects:
            return counter("Objects uploaded to the cloud tier.", "objects", partitionLabels + [provider, result], area: "Cloud tier")
        case .cloudUploadBytes:
            return counter("Bytes uploaded to the cloud tier.", "bytes", partitionLabels + [provider], area: "Cloud tier")
        case .cloudUploadObjectSize:
            return histogram("Size of uploaded objects.", "bytes", partitionLabels + [provider], objectSizeBuckets, area: "Cloud tier")
        case .cloudUploadLatency:
            return histogram("Cloud upload latency, in milliseconds.", "milliseconds", [provider], cloudLatencyBuckets, max: 64, area: "Cloud tier")
        case .cloudList:
            return counter("Object listings in the cloud tier.", "calls", [provider], max: 64, area: "Cloud tier")
        case .cloudListLatency:
            return histogram("Cloud listing latency, in milliseconds.", "milliseconds", [provider], cloudLatencyBuckets, max: 64, area: "Cloud tier")
        case .cloudDownloadBytes:
            return counter("Bytes read back from the cloud tier.", "bytes", partitionLabels + [provider], area: "Cloud tier")
        case .handoffCloudToWAL:
            return counter("Readers handed over from the cloud tier to the WAL tail.", "handoffs",
                           partitionLabels + [closed(.path, HandoffPath.self)], area: "Cloud tier",
                           note: "The plan writes the value as cloud→wal-tail; the catalog spells it cloud_to_wal_tail so PromQL needs no quoting of non-ASCII.")
        case .subProgressOffset:
            return gauge("Offset of the first message the subscription has not acknowledged, per partition.", "offset",
                         subscriptionLabels + [partition], area: "Subscription progress")
        case .subPendingMessages:
            return gauge("Messages delivered to the subscription's consumers and not yet acknowledged.", "messages",
                         subscriptionLabels, area: "Subscription progress")
        case .subRedelivery:
            return counter("Messages redelivered.", "messages", subscriptionLabels + [closed(.reason, RedeliveryReason.self)],
                           area: "Subscription progress")
        case .brokerTopicsOwned:
            return gauge("Topics the broker owns.", "topics", [open(.brokerID)], max: 1_000, area: "Cluster and RPC")
        case .brokerAssignments:
            return counter("Topic assignment changes made by the load manager.", "assignments",
                           [open(.brokerID), closed(.action, AssignmentAction.self)], max: 3_000, area: "Cluster and RPC")
        case .leaderElectionState:
            return gauge("1 for the broker's current leader election state, 0 for the others.", "state",
                         [closed(.state, LeaderState.self)], max: 16, area: "Cluster and RPC")
        case .brokerRPC:
            return counter("Broker RPCs served.", "requests", [open(.method, note: "RPC method names: bounded by the API."), result],
                           max: 500, area: "Cluster and RPC")
        case .brokerRPCDuration:
            return histogram("Time to serve a broker RPC, in seconds.", "seconds", [open(.method, note: "RPC method names: bounded by the API.")],
                             rpcDurationBuckets, max: 500, area: "Cluster and RPC")
        case .adminRPC:
            return counter("Admin RPCs served.", "requests", [open(.method), result], max: 500, area: "Cluster and RPC")
        case .rpcErrors:
            return counter("RPC errors by gRPC status.", "errors", [open(.service), closed(.code, RPCCode.self)], max: 500, area: "Cluster and RPC")
        case .clientRedirects:
            return counter("Clients redirected to another broker.", "redirects", [open(.service), open(.reason)], max: 500, area: "Cluster and RPC")
        case .processCPU:
            return processGauge("CPU the emitting process used over the last few seconds, in cores (1 = one core busy).", "cores")
        case .processResidentMemory:
            return processGauge("Resident memory of the emitting process.", "bytes")
        case .processOpenFDs:
            return processGauge("File descriptors the emitting process has open.", "descriptors")
        case .processMaxFDs:
            return processGauge("The emitting process's open-file limit.", "descriptors")
        case .processThreads:
            return processGauge("Threads of the emitting process.", "threads")
        case .processStartTime:
            return processGauge("Start time of the emitting process, in seconds since the Unix epoch.", "seconds")
        case .retryAttempts:
            return counter("Retries of internal operations.", "attempts", [open(.component), open(.reason)], max: 500, area: "Cluster and RPC")
        }
    }
}

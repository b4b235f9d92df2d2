import DanubeMetricsEmitter

/// The series a simulated Danube broker and WAL writer record, resolved once up front as real call sites would.
/// Every topic partition gets its own handles; the worker threads pick partitions and record a publish path:
/// broker receive -> WAL append (fsync in batches) -> dispatch -> consumer ack.
struct SimulatedBroker {
    struct Partition {
        var messagesIn: Counter
        var bytesIn: Counter
        var sendLatency: Histogram
        var walAppends: Counter
        var walBytes: Counter
        var walFsyncs: Counter
        var walFsyncBatch: Histogram
        var walAppendLatency: Histogram
        var acks: Counter
        var queueDepth: Gauge
        var reliable: Bool
    }

    var partitions: [Partition] = []
    var producers: [Gauge] = []
    /// Names of the counter series in `partitions`, for the delivery report: (name, labels) per partition.
    var partitionLabels: [[(String, String)]] = []

    static let byteBuckets = Buckets.exponential(start: 1_024, factor: 4, count: 10)

    init(broker: Emitter, wal: Emitter, namespaces: Int, topics: Int, partitions partitionCount: Int) throws {
        for n in 0..<namespaces {
            for t in 0..<topics {
                let namespace = "ns\(n)"
                let topic = "topic-\(t)"
                let reliable = t % 2 == 0
                producers.append(try broker.gauge(
                    "danube_topic_active_producers", labels: [("namespace", namespace), ("topic", topic)],
                    help: "Producers connected to the topic."))
                for p in 0..<partitionCount {
                    let labels = [("namespace", namespace), ("topic", topic), ("partition", "\(p)")]
                    let withReliable = labels + [("reliable", "\(reliable)")]
                    let subscription = labels.prefix(2) + [("subscription", "sub-\(p % 2)")]
                    partitions.append(Partition(
                        messagesIn: try broker.counter("danube_topic_messages_in_total", labels: labels,
                                                       help: "Messages published to the topic."),
                        bytesIn: try broker.counter("danube_topic_bytes_in_total", labels: labels,
                                                    help: "Payload bytes published to the topic."),
                        sendLatency: try broker.histogram("danube_producer_send_latency_ms", buckets: Buckets.latencyMilliseconds,
                                                          labels: withReliable, help: "Producer send latency, receive to append or dispatch."),
                        walAppends: try wal.counter("danube_wal_append_total", labels: labels, help: "Frames appended to the WAL."),
                        walBytes: try wal.counter("danube_wal_append_bytes_total", labels: labels, help: "Bytes appended to the WAL."),
                        walFsyncs: try wal.counter("danube_wal_fsync_total", labels: labels, help: "WAL fsync calls."),
                        walFsyncBatch: try wal.histogram("danube_wal_fsync_batch_bytes", buckets: Self.byteBuckets, labels: labels,
                                                         help: "Bytes made durable per WAL fsync."),
                        walAppendLatency: try wal.histogram("danube_wal_append_latency_ms", buckets: Buckets.latencyMilliseconds,
                                                            labels: labels, help: "WAL append latency, enqueue to fsync."),
                        acks: try broker.counter("danube_consumer_ack_total", labels: Array(subscription) + [("result", "ok")],
                                                 help: "Consumer acknowledgements."),
                        queueDepth: try broker.gauge("danube_dispatcher_queue_depth", labels: Array(subscription) + [("reliable", "\(reliable)")],
                                                     help: "Messages queued in the dispatcher."),
                        reliable: reliable))
                    partitionLabels.append(labels)
                }
            }
        }
    }
}

/// Danube's spans, as the catalog names them (docs/TRACING.md): the key paths the broker team's plan asks to
/// trace, with OpenTelemetry's messaging semantic conventions where they fit. Like the metric families they are
/// documented in docs/CATALOG.md and carried to the Rust crate by `--print-catalog rust`, so the broker and the
/// simulated broker name them alike.
public struct SpanDefinition: Sendable, Equatable {
    /// The span name, and the Rust constant's name.
    public var name: String
    public var constant: String
    /// OTLP span kind: producer, internal, consumer, server.
    public var kind: String
    public var parent: String
    public var meaning: String
    /// Keys of the attributes it carries (see `SpanAttributeDefinition`).
    public var attributes: [String]
}

/// An attribute key of Danube's spans, and what it holds.
public struct SpanAttributeDefinition: Sendable, Equatable {
    public var key: String
    public var constant: String
    public var meaning: String
}

public enum SpanCatalog {
    public static let attributes: [SpanAttributeDefinition] = [
        .init(key: "messaging.system", constant: "MESSAGING_SYSTEM", meaning: "`danube` (OpenTelemetry messaging conventions)"),
        .init(key: "messaging.destination.name", constant: "MESSAGING_DESTINATION_NAME", meaning: "the topic, `/namespace/topic`"),
        .init(key: "messaging.operation.type", constant: "MESSAGING_OPERATION_TYPE", meaning: "`publish`, `process` (dispatch) or `settle` (ack)"),
        .init(key: "messaging.message.id", constant: "MESSAGING_MESSAGE_ID", meaning: "the message id (kept out of metrics: unbounded)"),
        .init(key: "danube.namespace", constant: "DANUBE_NAMESPACE", meaning: "the namespace"),
        .init(key: "danube.partition", constant: "DANUBE_PARTITION", meaning: "the partition index (int)"),
        .init(key: "danube.subscription", constant: "DANUBE_SUBSCRIPTION", meaning: "the subscription"),
        .init(key: "danube.producer_id", constant: "DANUBE_PRODUCER_ID", meaning: "the producer id (int; kept out of metrics)"),
        .init(key: "danube.consumer_id", constant: "DANUBE_CONSUMER_ID", meaning: "the consumer id (int; kept out of metrics)"),
        .init(key: "danube.segment", constant: "DANUBE_SEGMENT", meaning: "the WAL segment written (int; kept out of metrics)"),
    ]

    public static let spans: [SpanDefinition] = [
        .init(name: "publish", constant: "PUBLISH", kind: "producer", parent: "the producer's span (`traceparent` in the message properties), else none",
              meaning: "the broker takes a message from a producer until it answers it",
              attributes: ["messaging.system", "messaging.destination.name", "messaging.operation.type", "messaging.message.id",
                           "danube.namespace", "danube.partition", "danube.producer_id"]),
        .init(name: "wal.append", constant: "WAL_APPEND", kind: "internal", parent: "publish",
              meaning: "the WAL writer appends the message (event `wal.fsync` when the batch is synced)",
              attributes: ["messaging.destination.name", "danube.partition", "danube.segment"]),
        .init(name: "dispatch", constant: "DISPATCH", kind: "consumer", parent: "publish (its context travels with the message)",
              meaning: "a subscription's dispatcher hands the message to a consumer, until its ack",
              attributes: ["messaging.destination.name", "messaging.operation.type", "danube.subscription", "danube.consumer_id"]),
        .init(name: "ack", constant: "ACK", kind: "server", parent: "dispatch",
              meaning: "the subscription applies the consumer's ack",
              attributes: ["messaging.destination.name", "messaging.operation.type", "danube.subscription", "danube.consumer_id"]),
    ]
}

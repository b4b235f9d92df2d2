/// The typed Danube metrics API over the catalog, for the broker, the WAL writer and the cloud uploader.
/// Each call resolves the handles of one scope (a topic, a partition, a subscription, ...) once, carrying its
/// labels, so a call site cannot misspell a family, a label name or a closed label value, and every series it
/// makes passes the agent's catalog. Resolve when the scope appears (topic loaded, subscription created) and
/// keep the result: resolving takes the emitter's registry lock; the returned handles' updates take none.
///
/// ```swift
/// let metrics = DanubeMetrics(emitter: emitter)
/// let partition = try metrics.partition(namespace: "default", topic: "orders", partition: 0, reliability: .reliable)
/// partition.messagesIn.increment()
/// partition.sendLatency.observe(1.7)
/// ```
public struct DanubeMetrics: Sendable {
    public let emitter: Emitter
    let resolver: SeriesResolver

    public init(emitter: Emitter) {
        self.emitter = emitter
        resolver = SeriesResolver(emitter: emitter)
    }

    public func topic(namespace: String, topic: String) throws(EmitterError) -> TopicMetrics {
        try TopicMetrics(resolver, [(.namespace, namespace), (.topic, topic)])
    }

    public func partition(namespace: String, topic: String, partition: Int, reliability: Reliability) throws(EmitterError) -> PartitionMetrics {
        try PartitionMetrics(resolver, [(.namespace, namespace), (.topic, topic), (.partition, String(partition))], reliability)
    }

    public func subscription(namespace: String, topic: String, subscription: String, type: SubscriptionType,
                             reliability: Reliability) throws(EmitterError) -> SubscriptionMetrics {
        try SubscriptionMetrics(resolver, [(.namespace, namespace), (.topic, topic), (.subscription, subscription)], type, reliability)
    }

    public func wal(namespace: String, topic: String, partition: Int) throws(EmitterError) -> WALMetrics {
        try WALMetrics(resolver, [(.namespace, namespace), (.topic, topic), (.partition, String(partition))])
    }

    public func cloud(provider: String) throws(EmitterError) -> CloudProviderMetrics {
        try CloudProviderMetrics(resolver, provider)
    }

    public func cloud(namespace: String, topic: String, partition: Int, provider: String) throws(EmitterError) -> CloudPartitionMetrics {
        try CloudPartitionMetrics(resolver, [(.namespace, namespace), (.topic, topic), (.partition, String(partition)), (.provider, provider)])
    }

    public func broker(id: String) throws(EmitterError) -> BrokerMetrics {
        try BrokerMetrics(resolver, id)
    }

    public func leaderElection() throws(EmitterError) -> LeaderElectionMetrics {
        try LeaderElectionMetrics(resolver)
    }

    /// RPC families have open labels (method, service, component, reason); resolve each combination once.
    public var rpc: RPCMetrics { RPCMetrics(resolver: resolver) }
}

/// Outcomes of a producer operation: `result="ok"` resolved now, `result="error",error_type=...` on first use
/// (a lock per call: failures are the rare path).
public struct ProducerOutcomes: Sendable {
    public let succeeded: Counter
    private let failures: LazyCounters<ProducerErrorType>

    init(_ resolver: SeriesResolver, _ family: DanubeFamily, _ labels: SeriesResolver.Labels) throws(EmitterError) {
        succeeded = try resolver.counter(family, labels + [(.result, Outcome.ok.rawValue)])
        failures = LazyCounters { error throws(EmitterError) in
            try resolver.counter(family, labels + [(.result, Outcome.error.rawValue), (.errorType, error.rawValue)])
        }
    }

    public func failed(_ error: ProducerErrorType) throws(EmitterError) -> Counter {
        try failures.counter(error)
    }
}

/// Per topic: producers, subscriptions, producer creation.
public struct TopicMetrics: Sendable {
    public let activeProducers: Gauge
    public let activeSubscriptions: Gauge
    /// `danube_producer_create_total`.
    public let producerCreates: ProducerOutcomes

    init(_ resolver: SeriesResolver, _ labels: SeriesResolver.Labels) throws(EmitterError) {
        activeProducers = try resolver.gauge(.topicActiveProducers, labels)
        activeSubscriptions = try resolver.gauge(.topicActiveSubscriptions, labels)
        producerCreates = try ProducerOutcomes(resolver, .producerCreate, labels)
    }
}

/// Per topic partition, on the publish path.
public struct PartitionMetrics: Sendable {
    public let messagesIn: Counter
    public let bytesIn: Counter
    public let sendLatency: Histogram
    public let messageSize: Histogram
    /// `danube_producer_send_total`.
    public let sends: ProducerOutcomes

    init(_ resolver: SeriesResolver, _ labels: SeriesResolver.Labels, _ reliability: Reliability) throws(EmitterError) {
        messagesIn = try resolver.counter(.topicMessagesIn, labels)
        bytesIn = try resolver.counter(.topicBytesIn, labels)
        messageSize = try resolver.histogram(.topicMessageSize, labels)
        let withReliable = labels + [(.reliable, reliability.rawValue)]
        sendLatency = try resolver.histogram(.producerSendLatency, withReliable)
        sends = try ProducerOutcomes(resolver, .producerSend, withReliable)
    }
}

/// Per subscription: consumers, dispatcher, progress.
public struct SubscriptionMetrics: Sendable {
    public let dispatchLatency: Histogram
    /// Only for non-reliable subscriptions (the dispatcher queue): a reliable subscription's backlog and lag
    /// are derived by the agent from WAL end and progress, unless a source sets them.
    public let backlog: Gauge?
    public let lag: Gauge?
    /// Age of the oldest unacknowledged message, in seconds: the broker knows it for every subscription.
    public let lagSeconds: Gauge
    public let subscribes: CounterSet<Outcome>
    public let activeConsumers: Gauge
    public let received: Counter
    public let bytesOut: Counter
    public let acks: CounterSet<Outcome>
    public let queueDepth: Gauge
    public let enqueued: Counter
    public let dequeued: Counter
    public let commitLatency: Histogram
    public let pendingMessages: Gauge
    public let redeliveries: CounterSet<RedeliveryReason>
    private let resolver: SeriesResolver
    private let labels: SeriesResolver.Labels

    init(_ resolver: SeriesResolver, _ labels: SeriesResolver.Labels, _ type: SubscriptionType, _ reliability: Reliability) throws(EmitterError) {
        self.resolver = resolver
        self.labels = labels
        let withType = labels + [(.subType, type.rawValue)]
        let withReliable = labels + [(.reliable, reliability.rawValue)]
        dispatchLatency = try resolver.histogram(.topicDispatchLatency, withType + [(.reliable, reliability.rawValue)])
        backlog = reliability == .reliable ? nil : try resolver.gauge(.topicBacklog, withReliable)
        lag = reliability == .reliable ? nil : try resolver.gauge(.consumerLag, withReliable)
        lagSeconds = try resolver.gauge(.consumerLagSeconds, withReliable)
        subscribes = try resolver.counters(.consumerSubscribe, withType, by: .result, Outcome.self)
        activeConsumers = try resolver.gauge(.consumerActive, withType)
        received = try resolver.counter(.consumerReceive, labels)
        bytesOut = try resolver.counter(.consumerBytesOut, labels)
        acks = try resolver.counters(.consumerAck, labels, by: .result, Outcome.self)
        queueDepth = try resolver.gauge(.dispatcherQueueDepth, withReliable)
        enqueued = try resolver.counter(.dispatcherEnqueue, labels)
        dequeued = try resolver.counter(.dispatcherDequeue, labels)
        commitLatency = try resolver.histogram(.dispatcherCommitLatency, withReliable)
        pendingMessages = try resolver.gauge(.subPendingMessages, labels)
        redeliveries = try resolver.counters(.subRedelivery, labels, by: .reason, RedeliveryReason.self)
    }

    /// `danube_sub_progress_offset` of one partition: the offset of the first message not yet acknowledged.
    public func progress(partition: Int) throws(EmitterError) -> Gauge {
        try resolver.gauge(.subProgressOffset, labels + [(.partition, String(partition))])
    }
}

import DanubeMetrics

/// The handles a simulated Danube cluster records into, resolved once up front as real call sites would, through
/// the typed catalog API: a broker (topics, producers, subscriptions, dispatcher, RPCs, cluster), a WAL writer
/// (appends, fsync batches, rotations, readers, cache, deleter, WAL end offset) and a cloud uploader (uploads,
/// listings, downloads, handoffs). Even-numbered topics are reliable (WAL-backed), odd ones are not.
struct SimulatedBroker: Sendable {
    struct Partition: Sendable {
        var namespace: String
        var topic: String
        var index: Int
        var reliable: Bool
        var metrics: PartitionMetrics
        /// WAL and cloud handles exist for reliable topics only.
        var wal: WALMetrics?
        var cloud: CloudPartitionMetrics?
        /// Subscriptions of the topic (indices into `subscriptions`) and, for reliable topics, their progress here.
        var subscriptions: [Int]
        var progress: [Gauge]
        var topicIndex: Int
    }

    struct Topic: Sendable {
        var metrics: TopicMetrics
        var subscriptions: [Int]
    }

    var topics: [Topic] = []
    var partitions: [Partition] = []
    var subscriptions: [SubscriptionMetrics] = []
    let cloudProvider: CloudProviderMetrics
    let broker: BrokerMetrics
    let leaderElection: LeaderElectionMetrics
    let sendRPC: Counter
    let sendRPCFailed: Counter
    let sendRPCError: Counter
    let sendRPCDuration: Histogram
    let listTopicsRPC: Counter
    let redirects: Counter
    let uploadRetries: Counter

    static let subscriptionTypes: [SubscriptionType] = [.exclusive, .shared, .failover]

    init(broker brokerEmitter: Emitter, wal walEmitter: Emitter, cloud cloudEmitter: Emitter,
         namespaces: Int, topics topicCount: Int, partitions partitionCount: Int) throws {
        let broker = DanubeMetrics(emitter: brokerEmitter)
        let wal = DanubeMetrics(emitter: walEmitter)
        let cloud = DanubeMetrics(emitter: cloudEmitter)
        cloudProvider = try cloud.cloud(provider: "s3")
        self.broker = try broker.broker(id: "broker-1")
        leaderElection = try broker.leaderElection()
        sendRPC = try broker.rpc.brokerRPC(method: "SendMessage", outcome: .ok)
        sendRPCFailed = try broker.rpc.brokerRPC(method: "SendMessage", outcome: .error)
        sendRPCError = try broker.rpc.error(service: "ProducerService", code: .unavailable)
        sendRPCDuration = try broker.rpc.brokerRPCDuration(method: "SendMessage")
        listTopicsRPC = try broker.rpc.adminRPC(method: "ListTopics", outcome: .ok)
        redirects = try broker.rpc.clientRedirect(service: "Discovery", reason: "not_owner")
        uploadRetries = try cloud.rpc.retryAttempt(component: "cloud_uploader", reason: "timeout")
        for n in 0..<namespaces {
            for t in 0..<topicCount {
                let namespace = "ns\(n)", topic = "topic-\(t)"
                let reliability = Reliability(t % 2 == 0)
                // Two subscriptions per topic, a third on every third topic, of varying types.
                var subscriptionIndices: [Int] = []
                for s in 0..<(t % 3 == 0 ? 3 : 2) {
                    subscriptionIndices.append(subscriptions.count)
                    subscriptions.append(try broker.subscription(
                        namespace: namespace, topic: topic, subscription: "sub-\(s)",
                        type: Self.subscriptionTypes[(s + t) % 3], reliability: reliability))
                }
                topics.append(Topic(metrics: try broker.topic(namespace: namespace, topic: topic), subscriptions: subscriptionIndices))
                for p in 0..<partitionCount {
                    let reliable = reliability == .reliable
                    var progress: [Gauge] = []
                    if reliable {
                        for s in subscriptionIndices { progress.append(try subscriptions[s].progress(partition: p)) }
                    }
                    partitions.append(Partition(
                        namespace: namespace, topic: topic, index: p, reliable: reliable,
                        metrics: try broker.partition(namespace: namespace, topic: topic, partition: p, reliability: reliability),
                        wal: reliable ? try wal.wal(namespace: namespace, topic: topic, partition: p) : nil,
                        cloud: reliable ? try cloud.cloud(namespace: namespace, topic: topic, partition: p, provider: "s3") : nil,
                        subscriptions: subscriptionIndices, progress: progress, topicIndex: topics.count - 1))
                }
            }
        }
    }

    /// Labels of a partition as the agent shows them (sorted by name), for the delivery report.
    func labelText(_ partition: Partition) -> String {
        "namespace=\"\(partition.namespace)\",partition=\"\(partition.index)\",topic=\"\(partition.topic)\""
    }
}

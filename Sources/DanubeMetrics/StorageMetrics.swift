/// Per WAL partition, for the WAL writer, its readers, cache and deleter.
public struct WALMetrics: Sendable {
    public let appends: Counter
    public let appendBytes: Counter
    public let appendLatency: Histogram
    public let fsyncs: Counter
    public let fsyncBatchBytes: Histogram
    public let rotations: CounterSet<RotateReason>
    public let checkpointWrites: Counter
    public let readersCreated: CounterSet<ReaderStart>
    public let reads: Counter
    public let readLatency: Histogram
    public let cacheHits: Counter
    public let cacheMisses: Counter
    public let deletions: CounterSet<DeleteReason>
    /// The offset the next appended message will get; with subscription progress it gives the reliable backlog.
    public let endOffset: Gauge
    /// Bytes of WAL files on local disk (`danube_topic_storage_bytes{tier="wal"}`).
    public let diskBytes: Gauge

    init(_ resolver: SeriesResolver, _ labels: SeriesResolver.Labels) throws(EmitterError) {
        appends = try resolver.counter(.walAppend, labels)
        appendBytes = try resolver.counter(.walAppendBytes, labels)
        appendLatency = try resolver.histogram(.walAppendLatency, labels)
        fsyncs = try resolver.counter(.walFsync, labels)
        fsyncBatchBytes = try resolver.histogram(.walFsyncBatchBytes, labels)
        rotations = try resolver.counters(.walFileRotate, labels, by: .reason, RotateReason.self)
        checkpointWrites = try resolver.counter(.walCheckpointWrite, labels)
        readersCreated = try resolver.counters(.walReaderCreate, labels, by: .startPos, ReaderStart.self)
        reads = try resolver.counter(.walReaderRead, labels)
        readLatency = try resolver.histogram(.walReaderReadLatency, labels)
        cacheHits = try resolver.counter(.walCacheHits, labels)
        cacheMisses = try resolver.counter(.walCacheMisses, labels)
        deletions = try resolver.counters(.walDelete, labels, by: .reason, DeleteReason.self)
        endOffset = try resolver.gauge(.walEndOffset, labels)
        diskBytes = try resolver.gauge(.topicStorage, labels + [(.tier, StorageTier.wal.rawValue)])
    }
}

/// Per object-store provider, for the cloud uploader.
public struct CloudProviderMetrics: Sendable {
    public let uploadLatency: Histogram
    public let lists: Counter
    public let listLatency: Histogram

    init(_ resolver: SeriesResolver, _ provider: String) throws(EmitterError) {
        let labels: SeriesResolver.Labels = [(.provider, provider)]
        uploadLatency = try resolver.histogram(.cloudUploadLatency, labels)
        lists = try resolver.counter(.cloudList, labels)
        listLatency = try resolver.histogram(.cloudListLatency, labels)
    }
}

/// Per partition and provider, for the cloud uploader and the cloud-to-WAL handoff.
public struct CloudPartitionMetrics: Sendable {
    public let uploads: CounterSet<Outcome>
    public let uploadBytes: Counter
    public let objectSize: Histogram
    public let downloadBytes: Counter
    public let handoffs: CounterSet<HandoffPath>
    /// Bytes of the partition's objects in the cloud tier (`danube_topic_storage_bytes{tier="cloud"}`).
    public let storedBytes: Gauge

    init(_ resolver: SeriesResolver, _ labels: SeriesResolver.Labels) throws(EmitterError) {
        uploads = try resolver.counters(.cloudUploadObjects, labels, by: .result, Outcome.self)
        uploadBytes = try resolver.counter(.cloudUploadBytes, labels)
        objectSize = try resolver.histogram(.cloudUploadObjectSize, labels)
        downloadBytes = try resolver.counter(.cloudDownloadBytes, labels)
        // The handoff and storage families have no provider label.
        let partition = labels.filter { $0.0 != .provider }
        handoffs = try resolver.counters(.handoffCloudToWAL, partition, by: .path, HandoffPath.self)
        storedBytes = try resolver.gauge(.topicStorage, partition + [(.tier, StorageTier.cloud.rawValue)])
    }
}

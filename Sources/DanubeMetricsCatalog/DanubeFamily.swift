/// Every family of the Danube metric catalog, by the name the broker, WAL writer and cloud uploader record.
/// `BuiltinCatalog` gives each case its specification through an exhaustive switch, so a family cannot be
/// named here without being specified there.
public enum DanubeFamily: String, CaseIterable, Sendable {
    // Topic
    case topicMessagesIn = "danube_topic_messages_in_total"
    case topicBytesIn = "danube_topic_bytes_in_total"
    case topicActiveProducers = "danube_topic_active_producers"
    case topicActiveSubscriptions = "danube_topic_active_subscriptions"
    case topicDispatchLatency = "danube_topic_dispatch_latency_ms"
    case topicBacklog = "danube_topic_backlog_messages"
    case topicMessageSize = "danube_topic_message_size_bytes"
    case topicStorage = "danube_topic_storage_bytes"
    // Producer
    case producerCreate = "danube_producer_create_total"
    case producerSend = "danube_producer_send_total"
    case producerSendLatency = "danube_producer_send_latency_ms"
    // Consumer
    case consumerSubscribe = "danube_consumer_subscribe_total"
    case consumerActive = "danube_consumer_active"
    case consumerReceive = "danube_consumer_receive_total"
    case consumerAck = "danube_consumer_ack_total"
    case consumerLag = "danube_consumer_lag_messages"
    case consumerLagSeconds = "danube_consumer_lag_seconds"
    case consumerBytesOut = "danube_consumer_bytes_out_total"
    // Dispatcher
    case dispatcherQueueDepth = "danube_dispatcher_queue_depth"
    case dispatcherEnqueue = "danube_dispatcher_enqueue_total"
    case dispatcherDequeue = "danube_dispatcher_dequeue_total"
    case dispatcherCommitLatency = "danube_dispatcher_commit_latency_ms"
    // WAL
    case walAppend = "danube_wal_append_total"
    case walAppendBytes = "danube_wal_append_bytes_total"
    case walAppendLatency = "danube_wal_append_latency_ms"
    case walFsync = "danube_wal_fsync_total"
    case walFsyncBatchBytes = "danube_wal_fsync_batch_bytes"
    case walFileRotate = "danube_wal_file_rotate_total"
    case walCheckpointWrite = "danube_wal_checkpoint_write_total"
    case walReaderCreate = "danube_wal_reader_create_total"
    case walReaderRead = "danube_wal_reader_read_total"
    case walReaderReadLatency = "danube_wal_reader_read_latency_ms"
    case walCacheHits = "danube_wal_cache_hits_total"
    case walCacheMisses = "danube_wal_cache_misses_total"
    case walDelete = "danube_wal_delete_total"
    case walEndOffset = "danube_wal_end_offset"
    // Cloud tier
    case cloudUploadObjects = "danube_cloud_upload_objects_total"
    case cloudUploadBytes = "danube_cloud_upload_bytes_total"
    case cloudUploadObjectSize = "danube_cloud_upload_object_size_bytes"
    case cloudUploadLatency = "danube_cloud_upload_latency_ms"
    case cloudList = "danube_cloud_list_total"
    case cloudListLatency = "danube_cloud_list_latency_ms"
    case cloudDownloadBytes = "danube_cloud_download_bytes_total"
    case handoffCloudToWAL = "danube_handoff_cloud_to_wal_total"
    // Subscription progress
    case subProgressOffset = "danube_sub_progress_offset"
    case subPendingMessages = "danube_sub_pending_messages"
    case subRedelivery = "danube_sub_redelivery_total"
    // Cluster and RPC
    case brokerTopicsOwned = "danube_broker_topics_owned"
    case brokerAssignments = "danube_broker_assignments_total"
    case leaderElectionState = "danube_leader_election_state"
    case brokerRPC = "danube_broker_rpc_total"
    case brokerRPCDuration = "danube_broker_rpc_duration_seconds"
    case adminRPC = "danube_admin_rpc_total"
    case rpcErrors = "danube_rpc_errors_total"
    case clientRedirects = "danube_client_redirects_total"
    case retryAttempts = "danube_retry_attempts_total"
    // Emitter process: reported by every emitter for its own process (the broker's health beside the agent's)
    case processCPU = "danube_process_cpu_usage_cores"
    case processResidentMemory = "danube_process_resident_memory_bytes"
    case processOpenFDs = "danube_process_open_fds"
    case processMaxFDs = "danube_process_max_fds"
    case processThreads = "danube_process_threads"
    case processStartTime = "danube_process_start_time_seconds"

    public var name: String { rawValue }

    /// This family's specification in the built-in catalog.
    public var spec: FamilySpec { BuiltinCatalog.spec(self) }
}

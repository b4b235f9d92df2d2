/// The closed label value sets of the Danube catalog. The catalog's allowed values are built from these enums
/// and the typed emitter API takes them as arguments, so the two cannot drift apart.
public protocol ClosedLabelValues: RawRepresentable, CaseIterable, Sendable, Hashable where RawValue == String {}

extension ClosedLabelValues {
    static var catalogValues: [String] { allCases.map(\.rawValue) }
}

/// `result`: how an operation ended.
public enum Outcome: String, ClosedLabelValues { case ok, error }

/// `error_type`: why a producer operation failed (absent when `result="ok"`).
public enum ProducerErrorType: String, ClosedLabelValues {
    case timeout, unauthorized, notFound = "not_found", invalidRequest = "invalid_request", storage, unavailable
    case rateLimited = "rate_limited", `internal`
}

/// `reliable`: whether the topic is backed by the WAL (reliable delivery) or dispatched from memory.
public enum Reliability: String, ClosedLabelValues {
    case reliable = "true", nonReliable = "false"
    public init(_ reliable: Bool) { self = reliable ? .reliable : .nonReliable }
}

/// `sub_type`: Danube's subscription types.
public enum SubscriptionType: String, ClosedLabelValues { case exclusive, shared, failover }

/// `reason` of `danube_wal_file_rotate_total`.
public enum RotateReason: String, ClosedLabelValues { case size, time }

/// `reason` of `danube_wal_delete_total`.
public enum DeleteReason: String, ClosedLabelValues { case retention, compaction }

/// `reason` of `danube_sub_redelivery_total`.
public enum RedeliveryReason: String, ClosedLabelValues { case timeout, nack }

/// `start_pos` of `danube_wal_reader_create_total`: the kind of start position, not the offset itself.
public enum ReaderStart: String, ClosedLabelValues { case latest, earliest, offset }

/// `tier` of `danube_topic_storage_bytes`: where the partition's data is kept.
public enum StorageTier: String, ClosedLabelValues { case wal, cloud }

/// `path` of `danube_handoff_cloud_to_wal_total`.
public enum HandoffPath: String, ClosedLabelValues { case cloudToWALTail = "cloud_to_wal_tail" }

/// `action` of `danube_broker_assignments_total`.
public enum AssignmentAction: String, ClosedLabelValues { case assign, unassign, transfer }

/// `state` of `danube_leader_election_state`.
public enum LeaderState: String, ClosedLabelValues { case leading, following, noLeader = "no_leader" }

/// `code` of `danube_rpc_errors_total`: gRPC status codes in snake case.
public enum RPCCode: String, ClosedLabelValues {
    case cancelled, unknown, invalidArgument = "invalid_argument", deadlineExceeded = "deadline_exceeded"
    case notFound = "not_found", alreadyExists = "already_exists", permissionDenied = "permission_denied"
    case resourceExhausted = "resource_exhausted", failedPrecondition = "failed_precondition", aborted
    case outOfRange = "out_of_range", unimplemented, `internal`, unavailable, dataLoss = "data_loss"
    case unauthenticated
}

/// Label names of the Danube catalog.
public enum DanubeLabel: String, Sendable {
    case namespace, topic, partition, subscription, producerName = "producer_name", subType = "sub_type"
    case reliable, result, errorType = "error_type", fileSeq = "file_seq", reason, startPos = "start_pos"
    case provider, path, brokerID = "broker_id", action, state, method, service, code, component, tier, source
}

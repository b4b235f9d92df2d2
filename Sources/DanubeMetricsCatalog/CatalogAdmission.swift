import DanubeMetricsWire

/// How the agent treats a family that is not in the catalog.
public enum CatalogMode: String, Sendable, CaseIterable, Codable {
    /// Refused, with reason `unknown_family`.
    case strict
    /// Accepted as an uncatalogued family, capped by the agent's per-family limit for such families.
    case permissive
}

/// Why a series was refused; the `reason` label of `danube_agent_series_rejected_total`.
public enum RejectionReason: String, Sendable, CaseIterable {
    case unknownFamily = "unknown_family"
    case wrongType = "wrong_type"
    case unknownLabel = "unknown_label"
    case missingLabel = "missing_label"
    case badLabelValue = "bad_label_value"
    case forbiddenLabel = "forbidden_label"
    case wrongBuckets = "wrong_buckets"
    case familySeriesLimit = "family_series_limit"
    case invalidName = "invalid_name"
    case reservedName = "reserved_name"
    case malformed
    case conflictingDefinition = "conflicting_definition"
    /// The agent holds `--max-series` series: no new one until it holds fewer.
    case agentSeriesLimit = "agent_series_limit"
    /// The series the agent holds take `--memory-limit` bytes: no new one until they take less.
    case memoryLimit = "memory_limit"

    /// The code sent back to the emitter in SERIES_REFUSED.
    public var refusalCode: RefusalCode {
        switch self {
        case .familySeriesLimit: return .cardinalityLimit
        case .invalidName, .reservedName: return .invalidName
        case .malformed: return .malformed
        case .conflictingDefinition: return .conflictingDefinition
        case .agentSeriesLimit, .memoryLimit: return .limitExceeded
        default: return .catalogViolation
        }
    }
}

/// A refused series: the reason, the family it counts against, and a message for the log and the emitter.
public struct SeriesRejection: Error, Sendable, Equatable, CustomStringConvertible {
    /// The `family` label value for series of families the catalog does not know, so that a peer inventing
    /// names cannot grow the agent's own metrics.
    public static let uncataloguedFamily = "uncatalogued"

    public var reason: RejectionReason
    public var family: String
    public var message: String

    public init(_ reason: RejectionReason, family: String, _ message: String) {
        self.reason = reason
        self.family = family
        self.message = message
    }

    public var description: String { "\(reason.rawValue): \(message)" }
}

/// The catalog's verdict on one series definition.
public enum Admission: Sendable, Equatable {
    /// In the catalog and conforming: the definition with dropped labels removed and the catalog's help text.
    case catalogued(SeriesDefinition, maxSeries: Int)
    /// Not in the catalog, accepted in permissive mode (unchanged).
    case uncatalogued(SeriesDefinition)
    case refused(SeriesRejection)
}

extension Catalog {
    /// Checks a definition that already passed `SeriesRules.validate` (labels sorted). Forbidden labels are
    /// refused in either mode and for any family; a catalogued family's series must conform in either mode
    /// (its dashboards and caps rely on it); `mode` decides only about families the catalog does not know.
    public func admit(_ definition: SeriesDefinition, mode: CatalogMode) -> Admission {
        let spec = family(named: definition.name)
        let familyLabel = spec?.name ?? SeriesRejection.uncataloguedFamily
        func refuse(_ reason: RejectionReason, _ message: String) -> Admission {
            .refused(SeriesRejection(reason, family: familyLabel, message))
        }
        if let label = definition.labels.first(where: { forbiddenLabels.contains($0.name) }) {
            return refuse(.forbiddenLabel, "\(definition.name) carries label \(label.name), an unbounded id that belongs in logs or traces, not in labels")
        }
        guard let spec else {
            switch mode {
            case .permissive: return .uncatalogued(definition)
            case .strict: return refuse(.unknownFamily, "\(definition.name) is not in the catalog (the agent runs in strict mode)")
            }
        }
        guard spec.type.kind == definition.kind else {
            return refuse(.wrongType, "\(definition.name) is a \(spec.type.rawValue) in the catalog, not a \(definition.kind)")
        }
        var kept: [Label] = []
        for label in definition.labels {
            guard let allowed = spec.label(label.name) else {
                if globalLabels.contains(label.name) {
                    kept.append(label)
                    continue
                }
                let names = spec.labels.map(\.name).joined(separator: ", ")
                return refuse(.unknownLabel, "\(definition.name) has no label \(label.name) (allowed: \(names.isEmpty ? "none" : names))")
            }
            if let values = allowed.values, !values.contains(label.value) {
                return refuse(.badLabelValue, "\(definition.name): \(label.name)=\"\(label.value.prefix(64))\" is not one of \(values.joined(separator: "|"))")
            }
            if allowed.policy == .keep { kept.append(label) }
        }
        if let missing = spec.labels.first(where: { spec in spec.required && !definition.labels.contains { $0.name == spec.name } }) {
            return refuse(.missingLabel, "\(definition.name) needs label \(missing.name)")
        }
        if spec.type == .histogram, definition.bounds != spec.buckets {
            return refuse(.wrongBuckets, "\(definition.name) must use the catalog's buckets \(spec.buckets ?? [])")
        }
        // A family the catalog gives no native buckets (an operator turned them off) takes the series and drops
        // them (the store does); other native buckets than the catalog's are refused like other classic ones.
        if let native = definition.native, let expected = spec.native, native != expected {
            return refuse(.wrongBuckets, "\(definition.name) records native buckets of \(native), the catalog's are \(expected)")
        }
        var admitted = definition
        admitted.labels = kept
        admitted.help = spec.help
        return .catalogued(admitted, maxSeries: spec.maxSeries)
    }
}

import DanubeMetricsWire

/// What the agent does with a label a catalogued family allows.
public enum LabelPolicy: String, Codable, Sendable {
    /// The label is kept on the series.
    case keep
    /// The label is accepted from emitters but aggregated away: series that differ only in it are summed into
    /// one. For labels the plan names that are unbounded in practice (a WAL file sequence, a producer name).
    case drop
}

/// One label a family allows.
public struct LabelSpec: Codable, Sendable, Equatable {
    public var name: String
    /// The allowed values when the set is closed (`result`, `reason`, `reliable`, ...); nil when open.
    public var values: [String]?
    /// Whether every series of the family must carry the label.
    public var required: Bool
    public var policy: LabelPolicy
    /// Why the label is as it is, for `docs/CATALOG.md`.
    public var note: String?

    public init(_ name: String, values: [String]? = nil, required: Bool = true, policy: LabelPolicy = .keep, note: String? = nil) {
        self.name = name
        self.values = values
        self.required = required
        self.policy = policy
        self.note = note
    }

    enum CodingKeys: String, CodingKey { case name, values, required, policy, note }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        values = try container.decodeIfPresent([String].self, forKey: .values)
        required = try container.decodeIfPresent(Bool.self, forKey: .required) ?? true
        policy = try container.decodeIfPresent(LabelPolicy.self, forKey: .policy) ?? .keep
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }
}

/// The type of a family, as written in catalog files.
public enum FamilyType: String, Codable, Sendable {
    case counter, gauge, histogram

    public var kind: MetricKind {
        switch self {
        case .counter: return .counter
        case .gauge: return .gauge
        case .histogram: return .histogram
        }
    }
}

/// One metric family: everything the agent needs to admit, cap and describe its series.
public struct FamilySpec: Codable, Sendable, Equatable {
    public var name: String
    public var type: FamilyType
    public var help: String
    /// What one unit of the value is ("messages", "bytes", "milliseconds", "offset", "state").
    public var unit: String
    public var labels: [LabelSpec]
    /// Histogram upper bounds (+Inf implicit); emitters must use exactly these.
    public var buckets: [Double]?
    /// Exponential buckets histograms of the family record beside the classic ones (served to scrapers that ask
    /// for protobuf), or nil for classic buckets only.
    public var native: NativeHistogramSpec?
    /// The most series the agent keeps for the family; further new series are refused.
    public var maxSeries: Int
    /// Where in Danube the family is recorded, for the generated document.
    public var area: String
    public var note: String?

    public init(_ name: String, _ type: FamilyType, help: String, unit: String, labels: [LabelSpec],
                buckets: [Double]? = nil, native: NativeHistogramSpec? = nil, maxSeries: Int, area: String, note: String? = nil) {
        self.name = name
        self.type = type
        self.help = help
        self.unit = unit
        self.labels = labels
        self.buckets = buckets
        self.native = native
        self.maxSeries = maxSeries
        self.area = area
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case name, type, help, unit, labels, buckets, native, area, note
        case maxSeries = "max_series"
    }

    /// The series limit of a family an operator file adds without one.
    public static let defaultMaxSeries = 10_000

    /// `name`, `type` and `help` are required; the rest default (no labels, unit "", area "Operator catalog",
    /// `defaultMaxSeries`).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        type = try container.decode(FamilyType.self, forKey: .type)
        help = try container.decode(String.self, forKey: .help)
        unit = try container.decodeIfPresent(String.self, forKey: .unit) ?? ""
        labels = try container.decodeIfPresent([LabelSpec].self, forKey: .labels) ?? []
        buckets = try container.decodeIfPresent([Double].self, forKey: .buckets)
        native = try container.decodeIfPresent(NativeHistogramSpec.self, forKey: .native)
        maxSeries = try container.decodeIfPresent(Int.self, forKey: .maxSeries) ?? Self.defaultMaxSeries
        area = try container.decodeIfPresent(String.self, forKey: .area) ?? "Operator catalog"
        note = try container.decodeIfPresent(String.self, forKey: .note)
    }

    public func label(_ name: String) -> LabelSpec? { labels.first { $0.name == name } }
}

/// The set of families the agent knows, with the label names no series may carry and the ones any series may
/// carry. Built in (the Danube catalog), optionally overlaid by an operator file whose families replace or add
/// to the built-in ones.
public struct Catalog: Sendable, Equatable {
    public private(set) var families: [FamilySpec]
    public private(set) var forbiddenLabels: [String]
    /// Labels every family accepts (optional, kept): what an emitter attaches to all its series, such as the
    /// `broker` label Danube's exporter adds to every series it records.
    public private(set) var globalLabels: [String]
    private var index: [String: Int]

    /// Checks the catalog itself (see `CatalogError`), sorts families by name.
    public init(families: [FamilySpec], forbiddenLabels: [String], globalLabels: [String] = []) throws(CatalogError) {
        self.families = families.sorted { $0.name < $1.name }
        self.forbiddenLabels = Array(Set(forbiddenLabels)).sorted()
        self.globalLabels = Array(Set(globalLabels)).sorted()
        index = [:]
        for (position, family) in self.families.enumerated() {
            if index.updateValue(position, forKey: family.name) != nil {
                throw CatalogError(.duplicateFamily, "family \(family.name) appears twice")
            }
        }
        try CatalogCheck.check(self)
    }

    public static func == (a: Catalog, b: Catalog) -> Bool {
        a.families == b.families && a.forbiddenLabels == b.forbiddenLabels && a.globalLabels == b.globalLabels
    }

    public func family(named name: String) -> FamilySpec? {
        index[name].map { families[$0] }
    }

    /// This catalog with `overlay`'s families replacing same-named ones or added, and its forbidden and global
    /// labels added.
    public func overlaid(with overlay: CatalogFile) throws(CatalogError) -> Catalog {
        var merged = families
        for family in overlay.families {
            if let position = index[family.name] { merged[position] = family } else { merged.append(family) }
        }
        return try Catalog(
            families: merged, forbiddenLabels: forbiddenLabels + (overlay.forbiddenLabels ?? []),
            globalLabels: globalLabels + (overlay.globalLabels ?? []))
    }
}

/// A catalog that cannot be used: `code` says what kind of fault (callers and tests switch on it), `description`
/// says where, naming the family and field.
public struct CatalogError: Error, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable, Equatable {
        /// The operator file cannot be read.
        case unreadableFile
        /// The file is not JSON of the catalog's shape (the message names the field).
        case malformedFile
        /// The file's `version` is not one this agent reads.
        case unsupportedVersion
        /// Two families have one name.
        case duplicateFamily
        /// A metric or label name breaks the naming rules (Prometheus', `_total` for counters, reserved prefixes).
        case invalidName
        /// A histogram's buckets (classic or native) cannot be used, or a non-histogram has some.
        case invalidBuckets
        /// A family's labels: repeated, forbidden, an empty value list, a dropped label that cannot be dropped.
        case invalidLabels
        /// Anything else about a family: no help text, a series limit that is not positive.
        case invalidFamily
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { message }
}

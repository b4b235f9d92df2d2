import DanubeMetricsCatalog
import DanubeMetricsWire
import Logging
import Synchronization

/// Decides about every series definition before it reaches the store: naming rules, the reserved prefix, the
/// catalog (see `docs/CATALOG.md`) and the family's series limit. Refusals are counted per family and reason;
/// only the first of each family name and reason is logged (and that through the per-source warning limiter),
/// never one per definition or update, so a misbehaving emitter cannot flood the journal.
public final class SeriesGate: Sendable {
    /// Families under this prefix belong to the agent's own metrics; sources may not define them.
    public static let reservedPrefix = "danube_agent_"
    /// Distinct (name, reason) pairs logged individually; beyond that one line says further ones are not.
    static let maxLoggedRejections = 1_000

    public let catalog: Catalog
    public let mode: CatalogMode
    /// The series limit of each family the catalog does not know.
    public let uncataloguedFamilyLimit: Int
    private let store: AggregationStore
    private let logger: Logger
    private let rejections = Mutex(Rejections())

    struct RejectionKey: Hashable, Comparable {
        var family: String
        var reason: RejectionReason

        static func < (a: RejectionKey, b: RejectionKey) -> Bool {
            (a.family, a.reason.rawValue) < (b.family, b.reason.rawValue)
        }
    }

    private struct Rejections {
        var counts: [RejectionKey: UInt64] = [:]
        var logged: Set<String> = []
        var loggingCapped = false

        mutating func count(_ rejection: SeriesRejection) {
            counts[RejectionKey(family: rejection.family, reason: rejection.reason), default: 0] += 1
        }
    }

    public init(catalog: Catalog, mode: CatalogMode, uncataloguedFamilyLimit: Int, store: AggregationStore, logger: Logger) {
        self.catalog = catalog
        self.mode = mode
        self.uncataloguedFamilyLimit = uncataloguedFamilyLimit
        self.store = store
        self.logger = logger
    }

    /// The store binding of an admitted series, or why it was refused (counted here). `log` is true for the
    /// first refusal of this family name for this reason: the caller logs it (through its per-source limiter).
    func admit(_ definition: SeriesDefinition) -> (result: Result<SeriesBinding, SeriesRejection>, log: Bool) {
        let result = decide(definition, binds: true)
        guard case .failure(let rejection) = result else { return (result, false) }
        return (result, rejected(rejection, name: definition.name))
    }

    /// Counts refusals of restored series, once per series however many log records name it (`decide` counts
    /// nothing, so that the restore can).
    func countRestored(_ refused: some Sequence<SeriesRejection>) {
        rejections.withLock { state in
            for rejection in refused { state.count(rejection) }
        }
    }

    /// The store binding of a definition, or why it is refused, uncounted: `admit` for new series (`binds`: a
    /// connection holds the binding), the restore for saved ones.
    func decide(_ definition: SeriesDefinition, binds: Bool = false) -> Result<SeriesBinding, SeriesRejection> {
        let checked: SeriesDefinition
        do {
            checked = try SeriesRules.validate(definition)
        } catch {
            let family = catalog.family(named: definition.name)?.name ?? SeriesRejection.uncataloguedFamily
            return .failure(SeriesRejection(error.code == .invalidName ? .invalidName : .malformed, family: family, error.message))
        }
        if checked.name.hasPrefix(Self.reservedPrefix) {
            return .failure(SeriesRejection(.reservedName, family: SeriesRejection.uncataloguedFamily,
                                            "\(checked.name): the prefix \(Self.reservedPrefix) is reserved for the agent's own metrics"))
        }
        switch catalog.admit(checked, mode: mode) {
        case .refused(let rejection):
            return .failure(rejection)
        case .catalogued(let admitted, let maxSeries):
            return store.define(admitted, maxFamilySeries: maxSeries, nativeLayout: .decided(catalog.family(named: admitted.name)?.native),
                                binds: binds)
        case .uncatalogued(let admitted):
            return store.define(admitted, maxFamilySeries: uncataloguedFamilyLimit, binds: binds).mapError { rejection in
                var rejection = rejection
                rejection.family = SeriesRejection.uncataloguedFamily
                return rejection
            }
        }
    }

    private func rejected(_ rejection: SeriesRejection, name: String) -> Bool {
        let (first, capReached) = rejections.withLock { state -> (Bool, Bool) in
            state.count(rejection)
            let key = "\(name)\u{0}\(rejection.reason.rawValue)"
            if state.logged.contains(key) { return (false, false) }
            if state.logged.count >= Self.maxLoggedRejections {
                defer { state.loggingCapped = true }
                return (false, !state.loggingCapped)
            }
            state.logged.insert(key)
            return (true, false)
        }
        if capReached {
            logger.warning("series refused for \(Self.maxLoggedRejections) distinct families and reasons; further ones are counted in danube_agent_series_rejected_total but not logged")
        }
        return first
    }

    /// Refusals so far, by family and reason.
    public func rejectionCount(family: String, reason: RejectionReason) -> UInt64 {
        rejections.withLock { $0.counts[RejectionKey(family: family, reason: reason)] ?? 0 }
    }

    func collect(into snapshot: inout MetricsSnapshot) {
        let counts = rejections.withLock { $0.counts }
        let name = "danube_agent_series_rejected_total"
        snapshot.family(name: name, kind: .counter, help: "Series definitions refused, by catalog family (or uncatalogued) and reason.")
        for key in counts.keys.sorted() {
            let labels = LabelText.encode([Label("family", key.family), Label("reason", key.reason.rawValue)])
            snapshot.counter(labels: labels, integer: counts[key] ?? 0, fraction: 0)
        }
    }
}

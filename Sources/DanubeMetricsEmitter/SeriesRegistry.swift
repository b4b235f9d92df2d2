import CDanubeCells
import DanubeMetricsWire
import Synchronization

/// Why a handle could not be resolved, an exemplar built or the agent reached. Callers switch on `code`; the
/// text for people is `description`.
public struct EmitterError: Error, CustomStringConvertible, Equatable {
    public enum Code: Equatable, Sendable {
        /// The name or labels break the Prometheus naming rules (or the agent's reserved prefix).
        case invalidSeries
        /// A name, label, help text or bucket layout is longer than the protocol allows.
        case tooLarge
        /// The name is already registered as another kind or with other buckets.
        case conflictingRegistration
        /// The emitter holds as many series as one connection may define.
        case seriesLimit
        /// The process has used every metric cell.
        case cellsExhausted
        /// Exemplar labels OpenMetrics would not take.
        case invalidExemplar
        /// The agent's socket is there but this process may not use it: an operator must act.
        case notPermitted
        /// The agent answered HELLO with REFUSE, for this reason.
        case refusedByAgent(RefusalCode)
        /// The agent is not there, closed the connection, did not answer in time, or sent something undecodable.
        case connectionFailed
    }

    public var code: Code
    public var message: String
    /// The failure will not go away by retrying: an operator must act (the socket's mode or group excludes this
    /// process). Logged as a warning instead of the debug line for an agent that is merely not there yet.
    public var needsOperator: Bool { code == .notPermitted }
    public var description: String { message }

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

/// One registered series and where its cells live. Immutable once registered.
// @unchecked: immutable once registered; its pointers are immortal (the gauge word is only accessed atomically).
struct RegisteredSeries: @unchecked Sendable {
    var definition: SeriesDefinition
    /// Per-thread cells: 1 for a counter; for a histogram its bucket counts (bounds + 1, then with native buckets
    /// the zero bucket and the window) and last its `DM_HISTOGRAM_SUM_CELLS` sum cells; none for a gauge.
    var firstCell: UInt32
    var cellCount: UInt32
    /// Shared word of a gauge.
    var gaugeWord: UnsafeMutablePointer<UInt64>?
    /// A histogram's classic bucket finder, shared by its family (immortal, as its bounds).
    var classic: UnsafePointer<ClassicBuckets>?
    /// A histogram's native bucket finder, shared by its family (immortal, as its bound mantissas).
    var native: UnsafePointer<NativeBuckets>?
}

extension RegisteredSeries {
    /// Cells holding counts: all but a histogram's sum cells.
    var countCells: Int { Int(cellCount) - (definition.kind == .histogram ? Int(DM_HISTOGRAM_SUM_CELLS) : 0) }

    /// A histogram's sum over every thread (its sum cells follow the counts).
    var recordedSum: Double { dm_cells_sum_f64(firstCell + UInt32(countCells), DM_HISTOGRAM_SUM_CELLS) }
}

/// Cells reserved by one registry, inside one chunk and starting on a line: its flusher takes the changed-line
/// flags of these ranges only, so two emitters in one process never take each other's flags.
struct CellSpan: Equatable {
    var first: UInt32
    var count: UInt32
    /// Cells reserved at a time: one reservation per 16 lines keeps the process-wide lock off most registrations.
    static let reservation: UInt32 = 16 * DM_LINE_CELLS
}

/// Name + labels -> series, resolved once per handle. Only handle resolution and the flusher take its lock; the
/// hot path never does. Series are never removed: their cells and words live as long as the process.
final class SeriesRegistry: Sendable {
    private struct State {
        var series: [RegisteredSeries] = []
        var byKey: [SeriesKey: Int] = [:]
        /// Per family: its kind and buckets, and the native bucket finder its series share (made once per family).
        var families: [String: (kind: MetricKind, bounds: [Double], native: NativeHistogramSpec?, classic: UnsafePointer<ClassicBuckets>?, buckets: UnsafePointer<NativeBuckets>?)] = [:]
        var spans: [CellSpan] = []
        /// Next free cell of the last span.
        var nextCell: UInt32 = 0
        /// Mantissa slot tables per native schema, shared by every histogram of that schema (immortal).
        var slotTables: [Int8: MantissaSlots] = [:]

        mutating func slots(_ schema: Int8) -> MantissaSlots {
            if let table = slotTables[schema] { return table }
            let table = MantissaSlots(schema: schema)
            slotTables[schema] = table
            return table
        }

        /// `count` cells from this registry's spans, reserving a new span when the last one has no room.
        mutating func reserveCells(_ count: UInt32) -> UInt32 {
            if let last = spans.last, last.first + last.count - nextCell >= count {
                defer { nextCell += count }
                return nextCell
            }
            let lines = (count + DM_LINE_CELLS - 1) / DM_LINE_CELLS
            let size = max(CellSpan.reservation, lines * DM_LINE_CELLS)
            let first = dm_cells_reserve(size)
            guard first != DM_CELL_NONE else { return DM_CELL_NONE }
            spans.append(CellSpan(first: first, count: size))
            nextCell = first + count
            return first
        }
    }

    private struct SeriesKey: Hashable {
        var name: String
        var labels: [Label]
    }

    private let state = Mutex(State())
    let limits: WireLimits

    init(limits: WireLimits) { self.limits = limits }

    var count: Int { state.withLock { $0.series.count } }

    /// Series registered so far, in registration order (series id = index).
    func snapshot(from start: Int = 0) -> ArraySlice<RegisteredSeries> {
        state.withLock { $0.series[min(start, $0.series.count)...] }
    }

    /// The cell ranges this registry has reserved, in order (series' first cells grow with their index).
    func cellSpans() -> [CellSpan] {
        state.withLock { $0.spans }
    }

    func register(kind: MetricKind, name: String, help: String, labels: [(String, String)], bounds: [Double],
                  native: NativeHistogramSpec? = nil) throws(EmitterError) -> RegisteredSeries {
        let candidate = SeriesDefinition(
            id: 0, kind: kind, name: name, help: help, labels: labels.map { Label($0.0, $0.1) }, bounds: bounds, native: native)
        let definition: SeriesDefinition
        do {
            definition = try SeriesRules.validate(candidate)
            try checkLimits(definition)
        } catch {
            throw EmitterError(error.code == .limitExceeded ? .tooLarge : .invalidSeries, error.message)
        }
        let result: Result<RegisteredSeries, EmitterError> = state.withLock { state in
            let key = SeriesKey(name: definition.name, labels: definition.labels)
            if let family = state.families[definition.name] {
                if family.kind != kind {
                    return .failure(EmitterError(.conflictingRegistration, "\(name) is already registered as a \(family.kind), not a \(kind)"))
                }
                if family.bounds != definition.bounds {
                    return .failure(EmitterError(.conflictingRegistration, "\(name) is already registered with buckets \(family.bounds)"))
                }
                if family.native != definition.native {
                    return .failure(EmitterError(.conflictingRegistration, "\(name) is already registered with \(family.native.map { "native buckets of \($0)" } ?? "no native buckets")"))
                }
            }
            if let index = state.byKey[key] { return .success(state.series[index]) }
            guard state.series.count < limits.maxSeriesPerConnection else {
                return .failure(EmitterError(.seriesLimit, "cannot register \(name): the limit of \(limits.maxSeriesPerConnection) series is reached"))
            }
            var entry = RegisteredSeries(definition: definition, firstCell: DM_CELL_NONE, cellCount: 0)
            entry.definition.id = UInt32(state.series.count)
            switch kind {
            case .counter:
                entry.cellCount = 1
            case .histogram:
                entry.cellCount = UInt32(definition.bucketCount) + DM_HISTOGRAM_SUM_CELLS
            case .gauge:
                let word = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
                word.initialize(to: Double(0).bitPattern)
                entry.gaugeWord = word
            }
            if entry.cellCount > 0 {
                entry.firstCell = state.reserveCells(entry.cellCount)
                if entry.firstCell == DM_CELL_NONE {
                    return .failure(EmitterError(.cellsExhausted, "cannot register \(name): the process has used all \(DM_MAX_CELLS) metric cells"))
                }
            }
            if kind == .histogram {
                if let shared = state.families[definition.name]?.classic {
                    entry.classic = shared
                } else {
                    // Immortal (made once the series is sure to be kept): every handle of the family points at it.
                    let classic = UnsafeMutablePointer<ClassicBuckets>.allocate(capacity: 1)
                    classic.initialize(to: ClassicBuckets(bounds: definition.bounds))
                    entry.classic = UnsafePointer(classic)
                }
            }
            if let spec = definition.native {
                if let shared = state.families[definition.name]?.buckets {
                    entry.native = shared
                } else {
                    // Immortal, like the classic finder: every handle of the family points at it.
                    let buckets = UnsafeMutablePointer<NativeBuckets>.allocate(capacity: 1)
                    buckets.initialize(to: NativeBuckets(spec: spec, zeroCell: UInt32(definition.bounds.count + 1),
                                                         slots: state.slots(max(spec.schema, 0))))
                    entry.native = UnsafePointer(buckets)
                }
            }
            state.families[definition.name] = (kind, definition.bounds, definition.native, entry.classic, entry.native)
            state.byKey[key] = state.series.count
            state.series.append(entry)
            return .success(entry)
        }
        return try result.get()
    }

    private func checkLimits(_ definition: SeriesDefinition) throws(WireError) {
        func check(_ text: String, _ limit: Int, _ what: String) throws(WireError) {
            if text.utf8.count > limit { throw WireError(.limitExceeded, "\(what) is longer than \(limit) bytes") }
        }
        try check(definition.name, limits.maxNameBytes, "metric name \(definition.name.prefix(40))...")
        try check(definition.help, limits.maxHelpBytes, "help of \(definition.name)")
        if definition.labels.count > limits.maxLabelsPerSeries {
            throw WireError(.limitExceeded, "\(definition.name) has \(definition.labels.count) labels, the limit is \(limits.maxLabelsPerSeries)")
        }
        for label in definition.labels {
            try check(label.name, limits.maxLabelNameBytes, "label name \(label.name.prefix(40))")
            try check(label.value, limits.maxLabelValueBytes, "value of label \(label.name)")
        }
        if let native = definition.native, let problem = native.problem(limits: limits) {
            throw WireError(.limitExceeded, "\(definition.name): \(problem)")
        }
        if definition.bounds.count > limits.maxBucketsPerHistogram {
            throw WireError(.limitExceeded, "\(definition.name) has \(definition.bounds.count) buckets, the limit is \(limits.maxBucketsPerHistogram)")
        }
    }
}

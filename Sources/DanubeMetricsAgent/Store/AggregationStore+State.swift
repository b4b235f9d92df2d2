import DanubeMetricsWire

/// The store's state: what one lock guards, and what scrapes and checkpoints capture (copy-on-write arrays).
extension AggregationStore {
    struct Family {
        var name: String
        var kind: MetricKind
        var help: String
        var bounds: [Double]
        /// Exponential buckets every series of the family keeps beside its classic ones (the zero bucket after
        /// them in `State.buckets`, the window's non-empty buckets in `State.windows`), or nil.
        var native: NativeHistogramSpec?
        /// Buckets per series in `State.buckets`: classic with +Inf, then with native buckets the zero bucket.
        var bucketCount: Int { StoreSnapshot.Series.denseBucketCount(kind: kind, bounds: bounds.count, native: native) }
        /// Series indices, sorted by label text before a scrape or checkpoint reads them.
        var slots: [UInt32] = []
        var sorted = true
    }

    /// The values of one series, by its family's kind (two words, so the live and published states stay small):
    /// a counter's integer part and fraction, a gauge's value and owner (with the visible bit), a histogram's sum
    /// (its bucket counts are in `State.buckets`, from its `SeriesTable` entry's `bucketStart`).
    struct Value: Equatable {
        var a: UInt64 = 0
        var b: UInt64 = 0

        private static let visible: UInt64 = 1 << 63

        var counterInteger: UInt64 {
            get { a }
            set { a = newValue }
        }
        var counterFloat: Double {
            get { Double(bitPattern: b) }
            set { b = newValue.bitPattern }
        }
        var gauge: Double {
            get { Double(bitPattern: a) }
            set { a = newValue.bitPattern }
        }
        /// Connection ids count up from 1 and never reach the top bit.
        var gaugeOwner: ConnectionID { b & ~Self.visible }
        var gaugeVisible: Bool { b & Self.visible != 0 }
        mutating func setGaugeOwner(_ owner: ConnectionID) { b = owner | Self.visible }
        mutating func hideGauge() { b &= ~Self.visible }
        var sum: Double {
            get { Double(bitPattern: a) }
            set { a = newValue.bitPattern }
        }
    }

    struct State {
        /// Family, buckets and label text of every series, shared by reference with captured states (a new one
        /// after series expire).
        var table = SeriesTable()
        var families: [Family] = []
        var familyByName: [String: Int] = [:]
        /// By series index (see `SeriesTable`).
        var values: [Value] = []
        var buckets: [UInt64] = []
        /// By series index, up to the last series with native buckets: their windows (`NativeWindow`).
        var windows: [NativeWindow] = []
        var live: Set<ConnectionID> = []
        var departed: [ConnectionID: ContinuousClock.Instant] = [:]
        var sources: [UInt64: SourceRecord] = [:]
        /// Deltas that would have taken a count past `maxCount`.
        var saturations: UInt64 = 0
        /// `seriesBytes` of every series, plus their native windows' arrays (twice: live and published).
        var heldBytes = 0
        /// Native bucket counts dropped because the series took their memory limit.
        var nativeBucketsDropped: UInt64 = 0
        /// Bumped by every change, so the checkpointer knows when a new state file is due.
        var changes: UInt64 = 0
        /// With `tracksChanges`: the series changed (or defined) since the checkpointer last took them, each once,
        /// so that a checkpoint writes, and publishes for `/metrics`, what changed rather than everything.
        var changed: [UInt32] = []
        var changedFlags = ChangedFlags()
        /// Slots of expired series not yet compacted: out of their families and the index, their entries, label
        /// text and buckets still held.
        var retired: [UInt32] = []
        /// Slots of expired series that new ones may take (`SeriesTable` entries free, no buckets).
        var freeSlots: [UInt32] = []
        /// Slots of expired series that a published state (`exposed`) may still list: free once a state of
        /// `pendingGeneration` or later is published.
        var pendingFree: [UInt32] = []
        var pendingGeneration: UInt64 = 0
        /// Bumped when series expire; with it the next checkpoint writes a whole base.
        var generation: UInt64 = 0
        var needsBase = false
        /// A checkpointer publishes states for `/metrics` (see `AggregationStore.publish`).
        var publishes = false
        /// Series expired since the agent started.
        var expired: UInt64 = 0

        /// Series held (expired ones not yet free count, as their slots are not free yet).
        var heldSeries: Int { values.count - freeSlots.count }

        /// The native window of series `index` (empty for one without native buckets).
        func window(_ index: Int) -> NativeWindow { index < windows.count ? windows[index] : NativeWindow() }
    }

    /// One bit per series: listed in `changed` already.
    struct ChangedFlags {
        private var words: [UInt64] = []

        /// Sets the bit of `index`; false when it was set already.
        mutating func set(_ index: Int) -> Bool {
            let word = index >> 6, bit: UInt64 = 1 << UInt64(index & 63)
            if word >= words.count { words.append(contentsOf: repeatElement(0, count: word + 1 - words.count)) }
            defer { words[word] |= bit }
            return words[word] & bit == 0
        }

        mutating func clear(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
    }
}

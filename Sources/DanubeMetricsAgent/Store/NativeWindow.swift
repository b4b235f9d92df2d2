/// The non-empty buckets of one series' native histogram window (the buckets after its zero bucket), as
/// (position, count) pairs in position order in one array. Most of a window is empty (a latency family's window
/// spans 2^-5 ms to 2^18 ms in 184 buckets, and one endpoint fills a dozen): kept dense it cost 8 bytes per bucket
/// of the whole window in every copy of the state (about 1.5 KiB per series, twice); an empty window here holds
/// nothing and a window of k buckets 16 k bytes. Values are cumulative counts, as the store's other buckets.
struct NativeWindow: Equatable, Sendable {
    /// Position, count, position, count, ... with positions strictly increasing and counts not 0.
    private(set) var pairs: [UInt64] = []

    init() {}

    /// From (position, count) pairs as a state file holds them: positions strictly increasing and below `size`,
    /// zero counts left out; nil when they are not.
    init?(pairs: [UInt64], size: Int) {
        guard pairs.count % 2 == 0 else { return nil }
        var previous: UInt64?
        var kept: [UInt64] = []
        kept.reserveCapacity(pairs.count)
        for i in stride(from: 0, to: pairs.count, by: 2) {
            let position = pairs[i]
            guard position < UInt64(size), previous.map({ $0 < position }) ?? true else { return nil }
            previous = position
            if pairs[i + 1] != 0 { kept += [position, pairs[i + 1]] }
        }
        self.pairs = kept
    }

    /// Buckets with a count.
    var count: Int { pairs.count / 2 }

    /// Bytes the window holds beyond its 8-byte reference (its array's header and elements).
    var heapBytes: Int { pairs.capacity == 0 ? 0 : 32 + 8 * pairs.capacity }

    /// The sum of every count.
    var total: UInt64 {
        var sum: UInt64 = 0
        for i in stride(from: 1, to: pairs.count, by: 2) { sum &+= pairs[i] }
        return sum
    }

    /// The count of `position`, 0 when empty.
    subscript(position: Int) -> UInt64 {
        let i = lowerBound(UInt64(position))
        return i < pairs.count && pairs[i] == UInt64(position) ? pairs[i + 1] : 0
    }

    /// Adds `delta` to bucket `position`, saturating at `AggregationStore.maxCount` (counted in `saturations`).
    /// Returns the bytes the window grew by (`heapBytes`), or nil when the bucket was empty and `mayGrow` is false
    /// (nothing is added then).
    @discardableResult
    mutating func add(_ delta: UInt64, at position: Int, mayGrow: Bool = true, saturations: inout UInt64) -> Int? {
        guard delta != 0 else { return 0 }
        let key = UInt64(position)
        let i = lowerBound(key)
        if i < pairs.count, pairs[i] == key {
            pairs[i + 1] = AggregationStore.saturatingAdd(pairs[i + 1], delta, &saturations)
            return 0
        }
        guard mayGrow else { return nil }
        let before = heapBytes
        pairs.insert(AggregationStore.saturatingAdd(0, delta, &saturations), at: i)
        pairs.insert(key, at: i)
        return heapBytes - before
    }

    /// Calls `body` with each non-empty bucket's position and count, in position order.
    func forEach(_ body: (_ position: Int, _ count: UInt64) -> Void) {
        for i in stride(from: 0, to: pairs.count, by: 2) { body(Int(pairs[i]), pairs[i + 1]) }
    }

    /// The index in `pairs` of the first position not below `key` (binary search over the even indexes).
    private func lowerBound(_ key: UInt64) -> Int {
        var low = 0, high = pairs.count / 2
        while low < high {
            let middle = (low + high) / 2
            if pairs[2 * middle] < key { low = middle + 1 } else { high = middle }
        }
        return 2 * low
    }
}

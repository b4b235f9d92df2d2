/// A set of series indices as a bitmap: the flusher's "may have changed" and "sent, not acknowledged" sets.
/// A bitmap rather than `Set<Int>` because it is walked in index order (frames carry series in id order) and
/// inserting an index already present, the common case for a busy series, costs one OR and no hashing.
struct SeriesSet {
    private var words: [UInt64] = []
    private(set) var count = 0

    func contains(_ index: Int) -> Bool {
        let word = index >> 6
        return word < words.count && words[word] & (1 << UInt64(index & 63)) != 0
    }

    mutating func insert(_ index: Int) {
        let word = index >> 6
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word + 1 - words.count)) }
        let bit: UInt64 = 1 << UInt64(index & 63)
        if words[word] & bit == 0 {
            words[word] |= bit
            count += 1
        }
    }

    mutating func insert(contentsOf range: Range<Int>) {
        for index in range { insert(index) }
    }

    mutating func remove(_ index: Int) {
        let word = index >> 6
        let bit: UInt64 = 1 << UInt64(index & 63)
        if word < words.count, words[word] & bit != 0 {
            words[word] &= ~bit
            count -= 1
        }
    }

    mutating func removeAll() {
        words.removeAll(keepingCapacity: true)
        count = 0
    }

    /// Calls `body` with every index in ascending order; `body` may remove the index it is given.
    func forEach(_ body: (Int) throws -> Void) rethrows {
        for (w, word) in words.enumerated() where word != 0 {
            var bits = word
            while bits != 0 {
                try body(w << 6 | bits.trailingZeroBitCount)
                bits &= bits - 1
            }
        }
    }

    /// The number of indices in `self` or `other`.
    func unionCount(with other: SeriesSet) -> Int {
        var total = 0
        for w in 0..<max(words.count, other.words.count) {
            let a = w < words.count ? words[w] : 0
            let b = w < other.words.count ? other.words[w] : 0
            total += (a | b).nonzeroBitCount
        }
        return total
    }
}

import DanubeMetricsWire
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What never changes about a series once defined: its family, where its buckets start and its label set as
/// rendered (`a="x",b="y"`, sorted, escaped). Entries are never moved or changed once written, so the live state,
/// the published state and every scrape share one copy by reference, with no copy-on-write when ingest defines
/// more series. Expiring series builds a new table (`copying`) with the survivors at the same indices and the
/// others free; only a free entry is ever written again, and no state that uses this table lists it.
///
/// Hand-written because Swift's arrays are values: sharing one between a scrape and ingest makes the next append
/// copy all of it. Entries and label bytes live in fixed pages that are allocated once and never move; only the
/// store appends (under its lock), and a reader reads entries below a count it took under that lock, so every
/// byte it reads was written before.
// @unchecked: pages never move; appended under the store's lock, read below a count taken under it.
final class SeriesTable: @unchecked Sendable {
    struct Entry {
        var family: UInt32
        var bucketStart: UInt32
        /// Page (20 bits), offset (20 bits) and length (24 bits) of the label text in `text`.
        var text: UInt64
    }

    private static let entryPageShift = 16
    private static let entryPageCount = 1 << 14 // 2^30 series
    private static let textPageBytes = 1 << 20
    private static let textPageCount = 1 << 16 // 64 GiB of label text

    private let entryPages = UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>.allocate(capacity: entryPageCount)
    private let textPages = UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>.allocate(capacity: textPageCount)
    private var textPageUsed = 0
    private var textPagesAllocated = 0
    /// Written under the store's lock.
    private(set) var count = 0

    init() {
        entryPages.initialize(repeating: nil, count: Self.entryPageCount)
        textPages.initialize(repeating: nil, count: Self.textPageCount)
    }

    deinit {
        for page in 0..<(count + (1 << Self.entryPageShift) - 1) >> Self.entryPageShift { entryPages[page]?.deallocate() }
        for page in 0..<textPagesAllocated { textPages[page]?.deallocate() }
        entryPages.deallocate()
        textPages.deallocate()
    }

    /// The family of a free entry.
    static let freeFamily = UInt32.max

    /// Appends a series; its index is the previous `count`. Call only under the store's lock.
    func append(family: Int, bucketStart: Int, text: UnsafeRawBufferPointer) -> Int {
        let index = count
        put(index, family: family, bucketStart: bucketStart, text: text)
        return index
    }

    /// Writes series `index`: the next one (`count`), or a free entry. Call only under the store's lock.
    func put(_ index: Int, family: Int, bucketStart: Int, text: UnsafeRawBufferPointer) {
        precondition(text.count < 1 << 24 && bucketStart <= UInt32.max && family < Self.freeFamily, "series too large for the table")
        precondition(index == count || (index < count && self[index].family == Self.freeFamily), "series table entry in use")
        write(index, Entry(family: UInt32(family), bucketStart: UInt32(bucketStart), text: storeText(text)))
    }

    private func write(_ index: Int, _ entry: Entry) {
        let page = index >> Self.entryPageShift
        precondition(page < Self.entryPageCount, "series table full")
        if entryPages[page] == nil { entryPages[page] = .allocate(capacity: 1 << Self.entryPageShift) }
        (entryPages[page]! + (index & ((1 << Self.entryPageShift) - 1))).initialize(to: entry)
        count = max(count, index + 1)
    }

    /// A new table holding the entries of `old` whose index `survives` says so, at the same indices, with their
    /// bucket starts from `bucketStart`; the other entries up to `old.count` are free.
    static func copying(_ old: SeriesTable, survives: (Int) -> Bool, bucketStart: (Int) -> Int) -> SeriesTable {
        let table = SeriesTable()
        for index in 0..<old.count {
            if survives(index) {
                table.put(index, family: Int(old[index].family), bucketStart: bucketStart(index), text: UnsafeRawBufferPointer(old.text(index)))
            } else {
                table.write(index, Entry(family: freeFamily, bucketStart: 0, text: 0))
            }
        }
        return table
    }

    /// A text longer than a page gets a page of its own size.
    private func storeText(_ text: UnsafeRawBufferPointer) -> UInt64 {
        var page = textPagesAllocated - 1
        if page < 0 || textPageUsed + text.count > Self.textPageBytes {
            page = textPagesAllocated
            precondition(page < Self.textPageCount, "label text pages exhausted")
            textPages[page] = .allocate(capacity: max(Self.textPageBytes, text.count))
            textPagesAllocated += 1
            textPageUsed = 0
        }
        if let base = text.baseAddress, text.count > 0 {
            (textPages[page]! + textPageUsed).initialize(from: base.assumingMemoryBound(to: UInt8.self), count: text.count)
        }
        defer { textPageUsed += text.count }
        return UInt64(page) << 44 | UInt64(textPageUsed) << 24 | UInt64(text.count)
    }

    subscript(index: Int) -> Entry {
        entryPages[index >> Self.entryPageShift]![index & ((1 << Self.entryPageShift) - 1)]
    }

    /// The label text of series `index`, in place.
    func text(_ index: Int) -> UnsafeBufferPointer<UInt8> {
        let location = self[index].text
        let start = textPages[Int(location >> 44)]! + Int((location >> 24) & 0xF_FFFF)
        return UnsafeBufferPointer(start: start, count: Int(location & 0xFF_FFFF))
    }

    func labelText(_ index: Int) -> String { String(decoding: text(index), as: UTF8.self) }

    /// The labels of series `index`, parsed back from its text (state files and derived series need them).
    func labels(_ index: Int) -> [Label] { LabelText.decode(text(index)) ?? [] }

    /// Whether series `a`'s label text sorts before series `b`'s (byte order).
    func textPrecedes(_ a: Int, _ b: Int) -> Bool {
        let x = text(a), y = text(b)
        let common = min(x.count, y.count)
        if common > 0, let p = x.baseAddress, let q = y.baseAddress {
            let order = memcmp(p, q, common)
            if order != 0 { return order < 0 }
        }
        return x.count < y.count
    }
}

/// (family, label text) -> series index, for `define`. An open-addressing table of series indices whose keys are
/// read from the `SeriesTable`, so a series costs 4 to 8 bytes here instead of a second copy of its label text
/// in a `Dictionary` key (which also doubled when the published state shared it). Used only under the store's
/// lock.
// @unchecked: used under the store's lock only.
final class SeriesIndex: @unchecked Sendable {
    /// Series index + 1; 0 is an empty slot. Capacity is a power of two, at most three quarters full.
    private var slots = [UInt32](repeating: 0, count: 1024)
    private(set) var count = 0

    private static func hash(family: Int, text: UnsafeBufferPointer<UInt8>) -> Int {
        var hasher = Hasher()
        hasher.combine(family)
        hasher.combine(bytes: UnsafeRawBufferPointer(text))
        return hasher.finalize()
    }

    /// The series of `family` whose label text is `text`, if defined.
    func find(family: Int, text: UnsafeBufferPointer<UInt8>, in table: SeriesTable) -> Int? {
        let mask = slots.count - 1
        var position = Self.hash(family: family, text: text) & mask
        while slots[position] != 0 {
            let index = Int(slots[position] - 1)
            if Int(table[index].family) == family && table.text(index).elementsEqual(text) { return index }
            position = (position + 1) & mask
        }
        return nil
    }

    /// Adds series `index` (already appended to `table`, not yet in the index).
    func insert(_ index: Int, in table: SeriesTable) {
        if (count + 1) * 4 > slots.count * 3 { grow(table) }
        place(index, in: table)
        count += 1
    }

    /// Forgets series `index` (of `table`, which still holds its entry): backward-shift deletion, so that lookups
    /// need no tombstones and an expiry costs what it removes, not what the index holds.
    func remove(_ index: Int, in table: SeriesTable) {
        let mask = slots.count - 1
        var hole = Self.hash(family: Int(table[index].family), text: table.text(index)) & mask
        while slots[hole] != UInt32(index + 1) {
            guard slots[hole] != 0 else { return }
            hole = (hole + 1) & mask
        }
        var next = (hole + 1) & mask
        while slots[next] != 0 {
            let entry = Int(slots[next] - 1)
            let home = Self.hash(family: Int(table[entry].family), text: table.text(entry)) & mask
            // The entry at `next` may move back into the hole unless its home lies cyclically in (hole, next].
            let stays = hole < next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !stays {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = 0
        count -= 1
    }

    private func place(_ index: Int, in table: SeriesTable) {
        let mask = slots.count - 1
        var position = Self.hash(family: Int(table[index].family), text: table.text(index)) & mask
        while slots[position] != 0 { position = (position + 1) & mask }
        slots[position] = UInt32(index + 1)
    }

    private func grow(_ table: SeriesTable) {
        let old = slots
        slots = [UInt32](repeating: 0, count: old.count * 2)
        for entry in old where entry != 0 { place(Int(entry - 1), in: table) }
    }
}

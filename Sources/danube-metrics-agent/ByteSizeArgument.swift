import ArgumentParser

/// A size on the command line: a number of bytes with an optional unit, KiB, MiB, GiB, TiB (or K, M, G, T, all
/// powers of 1024), e.g. `512MiB` or `2G`.
struct ByteSizeArgument: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int
    var description: String

    init?(argument: String) {
        let units = [("KiB", 0x1p10), ("MiB", 0x1p20), ("GiB", 0x1p30), ("TiB", 0x1p40), ("K", 0x1p10), ("M", 0x1p20), ("G", 0x1p30),
                     ("T", 0x1p40), ("B", 1)]
        // At most 2^62 bytes: the product must fit an Int (a conversion that would trap otherwise).
        guard let value = scaledNumber(argument, units: units), value < 4.6e18 else { return nil }
        bytes = Int(value)
        description = argument
    }
}

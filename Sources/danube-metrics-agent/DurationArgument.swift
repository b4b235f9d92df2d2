import DanubeMetricsCatalog
import ArgumentParser

/// A duration flag value: `250ms`, `15s`, `2m`, `1h`, `7d` (a bare number means seconds).
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    var duration: Duration
    var description: String

    init?(argument: String) {
        // Up to about 292 years: beyond, the nanoseconds would not fit (a conversion that would trap).
        guard let seconds = scaledNumber(argument, units: [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]),
              seconds < 9.2e9 else { return nil }
        duration = .nanoseconds(Int64(seconds * 1e9))
        description = argument
    }
}

extension CatalogMode: ExpressibleByArgument {}

/// `argument`'s number times the factor of the first of `units` it ends with (1 without one): finite, not negative.
func scaledNumber(_ argument: String, units: [(suffix: String, factor: Double)]) -> Double? {
    let unit = units.first { argument.hasSuffix($0.suffix) }
    guard let value = Double(argument.dropLast(unit?.suffix.count ?? 0)), value.isFinite, value >= 0 else { return nil }
    return value * (unit?.factor ?? 1)
}

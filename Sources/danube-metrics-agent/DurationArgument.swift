import DanubeMetricsCatalog
import ArgumentParser

/// A duration flag value: `250ms`, `15s`, `2m`, `1h`, `7d` (a bare number means seconds).
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible {
    var duration: Duration
    var description: String

    init?(argument: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = Substring(argument)
        var scale = 1.0
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            number = argument.dropLast(suffix.count)
            scale = factor
            break
        }
        // Up to about 292 years: beyond, the nanoseconds would not fit (a conversion that would trap).
        guard let value = Double(number), value.isFinite, value >= 0, value * scale < 9.2e9 else { return nil }
        duration = .nanoseconds(Int64(value * scale * 1e9))
        description = argument
    }
}

extension CatalogMode: ExpressibleByArgument {}

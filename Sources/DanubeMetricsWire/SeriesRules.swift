/// Naming rules shared by emitters (checked when a handle is resolved) and the agent (checked on DEFINE), so a
/// series that one side accepts the other accepts too. They follow the Prometheus data model.
public enum SeriesRules {
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    public static func isValidMetricName(_ name: String) -> Bool {
        isValid(name, allowColon: true)
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved for Prometheus itself).
    public static func isValidLabelName(_ name: String) -> Bool {
        isValid(name, allowColon: false) && !name.hasPrefix("__")
    }

    private static func isValid(_ name: String, allowColon: Bool) -> Bool {
        var first = true
        for byte in name.utf8 {
            let letter = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || byte == 0x5F
                || (allowColon && byte == 0x3A)
            let digit = byte >= 0x30 && byte <= 0x39
            if !(letter || (!first && digit)) { return false }
            first = false
        }
        return !first
    }

    /// Suffixes the exposition adds to histogram families; a series must not collide with them.
    static let histogramSuffixes = ["_bucket", "_sum", "_count"]

    /// Checks one definition against the naming rules and returns it with labels sorted by name.
    public static func validate(_ definition: SeriesDefinition) throws(WireError) -> SeriesDefinition {
        var result = definition
        guard isValidMetricName(definition.name) else {
            throw WireError(.invalidName, "metric name \"\(definition.name)\" does not match [a-zA-Z_:][a-zA-Z0-9_:]*")
        }
        if definition.kind != .histogram && !definition.bounds.isEmpty {
            throw WireError(.malformed, "\(definition.name) is a \(definition.kind) but has bucket bounds")
        }
        if definition.kind != .histogram && definition.native != nil {
            throw WireError(.malformed, "\(definition.name) is a \(definition.kind) but has native buckets")
        }
        if let problem = definition.native?.problem() {
            throw WireError(.malformed, "\(definition.name): \(problem)")
        }
        if definition.kind == .histogram {
            if let suffix = histogramSuffixes.first(where: { definition.name.hasSuffix($0) }) {
                throw WireError(.invalidName, "histogram name \(definition.name) ends in \(suffix), which its own samples use")
            }
            for (i, bound) in definition.bounds.enumerated() where !bound.isFinite || (i > 0 && definition.bounds[i - 1] >= bound) {
                throw WireError(.malformed, "bucket bounds of \(definition.name) must be finite and strictly increasing")
            }
        }
        result.labels.sort()
        for (i, label) in result.labels.enumerated() {
            guard isValidLabelName(label.name) else {
                throw WireError(.invalidName, "label name \"\(label.name)\" of \(definition.name) is not a valid Prometheus label name")
            }
            if i > 0 && result.labels[i - 1].name == label.name {
                throw WireError(.invalidName, "label \(label.name) appears twice on \(definition.name)")
            }
            if definition.kind == .histogram && label.name == "le" {
                throw WireError(.invalidName, "histogram \(definition.name) may not carry the label le, which its buckets use")
            }
        }
        return result
    }
}

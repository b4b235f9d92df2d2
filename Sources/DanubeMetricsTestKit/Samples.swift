/// The samples of a Prometheus text exposition, keyed by `name{labels as rendered}`; labels are sorted by the
/// agent, so keys are stable.
public struct Samples {
    public var values: [String: Double] = [:]
    public var lines: [String] = []

    public init(parsing text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            lines.append(String(line))
            guard let space = line.lastIndex(of: " ") else { continue }
            let value = line[line.index(after: space)...]
            values[String(line[..<space])] = value == "+Inf" ? .infinity : Double(value)
        }
    }

    public subscript(_ key: String) -> Double? { values[key] }

    /// Sum over every sample of `name` whose labels include all of `matching`.
    public func sum(_ name: String, matching: [String] = []) -> Double {
        values.filter { key, _ in
            (key == name || key.hasPrefix(name + "{")) && matching.allSatisfy { key.contains($0) }
        }.values.reduce(0, +)
    }
}

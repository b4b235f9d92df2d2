import DanubeMetricsWire

/// The samples of a 0.0.4 text scrape with their labels unescaped and sorted, to compare with what a remote write
/// receiver stores (`ExpositionWriter`'s output, not arbitrary text).
enum ShownSamples {
    struct Sample: Equatable {
        var name: String
        /// Sorted by name, as remote write wants them.
        var labels: [Label]
        var value: Double
    }

    static func samples(fromText text: [UInt8]) -> [Sample] {
        var samples: [Sample] = []
        for line in text.split(separator: UInt8(ascii: "\n")) where line.first != UInt8(ascii: "#") {
            if let sample = sample(Array(line)) { samples.append(sample) }
        }
        return samples
    }

    /// `name{a="x",b="y\"z"} value`, or nil for a line that does not read that way.
    static func sample(_ line: [UInt8]) -> Sample? {
        var index = 0
        while index < line.count, line[index] != UInt8(ascii: "{"), line[index] != UInt8(ascii: " ") { index += 1 }
        let name = String(decoding: line[0..<index], as: UTF8.self)
        var labels: [Label] = []
        if index < line.count, line[index] == UInt8(ascii: "{") {
            index += 1
            while index < line.count, line[index] != UInt8(ascii: "}") {
                let nameStart = index
                while index < line.count, line[index] != UInt8(ascii: "=") { index += 1 }
                let labelName = String(decoding: line[nameStart..<index], as: UTF8.self)
                guard index + 1 < line.count, line[index + 1] == UInt8(ascii: "\"") else { return nil }
                index += 2
                var value: [UInt8] = []
                while index < line.count, line[index] != UInt8(ascii: "\"") {
                    if line[index] == UInt8(ascii: "\\"), index + 1 < line.count {
                        index += 1
                        value.append(line[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : line[index])
                    } else {
                        value.append(line[index])
                    }
                    index += 1
                }
                guard index < line.count else { return nil }
                index += 1
                if index < line.count, line[index] == UInt8(ascii: ",") { index += 1 }
                labels.append(Label(labelName, String(decoding: value, as: UTF8.self)))
            }
            index += 1
        }
        guard !name.isEmpty, index < line.count, line[index] == UInt8(ascii: " ") else { return nil }
        let rest = line[(index + 1)...].split(separator: UInt8(ascii: " ")).first.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let value: Double? = switch rest {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(rest)
        }
        guard let value else { return nil }
        return Sample(name: name, labels: labels.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }, value: value)
    }
}

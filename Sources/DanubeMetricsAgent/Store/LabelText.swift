import DanubeMetricsWire

/// A series' label set as the store keeps it, once, in its table: `a="x",b="y"`, sorted by name, values escaped
/// as the text formats write them (so the text encoders copy it as it is, and the protobuf and remote write
/// encoders read the pairs off it). The store's identity of a series is this text; it is not exposition.
public enum LabelText {
    /// A sorted label set as `a="x",b="y"`, label values escaped.
    public static func encode(_ labels: [Label]) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for (i, label) in labels.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += label.name.utf8
            bytes += "=\"".utf8
            escape(label.value, quotes: true, into: &bytes)
            bytes.append(UInt8(ascii: "\""))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The labels of a label set `encode` wrote (the inverse: escapes undone); nil for text it could not have
    /// written.
    public static func decode(_ text: String) -> [Label]? {
        var text = text
        return text.withUTF8 { decode($0) }
    }

    /// As `decode(_:)`, from the text's bytes in place (a value without escapes is decoded straight from them:
    /// checkpoints parse every changed series' labels back).
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>) -> [Label]? {
        var labels: [Label] = []
        labels.reserveCapacity(bytes.reduce(0) { $0 + ($1 == UInt8(ascii: "=") ? 1 : 0) })
        var position = 0
        let end = bytes.count
        while position < end {
            guard let equals = bytes[position...].firstIndex(of: UInt8(ascii: "=")), equals + 1 < end,
                  bytes[equals + 1] == UInt8(ascii: "\"") else { return nil }
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[position..<equals]), as: UTF8.self)
            let start = equals + 2
            var index = start
            var escaped = false
            while index < end, bytes[index] != UInt8(ascii: "\"") {
                if bytes[index] == UInt8(ascii: "\\") {
                    escaped = true
                    index += 1
                }
                index += 1
            }
            guard index < end else { return nil }
            let raw = UnsafeBufferPointer(rebasing: bytes[start..<index])
            guard let value = escaped ? unescape(raw) : String(decoding: raw, as: UTF8.self) else { return nil }
            labels.append(Label(name, value))
            position = index + 1
            if position < end {
                guard bytes[position] == UInt8(ascii: ","), position + 1 < end else { return nil }
                position += 1
            }
        }
        return labels
    }

    /// A label value with `\\`, `\"` and `\n` escapes undone; nil for any other escape.
    private static func unescape(_ raw: UnsafeBufferPointer<UInt8>) -> String? {
        var value: [UInt8] = []
        value.reserveCapacity(raw.count)
        var index = 0
        while index < raw.count {
            var byte = raw[index]
            if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < raw.count else { return nil }
                switch raw[index] {
                case UInt8(ascii: "n"): byte = UInt8(ascii: "\n")
                case UInt8(ascii: "\\"), UInt8(ascii: "\""): byte = raw[index]
                default: return nil
                }
            }
            value.append(byte)
            index += 1
        }
        return String(decoding: value, as: UTF8.self)
    }

    /// `name{label="value",...}` as PromQL selects it: how logs name a series.
    static func selector(_ name: String, _ labels: [Label]) -> String {
        "\(name){\(encode(labels))}"
    }

    /// `\\` and newline escaped, and `"` with `quotes`: label values; HELP texts (quotes only in OpenMetrics).
    static func escape(_ text: String, quotes: Bool, into out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\"") where quotes: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
            default: out.append(byte)
            }
        }
    }
}

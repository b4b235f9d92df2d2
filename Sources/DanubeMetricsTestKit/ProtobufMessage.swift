/// Reads protobuf messages field by field: enough to check what the agent's protobuf exposition holds (tests and
/// the chaos tool; the agent writes protobuf by hand and a second hand-written reader is the independent check).
public struct ProtobufMessage {
    public enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes([UInt8])
    }

    public var fields: [(number: Int, value: Value)] = []

    public init(_ bytes: ArraySlice<UInt8>) {
        var at = bytes.startIndex
        func varint() -> UInt64 {
            var value: UInt64 = 0, shift: UInt64 = 0
            while at < bytes.endIndex {
                let byte = bytes[at]
                at += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            return value
        }
        while at < bytes.endIndex {
            let key = varint()
            switch key & 7 {
            case 0: fields.append((Int(key >> 3), .varint(varint())))
            case 1:
                let word = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
                at += 8
                fields.append((Int(key >> 3), .fixed64(word)))
            case 2:
                let length = Int(varint())
                fields.append((Int(key >> 3), .bytes(Array(bytes[at..<(at + length)]))))
                at += length
            default: return
            }
        }
    }

    /// Length-delimited messages of a delimited stream (`encoding=delimited`).
    public static func delimited(_ stream: [UInt8]) -> [ProtobufMessage] {
        var messages: [ProtobufMessage] = [], at = 0
        while at < stream.count {
            var length = 0, shift = 0
            while true {
                let byte = stream[at]
                at += 1
                length |= Int(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            messages.append(ProtobufMessage(stream[at..<(at + length)]))
            at += length
        }
        return messages
    }

    public func messages(_ number: Int) -> [ProtobufMessage] {
        fields.compactMap { if $0.number == number, case .bytes(let b) = $0.value { ProtobufMessage(b[...]) } else { nil } }
    }
    public func string(_ number: Int) -> String? {
        fields.lazy.compactMap { if $0.number == number, case .bytes(let b) = $0.value { String(decoding: b, as: UTF8.self) } else { nil } }.first
    }
    public func varints(_ number: Int) -> [UInt64] {
        fields.compactMap { if $0.number == number, case .varint(let v) = $0.value { v } else { nil } }
    }
    public func varint(_ number: Int) -> UInt64? { varints(number).first }
    public func sint(_ number: Int) -> Int64? { varint(number).map(Self.unzigzag) }
    public func double(_ number: Int) -> Double? {
        fields.lazy.compactMap { if $0.number == number, case .fixed64(let w) = $0.value { Double(bitPattern: w) } else { nil } }.first
    }
    public static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }

    /// A native histogram's buckets by Prometheus index (from `Histogram` fields 12 and 13), or nil without a schema.
    public var nativeBuckets: [Int: UInt64]? {
        guard varint(5) != nil else { return nil }
        var buckets: [Int: UInt64] = [:]
        var deltas = varints(13).map(Self.unzigzag).makeIterator()
        // The first span's offset is the first index; a later one's is the gap after the previous span.
        var index = 0, count: Int64 = 0
        for span in messages(12) {
            index += Int(span.sint(1) ?? 0)
            for _ in 0..<(span.varint(2) ?? 0) {
                count += deltas.next() ?? 0
                buckets[index] = UInt64(count)
                index += 1
            }
        }
        return buckets
    }

    /// The `Histogram` of the series of `family` whose labels include `labels`, from a delimited stream.
    public static func histogram(in stream: [UInt8], family: String, labels: [String: String] = [:]) -> ProtobufMessage? {
        for message in delimited(stream) where message.string(1) == family {
            for metric in message.messages(4) {
                let pairs = Dictionary(metric.messages(1).map { ($0.string(1) ?? "", $0.string(2) ?? "") }, uniquingKeysWith: { a, _ in a })
                if labels.allSatisfy({ pairs[$0.key] == $0.value }) { return metric.messages(7).first }
            }
        }
        return nil
    }

    /// Every histogram of every family whose name `matches`, from a delimited stream: (family, histogram).
    public static func histograms(in stream: [UInt8], where matches: (String) -> Bool) -> [(family: String, histogram: ProtobufMessage)] {
        delimited(stream).flatMap { family -> [(family: String, histogram: ProtobufMessage)] in
            guard let name = family.string(1), matches(name) else { return [] }
            return family.messages(4).compactMap { metric in metric.messages(7).first.map { (name, $0) } }
        }
    }
}

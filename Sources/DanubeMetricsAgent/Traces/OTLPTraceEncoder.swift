import DanubeMetricsWire

/// Spans as OTLP's `ExportTraceServiceRequest` (opentelemetry-proto `collector/trace/v1`), protobuf bytes for
/// `POST /v1/traces`. Written by hand with the primitives the other encoders share: the message is a handful of
/// fields, and generating it with swift-protobuf would copy every span into generated types first. The test
/// decodes these bytes with the official `opentelemetry-proto` Python package.
enum OTLPTraceEncoder {
    private typealias P = ProtobufPrimitives

    /// One request holding `groups` (a resource and its spans each), in one scope named after the agent.
    static func request(_ groups: [(resource: [SpanAttribute], spans: ArraySlice<SpanRecord>)]) -> [UInt8] {
        var out: [UInt8] = []
        for group in groups {
            message(1, into: &out) { resourceSpans in
                message(1, into: &resourceSpans) { resource in
                    for attribute in group.resource { message(1, into: &resource) { keyValue(attribute, into: &$0) } }
                }
                message(2, into: &resourceSpans) { scopeSpans in
                    message(1, into: &scopeSpans) { scope in
                        string(1, "danube-metrics-agent", into: &scope)
                        string(2, Agent.version, into: &scope)
                    }
                    for span in group.spans { message(2, into: &scopeSpans) { encode(span, into: &$0) } }
                }
            }
        }
        return out
    }

    private static func encode(_ span: SpanRecord, into out: inout [UInt8]) {
        bytes(1, id(span.traceID.high) + id(span.traceID.low), into: &out)
        bytes(2, id(span.spanID), into: &out)
        if !span.traceState.isEmpty { string(3, span.traceState, into: &out) }
        if span.parentSpanID != 0 { bytes(4, id(span.parentSpanID), into: &out) }
        string(5, span.name, into: &out)
        if span.kind != .unspecified { varint(6, UInt64(span.kind.rawValue), into: &out) }
        fixed64(7, span.startUnixNanos, into: &out)
        fixed64(8, span.startUnixNanos &+ span.durationNanos, into: &out)
        for attribute in span.attributes { message(9, into: &out) { keyValue(attribute, into: &$0) } }
        for event in span.events {
            message(11, into: &out) { encoded in
                fixed64(1, span.startUnixNanos &+ event.offsetNanos, into: &encoded)
                string(2, event.name, into: &encoded)
                for attribute in event.attributes { message(3, into: &encoded) { keyValue(attribute, into: &$0) } }
            }
        }
        if span.status != .unset || !span.statusMessage.isEmpty {
            message(15, into: &out) { status in
                if !span.statusMessage.isEmpty { string(2, span.statusMessage, into: &status) }
                if span.status != .unset { varint(3, UInt64(span.status.rawValue), into: &status) }
            }
        }
        // Span.flags: W3C trace flags (sampled: every span sent is), and whether the parent is remote.
        tag(16, 5, into: &out)
        let flags: UInt32 = 0x01 | 0x100 | (span.parentIsRemote ? 0x200 : 0)
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: flags >> UInt32(shift))) }
    }

    /// The fields of `KeyValue { key = 1; AnyValue value = 2 }`, `AnyValue { string 1 | bool 2 | int64 3 | double 4 }`.
    private static func keyValue(_ attribute: SpanAttribute, into out: inout [UInt8]) {
        string(1, attribute.key, into: &out)
        message(2, into: &out) { value in
            switch attribute.value {
            case .string(let text): string(1, text, into: &value)
            case .bool(let flag): varint(2, flag ? 1 : 0, into: &value)
            case .int(let number): varint(3, UInt64(bitPattern: number), into: &value)
            case .double(let number):
                tag(4, 1, into: &value)
                P.double(number, into: &value)
            }
        }
    }

    private static func id(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> UInt64(56 - 8 * $0)) }
    }

    private static func tag(_ field: UInt64, _ type: UInt64, into out: inout [UInt8]) { P.varint(field << 3 | type, into: &out) }

    private static func varint(_ field: UInt64, _ value: UInt64, into out: inout [UInt8]) {
        tag(field, 0, into: &out)
        P.varint(value, into: &out)
    }

    private static func fixed64(_ field: UInt64, _ value: UInt64, into out: inout [UInt8]) {
        tag(field, 1, into: &out)
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    private static func bytes(_ field: UInt64, _ value: [UInt8], into out: inout [UInt8]) {
        tag(field, 2, into: &out)
        P.varint(UInt64(value.count), into: &out)
        out += value
    }

    private static func string(_ field: UInt64, _ value: String, into out: inout [UInt8]) { bytes(field, Array(value.utf8), into: &out) }

    /// A length-delimited field whose body `fill` writes.
    private static func message(_ field: UInt64, into out: inout [UInt8], _ fill: (inout [UInt8]) -> Void) {
        var body: [UInt8] = []
        fill(&body)
        bytes(field, body, into: &out)
    }

    /// `rejected_spans` of an `ExportTraceServiceResponse`'s `partial_success` (field 1 { int64 rejected_spans = 1;
    /// string error_message = 2 }), and its message; (0, "") when there is none or the bytes do not parse.
    static func partialSuccess(_ response: [UInt8]) -> (rejected: Int64, message: String) {
        var reader = ProtobufReader(response)
        while let (field, value) = reader.next() {
            guard field == 1, case .bytes(let partial) = value else { continue }
            var inner = ProtobufReader(partial)
            var result: (Int64, String) = (0, "")
            while let (field, value) = inner.next() {
                switch (field, value) {
                case (1, .varint(let count)): result.0 = Int64(bitPattern: count)
                case (2, .bytes(let text)): result.1 = String(decoding: text, as: UTF8.self)
                default: break
                }
            }
            return result
        }
        return (0, "")
    }
}

/// Reads top-level protobuf fields; stops (nil) at the end or at anything malformed.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case bytes([UInt8])
        case fixed
    }

    private let data: [UInt8]
    private var at = 0

    init(_ data: [UInt8]) { self.data = data }

    private mutating func varint() -> UInt64? {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            guard at < data.count else { return nil }
            let byte = data[at]
            at += 1
            value |= UInt64(byte & 0x7F) << UInt64(shift)
            if byte & 0x80 == 0 { return value }
        }
        return nil
    }

    mutating func next() -> (UInt64, Value)? {
        guard at < data.count, let key = varint() else { return nil }
        switch key & 7 {
        case 0:
            return varint().map { (key >> 3, .varint($0)) }
        case 1, 5:
            let size = key & 7 == 1 ? 8 : 4
            guard data.count - at >= size else { return nil }
            at += size
            return (key >> 3, .fixed)
        case 2:
            guard let length = varint(), length <= UInt64(data.count - at) else { return nil }
            defer { at += Int(length) }
            return (key >> 3, .bytes(Array(data[at..<at + Int(length)])))
        default:
            return nil
        }
    }
}

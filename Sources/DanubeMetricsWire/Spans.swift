/// Finished trace spans (protocol version 4, frame SPANS): what an emitter recorded for a sampled trace, sent
/// best effort (no sequence, no acknowledgement) and exported by the agent with OTLP. Field for field what an
/// OTLP span holds, so the agent's export is a re-encoding; ids are the raw bytes of W3C trace context.

/// 16 bytes, as in `traceparent` (the high half first); never all zero.
public struct TraceID: Sendable, Hashable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public var isValid: Bool { high != 0 || low != 0 }
    /// 32 lowercase hex digits.
    public var description: String { SpanID.hex(high) + SpanID.hex(low) }
}

/// 8 bytes; 0 means none (a root span's parent).
public enum SpanID {
    /// 16 lowercase hex digits.
    public static func hex(_ id: UInt64) -> String {
        let digits = String(id, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}

/// OTLP's span kinds, with their numbers.
public enum SpanKind: UInt8, Sendable, CaseIterable {
    case unspecified = 0, `internal` = 1, server = 2, client = 3, producer = 4, consumer = 5
}

/// OTLP's status codes.
public enum SpanStatus: UInt8, Sendable {
    case unset = 0, ok = 1, error = 2
}

public enum AttributeValue: Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    var typeByte: UInt8 {
        switch self {
        case .string: 1
        case .int: 2
        case .double: 3
        case .bool: 4
        }
    }
}

public struct SpanAttribute: Sendable, Equatable {
    public var key: String
    public var value: AttributeValue

    public init(_ key: String, _ value: AttributeValue) {
        self.key = key
        self.value = value
    }
}

public struct SpanEvent: Sendable, Equatable {
    public var name: String
    /// After the span's start; at most its duration.
    public var offsetNanos: UInt64
    public var attributes: [SpanAttribute]

    public init(name: String, offsetNanos: UInt64, attributes: [SpanAttribute] = []) {
        self.name = name
        self.offsetNanos = offsetNanos
        self.attributes = attributes
    }
}

public struct SpanRecord: Sendable, Equatable {
    public var traceID: TraceID
    public var spanID: UInt64
    /// 0 for a root span.
    public var parentSpanID: UInt64
    public var kind: SpanKind
    /// The parent came from another process (a `traceparent` the broker received).
    public var parentIsRemote: Bool
    public var name: String
    public var startUnixNanos: UInt64
    public var durationNanos: UInt64
    public var status: SpanStatus
    public var statusMessage: String
    /// W3C `tracestate`, as received (empty when none).
    public var traceState: String
    public var attributes: [SpanAttribute]
    public var events: [SpanEvent]

    public init(traceID: TraceID, spanID: UInt64, parentSpanID: UInt64 = 0, kind: SpanKind = .internal, parentIsRemote: Bool = false,
                name: String, startUnixNanos: UInt64, durationNanos: UInt64, status: SpanStatus = .unset, statusMessage: String = "",
                traceState: String = "", attributes: [SpanAttribute] = [], events: [SpanEvent] = []) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.kind = kind
        self.parentIsRemote = parentIsRemote
        self.name = name
        self.startUnixNanos = startUnixNanos
        self.durationNanos = durationNanos
        self.status = status
        self.statusMessage = statusMessage
        self.traceState = traceState
        self.attributes = attributes
        self.events = events
    }
}

/// A decoded SPANS frame: attributes of the emitting process (OTLP resource attributes beyond what the agent
/// knows of the source), then spans.
public struct SpanBatch: Sendable, Equatable {
    public var resource: [SpanAttribute]
    public var spans: [SpanRecord]

    public init(resource: [SpanAttribute] = [], spans: [SpanRecord] = []) {
        self.resource = resource
        self.spans = spans
    }
}

/// Limits of SPANS frames (beyond the frame size).
public enum SpanLimits {
    public static let maxNameBytes = 128
    public static let maxAttributes = 32
    public static let maxEvents = 16
    public static let maxEventAttributes = 8
    public static let maxKeyBytes = 100
    public static let maxStringValueBytes = 256
    public static let maxStatusMessageBytes = 256
    /// W3C trace context's bound on `tracestate`.
    public static let maxTraceStateBytes = 512
}

extension FrameEncoder {
    public static func encode(_ attributes: [SpanAttribute], into writer: inout ByteWriter) {
        writer.uvarint(UInt64(attributes.count))
        for attribute in attributes {
            writer.string(attribute.key)
            writer.u8(attribute.value.typeByte)
            switch attribute.value {
            case .string(let value): writer.string(value)
            case .int(let value): writer.u64(UInt64(bitPattern: value))
            case .double(let value): writer.f64(value)
            case .bool(let value): writer.u8(value ? 1 : 0)
            }
        }
    }

    public static func encode(_ span: SpanRecord, into writer: inout ByteWriter) {
        writer.u64(span.traceID.high.bigEndian)
        writer.u64(span.traceID.low.bigEndian)
        writer.u64(span.spanID.bigEndian)
        writer.u64(span.parentSpanID.bigEndian)
        writer.u8(span.kind.rawValue)
        writer.u8(span.parentIsRemote ? 1 : 0)
        writer.string(span.name)
        writer.uvarint(span.startUnixNanos)
        writer.uvarint(span.durationNanos)
        writer.u8(span.status.rawValue)
        writer.string(span.statusMessage)
        writer.string(span.traceState)
        encode(span.attributes, into: &writer)
        writer.uvarint(UInt64(span.events.count))
        for event in span.events {
            writer.string(event.name)
            writer.uvarint(event.offsetNanos)
            encode(event.attributes, into: &writer)
        }
    }
}

extension FrameDecoder {
    func decodeSpans(_ reader: inout ByteReader) throws(WireError) -> SpanBatch {
        var batch = SpanBatch(resource: try attributes(&reader, limit: SpanLimits.maxAttributes, of: "the resource"))
        while !reader.isAtEnd {
            let traceID = TraceID(high: UInt64(bigEndian: try reader.u64("trace id")), low: UInt64(bigEndian: try reader.u64("trace id")))
            let spanID = UInt64(bigEndian: try reader.u64("span id"))
            let parent = UInt64(bigEndian: try reader.u64("parent span id"))
            guard traceID.isValid, spanID != 0 else { throw WireError(.malformed, "a span's trace id and span id may not be zero") }
            guard let kind = SpanKind(rawValue: try reader.u8("span kind")) else { throw WireError(.malformed, "unknown span kind") }
            let flags = try reader.u8("span flags")
            guard flags <= 1 else { throw WireError(.malformed, "reserved span flags 0x\(String(flags, radix: 16)) are set") }
            let name = try reader.string("span name", limit: SpanLimits.maxNameBytes)
            guard !name.isEmpty else { throw WireError(.malformed, "a span has no name") }
            let start = try reader.uvarint("span start")
            let duration = try reader.uvarint("span duration")
            guard let status = SpanStatus(rawValue: try reader.u8("span status")) else {
                throw WireError(.malformed, "unknown status of span \(name)")
            }
            var span = SpanRecord(
                traceID: traceID, spanID: spanID, parentSpanID: parent, kind: kind, parentIsRemote: flags == 1, name: name,
                startUnixNanos: start, durationNanos: duration, status: status,
                statusMessage: try reader.string("status message of span \(name)", limit: SpanLimits.maxStatusMessageBytes),
                traceState: try reader.string("tracestate of span \(name)", limit: SpanLimits.maxTraceStateBytes))
            span.attributes = try attributes(&reader, limit: SpanLimits.maxAttributes, of: "span \(name)")
            let events = try reader.uvarint("event count of span \(name)")
            guard events <= UInt64(SpanLimits.maxEvents) else {
                throw WireError(.limitExceeded, "span \(name) has \(events) events, the limit is \(SpanLimits.maxEvents)")
            }
            for _ in 0..<Int(events) {
                let eventName = try reader.string("event name of span \(name)", limit: SpanLimits.maxNameBytes)
                let offset = try reader.uvarint("event time of span \(name)")
                guard offset <= duration else { throw WireError(.malformed, "event \(eventName) is after the end of span \(name)") }
                span.events.append(SpanEvent(name: eventName, offsetNanos: offset,
                                             attributes: try attributes(&reader, limit: SpanLimits.maxEventAttributes, of: "event \(eventName)")))
            }
            batch.spans.append(span)
        }
        return batch
    }

    private func attributes(_ reader: inout ByteReader, limit: Int, of owner: String) throws(WireError) -> [SpanAttribute] {
        let count = try reader.uvarint("attribute count of \(owner)")
        guard count <= UInt64(limit) else { throw WireError(.limitExceeded, "\(owner) has \(count) attributes, the limit is \(limit)") }
        var attributes: [SpanAttribute] = []
        attributes.reserveCapacity(Int(count))
        for _ in 0..<Int(count) {
            let key = try reader.string("attribute key of \(owner)", limit: SpanLimits.maxKeyBytes)
            guard !key.isEmpty else { throw WireError(.malformed, "an attribute of \(owner) has an empty key") }
            let value: AttributeValue
            switch try reader.u8("attribute type of \(key)") {
            case 1: value = .string(try reader.string("value of \(key)", limit: SpanLimits.maxStringValueBytes))
            case 2: value = .int(Int64(bitPattern: try reader.u64("value of \(key)")))
            case 3: value = .double(try reader.f64("value of \(key)"))
            case 4:
                let byte = try reader.u8("value of \(key)")
                guard byte <= 1 else { throw WireError(.malformed, "boolean \(key) is \(byte)") }
                value = .bool(byte == 1)
            case let type: throw WireError(.malformed, "attribute \(key) has unknown type \(type)")
            }
            attributes.append(SpanAttribute(key, value))
        }
        return attributes
    }
}

import DanubeMetricsWire

/// Identifies a span and carries its trace's sampling decision: what a span hands to a child on another thread,
/// or in another process through W3C trace context (`traceparent`, `tracestate`). The Rust crate's
/// `SpanContext`, the same rules.
public struct SpanContext: Sendable, Equatable {
    public var traceID: TraceID
    public var spanID: UInt64
    /// Decided once at the trace's root (or by the remote parent) and inherited.
    public var sampled: Bool
    /// It came from another process (parsed from a `traceparent`).
    public var remote: Bool
    /// W3C `tracestate`, as received.
    public var traceState: String?

    public init(traceID: TraceID, spanID: UInt64, sampled: Bool, remote: Bool = false, traceState: String? = nil) {
        self.traceID = traceID
        self.spanID = spanID
        self.sampled = sampled
        self.remote = remote
        self.traceState = traceState
    }

    /// Why a `traceparent` or `tracestate` was not taken.
    public enum ParseError: Error, Equatable, Sendable {
        /// Not `version-traceid-parentid-flags` in lowercase hex of the right lengths.
        case malformed
        /// Version `ff`, or an all-zero trace or span id.
        case invalid
        /// A `tracestate` longer than the 512 bytes W3C allows.
        case traceStateTooLong
    }

    /// Parses a W3C `traceparent` (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`) and an optional
    /// `tracestate`. A later version is read by its first four fields, as the spec asks.
    public init(traceparent: String, tracestate: String? = nil) throws(ParseError) {
        let fields = traceparent.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard fields.count >= 4, fields[0].utf8.count == 2, fields[3].utf8.count == 2,
              let version = UInt8(fields[0], radix: 16), let flags = UInt8(fields[3], radix: 16),
              fields.count == 4 || version != 0, fields[1].utf8.count == 32,
              let high = Self.hex(fields[1].prefix(16)), let low = Self.hex(fields[1].suffix(16)), let span = Self.hex(Substring(fields[2])) else {
            throw .malformed
        }
        guard version != 0xFF, high != 0 || low != 0, span != 0 else { throw .invalid }
        let state = tracestate.map { $0.trimmingWhitespace() }.flatMap { $0.isEmpty ? nil : $0 }
        if let state, state.utf8.count > SpanLimits.maxTraceStateBytes { throw .traceStateTooLong }
        self.init(traceID: TraceID(high: high, low: low), spanID: span, sampled: flags & 1 == 1, remote: true, traceState: state)
    }

    /// This context as a `traceparent` to send on (version 00).
    public var traceparent: String { "00-\(traceID)-\(SpanID.hex(spanID))-\(sampled ? "01" : "00")" }

    private static func hex(_ text: Substring) -> UInt64? {
        guard text.utf8.count == 16, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else { return nil }
        return UInt64(text, radix: 16)
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}

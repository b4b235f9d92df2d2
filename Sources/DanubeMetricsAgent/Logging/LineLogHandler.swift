#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import NIOCore

/// A swift-log handler that writes one line per entry to standard error, as logfmt (`ts=... level=info
/// logger=danube.metrics.agent msg="agent ready" http=127.0.0.1:9470`, the format of Prometheus' own tools) or
/// as a JSON object, for log shippers. swift-log's `StreamLogHandler` writes neither (its lines put the message
/// after unquoted metadata and tag each with the source module), and no maintained back end in reach does, so
/// this one is written here: a few dozen lines of formatting.
///
/// Every entry is one `write(2)` of a whole line, so lines from several threads never interleave. Keys are the
/// metadata keys, sorted; values are quoted (logfmt) when they hold a space, `=`, a quote or a control character,
/// or are empty.
public struct LineLogHandler: LogHandler {
    public enum Format: Sendable {
        case logfmt, json
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let format: Format
    private let descriptor: Int32

    public init(label: String, format: Format, descriptor: Int32 = STDERR_FILENO, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.format = format
        self.descriptor = descriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        if let error = event.error, merged["error"] == nil { merged["error"] = "\(error)" }
        var bytes = Array((Self.line(format, label: label, level: event.level, message: event.message, metadata: merged) + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written > 0 { offset += written } else if written < 0 && errno == EINTR { continue } else { return }
        }
    }

    /// One entry as `format` writes it (without the newline): `ts`, `level`, `logger` and `msg`, then the
    /// metadata sorted by key.
    public static func line(_ format: Format, label: String, level: Logger.Level, message: Logger.Message,
                            metadata: Logger.Metadata) -> String {
        let fields = [("ts", timestamp()), ("level", "\(level)"), ("logger", label), ("msg", "\(message)")]
            + metadata.sorted { $0.key < $1.key }.map { ($0.key, text($0.value)) }
        return format == .logfmt ? logfmt(fields) : json(fields)
    }

    /// `key=value` pairs separated by spaces; a value quoted (with `\` escapes) when it needs to be.
    static func logfmt(_ fields: [(String, String)]) -> String {
        fields.map { key, value in "\(key)=\(needsQuotes(value) ? quoted(value) : value)" }.joined(separator: " ")
    }

    /// One JSON object, every value a string.
    static func json(_ fields: [(String, String)]) -> String {
        "{" + fields.map { key, value in "\(quoted(key)):\(quoted(value))" }.joined(separator: ",") + "}"
    }

    static func needsQuotes(_ value: String) -> Bool {
        value.isEmpty || value.unicodeScalars.contains { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7F }
    }

    /// `value` in double quotes, with the escapes logfmt and JSON share.
    static func quoted(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u00" + String(scalar.value, radix: 16).leftPadded(to: 2)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    /// Nested metadata as logfmt-safe text: lists joined by commas, dictionaries as `key:value` pairs.
    static func text(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return text
        case .stringConvertible(let convertible): return convertible.description
        case .array(let items): return items.map(text).joined(separator: ",")
        case .dictionary(let pairs): return pairs.sorted { $0.key < $1.key }.map { "\($0.key):\(text($0.value))" }.joined(separator: ",")
        }
    }

    /// The current time as RFC 3339 in UTC with milliseconds (`2026-12-02T01:30:00.123Z`).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { String(value).leftPadded(to: 2, with: "0") }
        let millis = String(now.tv_nsec / 1_000_000).leftPadded(to: 3, with: "0")
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millis)Z"
    }
}

extension String {
    fileprivate func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}

extension SocketAddress {
    /// `127.0.0.1:9470`, `[::1]:9470` or a socket path: how an operator writes an address (NIO's description
    /// reads `[IPv4]127.0.0.1/127.0.0.1:9470`).
    public var hostAndPort: String {
        switch self {
        case .v4:
            return "\(ipAddress ?? "?"):\(port ?? 0)"
        case .v6:
            return "[\(ipAddress ?? "?")]:\(port ?? 0)"
        case .unixDomainSocket:
            return pathname ?? "unix socket"
        }
    }
}

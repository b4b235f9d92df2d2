#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd
import Logging

/// A swift-log handler that writes structured entries to journald with `sd_journal_sendv`: MESSAGE, PRIORITY
/// (from the level), SYSLOG_IDENTIFIER, CODE_FILE/CODE_LINE/CODE_FUNC, the logger label as LOGGER, and every
/// metadata key as a journal field (upper-cased, anything outside `[A-Z0-9_]` turned into `_`), so
/// `journalctl -u danube-metrics-agent SOURCE=danube-broker` finds a source's entries.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let identifier: String

    public init(label: String, identifier: String, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.identifier = identifier
        self.metadataProvider = metadataProvider
    }

    /// Where journald receives native entries (libsystemd's fixed path).
    public static let socketPath = "/run/systemd/journal/socket"

    /// Whether a journald listens at `path`: entries sent with `sd_journal_sendv` otherwise vanish silently, so
    /// the agent checks before choosing this handler. Connects a datagram socket and sends nothing.
    public static func isReachable(path: String = socketPath) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "SYSLOG_IDENTIFIER=\(identifier)",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
            "LOGGER=\(label)",
        ]
        for (key, value) in merged {
            let name = Self.fieldName(key)
            guard !Self.reserved.contains(name) else { continue }
            fields.append("\(name)=\(value)")
        }
        Self.send(fields)
    }

    /// Syslog priorities as journald uses them.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// A valid journal field name for a metadata key: `[A-Z0-9_]`, not starting with `_` or a digit, at most
    /// 64 characters.
    public static func fieldName(_ key: String) -> String {
        var name = String(key.uppercased().unicodeScalars.map { scalar -> Character in
            (scalar >= "A" && scalar <= "Z") || (scalar >= "0" && scalar <= "9") ? Character(scalar) : "_"
        })
        while name.hasPrefix("_") { name.removeFirst() }
        if name.isEmpty || name.first!.isNumber { name = "F_" + name }
        return String(name.prefix(64))
    }

    /// Fields this handler sets itself; metadata never overrides them.
    static let reserved: Set<String> = [
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "LOGGER",
    ]

    private static func send(_ fields: [String]) {
        // One buffer for all fields, one iovec per field (no newline escaping needed: iovecs carry lengths).
        var storage: [UInt8] = []
        var ranges: [Range<Int>] = []
        for field in fields {
            let start = storage.count
            storage.append(contentsOf: field.utf8)
            ranges.append(start..<storage.count)
        }
        storage.withUnsafeBytes { base in
            let vectors = ranges.map { iovec(iov_base: UnsafeMutableRawPointer(mutating: base.baseAddress! + $0.lowerBound), iov_len: $0.count) }
            _ = sd_journal_sendv(vectors, Int32(vectors.count))
        }
    }

    /// True when stderr is connected to journald (`JOURNAL_STREAM` names stderr's device and inode), as for a
    /// service started by systemd with the default `StandardError=journal`.
    public static var stderrIsJournal: Bool {
        guard let stream = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}

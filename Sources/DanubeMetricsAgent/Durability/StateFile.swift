#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsCatalog
import Foundation

/// The agent's state in its state directory: a base, `state.bin` (format version 3, all counters, histograms and
/// sources), and a log, `state.log`, of what changed since. A base is written as a temporary file, fsync, atomic
/// rename, fsync of the directory, so that after a crash at any instant it is either the previous base or the new
/// one, whole; the log is then started afresh, naming the base it extends. Between bases, each checkpoint appends
/// one record to the log (a version 2 state holding only the series that changed, and every source) and fsyncs
/// it. Reading applies the base, then the log's records in order, stopping at the first incomplete or corrupt
/// one (a torn append, never acknowledged); a log that names another base (a crash between a new base and the
/// fresh log) is ignored. `state.json` (version 1, written on drain by older agents) is read when no `state.bin`
/// exists and removed once version 2 is written. A base that cannot be used is moved aside and reported; the
/// agent starts empty.
struct StateFile {
    let directory: String
    var path: String { "\(directory)/state.bin" }
    var logPath: String { "\(directory)/state.log" }
    var legacyPath: String { "\(directory)/state.json" }
    static let logMagic: [UInt8] = Array("DNBL".utf8)
    static let logHeaderSize = 16

    /// Makes sure checkpoints can be written before the agent says it is ready: creates the directory (and its
    /// parents) when missing, then writes, fsyncs and removes a probe file. Throws one clear sentence otherwise,
    /// so a misconfigured directory stops the agent at start rather than refusing every emitter later.
    func prepare() throws {
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            var path = directory.hasPrefix("/") ? "" : "."
            for component in directory.split(separator: "/") {
                path += "/\(component)"
                if mkdir(path, 0o750) != 0 && errno != EEXIST {
                    let reason = String(cString: strerror(errno))
                    // The path once; the component that failed only when it is a parent.
                    let failed = path.hasSuffix(directory) ? "" : " (creating its parent \(path))"
                    throw AgentConfigurationError(.stateDirectory, "cannot create the state directory \(directory)\(failed): \(reason)")
                }
            }
        } else if !isDirectory.boolValue {
            throw AgentConfigurationError(.stateDirectory, "the state directory \(directory) is not a directory")
        }
        let probe = "\(directory)/.write-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AgentConfigurationError(.stateDirectory, "cannot write a file in the state directory \(directory): \(String(cString: strerror(errno)))")
        }
        let synced = fsync(fd) == 0 ? 0 : errno
        close(fd)
        unlink(probe)
        if synced != 0 {
            throw AgentConfigurationError(.stateDirectory, "the state directory \(directory) cannot be synced: \(String(cString: strerror(synced)))")
        }
    }

    /// Writes a new base (a version 2 state file), then starts a fresh log naming it.
    func write(_ bytes: [UInt8]) throws {
        try replace(path, with: bytes)
        unlink(legacyPath)
        try replace(logPath, with: Self.logHeader(forBase: bytes))
    }

    /// Appends one record (a version 2 state file of what changed) to the log and fsyncs it.
    func append(_ record: [UInt8]) throws {
        let fd = open(logPath, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw AgentConfigurationError(.stateWrite, "cannot append to \(logPath): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes = withUnsafeBytes(of: UInt32(record.count).littleEndian) { Array($0) }
        bytes += record
        guard writeAll(fd, bytes), fsync(fd) == 0 else {
            throw AgentConfigurationError(.stateWrite, "cannot append to \(logPath): \(String(cString: strerror(errno)))")
        }
    }

    /// The bytes of the log, when it exists.
    var logSize: Int {
        var info = stat()
        return stat(logPath, &info) == 0 ? Int(info.st_size) : 0
    }

    /// `"DNBL"`, u16 version 1, u16 0, then the base's payload length (u32, low bits) and CRC-32 from its header:
    /// which base the records extend.
    static func logHeader(forBase base: [UInt8]) -> [UInt8] {
        var header = logMagic + [1, 0, 0, 0]
        header += base[8..<12]   // payload length, low 32 bits
        header += base[16..<20]  // payload CRC-32
        return header
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { writeBytes(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return false }
            offset += n
        }
        return true
    }

    /// Temporary file, fsync, rename over `target`, fsync of the directory.
    private func replace(_ path: String, with bytes: [UInt8]) throws {
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentConfigurationError(.stateWrite, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let error = writeAll(fd, bytes) ? (fsync(fd) == 0 ? 0 : errno) : (errno != 0 ? errno : EIO)
        close(fd)
        guard error == 0, rename(temporary, path) == 0 else {
            let text = String(cString: strerror(error != 0 ? error : errno))
            unlink(temporary)
            throw AgentConfigurationError(.stateWrite, "cannot write \(path): \(text)")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    enum ReadResult {
        case none
        /// `records`: log records applied after the base; `ignored`, why the rest of the log was not.
        /// `refused`: restored series the gate refused (dropped), by series, with why.
        case loaded(StoreSnapshot, path: String, records: Int, ignored: String?, refused: [String: SeriesRejection])
        /// The file could not be used; it was moved to `movedTo`.
        case unusable(path: String, reason: String, movedTo: String)
    }

    /// Reads the newest state into `store` (which must be empty). Everything is checked on a scratch store
    /// first, so a bad file leaves the real store untouched; with a `gate`, restored series pass it as new ones
    /// would, and what it refuses is dropped and counted once.
    func read(into store: AggregationStore, gate: SeriesGate? = nil) -> ReadResult {
        let file = FileManager.default.fileExists(atPath: path) ? path : legacyPath
        guard let data = FileManager.default.contents(atPath: file) else { return .none }
        do {
            let base = Array(data)
            let snapshot = try StateFormat.decode(base)
            let scratch = AggregationStore(gaugeGrace: store.gaugeGrace, limits: store.limits)
            try scratch.restore(snapshot)
            var refused = try store.restore(snapshot, through: gate)
            var records = 0, ignored: String?
            if file == path { (records, ignored) = replayLog(forBase: base, scratch: scratch, into: store, gate: gate, refused: &refused) }
            gate?.countRestored(refused.values)
            return .loaded(snapshot, path: file, records: records, ignored: ignored, refused: refused)
        } catch {
            let aside = "\(file).unusable-\(Int(Date().timeIntervalSince1970))"
            rename(file, aside)
            return .unusable(path: file, reason: "\(error)", movedTo: aside)
        }
    }

    /// Applies the log's records after the base, each checked on `scratch` (which holds the base and the records
    /// before it) before the store; stops at the first that is incomplete, corrupt or inconsistent.
    private func replayLog(forBase base: [UInt8], scratch: AggregationStore, into store: AggregationStore, gate: SeriesGate?,
                           refused: inout [String: SeriesRejection]) -> (Int, String?) {
        guard let data = FileManager.default.contents(atPath: logPath) else { return (0, nil) }
        let log = Array(data)
        guard log.count >= Self.logHeaderSize, Array(log[0..<4]) == Self.logMagic else { return (0, "the log has no DNBL header") }
        guard Array(log[0..<Self.logHeaderSize]) == Self.logHeader(forBase: base) else {
            return (0, "the log extends another base (written before the last base)")
        }
        var offset = Self.logHeaderSize
        var records = 0
        while offset < log.count {
            guard log.count - offset >= 4 else { return (records, "an incomplete record at byte \(offset)") }
            let length = (0..<4).reduce(0) { $0 | Int(log[offset + $1]) << (8 * $1) }
            guard log.count - offset - 4 >= length else { return (records, "an incomplete record at byte \(offset)") }
            do {
                let snapshot = try StateFormat.decode(Array(log[(offset + 4)..<(offset + 4 + length)]))
                try scratch.restore(snapshot)
                refused.merge(try store.restore(snapshot, through: gate)) { first, _ in first }
            } catch {
                return (records, "record \(records + 1) at byte \(offset): \(error)")
            }
            offset += 4 + length
            records += 1
        }
        return (records, nil)
    }
}

/// write(2) under a name the type's own `write` does not shadow, from Glibc or Musl alike.
private func writeBytes(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}

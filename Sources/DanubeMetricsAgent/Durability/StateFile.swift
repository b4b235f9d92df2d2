#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The agent's state file in its state directory: `state.bin` (format version 2), written by every checkpoint as
/// a temporary file, fsync, atomic rename, fsync of the directory, so that after a crash at any instant the file
/// is either the previous checkpoint or the new one, whole. `state.json` (version 1, written on drain by older
/// agents) is read when no `state.bin` exists and removed once version 2 is written. A file that cannot be used
/// is moved aside and reported; the agent starts empty.
struct StateFile {
    let directory: String
    var path: String { "\(directory)/state.bin" }
    var legacyPath: String { "\(directory)/state.json" }

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
                    throw AgentConfigurationError("cannot create the state directory \(directory): \(path): \(String(cString: strerror(errno)))")
                }
            }
        } else if !isDirectory.boolValue {
            throw AgentConfigurationError("the state directory \(directory) is not a directory")
        }
        let probe = "\(directory)/.write-probe"
        let fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw AgentConfigurationError("the state directory \(directory) is not writable: \(String(cString: strerror(errno)))")
        }
        let synced = fsync(fd) == 0 ? 0 : errno
        close(fd)
        unlink(probe)
        if synced != 0 {
            throw AgentConfigurationError("the state directory \(directory) cannot be synced: \(String(cString: strerror(synced)))")
        }
    }

    func write(_ bytes: [UInt8]) throws {
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentConfigurationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += n
        }
        let error = offset == bytes.count ? (fsync(fd) == 0 ? 0 : errno) : errno
        close(fd)
        guard error == 0, rename(temporary, path) == 0 else {
            let text = String(cString: strerror(error != 0 ? error : errno))
            unlink(temporary)
            throw AgentConfigurationError("cannot write \(path): \(text)")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
        unlink(legacyPath)
    }

    enum ReadResult {
        case none
        case loaded(StoreSnapshot, path: String)
        /// The file could not be used; it was moved to `movedTo`.
        case unusable(path: String, reason: String, movedTo: String)
    }

    /// Reads the newest state into `store` (which must be empty). Everything is checked on a scratch store
    /// first, so a bad file leaves the real store untouched.
    func read(into store: AggregationStore) -> ReadResult {
        let file = FileManager.default.fileExists(atPath: path) ? path : legacyPath
        guard let data = FileManager.default.contents(atPath: file) else { return .none }
        do {
            let snapshot = try StateFormat.decode(Array(data))
            try AggregationStore(gaugeGrace: store.gaugeGrace).restore(snapshot)
            try store.restore(snapshot)
            return .loaded(snapshot, path: file)
        } catch {
            let aside = "\(file).unusable-\(Int(Date().timeIntervalSince1970))"
            rename(file, aside)
            return .unusable(path: file, reason: "\(error)", movedTo: aside)
        }
    }
}

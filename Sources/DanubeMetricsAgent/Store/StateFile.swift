#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The agent's state file: written when the agent drains (temp file, fsync, atomic rename, fsync of the
/// directory), read when it starts. A file that cannot be read is moved aside and reported; the agent starts empty.
struct StateFile {
    let directory: String
    var path: String { "\(directory)/state.json" }

    func write(_ snapshot: StoreSnapshot) throws {
        let data = try JSONEncoder().encode(snapshot)
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AgentConfigurationError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == data.count, synced, rename(temporary, path) == 0 else {
            throw AgentConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    enum ReadResult {
        case none
        case loaded(StoreSnapshot)
        /// The file could not be used; it was moved to `movedTo`.
        case unusable(reason: String, movedTo: String)
    }

    func read(into store: AggregationStore) -> (ReadResult, [UInt64: UInt64]) {
        guard let data = FileManager.default.contents(atPath: path) else { return (.none, [:]) }
        do {
            let snapshot = try JSONDecoder().decode(StoreSnapshot.self, from: data)
            // Check everything on a scratch store first, so a bad file leaves the real store untouched.
            _ = try AggregationStore(gaugeGrace: store.gaugeGrace).restore(snapshot)
            let sources = try store.restore(snapshot)
            return (.loaded(snapshot), sources)
        } catch {
            let aside = "\(path).unusable-\(Int(Date().timeIntervalSince1970))"
            rename(path, aside)
            return (.unusable(reason: "\(error)", movedTo: aside), [:])
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a set of files looked like when they were read (device, inode, size, modification time): a change to any
/// (an edit, a rename over it as certificate tools do) means reading them again.
private let systemRead = read

struct WatchedFiles: Equatable, Sendable {
    private struct Stamp: Equatable, Sendable {
        var device: UInt64, inode: UInt64, size: Int64, seconds: Int, nanoseconds: Int
    }

    private var stamps: [String: Stamp?] = [:]

    init(_ paths: [String]) {
        for path in paths { stamps[path] = Self.stamp(path) }
    }

    var paths: [String] { stamps.keys.sorted() }

    /// True when any file differs from when these stamps were taken (or appeared, or went away).
    var changed: Bool { stamps.contains { path, stamp in Self.stamp(path) != stamp } }

    private static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                     seconds: info.st_mtim.tv_sec, nanoseconds: info.st_mtim.tv_nsec)
    }

    /// A small file's bytes (configuration, PEM), at most `limit`; `what` names it in the one-line error.
    static func read(_ path: String, what: String, limit: Int = 1 << 20, code: AgentConfigurationError.Code) throws(AgentConfigurationError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw AgentConfigurationError(code, "\(what) \(path) cannot be read: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw AgentConfigurationError(code, "\(what) \(path) cannot be read: \(String(cString: strerror(errno)))")
            }
            if count == 0 { return bytes }
            bytes += chunk[0..<count]
            if bytes.count > limit { throw AgentConfigurationError(code, "\(what) \(path) is larger than \(limit >> 10) KiB") }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import DanubeMetricsWire

/// Creates the ingest listener: an AF_UNIX SOCK_SEQPACKET socket bound to a path. swift-nio has no SEQPACKET
/// bootstrap, so the socket is made here and handed to `ServerBootstrap.withBoundSocket`.
enum IngestSocket {
    /// Binds `path` (creating its directory), refusing to steal a path another process is listening on and
    /// replacing a stale socket file left by a crash.
    static func bind(path: String, mode: mode_t) throws -> Int32 {
        try makeParentDirectory(of: path)
        var info = stat()
        if lstat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFSOCK else {
                throw AgentConfigurationError(.ingestSocket, "\(path) exists and is not a socket; refusing to replace it")
            }
            if isListening(path) {
                throw AgentConfigurationError(.ingestSocket, "another process is already listening on \(path)")
            }
            unlink(path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw AgentConfigurationError(.ingestSocket, "socket(AF_UNIX, SOCK_SEQPACKET): \(errnoText())") }
        let rc = try UnixSocketAddress.withSockaddr(path: path) { address, length in bindSocket(fd, address, length) }
        guard rc == 0 else {
            let text = errnoText()
            close(fd)
            throw AgentConfigurationError(.ingestSocket, "bind(\(path)): \(text)")
        }
        guard chmod(path, mode) == 0 else {
            let text = errnoText()
            close(fd)
            throw AgentConfigurationError(.ingestSocket, "chmod(\(path)): \(text)")
        }
        return fd
    }

    private static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let rc = (try? UnixSocketAddress.withSockaddr(path: path) { address, length in connect(fd, address, length) }) ?? -1
        return rc == 0
    }

    private static func makeParentDirectory(of path: String) throws {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let directory = String(path[..<slash])
        var current = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw AgentConfigurationError(.ingestSocket, "mkdir(\(current)): \(errnoText())")
            }
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// bind(2) under a name the type's own `bind` does not shadow, from Glibc or Musl alike.
private func bindSocket(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    bind(fd, address, length)
}

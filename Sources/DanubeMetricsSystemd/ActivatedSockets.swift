#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemd

/// Listening sockets handed over by systemd (`LISTEN_FDS`, `LISTEN_FDNAMES`), read once through libsystemd's
/// `sd_listen_fds_with_names`, which also clears the variables so child processes do not inherit them.
public struct ActivatedSockets: Sendable, Equatable {
    /// Sockets systemd passed that the agent cannot use: `code` to switch on, `description` naming the socket and
    /// the unit setting to fix.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public enum Code: String, Sendable, Equatable {
            /// libsystemd could not read LISTEN_FDS / LISTEN_FDNAMES.
            case unreadableEnvironment
            /// A socket of the wrong type or not listening for its name.
            case wrongSocketType
            /// Two sockets with one name.
            case duplicateName
            /// A name that is neither the ingest nor the HTTP socket's.
            case unknownName
        }

        public var code: Code
        public var description: String
        public init(_ code: Code, _ description: String) {
            self.code = code
            self.description = description
        }
    }

    /// The ingest listener (AF_UNIX SOCK_SEQPACKET), if one was passed.
    public var ingest: Int32?
    /// HTTP listeners (TCP stream), in the order systemd passed them.
    public var http: [Int32] = []

    public var isEmpty: Bool { ingest == nil && http.isEmpty }

    /// Name a `.socket` unit gives the ingest socket with `FileDescriptorName=`.
    public static let ingestName = "ingest"
    /// Name (or name prefix) for HTTP sockets.
    public static let httpName = "http"

    public init(ingest: Int32? = nil, http: [Int32] = []) {
        self.ingest = ingest
        self.http = http
    }

    /// Takes the sockets systemd passed. Named sockets are sorted by name ("ingest", "http*"); unnamed ones
    /// ("unknown", as `systemd-socket-activate` without `--fdname` passes them) by their type. Every socket is
    /// checked to be the kind its role needs; anything else is an error naming the fd and what it is.
    public static func fromEnvironment() throws(Failure) -> ActivatedSockets {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count >= 0 else { throw Failure(.unreadableEnvironment, "sd_listen_fds_with_names: \(String(cString: strerror(-count)))") }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        var result = ActivatedSockets()
        for i in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(i)
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            let isIngest = sd_is_socket_unix(fd, Int32(SOCK_SEQPACKET.rawValue), 1, nil, 0) > 0
            let isHTTP = sd_is_socket_inet(fd, Int32(AF_UNSPEC), Int32(SOCK_STREAM.rawValue), 1, 0) > 0
            switch name {
            case ingestName:
                guard isIngest else {
                    throw Failure(.wrongSocketType, "activated socket \"\(name)\" (fd \(fd)) is not a listening AF_UNIX SOCK_SEQPACKET socket; use ListenSequentialPacket=")
                }
                guard result.ingest == nil else { throw Failure(.duplicateName, "more than one activated socket is named \"\(name)\"") }
                result.ingest = fd
            case _ where name.hasPrefix(httpName):
                guard isHTTP else {
                    throw Failure(.wrongSocketType, "activated socket \"\(name)\" (fd \(fd)) is not a listening TCP socket; use ListenStream= with an address")
                }
                result.http.append(fd)
            case "unknown", "":
                if isIngest && result.ingest == nil {
                    result.ingest = fd
                } else if isHTTP {
                    result.http.append(fd)
                } else {
                    throw Failure(.wrongSocketType, "activated socket fd \(fd) is neither a listening SOCK_SEQPACKET Unix socket nor a listening TCP socket")
                }
            default:
                throw Failure(.unknownName, "activated socket \"\(name)\" (fd \(fd)) has an unknown name; use FileDescriptorName=\(ingestName) or \(httpName)")
            }
        }
        return result
    }
}

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import DanubeMetricsWire
import NIOCore

/// `struct ucred` of SO_PEERCRED: the process at the other end of a Unix socket, as the kernel saw it at connect.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0

    /// Supplementary groups of the peer process, from /proc (the kernel gives only the primary group). Read at
    /// connect time; a process that exits meanwhile yields none.
    func supplementaryGroups() -> [UInt32] {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") })
        else { return [] }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    /// The peer of a Unix socket channel.
    static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(AgentConfigurationError("the ingest channel has no socket options"))
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
    }
}

/// Who may connect to the ingest socket, beyond the socket file's mode: users and groups (primary or
/// supplementary). Empty lists allow everyone the file mode lets in.
public struct PeerAccess: Sendable, Equatable {
    public var users: Set<UInt32> = []
    public var groups: Set<UInt32> = []

    public init(users: Set<UInt32> = [], groups: Set<UInt32> = []) {
        self.users = users
        self.groups = groups
    }

    public var isRestricted: Bool { !users.isEmpty || !groups.isEmpty }

    func admits(_ peer: PeerCredentials) -> Bool {
        guard isRestricted else { return true }
        if users.contains(peer.uid) || groups.contains(peer.gid) { return true }
        return !groups.isDisjoint(with: peer.supplementaryGroups())
    }

    /// A user name or numeric uid.
    public static func uid(_ text: String) throws -> UInt32 {
        if let uid = UInt32(text) { return uid }
        guard let entry = getpwnam(text) else { throw AgentConfigurationError("no such user: \(text)") }
        return entry.pointee.pw_uid
    }

    /// A group name or numeric gid.
    public static func gid(_ text: String) throws -> UInt32 {
        if let gid = UInt32(text) { return gid }
        guard let entry = getgrnam(text) else { throw AgentConfigurationError("no such group: \(text)") }
        return entry.pointee.gr_gid
    }
}

/// The whole pipeline of a refused connection: REFUSE as soon as it is active, then close.
final class RefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let refusal: Refusal

    init(refusal: Refusal) { self.refusal = refusal }

    func channelActive(context: ChannelHandlerContext) {
        SourceHandler.refuseAndClose(refusal, context: context)
    }

    /// Whatever the peer sends meanwhile is read and dropped.
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import DanubeMetricsWire
import NIOCore

/// The process at the other end of a Unix socket as the kernel saw it at connect: `struct ucred` of SO_PEERCRED
/// and the supplementary groups of SO_PEERGROUPS. Both come from the socket, not from /proc, so they hold under
/// systemd's `ProtectProc=invisible` and cannot race a reused pid.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
    var groups: [UInt32] = []

    /// `struct ucred`, as SO_PEERCRED fills it.
    struct Ucred {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// SO_PEERGROUPS fills up to 64 gids (a peer in more groups makes it fail: then only the primary group counts).
    /// The kernel keeps them sorted and the buffer starts zeroed, so trailing zeros are padding.
    static let maxGroups = 64
    typealias GroupBuffer = InlineArray<64, UInt32>

    static func groups(in buffer: GroupBuffer) -> [UInt32] {
        var groups: [UInt32] = []
        for index in buffer.indices { groups.append(buffer[index]) }
        while groups.last == 0 { groups.removeLast() }
        return groups
    }

    /// The peer of a Unix socket channel.
    static func of(_ channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(AgentConfigurationError(.peerCredentials, "the ingest channel has no socket options"))
        }
        let credentials: EventLoopFuture<Ucred> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return credentials.flatMap { ucred in
            let groups: EventLoopFuture<GroupBuffer> = provider.unsafeGetSocketOption(
                level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERGROUPS))
            return groups.map { Self.groups(in: $0) }.recover { _ in [] }.map { groups in
                PeerCredentials(pid: ucred.pid, uid: ucred.uid, gid: ucred.gid, groups: groups)
            }
        }
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
        return !groups.isDisjoint(with: peer.groups)
    }

    /// A user name or numeric uid.
    public static func uid(_ text: String) throws -> UInt32 {
        if let uid = UInt32(text) { return uid }
        guard let entry = getpwnam(text) else { throw AgentConfigurationError(.unknownPrincipal, "no such user: \(text)") }
        return entry.pointee.pw_uid
    }

    /// A group name or numeric gid.
    public static func gid(_ text: String) throws -> UInt32 {
        if let gid = UInt32(text) { return gid }
        guard let entry = getgrnam(text) else { throw AgentConfigurationError(.unknownPrincipal, "no such group: \(text)") }
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

import Foundation
import NIOCore
import NIOHTTP1

/// Lets a request through only with `Authorization: Basic` credentials of a `basic_auth_users` entry (every path,
/// as exporter-toolkit). A request without them, or with wrong ones, is answered 401 with `WWW-Authenticate` and
/// its connection closed, so each guess costs a new connection (and handshake); verifications beyond a few waiting,
/// and guesses from an address that guessed wrong within the last second, are answered 429 without hashing. While a verification runs, the connection is not read (parts that arrived
/// already wait here, a bounded few).
final class BasicAuthHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests, or passing an authorized request's parts on.
        case open
        /// Waiting for bcrypt; the request's parts that arrived meanwhile.
        case verifying(held: [HTTPServerRequestPart])
        /// Refused: the answer is written and the connection closes; nothing more is read.
        case refused
    }

    private let security: WebSecurity
    private let users: [String: String]
    private let decoy: String
    private var state = State.open

    init(security: WebSecurity, loaded: WebSecurity.Loaded) {
        self.security = security
        users = loaded.configuration.basicAuthUsers
        decoy = loaded.decoy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .refused:
            return
        case .verifying(var held):
            held.append(part)
            state = .verifying(held: held)
            return
        case .open:
            break
        }
        guard case .head(let head) = part else { return context.fireChannelRead(data) }
        guard let (user, password) = Self.credentials(head.headers) else {
            security.authFailed(.missing)
            return refuse(head, .unauthorized, context)
        }
        let hash = users[user]
        if security.verifier.cached(user: user, password: password, hash: hash) == true {
            return context.fireChannelRead(data)
        }
        let address = context.channel.remoteAddress?.ipAddress
        guard let verification = security.verify(user: user, password: password, hash: hash, decoy: decoy, from: address, on: context.eventLoop) else {
            security.authFailed(.throttled)
            return refuse(head, .tooManyRequests, context)
        }
        state = .verifying(held: [part])
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        verification.whenComplete { result in
            let (handler, context) = loopBound.value
            handler.finish(head, verified: (try? result.get()) == true, context: context)
        }
    }

    private func finish(_ head: HTTPRequestHead, verified: Bool, context: ChannelHandlerContext) {
        guard case .verifying(let held) = state else { return }
        guard verified else {
            security.authFailed(.wrong)
            security.guessedWrong(from: context.channel.remoteAddress?.ipAddress)
            return refuse(head, .unauthorized, context)
        }
        state = .open
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        // The verified head goes on; what followed it (its end, maybe a pipelined request, checked like any other)
        // goes through the same checks.
        for (index, part) in held.enumerated() {
            if index == 0 { context.fireChannelRead(wrapInboundOut(part)) } else { channelRead(context: context, data: wrapInboundOut(part)) }
        }
    }

    private func refuse(_ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ context: ChannelHandlerContext) {
        state = .refused
        let body = status == .unauthorized ? "Unauthorized\n" : "Too Many Requests\n"
        var headers = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "\(body.utf8.count)"),
                                   ("Connection", "close")])
        if status == .unauthorized { headers.add(name: "WWW-Authenticate", value: "Basic realm=\"danube-metrics-agent\", charset=\"UTF-8\"") }
        if status == .tooManyRequests { headers.add(name: "Retry-After", value: "1") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// The user and password of an `Authorization: Basic` header (RFC 7617), nil when absent or malformed.
    static func credentials(_ headers: HTTPHeaders) -> (String, [UInt8])? {
        let values = headers["authorization"]
        guard values.count == 1, let value = values.first else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: parts[1].trimmingCharacters(in: .whitespaces)).map(Array.init),
              let colon = decoded.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let user = String(decoding: decoded[..<colon], as: UTF8.self)
        return (user, Array(decoded[(colon + 1)...]))
    }
}

/// Adds `http_server_config.headers` to every response on the connection, whoever wrote it.
final class ResponseHeaders: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    private let headers: [(String, String)]

    init(_ headers: [String: String]) {
        self.headers = headers.sorted { $0.key < $1.key }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        for (name, value) in headers { head.headers.replaceOrAdd(name: name, value: value) }
        context.write(wrapOutboundOut(.head(head)), promise: promise)
    }
}

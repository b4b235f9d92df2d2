import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One HTTP/1.1 POST per request on a fresh connection, through NIO (and swift-nio-ssl for `https://`): what a
/// push needs (a request every few seconds per receiver, remote write or OTLP), without a client library's
/// connection pools.
struct HTTPPostClient: Sendable {
    struct Response: Sendable {
        var status: Int
        /// From `Retry-After` (seconds form), when the receiver sent one.
        var retryAfter: Duration?
        /// The first `bodyLimit` bytes of a 2xx answer's body (none unless asked for).
        var body: [UInt8] = []
    }

    /// A request that got no response: every one is retried (with backoff) by the writer.
    struct Failure: Error, CustomStringConvertible {
        enum Code { case timeout, connect, closed, tls }
        var code: Code
        var description: String
    }

    let group: EventLoopGroup
    /// For `https://` receivers (nil: none is https).
    var tls: PushTLSContext?

    /// The response to one POST; fails on connection errors and after `timeout`. With `bodyLimit`, a 2xx
    /// answer's body is read up to that many bytes (OTLP's partial success); otherwise only the status line.
    func post(_ target: PushEndpoint, body: [UInt8], headers: [(String, String)], timeout: Duration, bodyLimit: Int = 0) -> EventLoopFuture<Response> {
        let loop = group.next()
        let promise = loop.makePromise(of: Response.self)
        // Built here, on the sender's thread, never on the event loop (it reads files).
        let context: NIOSSLContext?
        if target.tls {
            do throws(AgentConfigurationError) {
                guard let tls else { throw AgentConfigurationError(.pushTLS, "no TLS settings") }
                context = try tls.context()
            } catch {
                promise.fail(Failure(code: .tls, description: error.description))
                return promise.futureResult
            }
        } else {
            context = nil
        }
        let deadline = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
            promise.fail(Failure(code: .timeout, description: "no response within \(timeout)"))
        }
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(timeout.nanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: target.serverName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(promise: promise, target: target, bodyLimit: bodyLimit))
                }
            }
            .connect(host: target.host, port: target.port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(Failure(code: .connect, description: "connect to \(target.host):\(target.port): \(error)"))
                case .success(let channel):
                    var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target.path)
                    head.headers.add(name: "Host", value: target.hostHeader)
                    head.headers.add(name: "Content-Length", value: String(body.count))
                    head.headers.add(name: "Connection", value: "close")
                    for (name, value) in headers { head.headers.add(name: name, value: value) }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(bytes: body))), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
                    promise.futureResult.whenComplete { _ in channel.close(promise: nil) }
                }
            }
        return promise.futureResult.always { _ in deadline.cancel() }
    }

    private final class ResponseHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let promise: EventLoopPromise<Response>
        private let target: PushEndpoint
        private let bodyLimit: Int
        /// A 2xx head whose body is being read.
        private var reading: Response?

        init(promise: EventLoopPromise<Response>, target: PushEndpoint, bodyLimit: Int) {
            self.promise = promise
            self.target = target
            self.bodyLimit = bodyLimit
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                // The status says what to do; beyond `bodyLimit` the receiver's message is not read, so an endless
                // or huge answer holds neither memory nor the sender. An informational (1xx) head is not the answer.
                guard head.status.code >= 200 else { return }
                let retryAfter = head.headers.first(name: "Retry-After").flatMap(Int.init).map { Duration.seconds(max(0, $0)) }
                let response = Response(status: Int(head.status.code), retryAfter: retryAfter)
                if bodyLimit > 0, (200..<300).contains(response.status) {
                    reading = response
                } else {
                    finish(response, context)
                }
            case .body(var buffer):
                guard var response = reading else { return }
                let take = min(buffer.readableBytes, bodyLimit - response.body.count)
                response.body += buffer.readBytes(length: take) ?? []
                reading = response
                if response.body.count >= bodyLimit { finish(response, context) }
            case .end:
                if let response = reading { finish(response, context) }
            }
        }

        private func finish(_ response: Response, _ context: ChannelHandlerContext) {
            reading = nil
            promise.succeed(response)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            promise.fail(Failure(code: .closed, description: "the receiver closed the connection before a complete response"))
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
                promise.fail(Failure(code: .tls, description: "TLS with \(target.host):\(target.port) failed: \(Self.explain(error))"))
            } else {
                promise.fail(error)
            }
            context.close(promise: nil)
        }

        /// BoringSSL's reason, with what it means for an operator when the receiver's certificate was refused.
        static func explain(_ error: Error) -> String {
            let text = "\(error)"
            guard text.contains("CERTIFICATE_VERIFY_FAILED") else { return text }
            return "the receiver's certificate was refused: not issued by a trusted CA (the CA file or the system store), expired or not yet valid, or not for this host (\(text))"
        }
    }
}

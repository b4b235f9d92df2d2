import NIOCore
import NIOHTTP1
import NIOPosix

/// Serves `/metrics` (rendered on a thread pool so a large scrape never stalls ingest on the event loop),
/// `/healthz` (and `/-/healthy`, `/-/ready` as Prometheus names them), a small index at `/`, 404 for other paths and 405 for methods other than GET and HEAD.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Bodies rendered on the thread pool (copying or compressing a large scrape on the event loop would stall
    /// every connection it serves), shared by the scrapes that ask together.
    private let renders: SharedRenders
    private var request: HTTPRequestHead?

    init(renders: SharedRenders) {
        self.renders = renders
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = head
        case .body:
            break
        case .end:
            guard let head = request else { return }
            request = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? "/"
        guard head.method == .GET || head.method == .HEAD else {
            write(head, status: .methodNotAllowed, contentType: "text/plain; charset=utf-8",
                  body: Array("only GET and HEAD are allowed\n".utf8), extra: [("Allow", "GET, HEAD")], context: context)
            return
        }
        switch path {
        case "/metrics":
            let format = ContentNegotiation.scrapeFormat(forAccept: head.headers.first(name: "accept"))
            let gzip = ContentNegotiation.acceptsGzip(head.headers[canonicalForm: "accept-encoding"].joined(separator: ","))
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            renders.body(format, gzip: gzip, on: context.eventLoop).whenComplete { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let body):
                    handler.write(head, status: .ok, contentType: format.contentType, body: body,
                                  extra: [("Vary", "Accept-Encoding")] + (gzip ? [("Content-Encoding", "gzip")] : []), context: context)
                case .failure(let error):
                    handler.write(head, status: .serviceUnavailable, contentType: "text/plain; charset=utf-8",
                                  body: Array("cannot render metrics: \(error)\n".utf8), context: context)
                }
            }
        case "/healthz", "/-/healthy", "/-/ready":
            // As Prometheus: /-/healthy and /-/ready; HTTP is served only once the ingest socket is bound.
            write(head, status: .ok, contentType: "text/plain; charset=utf-8", body: Array("OK\n".utf8), context: context)
        case "/":
            let page = "<html><head><title>Danube metrics agent</title></head><body><h1>Danube metrics agent</h1>"
                + "<p><a href=\"/metrics\">Metrics</a> &middot; <a href=\"/healthz\">Health</a></p></body></html>\n"
            write(head, status: .ok, contentType: "text/html; charset=utf-8", body: Array(page.utf8), context: context)
        default:
            write(head, status: .notFound, contentType: "text/plain; charset=utf-8",
                  body: Array("not found: try /metrics\n".utf8), context: context)
        }
    }

    private func write(
        _ request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: [UInt8],
        extra: [(String, String)] = [], context: ChannelHandlerContext
    ) {
        write(request, status: status, contentType: contentType, body: ByteBuffer(bytes: body), extra: extra, context: context)
    }

    private func write(
        _ request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: ByteBuffer,
        extra: [(String, String)] = [], context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.readableBytes)")])
        headers.add(contentsOf: extra)
        let keepAlive = request.isKeepAlive
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}

import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Renders `/metrics` bodies on the thread pool, one render for every scrape of the same format (and encoding)
/// that asked while it waited to start: a hundred scrapes arriving together cost one or two renders, not a
/// hundred in a row on the render thread. A scrape is never served a render that had already started before it
/// asked, so what it gets is at least as new as its request.
final class SharedRenders: Sendable {
    /// Renders the whole exposition in the given format, gzipped when asked (`GzipEncoder`), into the buffer the
    /// response sends.
    typealias Renderer = @Sendable (ScrapeFormat, _ gzip: Bool) -> ByteBuffer

    private struct Key: Hashable {
        var format: ScrapeFormat
        var gzip: Bool
    }

    private let render: Renderer
    private let threadPool: NIOThreadPool
    /// The render of each key that is queued and not started yet; at most one per key, so bounded by the formats.
    private let waiting = NIOLockedValueBox<[Key: EventLoopFuture<ByteBuffer>]>([:])

    init(threadPool: NIOThreadPool, render: @escaping Renderer) {
        self.threadPool = threadPool
        self.render = render
    }

    /// The body for a scrape of `format`, completed on `eventLoop`.
    func body(_ format: ScrapeFormat, gzip: Bool, on eventLoop: EventLoop) -> EventLoopFuture<ByteBuffer> {
        let key = Key(format: format, gzip: gzip)
        let render = self.render, waiting = self.waiting
        let (future, started) = waiting.withLockedValue { queued -> (EventLoopFuture<ByteBuffer>, Bool) in
            if let shared = queued[key] { return (shared.hop(to: eventLoop), false) }
            let future = threadPool.runIfActive(eventLoop: eventLoop) {
                // Started: scrapes asking from now on wait for the next render.
                waiting.withLockedValue { _ = $0.removeValue(forKey: key) }
                return render(format, gzip)
            }
            queued[key] = future
            return (future, true)
        }
        // Outside the lock: a pool that is shutting down fails the future at once, and this callback then runs
        // here and now. Nothing may stay queued under the key.
        if started {
            future.whenFailure { _ in
                waiting.withLockedValue { queued in if queued[key] === future { queued.removeValue(forKey: key) } }
            }
        }
        return future
    }
}

import DanubeMetricsWire
import NIOCore
import Synchronization

extension SourceHandler {
    /// Refused connections waiting for their peer to close: each holds a descriptor, so at most
    /// `FileDescriptorBudget.lingeringRefusals` wait; beyond that a refused connection is closed at once.
    static let lingering = Atomic<Int>(0)

    /// Sends REFUSE, then shuts down the agent's side for writing and waits (up to a second) for the peer to
    /// close before closing. Closing at once could reset the connection while the peer's frames are still
    /// unread, and the peer would see ECONNRESET instead of the REFUSE that says why. A flood of refused
    /// connections (peers that never close) must not hold descriptors for that second, so only a bounded number
    /// wait; the rest are closed right after the REFUSE is written.
    static func refuseAndClose(_ refusal: Refusal, context: ChannelHandlerContext) {
        let bytes = FrameEncoder.encode(.refuse(refusal))
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(bytes: bytes))).assumeIsolated().whenComplete { _ in
            guard lingering.add(1, ordering: .relaxed).newValue <= FileDescriptorBudget.lingeringRefusals else {
                lingering.subtract(1, ordering: .relaxed)
                context.close(promise: nil)
                return
            }
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) {
                lingering.subtract(1, ordering: .relaxed)
                context.close(promise: nil)
            }
        }
    }
}

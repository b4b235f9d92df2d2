import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Liveness from the serving loops themselves: every event loop stamps a heartbeat a few times per watchdog
/// period, and one of them pings the supervisor only when every loop stamped within the last half period, the
/// store lock can be taken and no checkpoint has hung for half a period. A stuck event loop, a deadlocked store or
/// a state file write that never returns stops the pings, and systemd restarts us.
struct Watchdog {
    let group: MultiThreadedEventLoopGroup
    let store: AggregationStore
    let checkpointer: Checkpointer?
    let timeout: Duration
    let supervisor: AgentSupervisor

    func schedule() -> [RepeatedTask] {
        let loops = Array(group.makeIterator())
        let beats = NIOLockedValueBox([ContinuousClock.Instant](repeating: .now, count: loops.count))
        let every = TimeAmount.nanoseconds(max(Int64(10_000_000), timeout.nanoseconds / 4))
        var tasks = loops.enumerated().map { index, loop in
            loop.scheduleRepeatedTask(initialDelay: .zero, delay: every) { _ in
                beats.withLockedValue { $0[index] = .now }
            }
        }
        let freshness = timeout / 2
        tasks.append(loops[0].scheduleRepeatedTask(initialDelay: every, delay: every) { [store, supervisor, checkpointer] _ in
            let now = ContinuousClock.now
            let allFresh = beats.withLockedValue { $0.allSatisfy { now - $0 < freshness } }
            _ = store.seriesCount // takes the store lock: a deadlock there stops the pings too
            let checkpointing = !(checkpointer?.isStuck(longerThan: freshness) ?? false)
            if allFresh && checkpointing { supervisor.alive() }
        })
        return tasks
    }
}

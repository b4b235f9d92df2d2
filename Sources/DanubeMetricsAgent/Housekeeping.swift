import CMalloc
import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The agent's repeated tasks on its event loops: gauge expiry and source retention, series expiry, returning free
/// heap to the system, and, under a supervisor, STATUS= refreshes and the watchdog.
struct Housekeeping {
    let configuration: AgentConfiguration
    let store: AggregationStore
    let stats: AgentStats
    let checkpointer: Checkpointer?
    let supervisor: AgentSupervisor?
    let logger: Logger
    /// The STATUS= line, with the deltas applied per second since the last one.
    let status: @Sendable (Double) -> String

    func schedule(on group: MultiThreadedEventLoopGroup) -> [RepeatedTask] {
        var tasks: [RepeatedTask] = []
        let sweepEvery = TimeAmount.nanoseconds(max(Int64(250_000_000), configuration.gaugeGrace.nanoseconds / 4))
        let retention = configuration.sourceRetention.seconds
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: sweepEvery, delay: sweepEvery) { [store, logger] _ in
            store.expireGauges()
            let forgotten = store.forgetSources(awayLongerThan: retention, now: SourceHandler.now())
            if forgotten > 0 { logger.info("forgot sources away longer than the retention", metadata: ["sources": "\(forgotten)"]) }
        })
        if let activity = store.activity {
            // Off the event loops: a pass that compacts a large store takes a while (docs/BENCHMARKS.md).
            let every = TimeAmount.nanoseconds(max(100_000_000, activity.passInterval.nanoseconds))
            let expiryQueue = DispatchQueue(label: "danube-metrics-agent.series-expiry", qos: .utility)
            tasks.append(group.next().scheduleRepeatedTask(initialDelay: every, delay: every) { [store, logger] _ in
                expiryQueue.async {
                    let expired = store.expireSeries()
                    if expired > 0 {
                        logger.info("forgot series nothing updated for the series ttl", metadata: ["series": "\(expired)", "ttl": "\(activity.ttl)"])
                    }
                }
            })
        }
        // Defining many series at once (a broker starting) leaves its decoded definitions free inside the heap,
        // which glibc keeps: every 10 s, when 4 MiB more are free than at the last trim, they go back to the
        // system (off the event loops, one trim at a time).
        let trimEvery = TimeAmount.seconds(10)
        let trimQueue = DispatchQueue(label: "danube-metrics-agent.heap-trim", qos: .utility)
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: trimEvery, delay: trimEvery) { _ in
            trimQueue.async { _ = dm_release_free_heap(4 << 20) }
        })
        guard let supervisor else { return tasks }
        let every = TimeAmount.nanoseconds(configuration.statusInterval.nanoseconds)
        let lastApplied = NIOLockedValueBox((stats.applied, ContinuousClock.now))
        tasks.append(group.next().scheduleRepeatedTask(initialDelay: every, delay: every) { [stats, status] _ in
            let now = ContinuousClock.now
            let applied = stats.applied
            let rate = lastApplied.withLockedValue { last -> Double in
                defer { last = (applied, now) }
                return Double(applied &- last.0) / max(0.001, (now - last.1).seconds)
            }
            supervisor.status(status(rate))
        })
        if let timeout = supervisor.watchdogTimeout {
            tasks += Watchdog(group: group, store: store, checkpointer: checkpointer, timeout: timeout, supervisor: supervisor).schedule()
        }
        return tasks
    }
}

/// Whoever supervises the agent process (systemd through sd_notify, or nobody). The agent reports readiness,
/// a short status, liveness from its serving loops, and that it is stopping.
public protocol AgentSupervisor: Sendable {
    /// How often liveness must be reported (systemd's `WatchdogSec=`), or nil when nobody watches.
    var watchdogTimeout: Duration? { get }
    func ready(status: String)
    func status(_ status: String)
    /// Called only when every event loop and the store answered within the last half timeout.
    func alive()
    func stopping(status: String)
}

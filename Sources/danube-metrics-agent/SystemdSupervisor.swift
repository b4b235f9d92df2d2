import DanubeMetricsAgent
import DanubeMetricsSystemd

/// Reports the agent's lifecycle to systemd (`Type=notify`, `WatchdogSec=`); silent when not run by systemd.
struct SystemdSupervisor: AgentSupervisor {
    let notifier = SystemdNotifier()

    var watchdogTimeout: Duration? { notifier.watchdogTimeout }
    func ready(status: String) { notifier.ready(status: status) }
    func status(_ status: String) { notifier.status(status) }
    func alive() { notifier.watchdog() }
    func stopping(status: String) { notifier.stopping(status: status) }
}

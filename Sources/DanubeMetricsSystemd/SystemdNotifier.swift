import CSystemd

/// sd_notify for a `Type=notify` service: READY=1, STATUS=, WATCHDOG=1, STOPPING=1. Every call is a
/// no-op (returning false) when the process is not supervised (`NOTIFY_SOCKET` unset).
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends one notification (newline-separated assignments).
    @discardableResult
    public func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    @discardableResult
    public func ready(status: String) -> Bool { notify("READY=1\nSTATUS=\(status)") }

    @discardableResult
    public func status(_ status: String) -> Bool { notify("STATUS=\(status)") }

    @discardableResult
    public func watchdog() -> Bool { notify("WATCHDOG=1") }

    @discardableResult
    public func stopping(status: String) -> Bool { notify("STOPPING=1\nSTATUS=\(status)") }

    /// The watchdog timeout systemd expects pings within (`WatchdogSec=`), or nil when no watchdog is set.
    public var watchdogTimeout: Duration? {
        var micros: UInt64 = 0
        guard sd_watchdog_enabled(0, &micros) > 0, micros > 0 else { return nil }
        return .microseconds(Int64(micros))
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the ingest socket lives when nobody says otherwise. Shared by the agent and emitters so both agree.
public enum DefaultPaths {
    /// Environment variable that overrides the ingest socket path for agent and emitters alike.
    public static let socketEnvironmentVariable = "DANUBE_METRICS_SOCKET"

    /// The installed service's socket (systemd's `ListenSequentialPacket=`).
    public static let systemSocket = "/run/danube-metrics-agent/ingest.sock"

    /// Where an emitter connects: `$DANUBE_METRICS_SOCKET`; else the installed service's socket whenever it
    /// exists, whoever runs the emitter (a broker run as its own user then finds the agent without
    /// configuration); else the agent's own default below.
    public static func emitterSocket(environment: [String: String], exists: (String) -> Bool = { access($0, F_OK) == 0 }) -> String {
        if let explicit = environment[socketEnvironmentVariable], !explicit.isEmpty { return explicit }
        if exists(systemSocket) { return systemSocket }
        return ingestSocket(environment: environment)
    }

    /// Where the agent listens by default: `/run/danube-metrics-agent/ingest.sock` for root (the installed
    /// service), otherwise `$XDG_RUNTIME_DIR/danube-metrics-agent/ingest.sock`, otherwise
    /// `/tmp/danube-metrics-agent-<uid>/ingest.sock`.
    public static func ingestSocket(environment: [String: String]) -> String {
        if let explicit = environment[socketEnvironmentVariable], !explicit.isEmpty { return explicit }
        if getuid() == 0 { return systemSocket }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return "\(runtime)/danube-metrics-agent/ingest.sock"
        }
        return "/tmp/danube-metrics-agent-\(getuid())/ingest.sock"
    }
}

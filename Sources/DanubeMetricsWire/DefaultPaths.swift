#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the ingest socket lives when nobody says otherwise. Shared by the agent and emitters so both agree.
public enum DefaultPaths {
    /// Environment variable that overrides the ingest socket path for agent and emitters alike.
    public static let socketEnvironmentVariable = "DANUBE_METRICS_SOCKET"

    /// `/run/danube-metrics-agent/ingest.sock` for root (the installed service), otherwise
    /// `$XDG_RUNTIME_DIR/danube-metrics-agent/ingest.sock`, otherwise `/tmp/danube-metrics-agent-<uid>/ingest.sock`.
    public static func ingestSocket(environment: [String: String]) -> String {
        if let explicit = environment[socketEnvironmentVariable], !explicit.isEmpty { return explicit }
        if getuid() == 0 { return "/run/danube-metrics-agent/ingest.sock" }
        if let runtime = environment["XDG_RUNTIME_DIR"], !runtime.isEmpty {
            return "\(runtime)/danube-metrics-agent/ingest.sock"
        }
        return "/tmp/danube-metrics-agent-\(getuid())/ingest.sock"
    }
}

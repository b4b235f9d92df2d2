/// What the running build is: `danube_agent_build_info` and `--version` say the same.
public enum BuildInfo {
    public static let version = "0.1.0"
    /// The git revision: `packaging/build-deb.sh` writes it into `BuildRevision.swift` for the release it
    /// builds (SwiftPM has no way to pass a string at build time); a development build says "unknown".
    public static let revision: String = embeddedRevision
    /// The Swift compiler that built it.
    public static let swiftVersion: String = {
        #if compiler(>=6.4)
        return "6.4+"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #else
        return "6.1 or older"
        #endif
    }()

    /// `version=... revision=... swift_version=...` as `--version` prints it.
    public static var line: String { "\(version) (revision \(revision), Swift \(swiftVersion))" }

    static var labels: String { "revision=\"\(revision)\",swift_version=\"\(swiftVersion)\",version=\"\(version)\"" }
}

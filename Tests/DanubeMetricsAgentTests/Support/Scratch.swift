import Foundation

/// Every temporary file and socket of the suite lives under one directory per test process, removed when the
/// process exits, so runs leave nothing in /tmp.
enum Scratch {
    static let directory: String = {
        let path = "/tmp/dma-tests-\(getpid())"
        mkdir(path, 0o755)
        atexit { try? FileManager.default.removeItem(atPath: Scratch.directory) }
        return path
    }()

    /// A fresh path under the scratch directory: `prefix-XXXXXX` plus `suffix`.
    static func path(_ prefix: String, suffix: String = "") -> String {
        "\(directory)/\(prefix)-\(UUID().uuidString.prefix(6))\(suffix)"
    }

    /// A fresh directory under the scratch directory.
    static func makeDirectory(_ prefix: String) -> String {
        let path = path(prefix)
        mkdir(path, 0o755)
        return path
    }
}

import Foundation

/// A child process started with posix_spawn and reaped with waitpid: predictable in tests that start daemons
/// (Foundation's `Process` could leave such children unreaped here, hanging `waitUntilExit`).
public final class ChildProcess {
    public let pid: pid_t
    public private(set) var exitStatus: Int32?

    /// Starts `executable` with `arguments`, extra `environment`, stdout appended to `output` and stderr to
    /// `errors` (default: `output` too), and `extraFileDescriptors` as fds 3, 4, ...
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private static let addCloseFrom: AddCloseFrom? = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        .map { unsafeBitCast($0, to: AddCloseFrom.self) }

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], output: String,
                errors: String? = nil, extraFileDescriptors: [Int32] = []) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        // Passed as 3, 4, ... (what socket activation expects); dup2 leaves the copies inheritable.
        for (index, fd) in extraFileDescriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(index)) }
        // Nothing else of the test process (its sockets, many without CLOEXEC) leaks into the child: a daemon
        // started under a low open-file limit would otherwise begin with hundreds of descriptors it never opened.
        // (glibc 2.34's posix_spawn_file_actions_addclosefrom_np; Swift's Glibc module does not export it.)
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3 + Int32(extraFileDescriptors.count)) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            env.forEach { free($0) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, nil, argv, env)
        guard rc == 0 else { throw HTTPClient.Failure(description: "posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    public var isRunning: Bool {
        reap(options: WNOHANG)
        return exitStatus == nil
    }

    public func signal(_ number: Int32) { kill(pid, number) }

    /// Waits up to `timeout` for the exit; sends SIGKILL if it did not come. Returns the wait status.
    @discardableResult
    public func wait(timeout: Duration = .seconds(10)) -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while isRunning && ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.01) }
        if isRunning {
            kill(pid, SIGKILL)
            reap(options: 0)
        }
        return exitStatus ?? -1
    }

    /// SIGTERM, then `wait`.
    @discardableResult
    public func stop() -> Int32 {
        if isRunning { kill(pid, SIGTERM) }
        return wait()
    }

    private func reap(options: Int32) {
        guard exitStatus == nil else { return }
        var status: Int32 = 0
        if waitpid(pid, &status, options) == pid { exitStatus = status }
    }

    /// True when the wait status says the process exited normally with code 0.
    public static func exitedCleanly(_ status: Int32) -> Bool { status & 0x7F == 0 && (status >> 8) & 0xFF == 0 }
}

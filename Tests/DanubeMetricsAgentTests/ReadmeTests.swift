import DanubeMetricsTestKit
import Foundation
import Testing

/// What README tells a reader to use exists: every repository path it names, every `./dev` command, every option
/// of its usage block; and the broker drop-in it writes is the one docs/DANUBE-INTEGRATION.md shows.
@Suite struct ReadmeTests {
    static let readme = (try? String(contentsOf: PackagingTests.repository.appendingPathComponent("README.md"), encoding: .utf8)) ?? ""

    /// Backticked tokens (and links) that name something in this repository.
    static var namedPaths: [String] {
        let roots = ["docs/", "packaging/", "Tests/", "Sources/", "systemd/", "clients/", "Benchmarks/", "Fuzz/", ".ci/", "include/"]
        let pattern = try! NSRegularExpression(pattern: "[`(]((?:\\./)?[A-Za-z0-9_.*/-]+)[`)]")
        let text = readme as NSString
        return pattern.matches(in: readme, range: NSRange(location: 0, length: text.length)).compactMap { match in
            var token = text.substring(with: match.range(at: 1))
            if token.hasPrefix("./") { token.removeFirst(2) }
            return roots.contains { token.hasPrefix($0) } ? token : nil
        }
    }

    @Test func everyPathReadmeNamesExists() {
        let paths = Self.namedPaths
        #expect(paths.count > 20, "\(paths)")
        for path in Set(paths) {
            // `include/` is the Rust crate's; `systemd/*.socket` and the like are globs.
            let resolved = path.hasPrefix("include/") ? "clients/rust/danube-metrics/" + path : path
            var matches = glob_t()
            defer { globfree(&matches) }
            let found = glob(PackagingTests.repository.appendingPathComponent(resolved).path, 0, nil, &matches) == 0 && matches.gl_pathc > 0
            #expect(found, "README names \(path), which does not exist")
        }
    }

    @Test func everyDevCommandReadmeNamesExists() throws {
        let dev = try String(contentsOf: PackagingTests.repository.appendingPathComponent("dev"), encoding: .utf8)
        let commands = Set(readme(matching: "\\./dev ([a-z]+)"))
        #expect(commands.isSuperset(of: ["demo", "test"]))
        for command in commands {
            #expect(dev.contains("\n    \(command))"), "README names ./dev \(command), which dev does not have")
        }
    }

    @Test func everyOptionOfTheUsageBlockIsTheAgentsOwn() throws {
        let usage = try #require(Self.readme.components(separatedBy: "## Running the agent").dropFirst().first?
            .components(separatedBy: "```").dropFirst().first)
        let options = Set(readme(matching: "\\[(--[a-z0-9.-]+)", in: usage) + readme(matching: " (--[a-z0-9.-]+) <", in: usage))
        #expect(options.count > 40, "\(options)")
        let output = Scratch.path("help", suffix: ".txt")
        let process = try ChildProcess(Executables.agent.path, ["--help"], output: output)
        #expect(ChildProcess.exitedCleanly(process.wait(timeout: .seconds(20))))
        let help = try String(contentsOfFile: output, encoding: .utf8)
        for option in options {
            #expect(help.contains(option.replacingOccurrences(of: "--no-", with: "--")), "README's usage names \(option); --help has no such option")
        }
    }

    @Test func theBrokerDropInIsTheSameInBothPlaces() throws {
        let integration = try String(contentsOf: PackagingTests.repository.appendingPathComponent("docs/DANUBE-INTEGRATION.md"), encoding: .utf8)
        let inReadme = try #require(Self.readme.components(separatedBy: "danube-metrics.conf <<'EOF'\n").dropFirst().first?
            .components(separatedBy: "\nEOF").first)
        let inIntegration = try #require(integration.components(separatedBy: "# /etc/systemd/system/danube-broker.service.d/danube-metrics.conf\n")
            .dropFirst().first?.components(separatedBy: "\n```").first)
        #expect(inReadme == inIntegration)
    }

    private func readme(matching pattern: String, in text: String = ReadmeTests.readme) -> [String] {
        let expression = try! NSRegularExpression(pattern: pattern)
        let string = text as NSString
        return expression.matches(in: text, range: NSRange(location: 0, length: string.length)).map { string.substring(with: $0.range(at: 1)) }
    }
}

import DanubeMetricsAgent
import DanubeMetricsTestKit
import DanubeMetricsCatalog
import Foundation
import Testing

/// The shipped catalog, dashboards and Prometheus files against the real thing: the load generator feeding a
/// strict agent, promtool, and a Prometheus server scraping the agent.
@Suite(.serialized) struct PackagingTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized
    static let prometheusFiles = repository.appendingPathComponent("packaging/prometheus")
    static let dashboards = repository.appendingPathComponent("packaging/grafana")

    /// A strict agent with the load generator pushing into it, and one series breaking the catalog (so the
    /// refusal counter has data, as it would after any bad deploy).
    private func fedAgent(rate: Int, messages: Int?) async throws -> (TestAgent, ChildProcess) {
        let agent = try await TestAgent { $0.catalogMode = .strict }
        let log = TestAgent.temporarySocketPath() + ".loadgen.log"
        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", agent.socketPath, "--rate", "\(rate)", "--threads", "2", "--flush-interval-ms", "50",
        ] + (messages.map { ["--messages", "\($0)"] } ?? []), output: log)
        return (agent, loadgen)
    }

    @Test func everyFamilyComesFromTheLoadGeneratorAndPromtoolOnlyFlagsTheMillisecondNames() async throws {
        let (agent, loadgen) = try await fedAgent(rate: 0, messages: 20_000)
        #expect(ChildProcess.exitedCleanly(loadgen.wait(timeout: .seconds(60))))
        let scrape = try agent.scrape()
        // Every family of the catalog, as README promises of the demo: the plan's through the typed API,
        // upstream's own names as upstream's call sites record them (UpstreamCallSites, EdgeGateway), admitted by
        // this strict agent.
        let families = BuiltinCatalog.catalog.families
        #expect(families.count == DanubeFamily.allCases.count + UpstreamNames.usages.filter { DanubeFamily(rawValue: $0.name) == nil }.count)
        for family in families {
            #expect(scrape.text.contains("# TYPE \(family.name) \(family.type.rawValue)\n"), "\(family.name) is not on /metrics")
        }
        #expect(Samples(parsing: scrape.text).sum("danube_agent_series_rejected_total") == 0)
        let (_, output) = try runPromtool(["check", "metrics"], input: scrape.body)
        let findings = output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let millisecondFamilies = families.filter { $0.name.hasSuffix("_ms") }.map(\.name)
        #expect(findings.sorted() == millisecondFamilies.sorted().map { "\($0) metric names should not contain abbreviated units" },
                "promtool: \(output)")
        await agent.stop()
    }

    @Test func shippedPrometheusFilesPassPromtool() throws {
        let directory = Self.prometheusFiles.path
        // The scrape job as the README wires it: appended to a configuration whose last key is scrape_configs.
        let config = TestAgent.temporarySocketPath() + ".prometheus.yml"
        defer { try? FileManager.default.removeItem(atPath: config) }
        // Both jobs (plain, and https with basic auth), as two hosts' configurations would hold them.
        let job = try String(contentsOfFile: "\(directory)/scrape-job.yml", encoding: .utf8)
        let https = try String(contentsOfFile: "\(directory)/scrape-job-https.yml", encoding: .utf8)
            .replacingOccurrences(of: "job_name: danube-metrics-agent", with: "job_name: danube-metrics-agent-https")
        try ("rule_files:\n  - \(directory)/danube-*.yml\nscrape_configs:\n" + job + https).write(toFile: config, atomically: true, encoding: .utf8)
        for arguments in [["check", "config", config],
                          ["check", "rules", "\(directory)/danube-rules.yml", "\(directory)/danube-alerts.yml"],
                          ["test", "rules", "\(directory)/tests/danube-rules.test.yml"]] {
            let (status, output) = try runPromtool(arguments, input: [])
            #expect(status == 0, "promtool \(arguments.joined(separator: " ")): \(output)")
        }
    }

    /// Against two Prometheus servers scraping one agent at once: as Prometheus scrapes by default (text, classic
    /// buckets), and with native histograms on, where Prometheus 2.42 stores a latency family's native histogram
    /// instead of its `_bucket` series: the latency panels and rules ask for either (`classic or native`).
    @Test func everyDashboardAndRuleExpressionReturnsDataFromARealPrometheus() async throws {
        let (agent, loadgen) = try await fedAgent(rate: 1_000, messages: nil)
        defer { loadgen.stop() }
        let emitter = agent.emitter(name: "misconfigured")
        try emitter.counter("danube_consumer_receive_total", labels: [
            ("namespace", "ns0"), ("topic", "topic-0"), ("subscription", "sub-0"), ("consumer_id", "c-1"),
        ]).increment()
        let ruleFiles = [
            Self.prometheusFiles.appendingPathComponent("danube-rules.yml").path,
            Self.prometheusFiles.appendingPathComponent("danube-alerts.yml").path,
        ]
        let classic = try PrometheusServer(agentPort: agent.port, ruleFiles: ruleFiles)
        defer { classic.stop() }
        let native = try PrometheusServer(agentPort: agent.port, ruleFiles: ruleFiles, flags: ["--enable-feature=native-histograms"])
        defer { native.stop() }
        for (prometheus, nativeHistograms) in [(classic, false), (native, true)] {
            try checkDashboardsAndRules(prometheus, nativeHistograms: nativeHistograms)
        }
        emitter.shutdown()
        await agent.stop()
    }

    /// Every dashboard variable, panel expression and rule of the shipped files returns data from `prometheus`.
    private func checkDashboardsAndRules(_ prometheus: PrometheusServer, nativeHistograms: Bool) throws {
        // Rates need two scrapes, recording rules an evaluation after that.
        let ready = eventually(timeout: .seconds(60)) {
            let messages = (try? prometheus.query("danube:topic_messages_in:rate5m")) ?? []
            let errors = (try? prometheus.query("danube:producer_send_errors:ratio_rate5m")) ?? []
            return !messages.isEmpty && !errors.isEmpty
        }
        try #require(ready, "Prometheus log: \(prometheus.log)")
        let classicLatency = try prometheus.query("count(danube_producer_send_latency_ms_bucket)")
        #expect(classicLatency.isEmpty == nativeHistograms, "native histograms \(nativeHistograms): classic buckets \(classicLatency)")

        var checked = 0
        var usedRules: Set<String> = []
        for url in try FileManager.default.contentsOfDirectory(at: Self.dashboards, includingPropertiesForKeys: nil) where url.pathExtension == "json" {
            let dashboard = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            let variables = (dashboard["templating"] as! [String: Any])["list"] as! [[String: Any]]
            #expect(variables.compactMap { $0["name"] as? String }.starts(with: ["datasource", "cluster", "instance", "namespace", "topic"]),
                    "\(url.lastPathComponent)")
            for variable in variables where variable["type"] as? String == "query" {
                let query = variable["definition"] as! String
                let values = try prometheus.labelValues(query)
                #expect(!values.isEmpty, "\(url.lastPathComponent): variable \(query)")
                if variable["name"] as? String == "cluster" { #expect(values == ["danube"], "the shipped scrape job's cluster label") }
                checked += 1
            }
            for panel in dashboard["panels"] as! [[String: Any]] {
                for target in panel["targets"] as! [[String: Any]] {
                    let expression = target["expr"] as! String
                    #expect(Self.unscopedSelectors(expression).isEmpty,
                            "\(url.lastPathComponent) / \(panel["title"]!): not filtered by cluster and instance: \(Self.unscopedSelectors(expression))")
                    usedRules.formUnion(Self.recordingRules(in: expression))
                    // A series the load generator creates at its first event (an upload error) may need one
                    // more scrape and rule evaluation on a busy machine: wait for it rather than sample once.
                    #expect(try eventually(timeout: .seconds(20)) { try !prometheus.query(Self.substitute(expression)).isEmpty },
                            "\(url.lastPathComponent) / \(panel["title"]!): \(Self.substitute(expression))")
                    checked += 1
                }
            }
        }
        let rules = try prometheus.rules()
        #expect(rules.count == 22)
        // The rules file says the dashboards use its recording rules: each one is on a panel.
        let recorded = Set(rules.filter { $0.type == "recording" }.map(\.name))
        #expect(recorded.subtracting(usedRules).isEmpty, "recording rules no dashboard uses: \(recorded.subtracting(usedRules).sorted())")
        for rule in rules {
            #expect(rule.health == "ok", "\(rule.name): \(rule.lastError ?? "")")
            // An alert's expression is "<signal> <comparison> <threshold>": the signal must have data.
            let signal = rule.type == "alerting" ? Self.signal(of: rule.query) : rule.query
            #expect(try !prometheus.query(signal).isEmpty, "rule \(rule.name): \(signal)")
            checked += 1
        }
        #expect(checked > 80)
    }

    /// Series selectors (metric names of the catalog, its recording rules and the agent's process) that lack the
    /// Cluster and Agent variables: summed across every host of the fleet.
    static func unscopedSelectors(_ expression: String) -> [String] {
        let selector = try! Regex(#"\b((?:danube[_:]|process_)[a-zA-Z0-9_:]*)(\{[^}]*\})?"#)
        return expression.matches(of: selector).map { String(expression[$0.range]) }.filter {
            !$0.contains(#"cluster=~"$cluster""#) || !$0.contains(#"instance=~"$instance""#)
        }
    }

    static func recordingRules(in expression: String) -> Set<String> {
        Set(expression.matches(of: try! Regex(#"danube:[a-z0-9_:]+"#)).map { String(expression[$0.range]) })
    }

    /// Grafana's variables as an operator leaves them at "All".
    static func substitute(_ expression: String) -> String {
        expression.replacingOccurrences(of: "$__rate_interval", with: "1m")
            .replacingOccurrences(of: "$cluster", with: ".*").replacingOccurrences(of: "$instance", with: ".*")
            .replacingOccurrences(of: "$namespace", with: ".*").replacingOccurrences(of: "$topic", with: ".*")
            .replacingOccurrences(of: "$provider", with: ".*").replacingOccurrences(of: "$broker", with: ".*")
    }

    static func signal(of query: String) -> String {
        guard let match = query.range(of: #" (==|!=|>=|<=|>|<) -?[0-9.e+]+$"#, options: .regularExpression) else { return query }
        return String(query[..<match.lowerBound])
    }
}

/// A Prometheus server (Debian package `prometheus`) scraping one agent every second, with the given rules.
final class PrometheusServer {
    struct Rule {
        var name: String, type: String, query: String, health: String, lastError: String?
    }

    let port: Int
    let directory: String
    private let process: ChildProcess
    /// Sent with every query (a server with `--web.config.file` basic auth).
    var authorization: String?
    /// curl's TLS options (`--cacert`, ...) for a server with `--web.config.file` TLS: queries go over https.
    var curlTLS: [String]?

    /// Scraping the agent on `agentPort` every second through the shipped job, with the given rule files.
    convenience init(agentPort: Int, ruleFiles: [String], flags: [String] = []) throws {
        // The shipped scrape job (with its cluster label), pointed at this agent.
        let job = try String(contentsOf: PackagingTests.prometheusFiles.appendingPathComponent("scrape-job.yml"), encoding: .utf8)
            .replacingOccurrences(of: "\"localhost:9470\"", with: "\"127.0.0.1:\(agentPort)\"")
        let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            rule_files: [\(ruleFiles.map { "\"\($0)\"" }.joined(separator: ", "))]
            scrape_configs:

            """ + job
        try self.init(config: config, port: unusedPort(), flags: flags)
    }

    /// Scraping nothing, receiving remote write on `port` (`/api/v1/write`).
    convenience init(remoteWriteReceiverOn port: Int, enabled: Bool = true, flags: [String] = []) throws {
        try self.init(config: "global:\n  scrape_interval: 1s\n", port: port, flags: (enabled ? ["--web.enable-remote-write-receiver"] : []) + flags)
    }

    /// Scraping with `job` (a scrape_configs entry), every second.
    convenience init(scrapeJob job: String, flags: [String] = []) throws {
        try self.init(config: "global:\n  scrape_interval: 1s\nscrape_configs:\n" + job, port: unusedPort(), flags: flags)
    }

    private init(config: String, port: Int, flags: [String]) throws {
        self.port = port
        directory = TestAgent.temporarySocketPath() + ".prometheus"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try config.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
        process = try ChildProcess("/usr/bin/prometheus", [
            "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
            "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
        ] + flags, output: "\(directory)/prometheus.log")
    }

    var log: String { (try? String(contentsOfFile: "\(directory)/prometheus.log", encoding: .utf8)) ?? "" }

    func stop() {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func get(_ path: String) throws -> [String: Any] {
        var result: HTTPResult
        if let curlTLS {
            let (status, body) = try curl("https://localhost:\(port)\(path)", curlTLS + (authorization.map { ["-H", "Authorization: \($0)"] } ?? []))
            result = HTTPResult(status: status, headers: [:], body: Array(body.utf8))
        } else {
            result = try HTTPClient.get(port: port, path: path, headers: authorization.map { [("Authorization", $0)] } ?? [])
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any],
              object["status"] as? String == "success" else {
            throw HTTPClient.Failure(description: "\(path): \(result.status) \(result.text)")
        }
        return object
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed)!
    }

    /// The result vector of an instant query (throws when it does not parse).
    func query(_ expression: String) throws -> [[String: Any]] {
        let data = try get("/api/v1/query?query=\(Self.encode(expression))")["data"] as! [String: Any]
        return data["result"] as? [[String: Any]] ?? []
    }

    /// The first value of an instant query, nil when it has none.
    func value(_ query: String) throws -> Double? {
        guard let first = try self.query(query).first, let value = first["value"] as? [Any], let text = value.last as? String else { return nil }
        return Double(text)
    }

    /// `/api/v1/query_exemplars` for `query` between two Unix times.
    func exemplars(_ query: String, start: Double, end: Double) throws -> [[String: Any]] {
        try get("/api/v1/query_exemplars?query=\(Self.encode(query))&start=\(start)&end=\(end)")["data"] as? [[String: Any]] ?? []
    }

    /// Values of Grafana's `label_values(selector, label)`.
    func labelValues(_ grafanaQuery: String) throws -> [String] {
        let pattern = try Regex(#"^label_values\((.*), *(\w+)\)$"#, as: (Substring, Substring, Substring).self)
        guard let match = grafanaQuery.firstMatch(of: pattern) else {
            throw HTTPClient.Failure(description: "not a label_values query: \(grafanaQuery)")
        }
        let selector = Self.encode(PackagingTests.substitute(String(match.1)))
        return try get("/api/v1/label/\(match.2)/values?match[]=\(selector)")["data"] as? [String] ?? []
    }

    func rules() throws -> [Rule] {
        let groups = (try get("/api/v1/rules")["data"] as! [String: Any])["groups"] as! [[String: Any]]
        return groups.flatMap { $0["rules"] as! [[String: Any]] }.map { rule in
            Rule(name: rule["name"] as! String, type: rule["type"] as! String, query: rule["query"] as! String,
                 health: rule["health"] as! String, lastError: rule["lastError"] as? String)
        }
    }
}

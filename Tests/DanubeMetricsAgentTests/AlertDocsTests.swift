@testable import DanubeMetricsAgent
import Foundation
import Testing

/// What a page says must lead somewhere: every shipped alert has a summary, a description with its values, and a
/// runbook section that exists; every runbook section belongs to an alert and says what to check, which journal
/// lines to look for and what to do; every alert is exercised by the promtool tests with two clusters.
@Suite struct AlertDocsTests {
    static let runbook = PackagingTests.repository.appendingPathComponent("docs/RUNBOOK.md")
    static let runbookURL = "https://github.com/danube-messaging/danube-metrics-agent/blob/main/docs/RUNBOOK.md#"

    struct Alert {
        var name: String
        var expression: String
        var annotations: [String: String]
    }

    /// The alerts of `danube-alerts.yml`, read with the agent's YAML reader.
    static func alerts() throws -> [Alert] {
        let text = try String(contentsOf: PackagingTests.prometheusFiles.appendingPathComponent("danube-alerts.yml"), encoding: .utf8)
        let root = try #require(try YAMLNode.parse(text))
        var alerts: [Alert] = []
        for group in root["groups"]?.items ?? [] {
            for rule in group["rules"]?.items ?? [] {
                guard let name = rule["alert"]?.text else { continue }
                var annotations: [String: String] = [:]
                for pair in rule["annotations"]?.pairs ?? [] {
                    if let key = pair.key.text, let value = pair.value.text { annotations[key] = value }
                }
                alerts.append(Alert(name: name, expression: rule["expr"]?.text ?? "", annotations: annotations))
            }
        }
        return alerts
    }

    /// `## Name` sections of the runbook and their text.
    static func sections() throws -> [String: String] {
        let text = try String(contentsOf: runbook, encoding: .utf8)
        var sections: [String: String] = [:]
        for chunk in text.components(separatedBy: "\n## ").dropFirst() {
            let title = String(chunk.prefix { $0 != "\n" })
            sections[title] = String(chunk.dropFirst(title.count))
        }
        return sections
    }

    /// The label lists of every `by (...)` in `expression`.
    static func aggregationLabels(_ expression: String) -> [[String]] {
        expression.components(separatedBy: "by (").dropFirst().map { clause in
            clause.prefix { $0 != ")" }.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    @Test func everyAlertHasASummaryADescriptionWithValuesAndARunbookSection() throws {
        let alerts = try Self.alerts()
        let sections = try Self.sections()
        #expect(alerts.count >= 10)
        for alert in alerts {
            #expect(alert.annotations["summary"]?.isEmpty == false, "\(alert.name): no summary")
            let description = alert.annotations["description"] ?? ""
            #expect(description.contains("{{ $value") || description.contains("{{ $labels."), "\(alert.name): the description shows no value")
            #expect(alert.annotations["runbook_url"] == Self.runbookURL + alert.name.lowercased(), "\(alert.name): runbook_url")
            #expect(sections[alert.name] != nil, "\(alert.name): no section in docs/RUNBOOK.md")
            // Where: no aggregation drops cluster, or instance unless the alert is about a whole cluster.
            for labels in Self.aggregationLabels(alert.expression) {
                #expect(labels.contains("cluster") && (labels.contains("instance") || alert.name == "DanubeNoLeader"),
                        "\(alert.name) aggregates cluster or instance away: by (\(labels.joined(separator: ", ")))")
            }
        }
        // The recording rules the alerts read keep them too.
        let rules = try String(contentsOf: PackagingTests.prometheusFiles.appendingPathComponent("danube-rules.yml"), encoding: .utf8)
        for labels in Self.aggregationLabels(rules) {
            #expect(labels.contains("cluster") && labels.contains("instance"), "a recording rule aggregates by (\(labels.joined(separator: ", ")))")
        }
        for (title, text) in sections {
            #expect(alerts.contains { $0.name == title }, "RUNBOOK section \(title) has no alert")
            for part in ["**What it means.**", "**What to check.**", "**In the journal.**", "**What to do.**"] {
                #expect(text.contains(part), "RUNBOOK section \(title) lacks \(part)")
            }
        }
    }

    /// The promtool tests page every alert with its cluster, from two clusters of which one is healthy.
    @Test func everyAlertIsTestedWithTwoClusters() throws {
        let tests = try String(contentsOf: PackagingTests.prometheusFiles.appendingPathComponent("tests/danube-rules.test.yml"), encoding: .utf8)
        for alert in try Self.alerts() {
            // The text after each of the alert's checks, up to the next check.
            let checks = tests.components(separatedBy: "- alertname: \(alert.name)\n").dropFirst().map { $0.components(separatedBy: "- alertname:")[0] }
            #expect(checks.contains { $0.contains("cluster: east") }, "\(alert.name): no test pages cluster east")
        }
        #expect(tests.contains("cluster=\"west\""), "a healthy second cluster")
    }
}

extension YAMLNode {
    subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = self else { return nil }
        return pairs.first { $0.key.text == key }?.value
    }

    var items: [YAMLNode] {
        if case .sequence(let items) = self { return items }
        return []
    }

    var pairs: [Pair] {
        if case .mapping(let pairs) = self { return pairs }
        return []
    }

    var text: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }
}

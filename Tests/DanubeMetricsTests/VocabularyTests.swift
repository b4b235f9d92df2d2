import DanubeMetrics
import DanubeMetricsCatalog
@testable import DanubeMetricsEmitter
@testable import DanubeMetricsSwiftMetrics
import Foundation
import Testing

@Suite struct VocabularyTests {
    /// Every closed label set of the catalog is spelled by one of the typed API's enums.
    @Test func closedLabelValuesComeFromTheVocabulary() {
        let vocabularies: [[String]] = [
            Outcome.allCases.map(\.rawValue), ProducerErrorType.allCases.map(\.rawValue), Reliability.allCases.map(\.rawValue),
            SubscriptionType.allCases.map(\.rawValue), RotateReason.allCases.map(\.rawValue), DeleteReason.allCases.map(\.rawValue),
            RedeliveryReason.allCases.map(\.rawValue), ReaderStart.allCases.map(\.rawValue), HandoffPath.allCases.map(\.rawValue),
            AssignmentAction.allCases.map(\.rawValue), LeaderState.allCases.map(\.rawValue), RPCCode.allCases.map(\.rawValue),
            StorageTier.allCases.map(\.rawValue),
        ]
        for family in BuiltinCatalog.catalog.families {
            for label in family.labels {
                guard let values = label.values else { continue }
                #expect(vocabularies.contains(values), "\(family.name) \(label.name)")
            }
        }
    }

    /// The typed API names every planned family; the rest of the catalog is what upstream Danube records today.
    @Test func everyCatalogFamilyIsADanubeFamilyCaseOrAnUpstreamName() {
        let named = Set(DanubeFamily.allCases.map(\.name)).union(UpstreamNames.usages.map(\.name))
        #expect(Set(BuiltinCatalog.catalog.families.map(\.name)) == named)
    }

    @Test(arguments: [("http.requests", "http_requests"), ("9lives", "_9lives"), ("a:b-c d", "a:b_c_d"), ("", "_"), ("größe", "gr__e")])
    func swiftMetricsLabelsBecomeValidMetricNames(label: String, expected: String) {
        #expect(DanubeMetricsFactory.metricName(label) == expected)
    }
}

/// The emitters report their process under the catalog's "Emitter process" families: the Swift reporter with the
/// catalog's help texts, the Rust crate with the same names.
@Suite struct ProcessFamiliesTests {
    @Test func bothEmittersReportExactlyTheCataloguedProcessFamilies() throws {
        let catalogued = BuiltinCatalog.catalog.families.filter { $0.area == "Emitter process" }
        #expect(catalogued.count == 6)
        let reported = Dictionary(uniqueKeysWithValues: ProcessReporter.families.map { ($0.name, $0.help) })
        #expect(reported == Dictionary(uniqueKeysWithValues: catalogued.map { ($0.name, $0.help) }))
        let rust = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../clients/rust/danube-metrics/src/process.rs").standardized
        let source = try String(contentsOf: rust, encoding: .utf8)
        for family in catalogued { #expect(source.contains("\"\(family.name)\","), "\(family.name) is not in the Rust crate") }
        #expect(catalogued.allSatisfy { $0.labels.map(\.name) == ["source", "broker"] || $0.labels.map(\.name) == ["source"] })
    }
}

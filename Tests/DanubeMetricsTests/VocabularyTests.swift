import DanubeMetrics
import DanubeMetricsCatalog
@testable import DanubeMetricsSwiftMetrics
import Testing

@Suite struct VocabularyTests {
    /// Every closed label set of the catalog is spelled by one of the typed API's enums.
    @Test func closedLabelValuesComeFromTheVocabulary() {
        let vocabularies: [[String]] = [
            Outcome.allCases.map(\.rawValue), ProducerErrorType.allCases.map(\.rawValue), Reliability.allCases.map(\.rawValue),
            SubscriptionType.allCases.map(\.rawValue), RotateReason.allCases.map(\.rawValue), DeleteReason.allCases.map(\.rawValue),
            RedeliveryReason.allCases.map(\.rawValue), ReaderStart.allCases.map(\.rawValue), HandoffPath.allCases.map(\.rawValue),
            AssignmentAction.allCases.map(\.rawValue), LeaderState.allCases.map(\.rawValue), RPCCode.allCases.map(\.rawValue),
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

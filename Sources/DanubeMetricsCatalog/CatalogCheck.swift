import DanubeMetricsWire

/// Checks a catalog before the agent uses it, so a broken operator file stops the agent with a clear message
/// instead of refusing good series at run time.
enum CatalogCheck {
    static func check(_ catalog: Catalog) throws(CatalogError) {
        for label in catalog.forbiddenLabels where !SeriesRules.isValidLabelName(label) {
            throw CatalogError(.invalidName, "forbidden label \"\(label)\" is not a valid label name")
        }
        for label in catalog.globalLabels where !SeriesRules.isValidLabelName(label) || label == "le" || catalog.forbiddenLabels.contains(label) {
            throw CatalogError(.invalidName, "global label \"\(label)\" is not a label name every family may carry")
        }
        for family in catalog.families { try check(family, forbidden: Set(catalog.forbiddenLabels)) }
    }

    private static func check(_ family: FamilySpec, forbidden: Set<String>) throws(CatalogError) {
        let limits = WireLimits.default
        guard family.name.utf8.count <= limits.maxNameBytes else {
            throw CatalogError(.invalidName, "family \"\(family.name.prefix(64))...\" has a name of \(family.name.utf8.count) bytes; the protocol carries \(limits.maxNameBytes)")
        }
        let name = family.name
        guard SeriesRules.isValidMetricName(name) else { throw CatalogError(.invalidName, "\"\(name)\" is not a valid metric name") }
        guard family.help.utf8.count <= limits.maxHelpBytes else {
            throw CatalogError(.invalidFamily, "\(name) has help text of \(family.help.utf8.count) bytes; the protocol carries \(limits.maxHelpBytes)")
        }
        guard family.labels.count <= limits.maxLabelsPerSeries else {
            throw CatalogError(.invalidLabels, "\(name) has \(family.labels.count) labels; a series carries \(limits.maxLabelsPerSeries)")
        }
        for label in family.labels {
            guard label.name.utf8.count <= limits.maxLabelNameBytes, (label.values ?? []).allSatisfy({ $0.utf8.count <= limits.maxLabelValueBytes }) else {
                throw CatalogError(.invalidLabels, "\(name): label \"\(label.name.prefix(64))\" or one of its values is longer than the protocol carries")
            }
        }
        guard !name.hasPrefix("danube_agent_") else { throw CatalogError(.invalidName, "\(name): the prefix danube_agent_ is the agent's own") }
        guard !family.help.isEmpty else { throw CatalogError(.invalidFamily, "\(name) has no help text") }
        guard family.maxSeries > 0 else { throw CatalogError(.invalidFamily, "\(name): max_series must be positive") }
        switch family.type {
        case .counter:
            guard name.hasSuffix("_total") else { throw CatalogError(.invalidName, "counter \(name) must end in _total") }
        case .gauge, .histogram:
            guard !name.hasSuffix("_total") else { throw CatalogError(.invalidName, "\(family.type.rawValue) \(name) must not end in _total") }
        }
        if family.type == .histogram {
            guard let buckets = family.buckets, !buckets.isEmpty else { throw CatalogError(.invalidBuckets, "histogram \(name) has no buckets") }
            guard buckets.count <= WireLimits.default.maxBucketsPerHistogram else {
                throw CatalogError(.invalidBuckets, "histogram \(name) has \(buckets.count) buckets, the protocol allows \(WireLimits.default.maxBucketsPerHistogram)")
            }
            for (i, bound) in buckets.enumerated() where !bound.isFinite || (i > 0 && buckets[i - 1] >= bound) {
                throw CatalogError(.invalidBuckets, "buckets of \(name) must be finite and strictly increasing")
            }
            if let problem = family.native?.problem() { throw CatalogError(.invalidBuckets, "histogram \(name): \(problem)") }
        } else if family.buckets != nil || family.native != nil {
            throw CatalogError(.invalidBuckets, "\(family.type.rawValue) \(name) cannot have buckets")
        }
        var seen = Set<String>()
        for label in family.labels {
            guard SeriesRules.isValidLabelName(label.name), label.name != "le" || family.type != .histogram else {
                throw CatalogError(.invalidLabels, "\(name): \"\(label.name)\" is not a label name it may use")
            }
            guard seen.insert(label.name).inserted else { throw CatalogError(.invalidLabels, "\(name): label \(label.name) appears twice") }
            guard !forbidden.contains(label.name) else { throw CatalogError(.invalidLabels, "\(name): label \(label.name) is forbidden") }
            if let values = label.values {
                guard !values.isEmpty, Set(values).count == values.count else {
                    throw CatalogError(.invalidLabels, "\(name): the values of label \(label.name) must be a non-empty list without repeats")
                }
            }
            if label.policy == .drop {
                guard family.type != .gauge else {
                    throw CatalogError(.invalidLabels, "\(name): a gauge cannot drop label \(label.name) (gauge values do not add up)")
                }
                guard !label.required else { throw CatalogError(.invalidLabels, "\(name): dropped label \(label.name) cannot be required") }
            }
        }
    }
}

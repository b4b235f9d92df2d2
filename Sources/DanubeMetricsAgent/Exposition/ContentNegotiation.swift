/// What a scrape is answered in: one of the text formats, or the protobuf exposition (delimited `MetricFamily`
/// messages, which Prometheus asks for first when native histograms are enabled).
public enum ScrapeFormat: Sendable, Hashable {
    case text(ExpositionFormat)
    case protobuf

    public var contentType: String {
        switch self {
        case .text(let format): return format.contentType
        case .protobuf: return ProtobufExposition.contentType
        }
    }
}

/// Picks the exposition format from an HTTP `Accept` header the way Prometheus exporters do: the supported media
/// range with the highest q wins (protobuf, OpenMetrics 1.0.0, or Prometheus text); ties go to the earlier entry;
/// anything unparseable or absent gets Prometheus text 0.0.4.
public enum ContentNegotiation {
    /// The text format for `accept` (protobuf aside).
    public static func format(forAccept accept: String?) -> ExpositionFormat {
        if case .text(let format) = scrapeFormat(forAccept: accept, allowingProtobuf: false) { return format }
        return .prometheusText
    }

    public static func scrapeFormat(forAccept accept: String?, allowingProtobuf: Bool = true) -> ScrapeFormat {
        guard let accept, !accept.isEmpty else { return .text(.prometheusText) }
        var best: (format: ScrapeFormat, q: Double)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
            guard let mediaType = parts.first?.lowercased() else { continue }
            var q = 1.0
            var version: String?, proto: String?, encoding: String?
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t\"") }
                guard pair.count == 2 else { continue }
                switch pair[0].lowercased() {
                case "q": q = Double(pair[1]) ?? 0
                case "version": version = pair[1]
                case "proto": proto = pair[1]
                case "encoding": encoding = pair[1]
                default: break
                }
            }
            let candidate: ScrapeFormat?
            switch mediaType {
            case "application/vnd.google.protobuf":
                candidate = allowingProtobuf && proto == "io.prometheus.client.MetricFamily" && encoding == "delimited" ? .protobuf : nil
            case "application/openmetrics-text":
                candidate = version == nil || version == "1.0.0" ? .text(.openMetrics) : nil
            case "text/plain", "text/*", "*/*":
                candidate = .text(.prometheusText)
            default:
                candidate = nil
            }
            guard let candidate, q > 0 else { continue }
            if best == nil || q > best!.q { best = (candidate, q) }
        }
        return best?.format ?? .text(.prometheusText)
    }

    /// Whether `Accept-Encoding` admits gzip: `gzip`, `x-gzip` or `*` with a q above 0 (RFC 9110, 12.5.3), unless
    /// gzip itself is listed with q=0.
    public static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var wildcard = false
        for coding in acceptEncoding.split(separator: ",") {
            let parts = coding.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
            guard let name = parts.first?.lowercased() else { continue }
            let q = parts.dropFirst().compactMap { parameter -> Double? in
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t") }
                return pair.count == 2 && pair[0].lowercased() == "q" ? Double(pair[1]) ?? 0 : nil
            }.first ?? 1
            switch name {
            case "gzip", "x-gzip": return q > 0
            case "*": wildcard = q > 0
            default: break
            }
        }
        return wildcard
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var view = self[...]
        while let first = view.first, set.contains(first) { view = view.dropFirst() }
        while let last = view.last, set.contains(last) { view = view.dropLast() }
        return String(view)
    }
}

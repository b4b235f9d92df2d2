/// Picks the exposition format from an HTTP `Accept` header the way Prometheus exporters do: the supported media
/// range with the highest q wins (OpenMetrics 1.0.0, or Prometheus text); ties go to the earlier entry; anything
/// unparseable or absent gets Prometheus text 0.0.4.
public enum ContentNegotiation {
    public static func format(forAccept accept: String?) -> ExpositionFormat {
        guard let accept, !accept.isEmpty else { return .prometheusText }
        var best: (format: ExpositionFormat, q: Double)?
        for range in accept.split(separator: ",") {
            let parts = range.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
            guard let mediaType = parts.first?.lowercased() else { continue }
            var q = 1.0
            var version: String?
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t\"") }
                guard pair.count == 2 else { continue }
                switch pair[0].lowercased() {
                case "q": q = Double(pair[1]) ?? 0
                case "version": version = pair[1]
                default: break
                }
            }
            let candidate: ExpositionFormat?
            switch mediaType {
            case "application/openmetrics-text":
                candidate = version == nil || version == "1.0.0" ? .openMetrics : nil
            case "text/plain", "text/*", "*/*":
                candidate = .prometheusText
            default:
                candidate = nil
            }
            guard let candidate, q > 0 else { continue }
            if best == nil || q > best!.q { best = (candidate, q) }
        }
        return best?.format ?? .prometheusText
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

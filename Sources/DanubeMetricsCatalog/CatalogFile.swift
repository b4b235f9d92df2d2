import Foundation

/// The JSON form of a catalog: what `--print-catalog json` writes and what `--catalog FILE` reads. An operator
/// file lists only the families it replaces or adds (and forbidden labels it adds).
public struct CatalogFile: Codable, Sendable, Equatable {
    public static let currentVersion = 1

    public var version: Int
    public var forbiddenLabels: [String]?
    /// Labels any family accepts (added to the built-in `broker`).
    public var globalLabels: [String]?
    public var families: [FamilySpec]

    public init(version: Int = CatalogFile.currentVersion, forbiddenLabels: [String]?, globalLabels: [String]? = nil, families: [FamilySpec]) {
        self.version = version
        self.forbiddenLabels = forbiddenLabels
        self.globalLabels = globalLabels
        self.families = families
    }

    enum CodingKeys: String, CodingKey {
        case version, families
        case forbiddenLabels = "forbidden_labels"
        case globalLabels = "global_labels"
    }

    public init(_ catalog: Catalog) {
        self.init(forbiddenLabels: catalog.forbiddenLabels, globalLabels: catalog.globalLabels, families: catalog.families)
    }

    /// Reads and decodes a file, with the path and the offending field in every error.
    public static func load(path: String) throws(CatalogError) -> CatalogFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            // The system's reason ("No such file or directory"), not Foundation's "The operation could not be completed".
            let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
            let reason = underlying.flatMap { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : nil }
            throw CatalogError(.unreadableFile, "cannot read catalog file \(path): \(reason ?? error.localizedDescription)")
        }
        return try decode(data, source: path)
    }

    /// The largest catalog file read: the built-in catalog's JSON is about 100 KiB.
    public static let maxFileBytes = 4 << 20
    /// The longest string in a catalog file (a note); names and help are held to the protocol's limits after.
    public static let maxStringBytes = 16 << 10

    public static func decode(_ data: Data, source: String) throws(CatalogError) -> CatalogFile {
        guard data.count <= maxFileBytes else {
            throw CatalogError(.malformedFile, "catalog file \(source) is \(data.count) bytes; at most \(maxFileBytes) are read")
        }
        do {
            try JSONShapeCheck.check(Array(data), maxStringBytes: maxStringBytes)
        } catch {
            throw CatalogError(.malformedFile, "catalog file \(source), \(error)")
        }
        let file: CatalogFile
        do {
            file = try JSONDecoder().decode(CatalogFile.self, from: data)
        } catch let error as DecodingError {
            throw CatalogError(.malformedFile, "catalog file \(source): \(describe(error))")
        } catch {
            throw CatalogError(.malformedFile, "catalog file \(source): \(error)")
        }
        guard file.version == currentVersion else {
            throw CatalogError(.unsupportedVersion, "catalog file \(source) has version \(file.version); this agent reads version \(currentVersion)")
        }
        return file
    }

    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "" : " at \(path)"
        }
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "\(context.debugDescription)\(path(context))"
        case .keyNotFound(let key, let context):
            return "missing field \"\(key.stringValue)\"\(path(context))"
        case .dataCorrupted(let context):
            return "\(context.debugDescription)\(path(context))"
        @unknown default:
            return "\(error)"
        }
    }
}

import CZlib
import DanubeMetricsWire
import Foundation

/// The state file's bytes. Hand-written (like the wire codec, with the same primitives) because it is written
/// every checkpoint: a compact binary form of 100k series takes milliseconds where JSON takes hundreds.
///
/// Version 2: header `"DNBS"`, u16 version, u16 flags (0), u64 payload length, u32 CRC-32 of the
/// payload, u32 reserved (0); payload: f64 written-at (unix seconds); sources (uvarint count; u64 instance,
/// uvarint sequence, f64 last seen); families (uvarint count; string name, u8 kind, string help, uvarint bound
/// count, f64 bounds); series (uvarint count; uvarint family, uvarint label count, string name + string value
/// per label, then uvarint integer + f64 fraction for a counter, or uvarint per bucket + f64 sum for a
/// histogram). Version 3 (current) adds native histograms: a family of kind 4 is a histogram whose bounds are
/// followed by u8 schema, f64 zero threshold and uvarint window size; its series have one uvarint per classic bucket
/// (with +Inf) and for the zero bucket, then the number of non-empty window buckets and, for each, uvarint gap
/// since the previous one and uvarint count. Version 2 files are read as they are.
/// Version 1 was JSON, written on drain only; it is read and migrated (the next checkpoint writes the current
/// version). Any other version is refused by name, never guessed at.
public enum StateFormat {
    static let magic: [UInt8] = Array("DNBS".utf8)
    static let currentVersion: UInt16 = 3
    static let readableVersions: ClosedRange<UInt16> = 2...3
    static let nativeHistogramKind: UInt8 = 4
    static let headerSize = 24
    /// Generous bounds for strings in a state file (the wire limits are lower).
    static let maxString = 64 * 1024

    /// A state file this agent does not restore, and why (`code` to switch on, `description` for the log).
    struct Unreadable: Error, CustomStringConvertible {
        enum Code: Equatable {
            /// No DNBS header and not JSON: some other file.
            case notAStateFile
            /// A version this agent does not read.
            case unsupportedVersion
            /// Shorter or longer than its header says.
            case truncated
            /// The checksum does not match.
            case corrupt
            /// It decodes, but contradicts itself (a count beyond the bytes, a family twice, an entry that cannot be).
            case malformed
        }

        var code: Code
        var description: String
        init(_ code: Code, _ description: String) {
            self.code = code
            self.description = description
        }
    }

    // MARK: versions 2 and 3

    public static func encode(_ snapshot: StoreSnapshot, writtenAt: Double) -> [UInt8] {
        var payload = ByteWriter(capacity: 64 * max(1, snapshot.series.count))
        payload.f64(writtenAt)
        payload.uvarint(UInt64(snapshot.sources.count))
        for source in snapshot.sources {
            payload.u64(source.instance)
            payload.uvarint(source.sequence)
            payload.f64(source.lastSeen)
        }
        var familyIndex: [String: Int] = [:]
        var families: [StoreSnapshot.Series] = []
        var seriesFamily: [Int] = []
        seriesFamily.reserveCapacity(snapshot.series.count)
        for series in snapshot.series {
            if let index = familyIndex[series.name] {
                seriesFamily.append(index)
            } else {
                familyIndex[series.name] = families.count
                seriesFamily.append(families.count)
                families.append(series)
            }
        }
        payload.uvarint(UInt64(families.count))
        for family in families {
            payload.string(family.name)
            payload.u8(family.native == nil ? family.kind.rawValue : nativeHistogramKind)
            payload.string(family.help)
            payload.uvarint(UInt64(family.bounds.count))
            family.bounds.forEach { payload.f64($0) }
            if let native = family.native {
                payload.u8(UInt8(bitPattern: native.schema))
                payload.f64(native.zeroThreshold)
                payload.uvarint(UInt64(native.maxBuckets))
            }
        }
        payload.uvarint(UInt64(snapshot.series.count))
        for (series, family) in zip(snapshot.series, seriesFamily) {
            payload.uvarint(UInt64(family))
            payload.uvarint(UInt64(series.labels.count))
            for label in series.labels {
                payload.string(label.name)
                payload.string(label.value)
            }
            if series.kind == .histogram {
                encodeBuckets(series, into: &payload)
                payload.f64(series.sum)
            } else {
                payload.uvarint(series.counterInteger)
                payload.f64(series.counterFloat)
            }
        }
        var file = ByteWriter(capacity: headerSize + payload.count)
        file.raw(magic)
        file.u16(currentVersion)
        file.u16(0)
        file.u64(UInt64(payload.count))
        file.u32(CRC32.checksum(payload.bytes))
        file.u32(0)
        file.raw(payload.bytes)
        return file.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws -> StoreSnapshot {
        if bytes.first == UInt8(ascii: "{") { return try decodeVersion1(bytes) }
        guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else {
            throw Unreadable(.notAStateFile, "not a danube-metrics-agent state file (no DNBS header)")
        }
        let version = UInt16(bytes[4]) | UInt16(bytes[5]) << 8
        guard readableVersions.contains(version) else {
            throw Unreadable(.unsupportedVersion, "state file format version \(version); this agent reads versions 1 to \(currentVersion)")
        }
        let length = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[8 + $1]) << (8 * UInt64($1)) }
        let checksum = (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[16 + $1]) << (8 * UInt32($1)) }
        guard length == UInt64(bytes.count - headerSize) else {
            throw Unreadable(.truncated, "state file is \(bytes.count - headerSize) payload bytes, its header says \(length) (truncated or extended)")
        }
        guard CRC32.checksum(bytes[headerSize...]) == checksum else { throw Unreadable(.corrupt, "state file checksum does not match (corrupt)") }
        do {
            return try bytes.withUnsafeBytes { raw throws(WireError) in
                try decodePayload(UnsafeRawBufferPointer(rebasing: raw[headerSize...]), version: version)
            }
        } catch let error as WireError {
            throw Unreadable(.malformed, "state file is malformed: \(error.message)")
        }
    }

    private static func decodePayload(_ payload: UnsafeRawBufferPointer, version: UInt16) throws(WireError) -> StoreSnapshot {
        var reader = ByteReader(payload)
        var snapshot = StoreSnapshot()
        _ = try reader.f64("written-at")
        for _ in 0..<(try count(&reader, "sources")) {
            snapshot.sources.append(StoreSnapshot.Source(
                instance: try reader.u64("instance"), sequence: try reader.uvarint("sequence"), lastSeen: try reader.f64("last seen")))
        }
        var families: [StoreSnapshot.Series] = []
        var familyNames = Set<String>()
        for _ in 0..<(try count(&reader, "families")) {
            let name = try reader.string("family name", limit: maxString)
            let kindByte = try reader.u8("kind")
            let isNative = version >= 3 && kindByte == nativeHistogramKind
            guard let kind = isNative ? .histogram : MetricKind(rawValue: kindByte), kind != .gauge else {
                throw WireError(.malformed, "family \(name.prefix(64)) has an unknown kind")
            }
            var family = StoreSnapshot.Series(
                name: name, kind: kind, help: try reader.string("help", limit: maxString), bounds: [], labels: [],
                counterInteger: 0, counterFloat: 0, buckets: [], sum: 0)
            for _ in 0..<(try count(&reader, "bounds")) { family.bounds.append(try reader.f64("bound")) }
            if isNative {
                let native = NativeHistogramSpec(schema: Int8(bitPattern: try reader.u8("schema")), zeroThreshold: try reader.f64("zero threshold"),
                                                 maxBuckets: UInt16(clamping: try reader.uvarint("window")))
                if let problem = native.problem() { throw WireError(.malformed, "family \(name.prefix(64)): \(problem)") }
                family.native = native
            }
            guard familyNames.insert(name).inserted else {
                throw WireError(.malformed, "family \(name.prefix(64)) appears twice")
            }
            families.append(family)
        }
        for _ in 0..<(try count(&reader, "series")) {
            let index = Int(try reader.uvarint("family index"))
            guard index < families.count else { throw WireError(.malformed, "series of family \(index), which does not exist") }
            let family = families[index]
            var labels: [Label] = []
            for _ in 0..<(try count(&reader, "labels")) {
                labels.append(Label(try reader.string("label name", limit: maxString), try reader.string("label value", limit: maxString)))
            }
            var series = family
            series.labels = labels
            if family.kind == .histogram {
                (series.buckets, series.nativeBuckets) = try decodeBuckets(family, &reader)
                series.sum = try reader.f64("sum")
            } else {
                series.counterInteger = try reader.uvarint("counter")
                series.counterFloat = try reader.f64("counter fraction")
            }
            snapshot.series.append(series)
        }
        guard reader.isAtEnd else { throw WireError(.malformed, "\(reader.remaining) bytes after the last series") }
        return snapshot
    }

    /// A histogram's bucket counts: one uvarint per classic bucket (with +Inf); with native buckets, the zero
    /// bucket too, then only the window's non-empty buckets as (gap since the previous one, count) pairs after their
    /// number, since most of a window is empty and a changed histogram is written at every checkpoint.
    private static func encodeBuckets(_ series: StoreSnapshot.Series, into payload: inout ByteWriter) {
        series.buckets.forEach { payload.uvarint($0) }
        guard series.native != nil else { return }
        payload.uvarint(UInt64(series.nativeBuckets.count / 2))
        var next: UInt64 = 0 // the first position the next bucket may have
        for i in stride(from: 0, to: series.nativeBuckets.count - 1, by: 2) {
            payload.uvarint(series.nativeBuckets[i] &- next)
            payload.uvarint(series.nativeBuckets[i + 1])
            next = series.nativeBuckets[i] &+ 1
        }
    }

    /// The dense buckets, and the window's (position, count) pairs.
    private static func decodeBuckets(_ family: StoreSnapshot.Series, _ reader: inout ByteReader) throws(WireError) -> ([UInt64], [UInt64]) {
        var buckets: [UInt64] = []
        buckets.reserveCapacity(family.bucketCount)
        for _ in 0..<family.bucketCount { buckets.append(try reader.uvarint("bucket")) }
        guard let native = family.native else { return (buckets, []) }
        var window: [UInt64] = []
        var next: UInt64 = 0
        for _ in 0..<(try count(&reader, "native buckets")) {
            let gap = try reader.uvarint("native bucket gap")
            guard gap < UInt64(native.maxBuckets) &- next, next < UInt64(native.maxBuckets) else {
                throw WireError(.malformed, "native bucket beyond the window of \(family.name.prefix(64))")
            }
            let position = next + gap
            window += [position, try reader.uvarint("native bucket")]
            next = position + 1
        }
        return (buckets, window)
    }

    /// A count that cannot claim more entries than bytes left (each entry takes at least one).
    private static func count(_ reader: inout ByteReader, _ what: String) throws(WireError) -> Int {
        let value = try reader.uvarint("\(what) count")
        guard value <= UInt64(reader.remaining) else { throw WireError(.malformed, "\(what) count \(value) exceeds the bytes left") }
        return Int(value)
    }

    // MARK: version 1 (JSON, read for migration)

    private struct Version1: Decodable {
        struct Series: Decodable {
            var name: String, kind: UInt8, help: String, bounds: [Double], labels: [[String]]
            var counterInteger: UInt64, counterFloat: Double, buckets: [UInt64], sum: Double
        }
        var version: Int
        var series: [Series]
        var sources: [String: UInt64]
    }

    private static func decodeVersion1(_ bytes: [UInt8]) throws -> StoreSnapshot {
        let file: Version1
        do {
            file = try JSONDecoder().decode(Version1.self, from: Data(bytes))
        } catch {
            throw Unreadable(.malformed, "state file looks like JSON but is not a version 1 state: \(error)")
        }
        guard file.version == 1 else { throw Unreadable(.unsupportedVersion, "JSON state file format version \(file.version); this agent reads versions 1 and \(currentVersion)") }
        var snapshot = StoreSnapshot()
        var families: [String: (UInt8, [Double])] = [:]
        for (index, entry) in file.series.enumerated() {
            // One kind and one set of bounds per family name, as the store holds them.
            if let family = families.updateValue((entry.kind, entry.bounds), forKey: entry.name), family != (entry.kind, entry.bounds) {
                throw Unreadable(.malformed, "version 1 state defines \(entry.name.prefix(64)) twice, differently")
            }
            // Gauges were never saved, and a histogram has one bucket more than its bounds: anything else would be
            // written back as a version 2 file that reads differently.
            guard let kind = MetricKind(rawValue: entry.kind), kind != .gauge, entry.labels.allSatisfy({ $0.count == 2 }),
                  entry.buckets.count == (kind == .histogram ? entry.bounds.count + 1 : 0)
            else {
                throw Unreadable(.malformed, "version 1 state entry \(index) is inconsistent")
            }
            snapshot.series.append(StoreSnapshot.Series(
                name: entry.name, kind: kind, help: entry.help, bounds: entry.bounds, labels: entry.labels.map { Label($0[0], $0[1]) },
                counterInteger: entry.counterInteger, counterFloat: entry.counterFloat, buckets: entry.buckets, sum: entry.sum))
        }
        let now = Date().timeIntervalSince1970
        for (key, sequence) in file.sources {
            guard let instance = UInt64(key, radix: 16) else { throw Unreadable(.malformed, "version 1 state names a source \"\(key)\" that is not an instance id") }
            snapshot.sources.append(StoreSnapshot.Source(instance: instance, sequence: sequence, lastSeen: now))
        }
        return snapshot
    }
}

/// CRC-32 (IEEE 802.3), to tell a torn or corrupted state file from a good one: zlib's, which reads several
/// bytes per step (a checkpoint sums every record it appends).
enum CRC32 {
    static func checksum(_ bytes: some Collection<UInt8>) -> UInt32 {
        let sum = bytes.withContiguousStorageIfAvailable { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
        return sum ?? Array(bytes).withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, uInt($0.count))) }
    }
}

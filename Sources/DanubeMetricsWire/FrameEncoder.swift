/// Encodes frames. Small control frames go through `encode(_:)`; DEFINE and DELTAS frames are filled item by item
/// with `FrameBuilder`, which never lets a frame grow past the agent's frame-size limit.
public enum FrameEncoder {
    public static func encode(_ frame: Frame) -> [UInt8] {
        var builder = FrameBuilder(type: frame.type)
        switch frame {
        case .hello(let hello):
            builder.writer.raw(WireFormat.magic)
            builder.writer.u16(hello.minVersion)
            builder.writer.u16(hello.maxVersion)
            builder.writer.string(hello.sourceName)
            builder.writer.uvarint(hello.pid)
            builder.writer.uvarint(hello.processStartMillis)
            builder.writer.u64(hello.instanceID)
            builder.writer.uvarint(hello.firstSequence)
        case .welcome(let welcome):
            builder.writer.u16(welcome.version)
            builder.writer.uvarint(welcome.maxFrameBytes)
            builder.writer.uvarint(welcome.maxSeries)
            builder.writer.uvarint(welcome.lastAppliedSequence)
        case .refuse(let refusal):
            builder.writer.u8(refusal.code.rawValue)
            builder.writer.string(refusal.message)
        case .define(let batch):
            builder.writer.uvarint(batch.sequence)
            for definition in batch.definitions { encode(definition, into: &builder.writer) }
        case .deltas(let batch):
            builder.writer.uvarint(batch.sequence)
            for delta in batch.deltas {
                encode(delta, buckets: batch.buckets[delta.bucketStart..<delta.bucketStart + delta.bucketCount], into: &builder.writer)
            }
        case .ack(let sequence), .goodbye(let sequence):
            builder.writer.uvarint(sequence)
        case .seriesRefused(let refusal):
            builder.writer.uvarint(UInt64(refusal.seriesID))
            builder.writer.u8(refusal.code.rawValue)
            builder.writer.string(refusal.message)
        case .exemplars(let exemplars):
            for exemplar in exemplars { encode(exemplar, into: &builder.writer) }
        case .spans(let batch):
            encode(batch.resource, into: &builder.writer)
            for span in batch.spans { encode(span, into: &builder.writer) }
        }
        return builder.finish()
    }

    public static func encode(_ exemplar: ExemplarUpdate, into writer: inout ByteWriter) {
        writer.uvarint(UInt64(exemplar.seriesID))
        writer.uvarint(UInt64(exemplar.bucket))
        writer.f64(exemplar.value)
        writer.uvarint(exemplar.timestampMillis)
        encode(exemplar.labels, into: &writer)
    }

    /// A label count, then each name and value.
    static func encode(_ labels: [Label], into writer: inout ByteWriter) {
        writer.uvarint(UInt64(labels.count))
        for label in labels {
            writer.string(label.name)
            writer.string(label.value)
        }
    }

    public static func encode(_ definition: SeriesDefinition, into writer: inout ByteWriter) {
        writer.uvarint(UInt64(definition.id))
        let native = definition.kind == .histogram ? definition.native : nil
        writer.u8(native == nil ? definition.kind.rawValue : WireFormat.nativeHistogramKindByte)
        writer.string(definition.name)
        writer.string(definition.help)
        encode(definition.labels, into: &writer)
        if definition.kind == .histogram {
            writer.uvarint(UInt64(definition.bounds.count))
            for bound in definition.bounds { writer.f64(bound) }
        }
        if let native {
            writer.u8(UInt8(bitPattern: native.schema))
            writer.f64(native.zeroThreshold)
            writer.uvarint(UInt64(native.maxBuckets))
        }
    }

    public static func encode<C: Collection>(_ delta: Delta, buckets: C, into writer: inout ByteWriter)
    where C.Element == BucketDelta {
        writer.u8(delta.op.rawValue)
        writer.uvarint(UInt64(delta.seriesID))
        switch delta.op {
        case .counterAdd:
            writer.uvarint(delta.value)
        case .counterAddFloat, .gaugeSet, .gaugeAdd:
            writer.u64(delta.value)
        case .histogram:
            writer.uvarint(UInt64(buckets.count))
            for bucket in buckets {
                writer.uvarint(UInt64(bucket.index))
                writer.uvarint(bucket.count)
            }
            writer.f64(delta.sum)
        }
    }
}

/// Builds one frame: header placeholder, body, then `finish()` patches the length.
public struct FrameBuilder {
    public var writer: ByteWriter
    public let maxFrameBytes: Int
    public private(set) var items = 0

    public init(type: FrameType, sequence: UInt64? = nil, maxFrameBytes: Int = WireLimits.default.maxFrameBytes) {
        self.maxFrameBytes = maxFrameBytes
        writer = ByteWriter(capacity: 512)
        writer.u32(0)
        writer.u8(type.rawValue)
        writer.u8(0)
        if let sequence { writer.uvarint(sequence) }
    }

    /// Appends one item; if the frame would exceed `maxFrameBytes` the item is undone and `false` returned.
    public mutating func append(_ encode: (inout ByteWriter) -> Void) -> Bool {
        let mark = writer.count
        encode(&writer)
        if writer.count > maxFrameBytes {
            writer.truncate(to: mark)
            return false
        }
        items += 1
        return true
    }

    public func finish() -> [UInt8] {
        var copy = writer
        copy.patchU32(at: 0, UInt32(copy.count - 4))
        return copy.bytes
    }
}

/// Decodes one frame from one record (a SOCK_SEQPACKET message), checking structure and per-item limits.
/// A frame is decoded completely before anything in it is used, so a bad frame is rejected as a whole.
public struct FrameDecoder: Sendable {
    public var limits: WireLimits

    public init(limits: WireLimits = .default) {
        self.limits = limits
    }

    public func decode(_ bytes: [UInt8]) throws(WireError) -> Frame {
        do {
            return try bytes.withUnsafeBytes { raw in try decode(raw) }
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(.other, "\(error)")
        }
    }

    public func decodeFrames(in bytes: [UInt8]) throws(WireError) -> [Frame] {
        do {
            return try bytes.withUnsafeBytes { raw in try decodeFrames(in: raw) }
        } catch let error as WireError {
            throw error
        } catch {
            throw WireError(.other, "\(error)")
        }
    }

    /// Decodes a record that must hold exactly one frame.
    public func decode(_ record: UnsafeRawBufferPointer) throws(WireError) -> Frame {
        let frames = try decodeFrames(in: record)
        guard frames.count == 1 else { throw WireError(.malformed, "record holds \(frames.count) frames, expected one") }
        return frames[0]
    }

    /// Decodes every frame of one record. A record (one SOCK_SEQPACKET message) carries one or more whole
    /// frames, back to back: a sender that writes several frames at once (a vector write) sends one record.
    /// The record as a whole is held to `maxFrameBytes`.
    public func decodeFrames(in record: UnsafeRawBufferPointer) throws(WireError) -> [Frame] {
        if record.count > limits.maxFrameBytes {
            throw WireError(.oversized, "record of \(record.count)+ bytes exceeds the limit of \(limits.maxFrameBytes)")
        }
        if record.isEmpty { throw WireError(.truncated, "empty record") }
        var frames: [Frame] = []
        var offset = 0
        while offset < record.count {
            let remaining = record.count - offset
            if remaining < WireFormat.headerSize {
                throw WireError(.truncated, "\(remaining) bytes are shorter than the \(WireFormat.headerSize)-byte frame header")
            }
            var lengthReader = ByteReader(record, offset: offset)
            let length = Int(try lengthReader.u32("frame length"))
            if length > limits.maxFrameBytes {
                throw WireError(.malformed, "frame declares \(length) bytes, more than the limit of \(limits.maxFrameBytes): not a Danube metrics frame")
            }
            if length < 2 { throw WireError(.malformed, "frame declares \(length) bytes, less than its type and flags") }
            if length > remaining - 4 {
                throw WireError(.truncated, "frame declares \(length) bytes after its length but \(remaining - 4) arrived")
            }
            let end = offset + 4 + length
            frames.append(try decodeFrame(UnsafeRawBufferPointer(rebasing: record[offset..<end])))
            offset = end
        }
        return frames
    }

    private func decodeFrame(_ bytes: UnsafeRawBufferPointer) throws(WireError) -> Frame {
        var reader = ByteReader(bytes, offset: 4)
        let typeByte = try reader.u8("frame type")
        guard let type = FrameType(rawValue: typeByte) else {
            throw WireError(.malformed, "unknown frame type 0x\(String(typeByte, radix: 16))")
        }
        let flags = try reader.u8("frame flags")
        guard flags == 0 else { throw WireError(.malformed, "reserved flags 0x\(String(flags, radix: 16)) are set") }

        let frame: Frame
        switch type {
        case .hello: frame = .hello(try decodeHello(&reader))
        case .welcome:
            frame = .welcome(Welcome(
                version: try reader.u16("version"), maxFrameBytes: try reader.uvarint("max frame bytes"),
                maxSeries: try reader.uvarint("max series"), lastAppliedSequence: try reader.uvarint("last applied")))
        case .refuse:
            frame = .refuse(Refusal(code: try refusalCode(&reader), message: try reader.string("message", limit: 4096)))
        case .define: frame = .define(try decodeDefine(&reader))
        case .deltas: frame = .deltas(try decodeDeltas(&reader))
        case .ack: frame = .ack(try reader.uvarint("sequence"))
        case .goodbye: frame = .goodbye(try reader.uvarint("sequence"))
        case .seriesRefused:
            frame = .seriesRefused(SeriesRefusal(
                seriesID: try reader.uvarint32("series id"), code: try refusalCode(&reader),
                message: try reader.string("message", limit: 4096)))
        case .exemplars: frame = .exemplars(try decodeExemplars(&reader))
        case .spans: frame = .spans(try decodeSpans(&reader))
        }
        if !reader.isAtEnd {
            throw WireError(.malformed, "\(reader.remaining) unexpected bytes after a \(type) frame")
        }
        return frame
    }

    private func refusalCode(_ reader: inout ByteReader) throws(WireError) -> RefusalCode {
        RefusalCode(rawValue: try reader.u8("refusal code")) ?? .other
    }

    private func decodeHello(_ reader: inout ByteReader) throws(WireError) -> Hello {
        let magic = try reader.bytes(4, "magic")
        guard magic == WireFormat.magic else { throw WireError(.malformed, "bad magic \(magic): not a Danube metrics emitter") }
        let minVersion = try reader.u16("min version")
        let maxVersion = try reader.u16("max version")
        guard minVersion <= maxVersion else {
            throw WireError(.malformed, "version range \(minVersion)...\(maxVersion) is empty")
        }
        return Hello(
            minVersion: minVersion, maxVersion: maxVersion,
            sourceName: try reader.string("source name", limit: limits.maxSourceNameBytes),
            pid: try reader.uvarint("pid"), processStartMillis: try reader.uvarint("process start"),
            instanceID: try reader.u64("instance id"), firstSequence: try reader.uvarint("first sequence"))
    }

    private func decodeDefine(_ reader: inout ByteReader) throws(WireError) -> DefineBatch {
        var batch = DefineBatch(sequence: try reader.uvarint("sequence"), definitions: [])
        while !reader.isAtEnd {
            let id = try reader.uvarint32("series id")
            let kindByte = try reader.u8("metric kind")
            let isNative = kindByte == WireFormat.nativeHistogramKindByte
            guard let kind = isNative ? .histogram : MetricKind(rawValue: kindByte) else {
                throw WireError(.malformed, "series \(id) has unknown kind \(kindByte)")
            }
            let name = try reader.string("metric name", limit: limits.maxNameBytes)
            let help = try reader.string("help of \(name)", limit: limits.maxHelpBytes)
            let labelCount = try reader.uvarint("label count of \(name)")
            guard labelCount <= UInt64(limits.maxLabelsPerSeries) else {
                throw WireError(.limitExceeded, "\(name) has \(labelCount) labels, the limit is \(limits.maxLabelsPerSeries)")
            }
            var labels: [Label] = []
            labels.reserveCapacity(Int(labelCount))
            for _ in 0..<labelCount {
                let labelName = try reader.string("label name of \(name)", limit: limits.maxLabelNameBytes)
                let value = try reader.string("value of label \(labelName) of \(name)", limit: limits.maxLabelValueBytes)
                labels.append(Label(labelName, value))
            }
            var bounds: [Double] = []
            if kind == .histogram {
                let count = try reader.uvarint("bucket count of \(name)")
                guard count <= UInt64(limits.maxBucketsPerHistogram) else {
                    throw WireError(.limitExceeded, "\(name) has \(count) buckets, the limit is \(limits.maxBucketsPerHistogram)")
                }
                for _ in 0..<count {
                    let bound = try reader.f64("bucket bound of \(name)")
                    guard bound.isFinite, bounds.last.map({ $0 < bound }) ?? true else {
                        throw WireError(.malformed, "bucket bounds of \(name) must be finite and strictly increasing")
                    }
                    bounds.append(bound)
                }
            }
            var native: NativeHistogramSpec?
            if isNative {
                let spec = NativeHistogramSpec(
                    schema: Int8(bitPattern: try reader.u8("native schema of \(name)")),
                    zeroThreshold: try reader.f64("native zero threshold of \(name)"),
                    maxBuckets: UInt16(clamping: try reader.uvarint("native bucket count of \(name)")))
                if let problem = spec.problem(limits: limits) {
                    throw WireError(spec.maxBuckets > 0 && Int(spec.maxBuckets) > limits.maxNativeBuckets ? .limitExceeded : .malformed, "\(name): \(problem)")
                }
                native = spec
            }
            batch.definitions.append(SeriesDefinition(id: id, kind: kind, name: name, help: help, labels: labels, bounds: bounds, native: native))
        }
        return batch
    }

    private func decodeExemplars(_ reader: inout ByteReader) throws(WireError) -> [ExemplarUpdate] {
        var exemplars: [ExemplarUpdate] = []
        while !reader.isAtEnd {
            let seriesID = try reader.uvarint32("series id")
            let bucket = try reader.uvarint32("bucket")
            guard bucket <= UInt32(limits.maxBucketsPerHistogram) else {
                throw WireError(.limitExceeded, "exemplar bucket \(bucket) is beyond \(limits.maxBucketsPerHistogram) buckets")
            }
            let value = try reader.f64("exemplar value")
            guard value.isFinite else { throw WireError(.malformed, "exemplar value \(value) is not finite") }
            let timestamp = try reader.uvarint("exemplar timestamp")
            let count = try reader.uvarint("exemplar label count")
            guard count <= UInt64(WireFormat.maxExemplarLabelCodePoints / 2) else {
                throw WireError(.limitExceeded, "\(count) exemplar labels")
            }
            var labels: [Label] = []
            for _ in 0..<count {
                let limit = WireFormat.maxExemplarLabelCodePoints * 4 // UTF-8 bytes of 128 code points at most
                labels.append(Label(try reader.string("exemplar label name", limit: limit), try reader.string("exemplar label value", limit: limit)))
            }
            if let problem = ExemplarUpdate.problem(with: labels) { throw WireError(.limitExceeded, problem) }
            exemplars.append(ExemplarUpdate(seriesID: seriesID, bucket: bucket, value: value, timestampMillis: timestamp, labels: labels))
        }
        return exemplars
    }

    private func decodeDeltas(_ reader: inout ByteReader) throws(WireError) -> DeltaBatch {
        var batch = DeltaBatch(sequence: try reader.uvarint("sequence"))
        while !reader.isAtEnd {
            let opByte = try reader.u8("delta op")
            guard let op = DeltaOp(rawValue: opByte) else { throw WireError(.malformed, "unknown delta op \(opByte)") }
            var delta = Delta(op: op, seriesID: try reader.uvarint32("series id"))
            switch op {
            case .counterAdd:
                delta.value = try reader.uvarint("counter increment")
            case .counterAddFloat:
                delta.value = try reader.u64("counter increment")
                guard delta.doubleValue.isFinite, delta.doubleValue >= 0 else {
                    throw WireError(.malformed, "counter increment \(delta.doubleValue) for series \(delta.seriesID) is not a finite non-negative number")
                }
            case .gaugeSet, .gaugeAdd:
                delta.value = try reader.u64("gauge value")
            case .histogram:
                let changed = try reader.uvarint("changed bucket count")
                guard changed <= UInt64(limits.maxBucketIndexesPerDelta) else {
                    throw WireError(.limitExceeded, "histogram delta names \(changed) buckets, the limit is \(limits.maxBucketIndexesPerDelta)")
                }
                delta.bucketStart = batch.buckets.count
                delta.bucketCount = Int(changed)
                var previous: Int64 = -1
                // A counted while loop: iterating a UInt64 range allocates per step in unoptimized builds.
                var remaining = changed
                while remaining > 0 {
                    remaining -= 1
                    let index = try reader.uvarint32("bucket index")
                    guard Int64(index) > previous else {
                        throw WireError(.malformed, "bucket indexes of series \(delta.seriesID) are not strictly increasing")
                    }
                    previous = Int64(index)
                    batch.buckets.append(BucketDelta(index: index, count: try reader.uvarint("bucket count")))
                }
                delta.sum = try reader.f64("histogram sum")
                guard delta.sum.isFinite else {
                    throw WireError(.malformed, "histogram sum delta \(delta.sum) for series \(delta.seriesID) is not finite")
                }
            }
            batch.deltas.append(delta)
        }
        return batch
    }
}

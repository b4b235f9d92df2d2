import DanubeMetricsWire
import Testing

/// Every kind of bad input is a `WireError` with the right code, never a crash.
@Suite struct DecoderRejectionTests {
    let decoder = FrameDecoder()

    private func code(_ bytes: [UInt8], limits: WireLimits = .default) -> RefusalCode? {
        do {
            _ = try FrameDecoder(limits: limits).decode(bytes)
            return nil
        } catch {
            return error.code
        }
    }

    private func frame(_ type: UInt8, _ body: [UInt8], flags: UInt8 = 0) -> [UInt8] {
        var writer = ByteWriter()
        writer.u32(UInt32(body.count + 2))
        writer.u8(type)
        writer.u8(flags)
        writer.raw(body)
        return writer.bytes
    }

    @Test func shortAndTruncatedFrames() {
        #expect(code([]) == .truncated)
        #expect(code([1, 0, 0]) == .truncated)
        var bytes = FrameEncoder.encode(.ack(300))
        bytes.removeLast()
        #expect(code(bytes) == .truncated) // length says one more byte than arrived
        bytes = FrameEncoder.encode(.ack(300))
        bytes.append(0)
        #expect(code(bytes) == .truncated) // a byte more than the length says: the start of a cut-off next frame
    }

    @Test func oversizedFrame() {
        var limits = WireLimits()
        limits.maxFrameBytes = 64
        #expect(code(frame(FrameType.deltas.rawValue, [1] + [UInt8](repeating: 0, count: 100)), limits: limits) == .oversized)
    }

    @Test func recordsCarrySeveralFrames() throws {
        let record = FrameEncoder.encode(.ack(1)) + FrameEncoder.encode(.seriesRefused(SeriesRefusal(seriesID: 2, code: .invalidName, message: "x")))
        #expect(try decoder.decodeFrames(in: record).count == 2)
        #expect(code(record) == .malformed) // where exactly one frame is expected
        #expect(code(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == .malformed)
    }

    @Test func unknownTypeFlagsAndOps() {
        #expect(code(frame(0x7F, [])) == .malformed)
        #expect(code(frame(FrameType.ack.rawValue, [1], flags: 1)) == .malformed)
        #expect(code(frame(FrameType.deltas.rawValue, [1, 99, 0])) == .malformed)
        #expect(code(frame(FrameType.define.rawValue, [1, 0, 9])) == .malformed) // kind 9
    }

    @Test func badHello() {
        var hello = FrameEncoder.encode(.hello(Hello(sourceName: "x", pid: 1, processStartMillis: 1, instanceID: 1, firstSequence: 1)))
        hello[6] = UInt8(ascii: "X")
        #expect(code(hello) == .malformed)
        var writer = ByteWriter()
        writer.raw(WireFormat.magic)
        writer.u16(3)
        writer.u16(2) // min > max
        #expect(code(frame(FrameType.hello.rawValue, writer.bytes)) == .malformed)
    }

    @Test func nonMinimalAndOverlongVarints() {
        #expect(code(frame(FrameType.ack.rawValue, [0x81, 0x00])) == .malformed)
        #expect(code(frame(FrameType.ack.rawValue, [UInt8](repeating: 0xFF, count: 10) + [1])) == .malformed)
    }

    @Test func invalidUTF8AndLimits() {
        var writer = ByteWriter()
        writer.uvarint(1) // sequence
        writer.uvarint(0) // id
        writer.u8(MetricKind.counter.rawValue)
        writer.uvarint(2)
        writer.raw([0xC3, 0x28]) // invalid UTF-8
        #expect(code(frame(FrameType.define.rawValue, writer.bytes)) == .malformed)

        let tooManyLabels = SeriesDefinition(id: 0, kind: .gauge, name: "g", help: "",
                                             labels: (0..<17).map { Label("l\($0)", "v") })
        #expect(code(FrameEncoder.encode(.define(DefineBatch(sequence: 1, definitions: [tooManyLabels])))) == .limitExceeded)
        let longValue = SeriesDefinition(id: 0, kind: .gauge, name: "g", help: "", labels: [Label("l", String(repeating: "v", count: 300))])
        #expect(code(FrameEncoder.encode(.define(DefineBatch(sequence: 1, definitions: [longValue])))) == .limitExceeded)
    }

    @Test func histogramBoundsAndBucketIndexes() {
        for bounds in [[1.0, 1.0], [2.0, 1.0], [1.0, .infinity], [.nan]] {
            let definition = SeriesDefinition(id: 0, kind: .histogram, name: "h", help: "", labels: [], bounds: bounds)
            #expect(code(FrameEncoder.encode(.define(DefineBatch(sequence: 1, definitions: [definition])))) == .malformed)
        }
        let unordered = DeltaBatch(sequence: 1, deltas: [Delta(op: .histogram, seriesID: 0, bucketStart: 0, bucketCount: 2)],
                                   buckets: [BucketDelta(index: 2, count: 1), BucketDelta(index: 1, count: 1)])
        #expect(code(FrameEncoder.encode(.deltas(unordered))) == .malformed)
        let negative = DeltaBatch(sequence: 1, deltas: [Delta(op: .counterAddFloat, seriesID: 0, value: (-1.0).bitPattern)])
        #expect(code(FrameEncoder.encode(.deltas(negative))) == .malformed)
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<64, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if bytes.count >= 6 && Bool.random(using: &generator) {
                let n = UInt32(bytes.count - 4)
                bytes[0] = UInt8(n & 0xFF); bytes[1] = UInt8(n >> 8); bytes[2] = 0; bytes[3] = 0
                bytes[4] = [0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13, 0x14].randomElement(using: &generator)!
                bytes[5] = 0
            }
            _ = try? decoder.decode(bytes)
        }
    }
}

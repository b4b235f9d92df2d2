import CZlib
@testable import DanubeMetricsAgent
import Testing

/// The parallel gzip encoder against zlib's own reader: one gzip member (what curl reads), exact bytes, any size.
@Suite struct GzipEncoderTests {
    /// Inflates exactly one gzip member and fails on anything after it.
    private func inflateSingleMember(_ gzip: [UInt8], expecting count: Int) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 16 + 15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: count + 1)
        let status = gzip.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END, stream.avail_in == 0 else { return nil }
        return Array(output.prefix(Int(stream.total_out)))
    }

    @Test(arguments: [0, 1, 1_000, GzipEncoder.sliceBytes, GzipEncoder.sliceBytes * 3 + 12_345])
    func oneMemberThatInflatesToTheBody(size: Int) {
        var body = [UInt8]()
        body.reserveCapacity(size)
        var line = 0
        while body.count < size {
            body.append(contentsOf: "danube_topic_messages_in_total{namespace=\"ns\(line % 7)\",topic=\"t-\(line)\"} \(line * 7919)\n".utf8)
            line += 1
        }
        body = Array(body.prefix(size))
        let gzip = GzipEncoder.gzip(body)
        #expect(gzip.starts(with: [0x1f, 0x8b, 8]))
        #expect(inflateSingleMember(gzip, expecting: size) == body)
        if size > 100_000 { #expect(gzip.count < size / 5) }
    }

    /// A body as the renderer hands it over: header-sized chunks, empty ones, and pieces larger than a slice.
    @Test func chunksOfAnySizeCompressAsTheirConcatenation() {
        var chunks: [[UInt8]] = []
        var body: [UInt8] = []
        for i in 0..<400 {
            let size = [0, 37, 900, 70_000, GzipEncoder.sliceBytes + 3][i % 5]
            let chunk = (0..<size).map { UInt8(ascii: "a") &+ UInt8(truncatingIfNeeded: ($0 / 7 + i) % 26) }
            chunks.append(chunk)
            body += chunk
        }
        #expect(inflateSingleMember(GzipEncoder.gzip(chunks), expecting: body.count) == body)
        #expect(inflateSingleMember(GzipEncoder.gzip([[], []]), expecting: 0) == [])
    }

    @Test(arguments: [
        ("gzip", true), ("deflate, gzip;q=0.5", true), ("GZIP", true), ("x-gzip", true), ("*", true),
        ("gzip;q=0", false), ("deflate", false), ("", false), ("identity", false), ("*;q=0", false), ("br, *;q=0.1", true),
    ])
    func acceptEncoding(header: String, accepted: Bool) {
        #expect(ContentNegotiation.acceptsGzip(header) == accepted)
    }
}

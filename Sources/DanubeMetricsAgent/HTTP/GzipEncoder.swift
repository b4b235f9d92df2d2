import CZlib
import Dispatch

/// Compresses a response body into one gzip member on every core, as pigz does: the body is cut into slices of
/// about 1 MiB that zlib deflates independently at level 1 (each ending on a byte boundary with a sync flush, the
/// last one finishing the stream), and the slices' CRC-32s are combined. At level 1 the exposition format still
/// shrinks about 20 times, at several times the default level's speed; one member (not one per slice) because
/// curl reads only the first member of a multi-member body. Hand-written: NIO's response compressor deflates on
/// the event loop at the default level, which for a million-series scrape takes seconds.
enum GzipEncoder {
    static let sliceBytes = 1 << 20

    /// One part of a slice: a range of one chunk.
    private struct Part { var chunk: Int; var range: Range<Int> }

    static func gzip(_ body: [UInt8]) -> [UInt8] { gzip([body]) }

    /// The chunks of a body (as rendered, not joined), compressed as one.
    static func gzip(_ chunks: [[UInt8]]) -> [UInt8] {
        let slices = self.slices(chunks.map(\.count))
        let deflated = ConcurrentResults<[UInt8]>(count: slices.count, initial: [])
        let crcs = ConcurrentResults<uLong>(count: slices.count, initial: 0)
        DispatchQueue.concurrentPerform(iterations: slices.count) { index in
            (deflated[index], crcs[index]) = deflate(slices[index], of: chunks, last: index == slices.count - 1)
        }
        var output: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]  // gzip, deflate, no name, no mtime, unknown OS
        let pieces = deflated.all
        output.reserveCapacity(10 + pieces.reduce(0) { $0 + $1.count } + 8)
        var crc = crc32(0, nil, 0)
        var total = 0
        for (index, slice) in slices.enumerated() {
            output.append(contentsOf: pieces[index])
            let length = slice.reduce(0) { $0 + $1.range.count }
            crc = crc32_combine(crc, crcs[index], off_t(length))
            total += length
        }
        for value in [UInt32(truncatingIfNeeded: crc), UInt32(truncatingIfNeeded: total)] {
            for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        return output
    }

    /// Groups chunks (splitting large ones) into slices of about `sliceBytes`; always at least one slice.
    private static func slices(_ sizes: [Int]) -> [[Part]] {
        var slices: [[Part]] = []
        var slice: [Part] = []
        var sliceSize = 0
        for (chunk, size) in sizes.enumerated() {
            var start = 0
            while start < size {
                let end = min(size, start + sliceBytes - sliceSize)
                slice.append(Part(chunk: chunk, range: start..<end))
                sliceSize += end - start
                start = end
                if sliceSize >= sliceBytes {
                    slices.append(slice)
                    slice = []
                    sliceSize = 0
                }
            }
        }
        if !slice.isEmpty || slices.isEmpty { slices.append(slice) }
        return slices
    }

    /// Raw deflate (no header) of one slice, ending with a sync flush, or finishing the stream for the last; and
    /// the slice's CRC-32.
    private static func deflate(_ slice: [Part], of chunks: [[UInt8]], last: Bool) -> ([UInt8], uLong) {
        var stream = z_stream()
        guard deflateInit2_(&stream, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            fatalError("zlib: deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(slice.reduce(0) { $0 + $1.range.count }))) + 1_024
        var crc = crc32(0, nil, 0)
        let output = [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            stream.next_out = output.baseAddress
            stream.avail_out = uInt(bound)
            for (index, part) in slice.enumerated() {
                chunks[part.chunk].withUnsafeBufferPointer { chunk in
                    let input = UnsafeBufferPointer(rebasing: chunk[part.range])
                    crc = crc32(crc, input.baseAddress, uInt(input.count))
                    stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                    stream.avail_in = uInt(input.count)
                    let flush = index < slice.count - 1 ? Z_NO_FLUSH : (last ? Z_FINISH : Z_SYNC_FLUSH)
                    let status = CZlib.deflate(&stream, flush)
                    precondition((status == Z_OK || status == Z_STREAM_END) && stream.avail_in == 0, "zlib: deflate returned \(status)")
                }
            }
            if slice.isEmpty {
                precondition(CZlib.deflate(&stream, last ? Z_FINISH : Z_SYNC_FLUSH) != Z_STREAM_ERROR, "zlib: deflate failed")
            }
            count = bound - Int(stream.avail_out)
        }
        return (output, crc)
    }
}

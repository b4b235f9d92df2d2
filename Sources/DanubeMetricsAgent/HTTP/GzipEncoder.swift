import CZlib
import Dispatch

/// Compresses a response body into one gzip member on every core, as pigz does: the body is cut into slices that
/// zlib deflates independently at level 1 (each ending on a byte boundary with a sync flush, the last one
/// finishing the stream), and the slices' CRC-32s are combined. At level 1 the exposition format still shrinks
/// about 20 times, at a multiple of the default level's speed; one member (not one per slice) because curl reads
/// only the first member of a multi-member body. Hand-written: NIO's response compressor deflates on the event
/// loop at the default level, which for a million-series scrape takes seconds.
enum GzipEncoder {
    /// About 1 MiB per slice: enough for deflate to find its matches, small enough to spread over cores.
    static let sliceBytes = 1 << 20

    static func gzip(_ body: [UInt8]) -> [UInt8] {
        let slices = stride(from: 0, to: max(body.count, 1), by: sliceBytes).map { $0..<min(body.count, $0 + sliceBytes) }
        let deflated = ConcurrentResults<[UInt8]>(count: slices.count, initial: [])
        let crcs = ConcurrentResults<uLong>(count: slices.count, initial: 0)
        body.withUnsafeBufferPointer { input in
            let shared = UnsafeInput(buffer: input)
            DispatchQueue.concurrentPerform(iterations: slices.count) { index in
                let slice = UnsafeBufferPointer(rebasing: shared.buffer[slices[index]])
                deflated[index] = deflate(slice, last: index == slices.count - 1)
                crcs[index] = checksum(slice)
            }
        }
        var output: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]  // gzip, deflate, no name, no mtime, unknown OS
        let pieces = deflated.all
        output.reserveCapacity(10 + pieces.reduce(0) { $0 + $1.count } + 8)
        var crc = crc32(0, nil, 0)
        for (index, range) in slices.enumerated() {
            output.append(contentsOf: pieces[index])
            crc = crc32_combine(crc, crcs[index], off_t(range.count))
        }
        for value in [UInt32(truncatingIfNeeded: crc), UInt32(truncatingIfNeeded: body.count)] {
            for shift in stride(from: 0, to: 32, by: 8) { output.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
        }
        return output
    }

    private static func checksum(_ slice: UnsafeBufferPointer<UInt8>) -> uLong {
        crc32(0, slice.baseAddress, uInt(slice.count))
    }

    /// Raw deflate (no header) of one slice, ending with a sync flush, or finishing the stream for the last.
    private static func deflate(_ slice: UnsafeBufferPointer<UInt8>, last: Bool) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            fatalError("zlib: deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(slice.count))) + 16
        return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            stream.next_in = UnsafeMutablePointer(mutating: slice.baseAddress)
            stream.avail_in = uInt(slice.count)
            stream.next_out = output.baseAddress
            stream.avail_out = uInt(bound)
            let status = CZlib.deflate(&stream, last ? Z_FINISH : Z_SYNC_FLUSH)
            precondition(status == (last ? Z_STREAM_END : Z_OK) && stream.avail_in == 0, "zlib: deflate returned \(status)")
            count = bound - Int(stream.avail_out)
        }
    }

    private struct UnsafeInput: @unchecked Sendable { let buffer: UnsafeBufferPointer<UInt8> }
}

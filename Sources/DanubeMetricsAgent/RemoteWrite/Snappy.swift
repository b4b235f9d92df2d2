import CSnappy

/// Snappy's block format (Debian's libsnappy), which remote write requires for its bodies.
enum Snappy {
    static func compress(_ input: [UInt8]) -> [UInt8] {
        input.withUnsafeBufferPointer { source in
            let bound = snappy_max_compressed_length(source.count)
            return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
                var length = bound
                let status = source.baseAddress!.withMemoryRebound(to: CChar.self, capacity: source.count) { input in
                    output.baseAddress!.withMemoryRebound(to: CChar.self, capacity: bound) {
                        snappy_compress(input, source.count, $0, &length)
                    }
                }
                // Only a too small output buffer fails, and `bound` is snappy's own bound.
                precondition(status == SNAPPY_OK, "snappy_compress failed with a buffer of its own bound")
                count = length
            }
        }
    }

    /// For tests: the original bytes, or nil for input that is not a snappy block.
    static func uncompress(_ input: [UInt8]) -> [UInt8]? {
        input.withUnsafeBufferPointer { source -> [UInt8]? in
            source.baseAddress!.withMemoryRebound(to: CChar.self, capacity: source.count) { compressed -> [UInt8]? in
                var length = 0
                guard snappy_uncompressed_length(compressed, source.count, &length) == SNAPPY_OK else { return nil }
                var ok = false
                let result = [UInt8](unsafeUninitializedCapacity: max(1, length)) { output, count in
                    var produced = length
                    ok = output.baseAddress!.withMemoryRebound(to: CChar.self, capacity: max(1, length)) {
                        snappy_uncompress(compressed, source.count, $0, &produced)
                    } == SNAPPY_OK
                    count = ok ? produced : 0
                }
                return ok ? result : nil
            }
        }
    }
}

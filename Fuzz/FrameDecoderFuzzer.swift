// libFuzzer target for the protocol v1 frame decoder, compiled together with Sources/DanubeMetricsWire
// (see run.sh). Any input must decode or fail with a WireError, never trap, overflow or read out of bounds
// (AddressSanitizer watches); whatever decodes must re-encode to bytes that decode to the same encoding.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let record = UnsafeRawBufferPointer(start: data, count: size)
    let decoder = FrameDecoder()
    guard let frames = try? decoder.decodeFrames(in: record) else { return 0 }
    for frame in frames {
        let encoded = FrameEncoder.encode(frame)
        guard let again = try? decoder.decode(encoded) else {
            fatalError("a decoded \(frame.type) frame re-encodes to bytes the decoder refuses")
        }
        guard FrameEncoder.encode(again) == encoded else {
            fatalError("a decoded \(frame.type) frame does not round-trip")
        }
    }
    return 0
}

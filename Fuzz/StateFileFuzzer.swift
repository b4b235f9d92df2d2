// libFuzzer target for the state file decoder (Sources/DanubeMetricsAgent/Durability/StateFormat.swift), compiled
// with it against the DanubeMetricsWire module (see run.sh). A state file may be corrupted on disk: any bytes must
// decode or be refused with a reason, never trap; whatever decodes must encode to a file that decodes the same.
import DanubeMetricsWire

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStateFile(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let snapshot = try? StateFormat.decode(bytes) else { return 0 }
    let encoded = StateFormat.encode(snapshot, writtenAt: 0)
    guard let again = try? StateFormat.decode(encoded) else {
        fatalError("a decoded state re-encodes to a file the decoder refuses")
    }
    guard StateFormat.encode(again, writtenAt: 0) == encoded else { fatalError("a decoded state does not round-trip") }
    return 0
}

import Foundation

/// What Foundation's JSON decoding lets through and an operator file must not have: a key twice in one object
/// (JSONDecoder keeps one of them silently, so the file says two things and the agent acts on one) and strings of
/// any length (a 30 MB family name). Foundation has no option for either, so this walks the document's structure
/// once before it is decoded, and says where the fault is (line and column).
enum JSONShapeCheck {
    struct Fault: Error, CustomStringConvertible {
        var line: Int
        var column: Int
        var problem: String
        var description: String { "line \(line), column \(column): \(problem)" }
    }

    /// Checks `bytes`; faults in JSON syntax itself are left to the decoder, which reports them.
    static func check(_ bytes: [UInt8], maxStringBytes: Int) throws(Fault) {
        var scanner = Scanner(bytes: bytes, maxStringBytes: maxStringBytes)
        try scanner.run()
    }

    private struct Scanner {
        let bytes: [UInt8]
        let maxStringBytes: Int
        var position = 0
        /// The keys seen so far in each object open around the position (nil for an array).
        var open: [Set<String>?] = []
        /// In an object, whether the next string is a key.
        var expectingKey = false

        init(bytes: [UInt8], maxStringBytes: Int) {
            self.bytes = bytes
            self.maxStringBytes = maxStringBytes
        }

        mutating func run() throws(Fault) {
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "{"):
                    open.append([])
                    expectingKey = true
                case UInt8(ascii: "["):
                    open.append(nil)
                    expectingKey = false
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    _ = open.popLast()
                    expectingKey = false
                case UInt8(ascii: ","):
                    expectingKey = open.last.map { $0 != nil } ?? false
                case UInt8(ascii: "\""):
                    let start = position
                    let text = try string()
                    if expectingKey, let keys = open.last, var seen = keys {
                        guard seen.insert(text).inserted else { throw fault(at: start, "the key \"\(text.prefix(64))\" appears twice in one object") }
                        open[open.count - 1] = seen
                        expectingKey = false
                    }
                    continue
                default:
                    break
                }
                position += 1
            }
        }

        /// The string starting at `position` (its opening quote), unescaped; leaves `position` after it.
        mutating func string() throws(Fault) -> String {
            let start = position
            position += 1
            var escaped = false
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    position += 2
                    continue
                }
                if byte == UInt8(ascii: "\"") { break }
                position += 1
            }
            let end = min(position, bytes.count)
            position = end + 1
            guard end - start - 1 <= maxStringBytes else {
                throw fault(at: start, "a string of \(end - start - 1) bytes; at most \(maxStringBytes) are accepted")
            }
            let raw = bytes[start..<min(end + 1, bytes.count)]
            guard escaped else { return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }
            // Escapes (\u0061 and the like) decoded as the decoder will, so that they cannot hide a duplicate.
            return (try? JSONDecoder().decode(String.self, from: Data(raw))) ?? String(decoding: raw, as: UTF8.self)
        }

        func fault(at offset: Int, _ problem: String) -> Fault {
            var line = 1, lineStart = 0
            for index in 0..<offset where bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
            }
            let column = String(decoding: bytes[lineStart..<offset], as: UTF8.self).count + 1
            return Fault(line: line, column: column, problem: problem)
        }
    }
}

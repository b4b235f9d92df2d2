import Foundation

/// Checks an operator's JSON file before it is decoded, and says where a fault is (line and column). Foundation's
/// decoder reports a syntax error as "The given data was not valid JSON." with no position, keeps one of two equal
/// keys in an object silently (the file says two things, the agent acts on one), and takes strings of any length
/// (a 30 MB family name); it has no option for any of these, so this reads the document once by the JSON grammar
/// (RFC 8259), nesting bounded.
enum JSONShapeCheck {
    struct Fault: Error, CustomStringConvertible {
        var line: Int
        var column: Int
        var problem: String
        var description: String { "line \(line), column \(column): \(problem)" }
    }

    /// Objects and arrays nested deeper than this are refused (a catalog file nests five deep).
    static let maxDepth = 64

    static func check(_ bytes: [UInt8], maxStringBytes: Int) throws(Fault) {
        var scanner = Scanner(bytes: bytes, maxStringBytes: maxStringBytes)
        scanner.skipSpace()
        try scanner.value(depth: 0)
        scanner.skipSpace()
        guard scanner.position == bytes.count else { throw scanner.fault("text after the end of the document") }
    }

    private struct Scanner {
        let bytes: [UInt8]
        let maxStringBytes: Int
        var position = 0

        init(bytes: [UInt8], maxStringBytes: Int) {
            self.bytes = bytes
            self.maxStringBytes = maxStringBytes
        }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipSpace() {
            while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        mutating func value(depth: Int) throws(Fault) {
            guard let byte = current else { throw fault("the document ends where a value was expected") }
            switch byte {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw fault("unexpected \(shown(byte)) where a value was expected")
            }
        }

        mutating func object(depth: Int) throws(Fault) {
            guard depth <= JSONShapeCheck.maxDepth else { throw fault("nested deeper than \(JSONShapeCheck.maxDepth) levels") }
            position += 1
            skipSpace()
            if current == UInt8(ascii: "}") { position += 1; return }
            var keys: Set<String> = []
            while true {
                guard current == UInt8(ascii: "\"") else { throw fault("expected a key in double quotes, found \(shownCurrent)") }
                let start = position
                let key = try string()
                guard keys.insert(key).inserted else { throw fault(at: start, "the key \"\(key.prefix(64))\" appears twice in one object") }
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw fault("expected ':' after the key \"\(key.prefix(64))\", found \(shownCurrent)") }
                position += 1
                skipSpace()
                try value(depth: depth)
                guard try another(before: "}", in: "an object") else { return }
            }
        }

        mutating func array(depth: Int) throws(Fault) {
            guard depth <= JSONShapeCheck.maxDepth else { throw fault("nested deeper than \(JSONShapeCheck.maxDepth) levels") }
            position += 1
            skipSpace()
            if current == UInt8(ascii: "]") { position += 1; return }
            while true {
                try value(depth: depth)
                guard try another(before: "]", in: "an array") else { return }
            }
        }

        /// After a member or an element: true when a ',' announces another, false at the container's end (both
        /// read); a fault otherwise.
        mutating func another(before end: Character, in container: String) throws(Fault) -> Bool {
            skipSpace()
            if current == UInt8(ascii: ",") { position += 1; skipSpace(); return true }
            guard let byte = current, Character(Unicode.Scalar(byte)) == end else {
                throw fault("expected ',' or '\(end)' in \(container), found \(shownCurrent)")
            }
            position += 1
            return false
        }

        mutating func literal(_ word: String) throws(Fault) {
            let expected = Array(word.utf8)
            guard bytes.count - position >= expected.count, Array(bytes[position..<position + expected.count]) == expected else {
                throw fault("unexpected \(shownCurrent) where a value was expected")
            }
            position += expected.count
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        mutating func number() throws(Fault) {
            let start = position
            func digits(_ scanner: inout Scanner) -> Int {
                let first = scanner.position
                while let byte = scanner.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { scanner.position += 1 }
                return scanner.position - first
            }
            if current == UInt8(ascii: "-") { position += 1 }
            if current == UInt8(ascii: "0") {
                position += 1
            } else if digits(&self) == 0 {
                throw fault(at: start, "a number without digits")
            }
            if current == UInt8(ascii: ".") {
                position += 1
                guard digits(&self) > 0 else { throw fault(at: start, "a number with no digits after its '.'") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits(&self) > 0 else { throw fault(at: start, "a number with no digits in its exponent") }
            }
        }

        /// The string starting at `position` (its opening quote), unescaped; leaves `position` after it.
        mutating func string() throws(Fault) -> String {
            let start = position
            position += 1
            var escaped = false
            while true {
                guard let byte = current else { throw fault(at: start, "a string that is never closed") }
                if byte == UInt8(ascii: "\"") { break }
                guard byte >= 0x20 else { throw fault("a control character inside a string (write it as an escape)") }
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    position += 1
                    guard let next = current, Array("\"\\/bfnrtu".utf8).contains(next) else { throw fault("an invalid escape in a string") }
                    if next == UInt8(ascii: "u") {
                        guard bytes.count - position > 4,
                              bytes[position + 1...position + 4].allSatisfy({ UInt8(ascii: "0")...UInt8(ascii: "9") ~= $0 || UInt8(ascii: "a")...UInt8(ascii: "f") ~= $0 | 0x20 })
                        else { throw fault("a \\u escape without four hex digits") }
                        position += 4
                    }
                }
                position += 1
            }
            let end = position
            position += 1
            guard end - start - 1 <= maxStringBytes else {
                throw fault(at: start, "a string of \(end - start - 1) bytes; at most \(maxStringBytes) are accepted")
            }
            let raw = bytes[start...end]
            guard escaped else { return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }
            // Escapes (\u0061 and the like) decoded as the decoder will, so that they cannot hide a duplicate.
            return (try? JSONDecoder().decode(String.self, from: Data(raw))) ?? String(decoding: raw, as: UTF8.self)
        }

        var shownCurrent: String { current.map(shown) ?? "the end of the document" }

        func shown(_ byte: UInt8) -> String {
            (0x21..<0x7F).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        }

        func fault(_ problem: String) -> Fault { fault(at: position, problem) }

        func fault(at offset: Int, _ problem: String) -> Fault {
            var line = 1, lineStart = 0
            for index in 0..<min(offset, bytes.count) where bytes[index] == UInt8(ascii: "\n") {
                line += 1
                lineStart = index + 1
            }
            let column = String(decoding: bytes[lineStart..<min(offset, bytes.count)], as: UTF8.self).count + 1
            return Fault(line: line, column: column, problem: problem)
        }
    }
}

/// A strict logfmt reader, to check that every line a process printed is one: `key=value` pairs separated by
/// single spaces, a value either bare (no space, `=` or `"`) or double-quoted with `\"`, `\\`, `\n`, `\r`, `\t`
/// and `\u00XX` escapes. Written here because the checks need only this and no Swift logfmt package is in reach.
public enum Logfmt {
    /// The pairs of `line` in order, or nil when it is not logfmt.
    public static func parse(_ line: String) -> [(key: String, value: String)]? {
        var pairs: [(key: String, value: String)] = []
        var rest = Substring(line)
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else { return nil }
            let key = rest[..<equals]
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }) else { return nil }
            rest = rest[rest.index(after: equals)...]
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" { closed = true; break }
                    guard character == "\\" else { value.append(character); continue }
                    guard let escaped = rest.first else { return nil }
                    rest = rest.dropFirst()
                    switch escaped {
                    case "\"", "\\": value.append(escaped)
                    case "n": value.append("\n")
                    case "r": value.append("\r")
                    case "t": value.append("\t")
                    case "u":
                        guard rest.count >= 4, let code = UInt32(rest.prefix(4), radix: 16), let scalar = Unicode.Scalar(code) else { return nil }
                        value.unicodeScalars.append(scalar)
                        rest = rest.dropFirst(4)
                    default: return nil
                    }
                }
                guard closed else { return nil }
            } else {
                let end = rest.firstIndex(of: " ") ?? rest.endIndex
                value = String(rest[..<end])
                guard !value.contains("="), !value.contains("\"") else { return nil }
                rest = rest[end...]
            }
            pairs.append((String(key), value))
            if rest.isEmpty { break }
            guard rest.first == " " else { return nil }
            rest = rest.dropFirst()
            guard !rest.isEmpty, rest.first != " " else { return nil }
        }
        return pairs.isEmpty ? nil : pairs
    }

    /// Lines of `text` that are not logfmt entries with `ts`, `level`, `logger` and `msg` first, in that order.
    public static func badEntries(in text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter { line in
            guard let pairs = parse(line) else { return true }
            return pairs.prefix(4).map(\.key) != ["ts", "level", "logger", "msg"]
        }
    }
}

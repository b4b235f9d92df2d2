import CYAML

/// A YAML document as a tree, read with the system's libyaml (its loader resolves anchors and aliases): scalars,
/// sequences and mappings, which is all a configuration file holds. Bounded (nesting, nodes visited), so that an
/// alias bomb in a configuration file ends in an error instead of filling memory.
indirect enum YAMLNode: Equatable {
    struct Pair: Equatable {
        var key: YAMLNode
        var value: YAMLNode
    }

    /// `plain`: written without quotes (only a plain scalar can be a boolean or null).
    case scalar(String, plain: Bool)
    case sequence([YAMLNode])
    case mapping([Pair])

    static let maxDepth = 64
    static let maxNodes = 100_000

    /// The first document of `text`; nil when there is none (an empty file). Throws one line: libyaml's problem
    /// and where.
    static func parse(_ text: String) throws(YAMLError) -> YAMLNode? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw YAMLError(description: "libyaml cannot start") }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        bytes.append(0)  // a non-empty buffer; the length below leaves the terminator out
        return try bytes.withUnsafeBufferPointer { buffer throws(YAMLError) -> YAMLNode? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count - 1)
            var document = yaml_document_t()
            guard yaml_parser_load(&parser, &document) == 1 else {
                let problem = parser.problem.map { String(cString: $0) } ?? "not YAML"
                throw YAMLError(description: "\(problem) at line \(parser.problem_mark.line + 1), column \(parser.problem_mark.column + 1)")
            }
            defer { yaml_document_delete(&document) }
            guard let root = yaml_document_get_root_node(&document) else { return nil }
            var visited = 0
            return try node(root, in: &document, depth: 0, visited: &visited)
        }
    }

    private static func node(_ pointer: UnsafeMutablePointer<yaml_node_t>, in document: inout yaml_document_t, depth: Int,
                             visited: inout Int) throws(YAMLError) -> YAMLNode {
        visited += 1
        guard depth < maxDepth, visited <= maxNodes else {
            throw YAMLError(description: "nested deeper than \(maxDepth) or more than \(maxNodes) nodes (aliases included)")
        }
        func child(_ index: Int32) throws(YAMLError) -> YAMLNode {
            guard let pointer = yaml_document_get_node(&document, index) else { throw YAMLError(description: "a node libyaml lost") }
            return try node(pointer, in: &document, depth: depth + 1, visited: &visited)
        }
        let value = pointer.pointee
        switch value.type {
        case YAML_SCALAR_NODE:
            let scalar = value.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            return .scalar(text, plain: scalar.style == YAML_PLAIN_SCALAR_STYLE)
        case YAML_SEQUENCE_NODE:
            var items: [YAMLNode] = []
            var item = value.data.sequence.items.start
            while let current = item, current != value.data.sequence.items.top {
                items.append(try child(current.pointee))
                item = current + 1
            }
            return .sequence(items)
        case YAML_MAPPING_NODE:
            var pairs: [Pair] = []
            var pair = value.data.mapping.pairs.start
            while let current = pair, current != value.data.mapping.pairs.top {
                pairs.append(Pair(key: try child(current.pointee.key), value: try child(current.pointee.value)))
                pair = current + 1
            }
            return .mapping(pairs)
        default:
            throw YAMLError(description: "an empty node")
        }
    }

    /// The text of a scalar (nil for a sequence or a mapping).
    var string: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }

    /// A plain scalar YAML 1.1 reads as a boolean (as Go's yaml.v2, which exporter-toolkit uses).
    var bool: Bool? {
        guard case .scalar(let text, true) = self else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }
}

struct YAMLError: Error, CustomStringConvertible {
    var description: String
}

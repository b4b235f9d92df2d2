import DanubeMetricsWire
#if canImport(Glibc)
import Glibc
#endif

/// What a source connection needs to hand its spans over: the exporter, and the resource attributes the agent
/// knows of every source (OTLP's semantic conventions: `service.name` from HELLO's source name,
/// `service.instance.id` from its instance id, `process.pid`, and this host's `host.name`). A SPANS frame's own
/// resource attributes come on top and win.
struct SpanIntake: Sendable {
    let exporter: SpanExporter
    let hostName: String

    func resource(of hello: Hello) -> [SpanAttribute] {
        [SpanAttribute("service.name", .string(hello.sourceName)),
         SpanAttribute("service.instance.id", .string(SpanID.hex(hello.instanceID))),
         SpanAttribute("process.pid", .int(Int64(clamping: hello.pid))),
         SpanAttribute("host.name", .string(hostName))]
    }

    /// This host's name, as `uname -n` gives it.
    static var localHostName: String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return "localhost" }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

import DanubeMetricsAgent
import DanubeMetricsTestKit
import Foundation
import Logging
import NIOCore
import Testing

/// The agent's log lines (`--log-format logfmt` and `json`) read back as what was logged, whatever the values hold.
@Suite struct LineLogHandlerTests {
    /// What `format` writes for one entry, read from a pipe.
    private func line(_ format: LineLogHandler.Format, _ message: Logger.Message, _ metadata: Logger.Metadata) throws -> String {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let logger = Logger(label: "danube.metrics.agent") { LineLogHandler(label: $0, format: format, descriptor: fds[1]) }
        logger.warning(message, metadata: metadata)
        close(fds[1])
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let awkward: Logger.Metadata = [
        "detail": "danube_topic_x already has its limit of 3 series",
        "series": "danube_topic_messages_in_total{topic=\"a b\",namespace=\"c\\\\d\"}",
        "empty": "",
        "equals": "a=b",
        "lines": "one\ntwo\tthree\u{1}",
        "plain": "127.0.0.1:9470",
        "unicode": "Zürich ✓",
        "list": .array(["x", "y"]),
    ]

    @Test func logfmtLinesParseBackToWhatWasLogged() throws {
        let text = try line(.logfmt, "series refused", Self.awkward)
        #expect(text.hasSuffix("\n") && text.filter { $0 == "\n" }.count == 1, "one line: \(text)")
        let pairs = try #require(Logfmt.parse(String(text.dropLast())), "not logfmt: \(text)")
        #expect(pairs.prefix(4).map(\.key) == ["ts", "level", "logger", "msg"])
        let values = Dictionary(pairs.map { ($0.key, $0.value) }) { $1 }
        #expect(values["level"] == "warning")
        #expect(values["logger"] == "danube.metrics.agent")
        #expect(values["msg"] == "series refused")
        for (key, value) in Self.awkward where key != "list" { #expect(values[key] == "\(value)", "\(key)") }
        #expect(values["list"] == "x,y")
        #expect(text.contains(" plain=127.0.0.1:9470"), "a value that needs no quotes has none")
        #expect(values["ts"].map { $0.count == 24 && $0.hasSuffix("Z") } == true, "RFC 3339 with milliseconds: \(values["ts"] ?? "")")
        #expect(Logfmt.badEntries(in: text).isEmpty)
    }

    @Test func jsonLinesAreObjectsOfTheSameFields() throws {
        let text = try line(.json, "series refused", Self.awkward)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String], "\(text)")
        #expect(object["msg"] == "series refused")
        #expect(object["level"] == "warning")
        for (key, value) in Self.awkward where key != "list" { #expect(object[key] == "\(value)", "\(key)") }
    }

    /// The reader refuses what is not logfmt, so the chaos run's check can fail.
    @Test func theReaderRefusesWhatIsNotLogfmt() {
        for bad in ["2026-12-02T00:35:19+0000 info danube.metrics.agent: http=[IPv4]127.0.0.1/127.0.0.1:9470 [DanubeMetricsAgent] agent ready",
                    "msg=\"unterminated", "a=b  c=d", "=value", "key=va\"lue", "key=\"bad \\q escape\""] {
            #expect(Logfmt.parse(bad) == nil || Logfmt.badEntries(in: bad) == [bad], "\(bad)")
        }
    }

    @Test func addressesReadAsHostAndPort() throws {
        #expect(try SocketAddress(ipAddress: "127.0.0.1", port: 9470).hostAndPort == "127.0.0.1:9470")
        #expect(try SocketAddress(ipAddress: "::1", port: 9470).hostAndPort == "[::1]:9470")
    }
}

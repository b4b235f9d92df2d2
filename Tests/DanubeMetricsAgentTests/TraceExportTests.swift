@testable import DanubeMetricsAgent
import DanubeMetricsCatalog
import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Logging
import NIOPosix
import Testing

/// Spans from emitters (SPANS frames) exported with OTLP/HTTP protobuf: checked against the official schema
/// (opentelemetry-proto decodes every request) and a real trace backend (Arize Phoenix).
@Suite(.serialized) struct TraceExportTests {
    static let trace = TraceID(high: 0x4BF9_2F35_77B3_4DA6, low: 0xA3CE_929D_0E0E_4736)
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// A publish trace as the broker records it: publish (its parent in the producer, remote) → WAL append →
    /// dispatch → ack, with `base` as the start of the publish in Unix nanoseconds. Span ids are 0x10...0x13 plus
    /// `ids` (span ids are unique across traces: a backend keys spans by them).
    static func publishTrace(_ trace: TraceID, base: UInt64, ids: UInt64 = 0) -> SpanBatch {
        let publish = SpanRecord(
            traceID: trace, spanID: ids + 0x10, parentSpanID: 0xABCD, kind: .producer, parentIsRemote: true, name: "publish /default/orders",
            startUnixNanos: base, durationNanos: 9_000_000, status: .ok, traceState: "rojo=00f067aa0ba902b7",
            attributes: [SpanAttribute("messaging.system", .string("danube")), SpanAttribute("messaging.destination.name", .string("/default/orders")),
                         SpanAttribute("messaging.operation.type", .string("publish")), SpanAttribute("danube.producer_id", .int(7))],
            events: [SpanEvent(name: "wal.appended", offsetNanos: 2_000_000, attributes: [SpanAttribute("danube.segment", .int(3))])])
        let wal = SpanRecord(traceID: trace, spanID: ids + 0x11, parentSpanID: ids + 0x10, name: "wal.append", startUnixNanos: base + 500_000,
                             durationNanos: 1_500_000, attributes: [SpanAttribute("danube.fsync", .bool(true)), SpanAttribute("danube.ratio", .double(0.5))])
        let dispatch = SpanRecord(traceID: trace, spanID: ids + 0x12, parentSpanID: ids + 0x10, kind: .consumer, name: "dispatch /default/orders",
                                  startUnixNanos: base + 2_500_000, durationNanos: 5_000_000)
        let ack = SpanRecord(traceID: trace, spanID: ids + 0x13, parentSpanID: ids + 0x12, kind: .server, name: "ack", startUnixNanos: base + 6_000_000,
                             durationNanos: 1_000_000, status: .error, statusMessage: "consumer gone")
        return SpanBatch(resource: [SpanAttribute("service.version", .string("0.15.1"))], spans: [publish, wal, dispatch, ack])
    }

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1e9) }

    /// A raw emitter connection speaking protocol version 4.
    static func source(_ agent: TestAgent) throws -> RawSource {
        let source = try RawSource(path: agent.socketPath)
        let welcome = source.handshake(name: "danube-broker", versions: 1...4, instance: 0x0123_4567_89AB_CDEF)
        #expect(welcome?.version == WireFormat.spansVersion)
        return source
    }

    /// An agent that exports no traces (version 3): the Swift emitter drops its spans and counts them; its
    /// metrics go on unchanged.
    @Test func theSwiftEmitterDropsAndCountsSpansForAnAgentWithoutExport() async throws {
        try await TracingExclusive.shared.run {
            let agent = try await TestAgent()
            let emitter = agent.emitter(name: "old-agent-broker", spans: true)
            let counter = try emitter.counter("test_no_export_total")
            counter.increment(by: 3)
            _ = Span("publish", kind: .producer, parent: SpanContext(traceID: TraceID(high: 5, low: 5), spanID: 5, sampled: true))
            #expect(emitter.waitUntilDelivered())
            #expect(await eventuallyAsync { emitter.stats.spansDropped == 1 }, "\(emitter.stats)")
            #expect(emitter.stats.spansSent == 0)
            #expect(try agent.samples()["test_no_export_total"] == 3)
            emitter.shutdown()
            await agent.stop()
        }
    }

    @Test func anAgentWithoutAnEndpointSpeaksVersionThreeAndRefusesSpans() async throws {
        let agent = try await TestAgent()
        let source = try RawSource(path: agent.socketPath)
        #expect(source.handshake(versions: 1...4)?.version == 3)
        source.send(.spans(Self.publishTrace(Self.trace, base: 1)))
        guard case .refuse(let refusal)? = source.receive() else { Issue.record("no REFUSE"); return }
        #expect(refusal.code == .unexpectedFrame)
        await agent.stop()
    }

    /// Through a receiver that decodes with opentelemetry-proto: two 503s (retried after Retry-After), then a
    /// partial success rejecting one span. Every field arrives as recorded, with the source's resource.
    @Test func spansArriveAsTheOTLPSchemaSays() async throws {
        let python = try PythonTools.python()
        let port = unusedPort()
        let output = Scratch.path("otlp", suffix: ".jsonl")
        let receiver = try ChildProcess(python, [Self.repository + "/Tests/otlp/otlp_receiver.py", "\(port)", output, "--fail-first", "2", "--reject", "1"],
                                        output: output + ".log")
        defer { receiver.stop() }
        #expect(eventually { boundLoopbackSocket(port: port).map { close($0); return false } ?? true })
        let password = Scratch.path("otlp-password", suffix: ".txt")
        try "secret\n".write(toFile: password, atomically: true, encoding: .utf8)
        let agent = try await TestAgent {
            $0.traceExport.endpoints = ["http://127.0.0.1:\(port)"]
            $0.traceExport.exportInterval = .milliseconds(100)
            $0.traceExport.credentials.basicAuthUser = "danube"
            $0.traceExport.credentials.basicAuthPasswordFile = password
            $0.traceExport.credentials.headers = ["X-Scope-OrgID": "tenant-a"]
        }
        let source = try Self.source(agent)
        let base = Self.now()
        source.send(.spans(Self.publishTrace(Self.trace, base: base)))
        #expect(await eventuallyAsync(timeout: .seconds(20)) { Self.lines(output).count == 4 }, "\((try? String(contentsOfFile: output + ".log", encoding: .utf8)) ?? "")")
        let spans = Dictionary(uniqueKeysWithValues: Self.lines(output).map { ($0["span_id"] as? String ?? "", $0) })
        let publish = try #require(spans["0000000000000010"])
        #expect(publish["path"] as? String == "/v1/traces" && publish["content_type"] as? String == "application/x-protobuf")
        #expect(publish["authorization"] as? String == "Basic " + Data("danube:secret".utf8).base64EncodedString())
        #expect(publish["tenant"] as? String == "tenant-a")
        #expect(publish["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(publish["parent_span_id"] as? String == "000000000000abcd" && publish["trace_state"] as? String == "rojo=00f067aa0ba902b7")
        #expect(publish["kind"] as? Int == 4 && publish["name"] as? String == "publish /default/orders")
        #expect(publish["start"] as? UInt64 == base && publish["end"] as? UInt64 == base + 9_000_000)
        #expect(publish["flags"] as? Int == 0x301, "sampled, with a remote parent")
        let resource = try #require(publish["resource"] as? [String: Any])
        #expect(resource["service.name"] as? String == "danube-broker" && resource["service.instance.id"] as? String == "0123456789abcdef")
        #expect(resource["service.version"] as? String == "0.15.1" && resource["host.name"] as? String == SpanIntake.localHostName)
        let attributes = try #require(publish["attributes"] as? [String: Any])
        #expect(attributes["messaging.system"] as? String == "danube" && attributes["danube.producer_id"] as? Int == 7)
        let events = try #require(publish["events"] as? [[String: Any]])
        #expect(events.first?["name"] as? String == "wal.appended" && events.first?["time"] as? UInt64 == base + 2_000_000)
        let wal = try #require(spans["0000000000000011"]?["attributes"] as? [String: Any])
        #expect(wal["danube.fsync"] as? Bool == true && wal["danube.ratio"] as? Double == 0.5)
        let ack = try #require(spans["0000000000000013"])
        #expect(ack["status_code"] as? Int == 2 && ack["status_message"] as? String == "consumer gone" && ack["parent_span_id"] as? String == "0000000000000012")
        let samples = try agent.samples()
        let url = "url=\"http://127.0.0.1:\(port)\""
        #expect(samples["danube_agent_spans_received_total"] == 4)
        #expect(samples["danube_agent_otlp_spans_sent_total{\(url)}"] == 4)
        #expect(samples["danube_agent_otlp_spans_retried_total{\(url)}"] == 8, "4 spans sent twice more")
        #expect(samples["danube_agent_otlp_request_failures_total{reason=\"status_5xx\",\(url)}"] == 2)
        #expect(samples["danube_agent_otlp_spans_rejected_total{\(url)}"] == 1)
        #expect(agent.logs.contains("OTLP receiver rejected spans", "test rejection"))
        await agent.stop()
    }

    /// The Swift emitter's spans, end to end: recorded in a sampled trace (a producer's traceparent), sent on
    /// protocol version 4, exported with the source's resource; a latency observed inside a span is that bucket's
    /// exemplar, pointing at the span.
    @Test func theSwiftEmittersSpansArriveAndLatencyExemplarsPointAtThem() async throws {
        try await TracingExclusive.shared.run {
            let python = try PythonTools.python()
            let port = unusedPort()
            let output = Scratch.path("otlp-swift", suffix: ".jsonl")
            let receiver = try ChildProcess(python, [Self.repository + "/Tests/otlp/otlp_receiver.py", "\(port)", output], output: output + ".log")
            defer { receiver.stop() }
            #expect(eventually { boundLoopbackSocket(port: port).map { close($0); return false } ?? true })
            let agent = try await TestAgent { $0.traceExport.endpoints = ["http://127.0.0.1:\(port)"]; $0.traceExport.exportInterval = .milliseconds(100) }
            let emitter = agent.emitter(name: "swift-broker", spans: true)
            let latency = try emitter.histogram("test_trace_latency_ms", buckets: [1, 10])
            let producer = try SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            let walSpanID: UInt64
            do {
                let publish = Span("publish", kind: .producer, parent: producer)
                publish.setAttribute("messaging.system", .string("danube"))
                let wal = Span("wal.append")
                latency.observe(2.5)
                walSpanID = wal.context.spanID
            }
            #expect(emitter.waitUntilDelivered())
            #expect(await eventuallyAsync(timeout: .seconds(20)) { Self.lines(output).count == 2 }, "\(emitter.stats)")
            let spans = Self.lines(output)
            #expect(Set(spans.compactMap { $0["name"] as? String }) == ["publish", "wal.append"])
            #expect(spans.allSatisfy { $0["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736" })
            #expect(spans.allSatisfy { ($0["resource"] as? [String: Any])?["service.name"] as? String == "swift-broker" })
            let openMetrics = try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").text
            let bucket = openMetrics.split(separator: "\n").first { $0.hasPrefix("test_trace_latency_ms_bucket") && $0.contains("trace_id") }
            #expect(bucket?.contains("trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"") == true, "\(openMetrics)")
            #expect(bucket?.contains("span_id=\"\(SpanID.hex(walSpanID))\"") == true)
            #expect(emitter.stats.spansSent == 2 && emitter.stats.spansDropped == 0)
            emitter.shutdown()
            await agent.stop()
        }
    }

    /// The proof the broker team asked for: the load generator traces one message in 1,000 (publish → WAL
    /// append → dispatch → ack, across its emitters' flusher) and every trace it reports arrives whole in a real
    /// trace store (Phoenix): four spans or more, each child's parent in the trace, children inside their parents
    /// in time, attributes present; and a latency exemplar on `/metrics` names a trace the store holds.
    @Test func everyTraceTheLoadGeneratorSampledArrivesWholeInARealBackend() async throws {
        _ = try PythonTools.python()
        let port = unusedPort()
        let work = Scratch.makeDirectory("phoenix-loadgen")
        let phoenix = try ChildProcess(PythonTools.phoenix, ["serve"], environment: [
            "PHOENIX_PORT": "\(port)", "PHOENIX_GRPC_PORT": "\(unusedPort())", "PHOENIX_HOST": "127.0.0.1", "PHOENIX_WORKING_DIR": work,
        ], output: work + "/phoenix.log")
        defer { phoenix.stop() }
        #expect(await eventuallyAsync(timeout: .seconds(90)) { (try? HTTPClient.get(port: port, path: "/healthz"))?.status == 200 })
        let agent = try await TestAgent { $0.traceExport.endpoints = ["http://127.0.0.1:\(port)/v1/traces"]; $0.traceExport.exportInterval = .milliseconds(100) }
        let ids = Scratch.path("trace-ids", suffix: ".txt")
        let loadgen = try ChildProcess(Executables.loadgen.path, [
            "--socket", agent.socketPath, "--messages", "20000", "--threads", "2", "--rate", "0", "--flush-interval-ms", "50", "--trace-ids", ids,
        ], output: ids + ".log")
        #expect(ChildProcess.exitedCleanly(loadgen.wait(timeout: .seconds(120))), "\((try? String(contentsOfFile: ids + ".log", encoding: .utf8)) ?? "")")
        let traces = Set(((try? String(contentsOfFile: ids, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init))
        #expect(traces.count >= 10, "\(traces.count) traces sampled of 40,000 messages")
        func stored() -> [[String: Any]] { Self.storedSpans(port: port) }
        func traceOf(_ span: [String: Any]) -> String? { (span["context"] as? [String: Any])?["trace_id"] as? String }
        // Every trace's spans, once the agent has exported all it received.
        #expect(try await eventuallyAsync(timeout: .seconds(60)) {
            let samples = try agent.samples()
            return samples["danube_agent_otlp_spans_sent_total{url=\"http://127.0.0.1:\(port)/v1/traces\"}"] == samples["danube_agent_spans_received_total"]
                && (samples["danube_agent_spans_received_total"] ?? 0) > 0
        })
        // The store writes what it received in the background: wait until every trace has its spans.
        var spans: [[String: Any]] = []
        #expect(await eventuallyAsync(timeout: .seconds(60)) {
            spans = stored()
            let counts = Dictionary(grouping: spans.compactMap(traceOf), by: { $0 }).mapValues(\.count)
            return traces.allSatisfy { (counts[$0] ?? 0) >= 4 }
        }, "\((try? agent.samples().lines.filter { $0.contains("spans") }) ?? [])")
        let catalogued = Set(SpanCatalog.spans.map(\.name))
        #expect(spans.allSatisfy { catalogued.contains($0["name"] as? String ?? "") }, "every span name is the catalog's")
        let dates = ISO8601DateFormatter()
        dates.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func time(_ span: [String: Any], _ key: String) -> Double { (span[key] as? String).flatMap { dates.date(from: $0) }?.timeIntervalSince1970 ?? .nan }
        for trace in traces {
            let members = spans.filter { traceOf($0) == trace }
            #expect(members.count >= 4, "trace \(trace): \(members.count) spans")
            let byID = Dictionary(members.compactMap { span in ((span["context"] as? [String: Any])?["span_id"] as? String).map { ($0, span) } }) { a, _ in a }
            #expect(Set(members.compactMap { $0["name"] as? String }).isSuperset(of: ["publish", "dispatch", "ack"]), "trace \(trace)")
            for span in members where span["name"] as? String != "publish" {
                let parent = try #require(byID[span["parent_id"] as? String ?? ""], "trace \(trace): the parent of \(span["name"] ?? "?") is missing")
                #expect(time(span, "start_time") >= time(parent, "start_time") - 1e-6 && time(span, "end_time") <= time(parent, "end_time") + 1e-6,
                        "trace \(trace): \(span["name"] ?? "?") outside its parent")
                #expect(!((span["attributes"] as? [String: Any]) ?? [:]).isEmpty)
            }
        }
        let openMetrics = try agent.scrape(accept: "application/openmetrics-text; version=1.0.0").text
        let exemplarTrace = openMetrics.split(separator: "\n").lazy.filter { $0.hasPrefix("danube_") && $0.contains("trace_id=\"") }
            .compactMap { line -> String? in
                guard let range = line.range(of: "trace_id=\"") else { return nil }
                return String(line[range.upperBound...].prefix(32))
            }.first
        let linked = try #require(exemplarTrace, "no exemplar on /metrics")
        #expect(traces.contains(linked) && spans.contains { traceOf($0) == linked }, "exemplar trace \(linked) is in the store")
        await agent.stop()
    }

    /// A receiver down while spans arrive: the queue keeps the request being retried and the newest it may hold,
    /// the rest is counted as failed, and once the receiver is up it gets exactly what was kept: nothing
    /// unaccounted for.
    @Test func aReceiverDownLosesOnlyWhatExceededTheQueueAndTheCountsSaySo() async throws {
        let python = try PythonTools.python()
        let port = unusedPort()
        let url = "http://127.0.0.1:\(port)/v1/traces"
        let agent = try await TestAgent {
            $0.traceExport.endpoints = [url]
            $0.traceExport.exportInterval = .milliseconds(50)
            $0.traceExport.maxQueuedSpans = 8
        }
        let source = try Self.source(agent)
        for n in 1...5 {
            source.send(.spans(Self.publishTrace(TraceID(high: 7, low: UInt64(n)), base: Self.now(), ids: UInt64(n) << 8)))
            try await Task.sleep(for: .milliseconds(150)) // each batch exported (and queued) before the next
        }
        #expect(try await eventuallyAsync { try agent.samples()["danube_agent_otlp_spans_failed_total{url=\"\(url)\"}"] == 12 })
        let output = Scratch.path("otlp-late", suffix: ".jsonl")
        let receiver = try ChildProcess(python, [Self.repository + "/Tests/otlp/otlp_receiver.py", "\(port)", output], output: output + ".log")
        defer { receiver.stop() }
        #expect(try await eventuallyAsync(timeout: .seconds(40)) { try agent.samples()["danube_agent_otlp_spans_sent_total{url=\"\(url)\"}"] == 8 })
        let samples = try agent.samples()
        #expect(samples["danube_agent_spans_received_total"] == 20 && samples["danube_agent_spans_dropped_total{reason=\"queue_full\"}"] == 0)
        #expect(Self.lines(output).count == 8)
        #expect(Set(Self.lines(output).compactMap { $0["trace_id"] as? String }) == ["00000000000000070000000000000001", "00000000000000070000000000000005"],
                "the request in flight (being retried) and the newest kept; the three between dropped")
        await agent.stop()
    }

    /// SIGKILL of the agent: what it held of spans is lost (best effort), nothing of the metrics (exact, from
    /// the state file and the emitter's unacknowledged deltas), and spans recorded while it was down wait in their
    /// rings and go out once it is back.
    @Test func aKilledAgentLosesAtMostTheSpansItHeldAndNoMetrics() async throws {
        try await TracingExclusive.shared.run {
            let python = try PythonTools.python()
            let receiverPort = unusedPort(), httpPort = unusedPort()
            let output = Scratch.path("otlp-kill", suffix: ".jsonl")
            let receiver = try ChildProcess(python, [Self.repository + "/Tests/otlp/otlp_receiver.py", "\(receiverPort)", output], output: output + ".log")
            defer { receiver.stop() }
            let socket = TestAgent.temporarySocketPath(), state = Scratch.makeDirectory("kill-state")
            func startAgent() throws -> ChildProcess {
                let agent = try ChildProcess(Executables.agent.path, [
                    "--ingest-socket", socket, "--listen", "127.0.0.1:\(httpPort)", "--state-dir", state, "--checkpoint-interval", "100ms",
                    "--otlp-endpoint", "http://127.0.0.1:\(receiverPort)/v1/traces", "--log-format", "text",
                ], output: socket + ".log")
                #expect(eventually { (try? HTTPClient.get(port: httpPort, path: "/healthz"))?.status == 200 })
                return agent
            }
            var agent = try startAgent()
            let emitter = TestAgent.emitter(socketPath: socket, name: "killed-broker", spans: true)
            let counter = try emitter.counter("test_kill_messages_total")
            let producer = SpanContext(traceID: TraceID(high: 9, low: 9), spanID: 1, sampled: true, remote: true)
            func record(_ name: StaticString, messages: Int) {
                for _ in 0..<messages { counter.increment() }
                for _ in 0..<3 { _ = Span(name, kind: .producer, parent: producer) }
            }
            record("before", messages: 1_000)
            #expect(emitter.waitUntilDelivered())
            #expect(await eventuallyAsync { Self.lines(output).count == 3 })
            #expect(kill(agent.pid, SIGKILL) == 0)
            _ = agent.wait(timeout: .seconds(10))
            record("while.down", messages: 500)
            agent = try startAgent()
            defer { _ = agent.stop() }
            #expect(emitter.waitUntilDelivered(timeout: .seconds(20)), "\(emitter.stats)")
            let samples = Samples(parsing: try HTTPClient.get(port: httpPort, path: "/metrics").text)
            #expect(samples["test_kill_messages_total"] == 1_500, "exact across the SIGKILL")
            #expect(await eventuallyAsync(timeout: .seconds(20)) { Self.lines(output).count == 6 })
            #expect(Self.lines(output).filter { $0["name"] as? String == "while.down" }.count == 3)
            emitter.shutdown()
        }
    }

    /// Every span Phoenix on `port` holds, page by page (at most 1,000 a page).
    static func storedSpans(port: Int) -> [[String: Any]] {
        var spans: [[String: Any]] = []
        var cursor: String?
        repeat {
            let path = "/v1/projects/default/spans?limit=1000" + (cursor.map { "&cursor=\($0)" } ?? "")
            guard let result = try? HTTPClient.get(port: port, path: path), result.status == 200,
                  let json = try? JSONSerialization.jsonObject(with: Data(result.text.utf8)) as? [String: Any] else { return spans }
            spans += json["data"] as? [[String: Any]] ?? []
            cursor = json["next_cursor"] as? String
        } while cursor != nil
        return spans
    }

    static func lines(_ path: String) -> [[String: Any]] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Arize Phoenix, a real trace backend: a receiver down at first loses nothing the queue held, and every
    /// span of every trace arrives with its parent.
    @Test func aRealTraceBackendGetsWholeTracesAfterComingUp() async throws {
        _ = try PythonTools.python()
        let port = unusedPort()
        let agent = try await TestAgent { $0.traceExport.endpoints = ["http://127.0.0.1:\(port)/v1/traces"]; $0.traceExport.exportInterval = .milliseconds(100) }
        let source = try Self.source(agent)
        let traces = (1...5).map { TraceID(high: 0xDA_0BE0 + UInt64($0), low: UInt64($0)) }
        let base = Self.now()
        for trace in traces { source.send(.spans(Self.publishTrace(trace, base: base, ids: trace.low << 8))) }
        #expect(try await eventuallyAsync { try agent.samples().sum("danube_agent_otlp_request_failures_total") > 0 }, "the backend is not up yet")
        let work = Scratch.makeDirectory("phoenix")
        let phoenix = try ChildProcess(PythonTools.phoenix, ["serve"], environment: [
            "PHOENIX_PORT": "\(port)", "PHOENIX_GRPC_PORT": "\(unusedPort())", "PHOENIX_HOST": "127.0.0.1", "PHOENIX_WORKING_DIR": work,
        ], output: work + "/phoenix.log")
        defer { phoenix.stop() }
        func stored() -> [[String: Any]] { Self.storedSpans(port: port) }
        #expect(await eventuallyAsync(timeout: .seconds(90)) { stored().count == 20 }, "\((try? String(contentsOfFile: work + "/phoenix.log", encoding: .utf8))?.suffix(2_000) ?? "")")
        for trace in traces {
            let spans = stored().filter { (($0["context"] as? [String: Any])?["trace_id"] as? String) == trace.description }
            #expect(spans.count == 4, "trace \(trace)")
            let byID = Dictionary(uniqueKeysWithValues: spans.compactMap { span in ((span["context"] as? [String: Any])?["span_id"] as? String).map { ($0, span) } })
            let id = { (n: UInt64) in SpanID.hex(trace.low << 8 + n) }
            #expect(byID[id(0x11)]?["parent_id"] as? String == id(0x10))
            #expect(byID[id(0x13)]?["parent_id"] as? String == id(0x12))
            #expect(byID[id(0x10)]?["name"] as? String == "publish /default/orders" && byID[id(0x10)]?["parent_id"] as? String == "000000000000abcd")
            #expect(byID[id(0x13)]?["status_code"] as? String == "ERROR")
        }
        let samples = try agent.samples()
        #expect(samples["danube_agent_otlp_spans_sent_total{url=\"http://127.0.0.1:\(port)/v1/traces\"}"] == 20)
        #expect(samples["danube_agent_otlp_spans_failed_total{url=\"http://127.0.0.1:\(port)/v1/traces\"}"] == 0)
        await agent.stop()
    }
}

/// What spans the agent holds is bounded, whatever emitters send while no receiver takes them.
@Suite struct SpanIntakeBoundTests {
    @Test func spansBeyondTheBoundDropTheOldestAndAreCounted() throws {
        var configuration = TraceExportConfiguration()
        configuration.maxQueuedSpans = 10
        var parsed = TraceExportConfiguration()
        parsed.endpoints = ["http://127.0.0.1:9/v1/traces"]
        let endpoint = try #require(try parsed.parsedEndpoints().first)
        let exporter = SpanExporter(configuration: configuration, endpoints: [endpoint], group: MultiThreadedEventLoopGroup.singleton,
                                    logger: Logger(label: "test"))
        for n in 0..<5 { exporter.accept(TraceExportTests.publishTrace(TraceID(high: 1, low: UInt64(n + 1)), base: 1), resource: []) }
        func exported(_ exporter: SpanExporter) -> Samples {
            var snapshot = MetricsSnapshot()
            exporter.collect(into: &snapshot)
            return Samples(parsing: String(decoding: TextExposition.encode(snapshot, format: .prometheusText).joined(), as: UTF8.self))
        }
        let samples = exported(exporter)
        #expect(samples["danube_agent_spans_received_total"] == 20)
        #expect(samples["danube_agent_spans_dropped_total{reason=\"queue_full\"}"] == 12, "three batches of four dropped to keep ten at most")
        var bytes = TraceExportConfiguration()
        bytes.maxQueuedBytes = 1
        let tiny = SpanExporter(configuration: bytes, endpoints: [endpoint], group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
        tiny.accept(TraceExportTests.publishTrace(TraceID(high: 1, low: 1), base: 1), resource: [])
        #expect(exported(tiny)["danube_agent_spans_dropped_total{reason=\"queue_full\"}"] == 4)
    }
}

/// The shipped Grafana data source provisioning links exemplars to the trace data source it defines.
@Suite struct ExemplarLinkProvisioningTests {
    @Test func theExemplarDestinationIsTheProvisionedTraceDataSource() throws {
        let file = TraceExportTests.repository + "/packaging/grafana/provisioning/danube-datasources.yaml"
        let output = Scratch.path("datasources", suffix: ".json")
        let script = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), open(sys.argv[2], 'w'))"
        let python = try ChildProcess("/usr/bin/python3", ["-c", script, file, output], output: output + ".log")
        #expect(ChildProcess.exitedCleanly(python.wait(timeout: .seconds(30))))
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [String: Any])
        let sources = try #require(parsed["datasources"] as? [[String: Any]])
        let prometheus = try #require(sources.first { $0["type"] as? String == "prometheus" })
        let destinations = try #require((prometheus["jsonData"] as? [String: Any])?["exemplarTraceIdDestinations"] as? [[String: Any]])
        #expect(destinations.first?["name"] as? String == "trace_id", "the exemplar label the emitters write")
        let target = destinations.first?["datasourceUid"] as? String
        #expect(sources.contains { $0["uid"] as? String == target && $0["type"] as? String == "tempo" })
    }
}

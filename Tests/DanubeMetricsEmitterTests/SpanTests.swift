import DanubeMetricsEmitter
import DanubeMetricsTestKit
import DanubeMetricsWire
import Foundation
import Testing

/// The Swift span API, as the Rust crate's `tests/tracing.rs` checks it: W3C trace context, sampling decided at
/// the root and inherited, parents on one thread and across threads, slow spans of unsampled traces, bounds, and
/// the per-thread ring dropping its oldest. Sampling is process-wide: one at a time.
@Suite(.serialized) struct SpanTests {
    static func finished() -> [SpanRecord] { Tracing.takeFinishedSpans().sorted { $0.startUnixNanos < $1.startUnixNanos } }

    @Test func traceparentParsesFormatsAndRefusesWhatW3CRefuses() async throws {
        try await TracingExclusive.shared.run {
            let context = try SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "rojo=00f067aa0ba902b7")
            #expect(context.traceID.description == "4bf92f3577b34da6a3ce929d0e0e4736" && context.spanID == 0x00F0_67AA_0BA9_02B7)
            #expect(context.sampled && context.remote && context.traceState == "rojo=00f067aa0ba902b7")
            #expect(context.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            #expect(try !SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").sampled)
            #expect((try? SpanContext(traceparent: "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later")) != nil)
            let bad: [(String, SpanContext.ParseError)] = [
                ("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", .malformed),
                ("00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", .malformed),
                ("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", .malformed),
                ("00-00000000000000000000000000000000-00f067aa0ba902b7-01", .invalid),
                ("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", .invalid),
                ("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", .invalid),
                ("garbage", .malformed),
            ]
            for (text, why) in bad {
                #expect(throws: why, "\(text)") { try SpanContext(traceparent: text) }
            }
            #expect(throws: SpanContext.ParseError.traceStateTooLong) {
                try SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "k=" + String(repeating: "v", count: 600))
            }
        }
    }

    @Test func aSampledTraceRecordsItsSpansWithTheirParentsAcrossThreads() async throws {
        try await TracingExclusive.shared.run {
            Tracing.configureSampling(ratio: 1, slow: nil)
            _ = Self.finished()
            let remote = try SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "rojo=1")
            let publish = Span("publish", kind: .producer, parent: remote)
            publish.setAttribute("messaging.system", .string("danube"))
            publish.setAttribute("long", .string(String(repeating: "x", count: 1_000)))
            let handed = publish.context
            do {
                let wal = Span("wal.append")
                wal.addEvent("wal.fsync", attributes: [SpanAttribute("bytes", .int(4_096))])
                wal.setError("disk full")
            }
            let thread = Thread {
                let dispatch = Span("dispatch", kind: .consumer, parent: handed)
                dispatch.setOK()
                _ = Span("ack", kind: .server)
            }
            thread.start()
            while !thread.isFinished { usleep(1_000) }
            publish.end()
            let spans = Self.finished()
            func named(_ name: String) throws -> SpanRecord { try #require(spans.first { $0.name == name }, "no \(name) in \(spans.map(\.name))") }
            let (p, wal, dispatch, ack) = (try named("publish"), try named("wal.append"), try named("dispatch"), try named("ack"))
            #expect(spans.allSatisfy { $0.traceID == remote.traceID })
            #expect(p.parentSpanID == remote.spanID && p.parentIsRemote && p.traceState == "rojo=1" && p.kind == .producer)
            #expect(wal.parentSpanID == p.spanID && dispatch.parentSpanID == p.spanID && ack.parentSpanID == dispatch.spanID)
            #expect(p.attributes.last == SpanAttribute("long", .string(String(repeating: "x", count: 256))), "strings are bounded")
            #expect(wal.status == .error && wal.statusMessage == "disk full" && dispatch.status == .ok)
            #expect(wal.events.first?.name == "wal.fsync" && (wal.events.first?.offsetNanos ?? .max) <= wal.durationNanos)
            for child in [wal, dispatch] {
                #expect(child.startUnixNanos >= p.startUnixNanos && child.startUnixNanos + child.durationNanos <= p.startUnixNanos + p.durationNanos)
            }
        }
    }

    @Test func theRootDecidesAndChildrenFollow() async throws {
        try await TracingExclusive.shared.run {
            Tracing.configureSampling(ratio: 0, slow: nil)
            _ = Self.finished()
            do {
                let root = Span("publish", kind: .producer)
                let rootSampled = root.isSampled
                #expect(!rootSampled)
                let child = Span("wal.append")
                let childSampled = child.isSampled
                #expect(!childSampled, "inherited")
            }
            _ = Span("publish", kind: .producer, parent: try SpanContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
            #expect(Self.finished().count == 1, "a remote parent's decision wins over the ratio")
            Tracing.configureSampling(ratio: 0.25, slow: nil)
            let sampled = (0..<4_000).filter { _ in Span("publish", kind: .producer).isSampled }.count
            #expect((800..<1_200).contains(sampled), "\(sampled) of 4,000")
            _ = Self.finished()
        }
    }

    @Test func aSlowSpanOfAnUnsampledTraceIsKept() async {
        await TracingExclusive.shared.run {
            Tracing.configureSampling(ratio: 0, slow: .milliseconds(20))
            _ = Self.finished()
            _ = Span("fast")
            do {
                let slow = Span("slow", kind: .producer)
                usleep(25_000)
                _ = slow.isSampled
            }
            let spans = Self.finished()
            #expect(spans.map(\.name) == ["slow"])
            #expect(spans.first?.attributes.contains(SpanAttribute("danube.kept_as_slow", .bool(true))) == true)
            Tracing.configureSampling(ratio: 0.01, slow: nil)
        }
    }

    @Test func aFullRingDropsItsOldestSpans() async {
        await TracingExclusive.shared.run {
            Tracing.configureSampling(ratio: 1, slow: nil)
            _ = Self.finished()
            let sampled = SpanContext(traceID: TraceID(high: 1, low: 2), spanID: 3, sampled: true)
            let thread = Thread {
                for _ in 0..<600 { _ = Span("publish", kind: .producer, parent: sampled) }
                _ = Span("newest", kind: .producer, parent: sampled)
            }
            thread.start()
            while !thread.isFinished { usleep(1_000) }
            let spans = Self.finished()
            #expect(spans.count == 512, "one ring's worth")
            #expect(spans.contains { $0.name == "newest" }, "the newest kept, the oldest dropped")
            Tracing.configureSampling(ratio: 0.01, slow: nil)
        }
    }
}

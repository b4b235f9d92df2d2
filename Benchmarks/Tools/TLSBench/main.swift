import Foundation
import ScaleFeed

// What TLS and basic auth cost a user, in one run: two release agents fed the same `series` (ScaleFeed: 80%
// counters, 15% gauges, 5% histograms), one plain and one with --web.config.file (TLS with a P-256 certificate and
// bcrypt basic auth at cost 10), then, interleaved so that both see the same machine:
// - `GET /metrics` as curl sees it, plain against https with basic auth (and both with gzip), median of 5;
// - full handshakes: `openssl s_time -new` for 10 s against the TLS agent, and the agent's CPU per handshake;
// - idle memory: the agents' RSS before and after 500 connections each (TLS ones handshaken), per connection.
//   TLSBench [series]     (default 1000000; needs ../.build/release/danube-metrics-agent)
// SLOW_CIPHER=1: the TLS agent offers TLS 1.2 with AES-128-CBC-SHA only (what the benchmark must tell apart).
let agentPath = ProcessInfo.processInfo.environment["AGENT"] ?? "../.build/release/danube-metrics-agent"
let series = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 1_000_000
let slowCipher = ProcessInfo.processInfo.environment["SLOW_CIPHER"] == "1"
let idleConnections = 500

@discardableResult
func shell(_ arguments: [String], input: String? = nil) -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe(), stdin = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    process.standardInput = stdin
    try! process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try? stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

func rssBytes(_ pid: Int32) -> Double { ProcessProbe.rssBytes(pid) }
func cpuSeconds(_ pid: Int32) -> Double { ProcessProbe.cpuSeconds(pid) }
func median(_ values: [Double]) -> Double { ProcessProbe.median(values) }

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tls-bench-\(getpid())").path
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
shell(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
       "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", "\(directory)/agent.key", "-out", "\(directory)/agent.crt"])
let hash = shell([agentPath, "--hash-password"], input: "bench-secret\n").trimmingCharacters(in: .whitespacesAndNewlines)
try """
    tls_server_config:
      cert_file: agent.crt
      key_file: agent.key
    \(slowCipher ? "  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA]\n" : "")basic_auth_users:
      bench: \(hash)
    """.write(toFile: "\(directory)/web.yml", atomically: true, encoding: .utf8)

struct Agent {
    let process: Process
    let port: Int
    let socket: String
    var pid: Int32 { process.processIdentifier }
}

func startAgent(_ name: String, tls: Bool) -> Agent {
    let port = Int.random(in: 30_000..<40_000)
    let socket = "\(directory)/\(name).sock"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: agentPath)
    process.arguments = ["--ingest-socket", socket, "--listen", "127.0.0.1:\(port)", "--log-level", "error", "--log-format", "text",
                         "--max-series-per-family", "10000", "--http-max-connections", "\(2 * idleConnections)",
                         "--http-request-timeout", "120s"] + (tls ? ["--web.config.file", "\(directory)/web.yml"] : [])
    try! process.run()
    while !FileManager.default.fileExists(atPath: socket) { usleep(50_000) }
    return Agent(process: process, port: port, socket: socket)
}

let plain = startAgent("plain", tls: false)
let secured = startAgent("tls", tls: true)
defer { for agent in [plain, secured] { agent.process.terminate(); agent.process.waitUntilExit() } }

let tlsOptions = ["--cacert", "\(directory)/agent.crt", "-u", "bench:bench-secret"]
func url(_ agent: Agent, _ path: String = "/metrics") -> String {
    agent.port == secured.port ? "https://localhost:\(agent.port)\(path)" : "http://127.0.0.1:\(agent.port)\(path)"
}
func options(_ agent: Agent) -> [String] { agent.port == secured.port ? tlsOptions : [] }
func scrape(_ agent: Agent) -> String { shell(["curl", "-s"] + options(agent) + [url(agent)]) }
func sample(_ text: String, _ name: String) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") { return Double(line.split(separator: " ")[1]) ?? .nan }
    return .nan
}

// Fill both with the same series; the sources stay connected to the end (a departed source's gauges go after
// the gauge grace, and the two expositions would differ).
var sources: [ScaleSource] = []
for agent in [plain, secured] {
    let feeding = (0..<10).map { try! ScaleSource(path: agent.socket, source: $0, series: series / 10) }
    DispatchQueue.concurrentPerform(iterations: feeding.count) { feeding[$0].defineAll(); feeding[$0].update() }
    while sample(scrape(agent), "danube_agent_series") < Double(series) { sleep(1) }
    sources += feeding
}
sleep(11) // both agents' first heap trim
let loadedRSS = (plain: rssBytes(plain.pid), tls: rssBytes(secured.pid))

/// Seconds curl takes for one GET (a new connection: handshake, authentication, body), and the bytes received.
func get(_ agent: Agent, gzip: Bool) -> (seconds: Double, bytes: Int) {
    let out = shell(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"] + options(agent)
        + (gzip ? ["-H", "Accept-Encoding: gzip"] : []) + [url(agent)])
    let parts = out.split(separator: " ")
    return (Double(parts.first ?? "") ?? .nan, Int(parts.count > 1 ? parts[1] : "0") ?? 0)
}

_ = get(secured, gzip: false) // the one bcrypt verification; later requests use the verified-credentials cache
// Meanwhile, on 4 keep-alive connections to each agent (spread over its 2 event loops), `/healthz` every 10 ms:
// the slowest answer says how long a large response held an event loop, and every connection on it (emitters'
// included).
let prober = """
    import base64, socket, ssl, sys, threading, time
    port, tls, ca = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
    request = b"GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nAuthorization: Basic " + base64.b64encode(b"bench:bench-secret") + b"\\r\\n\\r\\n"
    context = ssl.create_default_context(cafile=ca)
    connections = []
    for _ in range(4):
        raw = socket.create_connection(("127.0.0.1", port))
        connections.append(context.wrap_socket(raw, server_hostname="localhost") if tls else raw)
    slowest, stop = [0.0], threading.Event()
    def probe():
        while not stop.is_set():
            for connection in connections:
                started = time.monotonic()
                connection.sendall(request)
                answer = b""
                while not answer.endswith(b"OK\\n"):
                    answer += connection.recv(4096)
                slowest[0] = max(slowest[0], time.monotonic() - started)
            time.sleep(0.01)
    thread = threading.Thread(target=probe)
    thread.start()
    sys.stdin.read()
    stop.set()
    thread.join()
    print(slowest[0])
    """
final class Prober {
    let process = Process()
    let input = Pipe(), output = Pipe()
    init(_ agent: Agent, tls: Bool) {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", prober, "\(agent.port)", tls ? "1" : "0", "\(directory)/agent.crt"]
        process.standardInput = input
        process.standardOutput = output
        try! process.run()
    }
    func slowest() -> Double {
        try? input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .nan
    }
}
let probers = (plain: Prober(plain, tls: false), tls: Prober(secured, tls: true))
sleep(1)
var times: [String: [Double]] = [:]
var sizes: [String: Int] = [:]
for _ in 0..<5 {
    for (name, agent, gzip) in [("plain", plain, false), ("tls", secured, false), ("plain gzip", plain, true), ("tls gzip", secured, true)] {
        let result = get(agent, gzip: gzip)
        times[name, default: []].append(result.seconds)
        sizes[name] = result.bytes
    }
}

let stalls = (plain: probers.plain.slowest(), tls: probers.tls.slowest())
sleep(2)
let scrapedRSS = (plain: rssBytes(plain.pid), tls: rssBytes(secured.pid))

// Full handshakes for 10 s (each a new session: no resumption), and what they cost the agent.
let cpuBefore = cpuSeconds(secured.pid)
let started = Date()
let sTime = shell(["openssl", "s_time", "-connect", "127.0.0.1:\(secured.port)", "-new", "-time", "10", "-CAfile", "\(directory)/agent.crt"])
let elapsed = Date().timeIntervalSince(started)
let handshakeCPU = cpuSeconds(secured.pid) - cpuBefore
let handshakes = sTime.split(separator: "\n").first { $0.contains("connections in") && $0.contains("real seconds") }
    .flatMap { Double($0.split(separator: " ").first ?? "") } ?? .nan

// Idle connections: open, (TLS: handshake,) hold; RSS before and after.
let holder = """
    import socket, ssl, sys, time
    port, tls, count, ca = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), sys.argv[4]
    context = ssl.create_default_context(cafile=ca)
    held = []
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port))
        held.append(context.wrap_socket(raw, server_hostname="localhost") if tls else raw)
    print("open", flush=True)
    sys.stdin.read()
    """
func idleBytesPerConnection(_ agent: Agent, tls: Bool) -> Double {
    let before = rssBytes(agent.pid)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
    process.arguments = ["-c", holder, "\(agent.port)", tls ? "1" : "0", "\(idleConnections)", "\(directory)/agent.crt"]
    let output = Pipe(), input = Pipe()
    process.standardOutput = output
    process.standardInput = input
    try! process.run()
    _ = output.fileHandleForReading.availableData // "open": every connection is established (and handshaken)
    sleep(1)
    let after = rssBytes(agent.pid)
    try? input.fileHandleForWriting.close()
    process.waitUntilExit()
    return (after - before) / Double(idleConnections)
}
let idlePlain = idleBytesPerConnection(plain, tls: false)
let idleTLS = idleBytesPerConnection(secured, tls: true)

func ms(_ seconds: Double) -> String { String(format: "%.0f ms", seconds * 1_000) }
func mb(_ bytes: Int?) -> String { String(format: "%.1f MB", Double(bytes ?? 0) / 1e6) }
_ = sources
print("TLS benchmark, \(series) series\(slowCipher ? ", TLS 1.2 with AES-128-CBC-SHA only" : "")")
print("| measure | plain HTTP | TLS + basic auth | ratio |")
print("| --- | --- | --- | --- |")
for (label, key) in [("`GET /metrics` (median of 5)", ""), ("`GET /metrics` with gzip (median of 5)", " gzip")] {
    let plainTime = median(times["plain" + key] ?? [.nan]), tlsTime = median(times["tls" + key] ?? [.nan])
    print("| \(label) | \(ms(plainTime)) (\(mb(sizes["plain" + key]))) | \(ms(tlsTime)) (\(mb(sizes["tls" + key]))) | \(String(format: "%.2fx", tlsTime / plainTime)) |")
}
print(String(format: "| slowest `/healthz` on a keep-alive connection during the GETs | %.0f ms | %.0f ms | |",
             stalls.plain * 1_000, stalls.tls * 1_000))
print(String(format: "| agent RSS after the 10 GETs minus before | %+.1f MB | %+.1f MB | |",
             (scrapedRSS.plain - loadedRSS.plain) / 1e6, (scrapedRSS.tls - loadedRSS.tls) / 1e6))
print(String(format: "| full TLS handshakes (openssl s_time -new, 10 s) | | %.0f per second, agent CPU %.2f ms each | |",
             handshakes / elapsed, handshakeCPU / handshakes * 1_000))
print(String(format: "| agent RSS per idle connection (%d open) | %.1f KiB | %.1f KiB | |", idleConnections, idlePlain / 1_024, idleTLS / 1_024))

import DanubeMetricsSystemd
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Logging
import Testing

@Suite struct JournalLogHandlerTests {
    @Test func metadataKeysBecomeValidJournalFieldNames() {
        #expect(JournalLogHandler.fieldName("source") == "SOURCE")
        #expect(JournalLogHandler.fieldName("source_pid") == "SOURCE_PID")
        #expect(JournalLogHandler.fieldName("http.status-code") == "HTTP_STATUS_CODE")
        #expect(JournalLogHandler.fieldName("_private") == "PRIVATE")
        #expect(JournalLogHandler.fieldName("9lives") == "F_9LIVES")
        #expect(JournalLogHandler.fieldName("") == "F_")
        #expect(JournalLogHandler.fieldName(String(repeating: "a", count: 100)).count == 64)
    }

    @Test func levelsMapToSyslogPriorities() {
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected {
            #expect(JournalLogHandler.priority(level) == priority)
        }
    }
}

@Suite struct JournalReachabilityTests {
    @Test func aMissingJournalSocketIsNotReachableAndABoundOneIs() throws {
        #expect(!JournalLogHandler.isReachable(path: "/nonexistent/danube-journal.socket"))
        let path = "/tmp/dma-journal-\(getpid()).socket"
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(JournalLogHandler.isReachable(path: path))
    }
}

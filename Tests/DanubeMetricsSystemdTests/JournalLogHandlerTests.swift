import DanubeMetricsSystemd
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

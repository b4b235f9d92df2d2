import DanubeMetricsSync
import Foundation
import Testing

/// The condition the emitter's flusher, the checkpointer and remote write wait on: timed waits measured on the
/// monotonic clock (a wall-clock step cannot stretch them), woken by a signal, and total on any duration.
@Suite struct MonotonicConditionTests {
    @Test func aTimedWaitLastsItsDurationOnTheMonotonicClock() {
        let condition = MonotonicCondition()
        let started = ContinuousClock.now
        let signalled = condition.withLock { condition.wait(timeout: .milliseconds(120)) }
        let waited = ContinuousClock.now - started
        #expect(!signalled)
        #expect(waited >= .milliseconds(119) && waited < .seconds(3), "waited \(waited)")
        // 1.9 s: the nanoseconds carry into the seconds.
        let carried = ContinuousClock.now
        condition.withLock { _ = condition.wait(timeout: .milliseconds(1_900)) }
        #expect(ContinuousClock.now - carried >= .milliseconds(1_899))
    }

    @Test func aSignalWakesAWaitAndNoDurationTraps() {
        let condition = MonotonicCondition()
        for timeout in [Duration.seconds(10), .seconds(Int64.max), Duration(secondsComponent: Int64.max, attosecondsComponent: 999_999_999_999_999_999)] {
            var woken = false
            condition.lock()
            Thread {
                Thread.sleep(forTimeInterval: 0.05)
                condition.withLock { condition.signal() }
            }.start()
            let started = ContinuousClock.now
            woken = condition.wait(timeout: timeout)
            condition.unlock()
            #expect(woken)
            #expect(ContinuousClock.now - started < .seconds(5))
        }
        let started = ContinuousClock.now
        #expect(!condition.withLock { condition.wait(timeout: .seconds(-5)) })
        #expect(ContinuousClock.now - started < .seconds(1))
    }
}

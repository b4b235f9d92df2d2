/// Client addresses whose last credentials were wrong: for a second after, their next credentials that are not
/// known good are answered 429 without running bcrypt. A guesser from one address gets one bcrypt run (about
/// 50 ms of the agent's CPU) per second of its own time; a scraper with verified credentials is not affected
/// (they are checked against the cache first). Bounded: at most `maxAddresses`, the soonest to end dropped first.
struct GuessPenalties {
    static let duration = Duration.seconds(1)
    static let maxAddresses = 4_096

    private var until: [String: ContinuousClock.Instant] = [:]

    var count: Int { until.count }

    func isPenalized(_ address: String, now: ContinuousClock.Instant) -> Bool {
        until[address].map { now < $0 } ?? false
    }

    mutating func penalize(_ address: String, now: ContinuousClock.Instant) {
        if until.count >= Self.maxAddresses, until[address] == nil {
            until = until.filter { now < $0.value }
            if until.count >= Self.maxAddresses, let soonest = until.min(by: { $0.value < $1.value }) {
                until.removeValue(forKey: soonest.key)
            }
        }
        until[address] = now + Self.duration
    }
}

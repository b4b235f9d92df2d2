/// What series expiry (`--series-ttl`) needs to know of each series: when it was last active and how many emitter
/// connections have it bound. A series is active when a delta updates it, when a connection defines it, and when
/// the last connection that defined it closes; it expires once it has been inactive for the ttl with no connection
/// bound. A bound series never expires: its connection may update it at any time through its binding, which must
/// keep pointing at it.
///
/// Only under the store's lock; a class, so that states captured for scrapes and checkpoints do not copy it.
/// Time is counted in ticks of an eighth of the ttl (32 bits, compared with wrapping differences), so a series
/// expires between one and one and a quarter ttl after it was last active when a pass runs every tick.
// @unchecked: used under the store's lock only.
public final class SeriesActivity: @unchecked Sendable {
    static let ticksPerTTL: Int64 = 8
    /// The most a ttl may be (a year): its nanoseconds fit easily, and a series idle for 2^32 ticks (which wraps)
    /// expired long before.
    public static let maxTTL = Duration.seconds(365 * 86_400)

    let ttl: Duration
    let tickNanoseconds: Int64
    private let origin: ContinuousClock.Instant
    /// By series index: the tick it was last active in (in memory of its own: ingest stores one per delta, which
    /// through an array in a class costs an exclusivity check and a uniqueness check each time, +9 ns a delta),
    /// and the connections that have it bound.
    private var lastTick: UnsafeMutablePointer<UInt32>
    private var capacity = 1_024
    private var bound: [UInt32] = []

    /// `ttl` is between a millisecond and `maxTTL` (the command line checks it).
    init(ttl: Duration, origin: ContinuousClock.Instant) {
        self.ttl = min(max(ttl, .milliseconds(1)), Self.maxTTL)
        tickNanoseconds = max(1, self.ttl.nanoseconds / Self.ticksPerTTL)
        self.origin = origin
        lastTick = .allocate(capacity: capacity)
    }

    deinit { lastTick.deallocate() }

    /// How often expiry should look: once a tick.
    var passInterval: Duration { .nanoseconds(tickNanoseconds) }

    func tick(at instant: ContinuousClock.Instant) -> UInt32 {
        let elapsed = instant - origin
        guard elapsed > .zero else { return 0 }
        return UInt32(truncatingIfNeeded: elapsed.nanoseconds / tickNanoseconds)
    }

    /// A series was defined at `slot` (new, or a free slot used again).
    func created(_ slot: Int, tick: UInt32) {
        if slot >= capacity {
            let grown = UnsafeMutablePointer<UInt32>.allocate(capacity: max(slot + 1, 2 * capacity))
            grown.moveInitialize(from: lastTick, count: capacity)
            lastTick.deallocate()
            lastTick = grown
            capacity = max(slot + 1, 2 * capacity)
        }
        if slot >= bound.count { bound.append(contentsOf: repeatElement(0, count: slot + 1 - bound.count)) }
        lastTick[slot] = tick
        bound[slot] = 0
    }

    @inline(__always)
    func touch(_ slot: Int, tick: UInt32) { lastTick[slot] = tick }

    /// A connection defined the series (saturating: a series bound 2^32 - 1 times stays bound).
    func bind(_ slot: Int, tick: UInt32) {
        if bound[slot] < .max { bound[slot] += 1 }
        lastTick[slot] = tick
    }

    /// A connection that defined the series closed: the ttl counts from now if it was the last one.
    func unbind(_ slot: Int, tick: UInt32) {
        guard slot < bound.count, bound[slot] > 0, bound[slot] < .max else { return }
        bound[slot] -= 1
        lastTick[slot] = tick
    }

    func isExpired(_ slot: Int, at tick: UInt32) -> Bool {
        bound[slot] == 0 && Int64(tick &- lastTick[slot]) > Self.ticksPerTTL
    }

    func isBound(_ slot: Int) -> Bool { slot < bound.count && bound[slot] > 0 }
}

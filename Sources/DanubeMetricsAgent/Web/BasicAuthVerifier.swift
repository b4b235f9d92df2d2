import CCrypt
import NIOConcurrencyHelpers

/// Checks basic auth credentials against a web configuration's bcrypt hashes with the system's libxcrypt
/// (`crypt_r`), as exporter-toolkit does with Go's bcrypt:
/// - an unknown user is checked against a hash of the same cost, so timing does not tell which users exist;
/// - hashes are compared in constant time;
/// - a password once verified for a user (and that user's current hash) is remembered, so a scraper's request
///   costs a constant-time comparison, not a bcrypt run (~50 ms at cost 10). Only verified pairs are kept, one per
///   user: what an attacker sends never grows it.
final class BasicAuthVerifier: Sendable {
    private struct Verified {
        var hash: String
        var password: [UInt8]
    }

    private let verified = NIOLockedValueBox<[String: Verified]>([:])

    init() {}

    /// `$2a$`, `$2b$` or `$2y$`, a two-digit cost from 4 to 31 and 53 characters of salt and hash, which libxcrypt
    /// takes as a setting (a hash of nothing comes back in the same shape).
    static func isBcrypt(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
              [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
              bytes[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        guard let probe = crypt(password: [], setting: hash) else { return false }
        return probe.utf8.count == 60 && probe.utf8.prefix(29).elementsEqual(hash.utf8.prefix(29))
    }

    /// The answer a verification would give without running bcrypt, when the pair was verified before: true, or
    /// nil (not known: run `verify`).
    func cached(user: String, password: [UInt8], hash: String?) -> Bool? {
        guard let hash, let entry = verified.withLockedValue({ $0[user] }), entry.hash == hash else { return nil }
        return Self.constantTimeEqual(entry.password, password) ? true : nil
    }

    /// Runs bcrypt (slow on purpose): true when `password` matches `hash`. With no hash (an unknown user) the
    /// same work is done against `decoy` and the answer is false.
    func verify(user: String, password: [UInt8], hash: String?, decoy: String) -> Bool {
        let setting = hash ?? decoy
        guard !password.contains(0), let computed = Self.crypt(password: password, setting: setting) else { return false }
        let matches = Self.constantTimeEqual(Array(computed.utf8), Array(setting.utf8)) && hash != nil
        if matches, let hash { verified.withLockedValue { $0[user] = Verified(hash: hash, password: password) } }
        return matches
    }

    /// A bcrypt hash of a random password at `cost` (the decoy that unknown users are checked against).
    static func decoy(cost: Int) -> String {
        hash(password: Array("danube-metrics-agent-unknown-user".utf8), cost: cost) ?? "$2b$10$abcdefghijklmnopqrstuuXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"
    }

    /// `password` hashed with bcrypt at `cost` and a fresh random salt (libxcrypt reads the system's randomness);
    /// nil when the password holds a NUL byte or libxcrypt fails.
    static func hash(password: [UInt8], cost: Int) -> String? {
        var output = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        guard !password.contains(0), let salt = crypt_gensalt_rn("$2b$", UInt(max(4, min(31, cost))), nil, 0, &output, Int32(output.count)) else {
            return nil
        }
        return crypt(password: password, setting: String(cString: salt))
    }

    /// The cost of a bcrypt hash (its two digits).
    static func cost(_ hash: String) -> Int { Int(String(decoding: hash.utf8.dropFirst(4).prefix(2), as: UTF8.self)) ?? 10 }

    /// `crypt_r` with a heap `crypt_data` (32 KiB: too large for a thread's stack); nil when libxcrypt fails
    /// (its failure tokens start with `*`).
    private static func crypt(password: [UInt8], setting: String) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            // The work area held the password: cleared before it is freed.
            UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
            data.deallocate()
        }
        UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        let result = (password + [0]).withUnsafeBufferPointer { phrase in
            phrase.withMemoryRebound(to: CChar.self) { phrase in
                CCrypt.crypt_r(phrase.baseAddress!, setting, data).map { String(cString: $0) }
            }
        }
        guard let result, !result.hasPrefix("*") else { return nil }
        return result
    }

    private static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}

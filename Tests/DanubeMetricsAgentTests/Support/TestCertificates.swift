import Foundation

/// A small PKI made with the openssl command for one test: a CA, a server certificate for localhost and
/// 127.0.0.1, a client certificate from the same CA, one from another CA (untrusted), and an expired server
/// certificate. Paths are under the scratch directory.
struct TestCertificates {
    let directory: String
    var caCert: String { "\(directory)/ca.crt" }
    var serverCert: String { "\(directory)/server.crt" }
    var serverKey: String { "\(directory)/server.key" }
    var clientCert: String { "\(directory)/client.crt" }
    var clientKey: String { "\(directory)/client.key" }
    var rogueCert: String { "\(directory)/rogue-client.crt" }
    var rogueKey: String { "\(directory)/rogue-client.key" }
    var expiredCert: String { "\(directory)/expired.crt" }

    init() throws {
        directory = Scratch.makeDirectory("pki")
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key",
                     "-out", "ca.crt", "-days", "30", "-subj", "/CN=Danube Test CA"])
        try openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "rogue-ca.key",
                     "-out", "rogue-ca.crt", "-days", "30", "-subj", "/CN=Rogue CA"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: "\(directory)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: "\(directory)/client.ext", atomically: true, encoding: .utf8)
        try issue("server", by: "ca", extensions: "server.ext")
        try issue("client", by: "ca", extensions: "client.ext")
        try issue("rogue-client", by: "rogue-ca", extensions: "client.ext")
        // Valid until yesterday.
        try openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "expired.crt",
                     "-days", "-1", "-extfile", "server.ext"])
    }

    /// A key and a certificate `name` signed by the CA `issuer`.
    func issue(_ name: String, by issuer: String, extensions: String) throws {
        try openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "\(name).key",
                     "-out", "\(name).csr", "-subj", "/CN=\(name)"])
        try openssl(["x509", "-req", "-in", "\(name).csr", "-CA", "\(issuer).crt", "-CAkey", "\(issuer).key", "-CAcreateserial",
                     "-out", "\(name).crt", "-days", "30", "-extfile", extensions])
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestCertificatesError(description: "openssl \(arguments.joined(separator: " ")) failed") }
    }

    /// A bcrypt hash of `password` (Python's crypt module over libxcrypt, as htpasswd -B would make one).
    static func bcrypt(_ password: String, cost: Int = 4) throws -> String {
        let (status, output) = try runTool("/usr/bin/python3", ["-W", "ignore", "-c",
            "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << int(sys.argv[2]))))",
            password, "\(cost)"])
        guard status == 0 else { throw TestCertificatesError(description: "bcrypt: \(output)") }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct TestCertificatesError: Error, CustomStringConvertible {
    var description: String
}

/// curl against an HTTPS agent: the status code (0 when the handshake or connection failed) and the body.
func curl(_ url: String, _ options: [String]) throws -> (status: Int, body: String) {
    let marker = "\n--curl-status:"
    let (_, output) = try runTool("/usr/bin/curl", ["-sS", "--max-time", "20", "-w", "\(marker)%{http_code}", url] + options)
    guard let range = output.range(of: marker, options: .backwards) else { return (0, output) }
    return (Int(output[range.upperBound...].trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, String(output[..<range.lowerBound]))
}

import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import TillWebTLS
import SwiftASN1
import X509
@testable import TillWeb

/// till-web's local certificate authority: made once with private files, server certificates
/// for the till's names, renewed when they change, and a TLS connection that trusts only it.
@Suite("till-web: HTTPS from its local certificate authority", .timeLimit(.minutes(1)))
struct LocalAuthorityTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tilld-ca-\(UUID().uuidString)").path
    }

    static func mode(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
    }

    static let names = LocalAuthority.Names(dns: ["till", "till.local", "localhost"], addresses: [[127, 0, 0, 1], [192, 168, 1, 10]])

    @Test("made once: the key 0600, the certificate and fingerprint readable; loaded again it is the same authority; it may sign servers only")
    func madeOnce() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try LocalAuthority.loadOrCreate(directory: directory, label: "till")
        #expect(Self.mode(directory + "/ca.key") == 0o600)
        #expect(Self.mode(directory + "/ca.pem") == 0o644)
        #expect(try String(contentsOfFile: directory + "/ca.sha256", encoding: .utf8) == authority.fingerprint + "\n")
        #expect(authority.fingerprint.split(separator: ":").count == 32)
        let constraints = try #require(try authority.certificate.extensions.basicConstraints)
        #expect(constraints == .isCertificateAuthority(maxPathLength: 0))
        let again = try LocalAuthority.loadOrCreate(directory: directory, label: "till")
        #expect(again.certificate == authority.certificate)

        // A key that is not the certificate's is refused with what to do, not used.
        let other = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: other) }
        _ = try LocalAuthority.loadOrCreate(directory: other, label: "other")
        try FileManager.default.removeItem(atPath: directory + "/ca.key")
        try FileManager.default.copyItem(atPath: other + "/ca.key", toPath: directory + "/ca.key")
        #expect(throws: LocalAuthority.Failure.self) { try LocalAuthority.loadOrCreate(directory: directory, label: "till") }
    }

    @Test("the server certificate names the till's names and addresses, is kept while it covers them, and is issued again for a new address or near its end")
    func serverCertificates() throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try LocalAuthority.loadOrCreate(directory: directory, label: "till")
        let first = try authority.serverCertificate(for: Self.names)
        #expect(first.issued)
        #expect(Self.mode(directory + "/server.key") == 0o600)
        let certificate = try Certificate(pemEncoded: first.certificate)
        #expect(certificate.issuer == authority.certificate.subject)
        let san = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(san.contains(.dnsName("till.local")))
        #expect(san.contains(.ipAddress(.init(contentBytes: [192, 168, 1, 10]))))
        #expect(try certificate.extensions.extendedKeyUsage?.contains(.serverAuth) == true)
        #expect(certificate.notValidAfter.timeIntervalSince(certificate.notValidBefore) <= 398 * 86_400)

        #expect(try !authority.serverCertificate(for: Self.names).issued, "the same names: the same certificate")
        var moved = Self.names
        moved.addresses.append([192, 168, 1, 77])  // a new DHCP lease
        #expect(try authority.serverCertificate(for: moved).issued)
        let late = Date().addingTimeInterval(380 * 86_400)
        #expect(try authority.serverCertificate(for: moved, now: late).issued, "renewed within 30 days of its end")
    }

    @Test("a TLS client that trusts only the authority connects to the bridge by name and gets an answer; a name the certificate does not carry, or another authority, is refused")
    func handshake() async throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try LocalAuthority.loadOrCreate(directory: directory, label: "till")
        // No loopback address in it: a TLS client also accepts the address it connected to when
        // the certificate names it, and this test connects to 127.0.0.1 to check names.
        let (context, _) = try authority.serverContext(for: LocalAuthority.Names(dns: ["till.local"], addresses: [[192, 168, 1, 10]]))
        let logger = Logger(label: "test")
        let server = HTTPServer(responder: Bridge(origins: OriginPolicy(allowed: []), odoo: OdooProxy(till: FakeTill(), scans: ScanFeed(), logger: logger),
                                                  authorityCertificate: try authority.certificatePEM(), logger: logger), logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0, tls: context)
        let port = try #require(listener.channel.localAddress?.port)
        let serving = Task { try await server.serve(listener) }
        defer { serving.cancel() }

        let trusted = try NIOSSLCertificate.fromPEMFile(directory + "/ca.pem")
        // By name here; by address (the IP names), in Chromium (BrowserTests).
        let answer = try await Self.get("/hw_proxy/hello", port: port, serverName: "till.local", trusting: trusted)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        #expect(answer.hasSuffix("ping"))
        let wrong = try? await Self.get("/hw_proxy/hello", port: port, serverName: "elsewhere.example", trusting: trusted)
        #expect(wrong == nil, "a name the certificate does not carry: \(wrong ?? "")")
        let pem = try await Self.get("/tls/ca.pem", port: port, serverName: "till.local", trusting: trusted)
        #expect(pem.contains("-----BEGIN CERTIFICATE-----"))

        let stranger = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: stranger) }
        _ = try LocalAuthority.loadOrCreate(directory: stranger, label: "elsewhere")
        await #expect(throws: (any Error).self) {
            _ = try await Self.get("/hw_proxy/hello", port: port, serverName: "till.local", trusting: try NIOSSLCertificate.fromPEMFile(stranger + "/ca.pem"))
        }
    }

    @Test("while till-web runs: a new name or address gets a certificate for the next connection, nothing changed issues nothing, a certificate near its end is replaced")
    func renewalWhileRunning() async throws {
        let directory = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let authority = try LocalAuthority.loadOrCreate(directory: directory, label: "till")
        // What the machine is called "now", moved by the test as a DHCP lease or a rename would.
        let current = Mutex(LocalAuthority.Names(dns: ["till.local"], addresses: [[192, 168, 1, 10]]))
        let renewal = try ServerTLSRenewal(authority: authority, names: current.withLock { $0 }, current: { current.withLock { $0 } })
        #expect(renewal.issuedAtStart)
        let logger = Logger(label: "test")
        let server = HTTPServer(responder: Bridge(origins: OriginPolicy(allowed: []), odoo: OdooProxy(till: FakeTill(), scans: ScanFeed(), logger: logger), logger: logger),
                                logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0, tlsContext: { renewal.context })
        let port = try #require(listener.channel.localAddress?.port)
        let serving = Task { try await server.serve(listener) }
        defer { serving.cancel() }
        let trusted = try NIOSSLCertificate.fromPEMFile(directory + "/ca.pem")

        #expect(try renewal.renewIfNeeded() == nil, "nothing changed: the certificate in use stays")
        let before = try String(contentsOfFile: directory + "/server.pem", encoding: .utf8)
        let early = try? await Self.get("/hw_proxy/hello", port: port, serverName: "till.lan", trusting: trusted)
        #expect(early == nil, "not named yet")

        current.withLock { $0 = LocalAuthority.Names(dns: ["till.local", "till.lan"], addresses: [[192, 168, 1, 23]]) }
        let renewed = try renewal.renewIfNeeded()
        #expect(renewed?.dns == ["till.local", "till.lan"])
        #expect(try String(contentsOfFile: directory + "/server.pem", encoding: .utf8) != before)
        let answer = try await Self.get("/hw_proxy/hello", port: port, serverName: "till.lan", trusting: trusted)
        #expect(answer.hasPrefix("HTTP/1.1 200"), "the next connection gets the new certificate: \(answer)")
        #expect(try renewal.renewIfNeeded() == nil)

        let inAYear = Date().addingTimeInterval(380 * 86_400)
        #expect(try renewal.renewIfNeeded(now: inAYear) != nil, "under 30 days left: issued again")
        #expect(try renewal.renewIfNeeded(now: inAYear) == nil)
    }

    /// One request over TLS, verifying the server against `trusting` only; the whole answer.
    static func get(_ path: String, port: Int, serverName: String, trusting roots: [NIOSSLCertificate]) async throws -> String {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(roots)
        configuration.certificateVerification = .fullVerification
        return try await exchange("GET \(path) HTTP/1.1\r\nHost: \(serverName):\(port)\r\nConnection: close\r\n\r\n", port: port,
                                  tls: (try NIOSSLContext(configuration: configuration), serverName))
    }

    /// One request to 127.0.0.1:`port` (over TLS to `serverName` when given); the whole
    /// answer, read until the server closes.
    static func exchange(_ request: String, port: Int, tls: (context: NIOSSLContext, serverName: String)? = nil) async throws -> String {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(ByteBuffer(string: request))
            var answer = ""
            for try await chunk in inbound { answer += String(buffer: chunk) }
            return answer
        }
    }
}

/// `[web] clients`: which machines may connect at all.
@Suite("till-web: the machines that may connect", .timeLimit(.minutes(1)))
struct ClientPolicyTests {
    @Test("addresses and networks, IPv4 and IPv6 (and IPv4 seen on a dual-stack socket); loopback always; no list: anyone; a mistake says what to write")
    func policy() throws {
        let policy = try ClientPolicy(["192.168.1.20", "10.1.0.0/16", "fd00::/64"])
        #expect(policy.admits("192.168.1.20"))
        #expect(!policy.admits("192.168.1.21"))
        #expect(policy.admits("10.1.200.3"))
        #expect(!policy.admits("10.2.0.1"))
        #expect(policy.admits("fd00::1234"))
        #expect(!policy.admits("fd00:0:0:1::1"))
        #expect(policy.admits("::ffff:10.1.2.3"))
        #expect(policy.admits("127.0.0.1") && policy.admits("::1"), "the till itself")
        #expect(!policy.admits(nil))
        #expect(ClientPolicy.everyone.admits("203.0.113.9"))
        #expect(try ClientPolicy(["192.168.1.0/23"]).admits("192.168.0.7"))
        for bad in ["till.local", "192.168.1.0/33", "10.0.0.0/x", ""] {
            #expect(throws: ClientPolicy.Invalid.self, "\(bad)") { try ClientPolicy([bad]) }
        }
    }

    @Test("a machine not on the list gets 403 saying what to add, and its request reaches nothing")
    func refusedOverHTTP() async throws {
        let till = FakeTill()
        let logger = Logger(label: "test")
        let server = HTTPServer(responder: Bridge(origins: OriginPolicy(allowed: []), odoo: OdooProxy(till: till, scans: ScanFeed(), logger: logger), logger: logger),
                                clients: try ClientPolicy(["10.0.0.0/8"], loopback: false), logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0)
        let port = try #require(listener.channel.localAddress?.port)
        let serving = Task { try await server.serve(listener) }
        defer { serving.cancel() }
        let body = #"{"jsonrpc":"2.0","id":1,"method":"call","params":{"data":{"action":"cashbox"}}}"#
        let answer = try await LocalAuthorityTests.exchange("POST /hw_proxy/default_printer_action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)", port: port)
        #expect(answer.hasPrefix("HTTP/1.1 403"), "\(answer)")
        #expect(answer.contains("[web] clients"))
        #expect(till.state.withLock { $0.drawers } == 0)
    }

    @Test("a machine that keeps retrying is refused every time but logged a few times a minute, not once per try")
    func refusedLogIsRateLimited() async throws {
        let lines = CapturedLog()
        let logger = Logger(label: "test") { _ in lines }
        let server = HTTPServer(responder: Bridge(origins: OriginPolicy(allowed: []), odoo: OdooProxy(till: FakeTill(), scans: ScanFeed(), logger: logger), logger: logger),
                                clients: try ClientPolicy(["10.0.0.0/8"], loopback: false), logger: logger)
        let listener = try await server.bind(host: "127.0.0.1", port: 0)
        let port = try #require(listener.channel.localAddress?.port)
        let serving = Task { try await server.serve(listener) }
        defer { serving.cancel() }
        for _ in 0..<12 {
            let answer = try await LocalAuthorityTests.exchange("GET /hw_proxy/hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", port: port)
            #expect(answer.hasPrefix("HTTP/1.1 403"))
        }
        let refusals = lines.messages.filter { $0.contains("not in [web] clients") }
        #expect(refusals.count == 5, "\(refusals.count) warnings for 12 refused connections")
    }
}

/// Keeps what a logger was told (message text), for tests that count log lines.
final class CapturedLog: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        lines.withLock { $0.append(event.message.description) }
    }
    var messages: [String] { lines.withLock { $0 } }
}

import Crypto
public import Foundation
import SwiftASN1
import TillSystem
public import X509

/// till-web's own certificate authority, for HTTPS on the shop's LAN (a browser on another
/// machine will not let a page use a plain-HTTP address on the LAN, and will not trust a
/// self-signed server certificate). Made once, on till-web's first start with TLS on: the shop
/// trusts its certificate once on each till's browser (`tillctl web trust` says how), and
/// till-web issues itself server certificates for the names and addresses the till has, again
/// whenever they change (a new DHCP address) or the certificate nears its end.
///
/// Files, in `DIRECTORY` (`/var/lib/till-web/tls`): `ca.pem` (the certificate to trust, 0644),
/// `ca.key` (its key, 0600: it never leaves the till), `ca.sha256` (the fingerprint to compare
/// when trusting it), `server.pem` and `server.key` (0600).
public struct LocalAuthority: Sendable {
    public let directory: String
    public let certificate: Certificate
    private let key: Certificate.PrivateKey

    public var certificatePath: String { directory + "/ca.pem" }
    public var fingerprintPath: String { directory + "/ca.sha256" }

    /// How long the authority is good for; what the browsers are told to trust.
    static let authorityLifetime: TimeInterval = 10 * 365 * 86_400
    /// Server certificates: 397 days (the longest browsers accept from any CA), renewed at start
    /// when under `renewWithin` is left.
    static let serverLifetime: TimeInterval = 397 * 86_400
    static let renewWithin: TimeInterval = 30 * 86_400

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The authority in `directory`, made there first when there is none.
    public static func loadOrCreate(directory: String, label: String) throws -> LocalAuthority {
        let certificatePath = directory + "/ca.pem", keyPath = directory + "/ca.key"
        if FileManager.default.fileExists(atPath: certificatePath) {
            do {
                let certificate = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
                let key = try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: keyPath, encoding: .utf8))
                guard key.publicKey == certificate.publicKey else {
                    throw Failure(description: "\(keyPath) is not the key of \(certificatePath)")
                }
                return LocalAuthority(directory: directory, certificate: certificate, key: key)
            } catch let failure as Failure {
                throw failure
            } catch {
                throw Failure(description: "the local certificate authority in \(directory) cannot be read (\(error)); move the directory aside and restart till-web to make a new one (browsers must then trust the new one)")
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            OrganizationName("tilld")
            CommonName("tilld local CA (\(label))")
        }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(authorityLifetime),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                // It may sign server certificates only, never another CA.
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: key.publicKey)
            },
            issuerPrivateKey: key)
        let authority = LocalAuthority(directory: directory, certificate: certificate, key: key)
        // The key first, private from its first byte; the certificate last (its presence means
        // the pair is whole).
        try write(try key.serializeAsPEM().pemString, to: keyPath, mode: 0o600)
        try write(authority.fingerprint + "\n", to: directory + "/ca.sha256", mode: 0o644)
        try write(try certificate.serializeAsPEM().pemString, to: certificatePath, mode: 0o644)
        return authority
    }

    /// The certificate to trust, PEM (what `GET /tls/ca.pem` serves).
    public func certificatePEM() throws -> String {
        try certificate.serializeAsPEM().pemString
    }

    /// SHA-256 of the certificate, as browsers and `openssl x509 -fingerprint -sha256` show it.
    public var fingerprint: String {
        Self.fingerprint(of: certificate)
    }

    public static func fingerprint(of certificate: Certificate) -> String {
        var serializer = DER.Serializer()
        try? serializer.serialize(certificate)
        return SHA256.hash(data: serializer.serializedBytes).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// What a server certificate must name: host names and addresses.
    public struct Names: Sendable, Equatable {
        public var dns: [String]
        /// Addresses in network order: 4 bytes (IPv4) or 16 (IPv6).
        public var addresses: [[UInt8]]

        public init(dns: [String], addresses: [[UInt8]]) {
            self.dns = dns
            self.addresses = addresses
        }

        var general: [GeneralName] {
            dns.map { .dnsName($0) } + addresses.map { .ipAddress(ASN1OctetString(contentBytes: $0[...])) }
        }
    }

    /// The server certificate and key (PEM) for `names`: the one on disk when it names them all
    /// and is not near its end, else a new one (written, then returned).
    public func serverCertificate(for names: Names, now: Date = Date()) throws -> (certificate: String, key: String, issued: Bool) {
        let certificatePath = directory + "/server.pem", keyPath = directory + "/server.key"
        if let pem = try? String(contentsOfFile: certificatePath, encoding: .utf8),
           let keyPEM = try? String(contentsOfFile: keyPath, encoding: .utf8),
           let existing = try? Certificate(pemEncoded: pem),
           existing.issuer == certificate.subject,
           existing.notValidAfter.timeIntervalSince(now) > Self.renewWithin,
           let san = try? existing.extensions.subjectAlternativeNames,
           Set(names.general.map { "\($0)" }).isSubset(of: Set(san.map { "\($0)" })) {
            return (pem, keyPEM, false)
        }
        let serverKey = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName {
            OrganizationName("tilld")
            CommonName(names.dns.first ?? "till")
        }
        let issued = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: serverKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Self.serverLifetime),
            issuer: certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names.general)
                SubjectKeyIdentifier(hash: serverKey.publicKey)
                if let authorityKey = try? certificate.extensions.subjectKeyIdentifier {
                    AuthorityKeyIdentifier(keyIdentifier: authorityKey.keyIdentifier)
                }
            },
            issuerPrivateKey: key)
        let keyPEM = try serverKey.serializeAsPEM().pemString
        let pem = try issued.serializeAsPEM().pemString
        try Self.write(keyPEM, to: keyPath, mode: 0o600)
        try Self.write(pem, to: certificatePath, mode: 0o644)
        return (pem, keyPEM, true)
    }

    private init(directory: String, certificate: Certificate, key: Certificate.PrivateKey) {
        self.directory = directory
        self.certificate = certificate
        self.key = key
    }

    /// Written whole or not at all (a temporary file, synced, renamed), with `mode` from its
    /// first byte.
    static func write(_ text: String, to path: String, mode: UInt32) throws {
        do {
            try FileSystem.replaceDurably(path, contents: text, mode: mode)
        } catch {
            throw Failure(description: "cannot write \(path): \(error); check that till-web owns \(FileSystem.parentDirectory(of: path))")
        }
    }
}

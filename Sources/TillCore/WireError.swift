/// The error codes of protocol 1 (`docs/protocol.md`). A client should treat a code it does
/// not know as a failure of the request and show its message.
public enum ErrorCode: String, Sendable, Codable, CaseIterable {
    case badRequest = "bad_request"
    case unknownOp = "unknown_op"
    case forbidden
    case notFound = "not_found"
    case busy
    case journalTruncated = "journal_truncated"
    case deviceError = "device_error"
    case tooLarge = "too_large"
    /// An extension of the contract's set (docs/protocol.md): the event journal cannot
    /// commit (disk full, read-only, file replaced), so an op whose effect would be an event
    /// was not carried out. `details.cause` names which.
    case journalUnavailable = "journal_unavailable"
}

/// An error that is answered on the socket: a code, a message a person can act
/// on, and optional details (the field, the oldest seq, the device).
public struct WireError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var details: [String: JSONValue]?

    public init(_ code: ErrorCode, _ message: String, details: [String: JSONValue]? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { "\(code.rawValue): \(message)" }

    public static func badRequest(field: String, _ message: String) -> WireError {
        WireError(.badRequest, "\(field): \(message)", details: ["field": .string(field)])
    }

    public static func missing(_ field: String) -> WireError {
        .badRequest(field: field, "is required")
    }

    public static func wrongType(_ field: String, expected: String, got: JSONValue) -> WireError {
        .badRequest(field: field, "must be \(expected), not \(got.typeName)")
    }
}

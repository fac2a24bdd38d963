/// Reads typed fields out of a JSON object and throws `bad_request` errors that
/// name the field by its full path (`receipt.lines[2].barcode.type`).
public struct FieldReader: Sendable {
    public let object: [String: JSONValue]
    public let path: String

    public init(_ value: JSONValue, path: String) throws {
        guard let object = value.objectValue else {
            throw WireError.wrongType(path.isEmpty ? "request" : path, expected: "an object", got: value)
        }
        self.object = object
        self.path = path
    }

    public func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// Refuses a key the reader does not know, naming it: a typo (`"allign"`) is an error, not
    /// a silently ignored field.
    public func allowOnly(_ keys: Set<String>) throws {
        if let unknown = object.keys.sorted().first(where: { !keys.contains($0) }) {
            throw WireError.badRequest(field: name(unknown), "is not a known field here; expected one of \(keys.sorted().joined(separator: ", "))")
        }
    }

    public func has(_ key: String) -> Bool {
        if let value = object[key], !value.isNull { return true }
        return false
    }

    public func optionalString(_ key: String, nonEmpty: Bool = false) throws -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let text = value.stringValue else { throw WireError.wrongType(name(key), expected: "a string", got: value) }
        if nonEmpty && text.isEmpty { throw WireError.badRequest(field: name(key), "must not be empty") }
        return text
    }

    public func string(_ key: String, nonEmpty: Bool = true) throws -> String {
        guard let text = try optionalString(key, nonEmpty: nonEmpty) else { throw WireError.missing(name(key)) }
        return text
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let flag = value.boolValue else { throw WireError.wrongType(name(key), expected: "true or false", got: value) }
        return flag
    }

    public func optionalInt(_ key: String, range: ClosedRange<Int64>? = nil) throws -> Int64? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let number = value.intValue else { throw WireError.wrongType(name(key), expected: "an integer", got: value) }
        if let range, !range.contains(number) {
            throw WireError.badRequest(field: name(key), "must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    public func money(_ key: String, required: Bool = true) throws {
        guard let value = object[key], !value.isNull else {
            if required { throw WireError.missing(name(key)) }
            return
        }
        guard let text = value.stringValue else {
            throw WireError.badRequest(
                field: name(key),
                "must be a decimal string such as \"12.50\", not \(value.typeName) (money is never a float)"
            )
        }
        guard DecimalString.isValid(text) else {
            throw WireError.badRequest(field: name(key), "\"\(text)\" is not a decimal amount such as \"12.50\"")
        }
    }

    public func quantity(_ key: String) throws {
        guard let value = object[key], !value.isNull else { throw WireError.missing(name(key)) }
        guard DecimalString.isValidQuantity(value) else {
            throw WireError.badRequest(field: name(key), "must be a number or a decimal string, not \(value.typeName)")
        }
    }

    public func optionalObject(_ key: String) throws -> FieldReader? {
        guard let value = object[key], !value.isNull else { return nil }
        return try FieldReader(value, path: name(key))
    }

    public func optionalArray(_ key: String) throws -> [JSONValue]? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let items = value.arrayValue else { throw WireError.wrongType(name(key), expected: "an array", got: value) }
        return items
    }

    public func array(_ key: String) throws -> [JSONValue] {
        guard let items = try optionalArray(key) else { throw WireError.missing(name(key)) }
        return items
    }

    public func stringArray(_ key: String) throws -> [String]? {
        guard let items = try optionalArray(key) else { return nil }
        return try items.enumerated().map { index, item in
            guard let text = item.stringValue else {
                throw WireError.wrongType("\(name(key))[\(index)]", expected: "a string", got: item)
            }
            return text
        }
    }
}

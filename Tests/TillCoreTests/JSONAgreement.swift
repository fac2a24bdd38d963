// The oracle's notion of "the same value", kept out of the code under test. Compiled into
// the tests and, by Fuzz/run.sh, into the fuzz target (which builds TillCore's sources into
// its own module, hence the conditional import).
#if canImport(TillCore)
import TillCore
#endif

extension JSONValue {
    /// Equal, counting 1 and 1.0 as the same number: Foundation reads `1.0` and `1e2` as
    /// integers where `JSONParser` keeps them doubles. Foundation also reads a number whose
    /// fraction is lost at double precision (`11992801356534409.1`) as the integer of its
    /// digits, where the parser gives the nearest double: one unit in the last place apart.
    /// The differential tests and the fuzz target compare the two readings with this.
    func agrees(with other: JSONValue) -> Bool {
        switch (self, other) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return abs(Double(x) - y) <= y.ulp
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { $0.agrees(with: $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { value.agrees(with: $0) } ?? false }
        default: return self == other
        }
    }
}

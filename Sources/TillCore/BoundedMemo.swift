import Synchronization

/// Answers worked out before, for a pure function that is slow (ICU's transliteration,
/// libphonenumber's regular expressions) and asked the same questions again and again (a
/// shop's regulars, an import reading each customer's details many times). Safe from any
/// thread. Bounded: emptied when full, so a long-running service keeps what it meets often
/// and memory stays flat.
public final class BoundedMemo<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: Value]>([:])
    private let capacity: Int

    public init(capacity: Int) {
        self.capacity = capacity
    }

    /// The value for `key`: remembered, or worked out by `compute` (outside the lock, so two
    /// threads may both work out a value the first time; either is right) and remembered.
    public func value<Failure: Error>(for key: Key, _ compute: () throws(Failure) -> Value) throws(Failure) -> Value {
        if let known = entries.withLock({ $0[key] }) { return known }
        let value = try compute()
        entries.withLock { entries in
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
        return value
    }
}

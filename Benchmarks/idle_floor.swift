import Foundation
// A minimal Swift async program, idle: the floor for tilld's idle RSS and wake-ups.
@main struct Idle { static func main() async throws {
    _ = Date().formatted()
    try await Task.sleep(for: .seconds(3600))
} }

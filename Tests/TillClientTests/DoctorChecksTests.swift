import Testing
import TillClient

@Suite("tillctl doctor's judgements (pure)")
struct DoctorChecksTests {
    @Test("read and write access to a node, as the kernel decides it: owner bits, else group, else other; root always")
    func access() {
        let till: UInt32 = 990
        #expect(DoctorChecks.mayReadWrite(mode: 0o660, owner: 0, group: till, uid: 999, gids: [till]))
        #expect(!DoctorChecks.mayReadWrite(mode: 0o600, owner: 0, group: till, uid: 999, gids: [till]))
        #expect(!DoctorChecks.mayReadWrite(mode: 0o640, owner: 0, group: till, uid: 999, gids: [till]), "read only")
        #expect(DoctorChecks.mayReadWrite(mode: 0o600, owner: 999, group: 0, uid: 999, gids: []))
        #expect(!DoctorChecks.mayReadWrite(mode: 0o066, owner: 999, group: 0, uid: 999, gids: []), "the owner's bits decide for the owner")
        #expect(DoctorChecks.mayReadWrite(mode: 0o666, owner: 0, group: 0, uid: 999, gids: []))
        #expect(DoctorChecks.mayReadWrite(mode: 0o000, owner: 0, group: 0, uid: 0, gids: []))
        #expect(DoctorChecks.describe(mode: 0o660, owner: "root", group: "till") == "crw-rw---- root:till")
    }

    @Test("udev rules: missing, out of date, current")
    func rules() {
        #expect(DoctorChecks.udevRulesProblem(installed: nil, expected: "x", path: "/etc/udev/rules.d/60-tilld.rules")?.problem.contains("not installed") == true)
        #expect(DoctorChecks.udevRulesProblem(installed: "old", expected: "new", path: "/lib/udev/rules.d/60-tilld.rules")?.problem.contains("/lib/udev/rules.d/60-tilld.rules") == true)
        #expect(DoctorChecks.udevRulesProblem(installed: "same", expected: "same", path: "p") == nil)
    }
}

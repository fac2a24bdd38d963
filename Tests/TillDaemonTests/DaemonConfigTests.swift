import TillCore
import TillDevices
import Testing
@testable import TillDaemon

@Suite("Config file", .timeLimit(.minutes(1)))
struct DaemonConfigTests {
    @Test("--config /dev/null is an empty config; a directory says so")
    func specialPaths() throws {
        #expect(try DaemonConfig.load(path: "/dev/null", required: true).devices.isEmpty)
        do {
            _ = try DaemonConfig.load(path: "/tmp", required: true)
            Issue.record("a directory was read as a config")
        } catch {
            #expect("\(error)".contains("is a directory"), "\(error)")
        }
    }

    @Test("the contract's example config parses")
    func contractExample() throws {
        let text = """
            [socket]
            group = "till"          # socket file group, mode 0660
            [access]
            act_users  = ["pos"]
            act_groups = ["till-act"]
            read_groups = ["till"]
            [journal]
            retain_days = 30
            [[device]]
            name = "front-printer"
            role = "printer"
            driver = "escpos"
            usb = { vendor = "04b8", product = "0e15", serial = "X123" }
            [[device]]
            name = "net-printer"
            role = "printer"
            driver = "escpos"
            host = "192.168.1.50"
            port = 9100
            """
        let (config, problems) = DaemonConfig.parse(text)
        #expect(problems.isEmpty, "\(problems)")
        #expect(config.socketGroup == "till")
        #expect(config.access.actUsers == ["pos"])
        #expect(config.access.actGroups == ["till-act"])
        #expect(config.retainDays == 30)
        #expect(config.devices.map(\.name) == ["front-printer", "net-printer"])
        #expect(config.devices[0].options["usb"]?["vendor"] == "04b8")
        #expect(config.devices[1].options["port"] == 9100)
    }

    @Test("an empty config is valid and has defaults")
    func empty() {
        let (config, problems) = DaemonConfig.parse("")
        #expect(problems.isEmpty)
        #expect(config.maxLineBytes == 1 << 20)
        #expect(config.access.readGroups == ["till"])
    }

    @Test("every problem is reported with its line")
    func problems() {
        let text = """
            [socket]
            group = 5
            colour = "blue"
            [journal]
            retain_days = 0
            [[device]]
            name = "p"
            role = "printer"
            driver = "escpoz"
            path = "/dev/usb/lp0"
            [[device]]
            name = "p"
            role = "scanner"
            driver = "escpos"
            """
        let (_, problems) = DaemonConfig.parse(text)
        let lines = Set(problems.compactMap(\.line))
        #expect(lines.isSuperset(of: [2, 3, 5, 9, 12, 14]), "\(problems)")
        #expect(problems.contains { $0.message.contains("unknown key \"colour\"") })
        #expect(problems.contains { $0.message.contains("unknown driver \"escpoz\"") })
        #expect(problems.contains { $0.message.contains("used twice") })
    }

    @Test("a syntax error gives the parser's line")
    func syntax() {
        let (_, problems) = DaemonConfig.parse("[socket]\ngroup = \"till\nx = 1\n")
        #expect(problems.count == 1)
        #expect(problems.first?.line == 2)
    }
}

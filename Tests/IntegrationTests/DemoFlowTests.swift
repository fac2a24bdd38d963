import Foundation
import Glibc
import Testing
import TillClient
import TillCore

@Suite("Demo devices end to end", .timeLimit(.minutes(2)))
struct DemoFlowTests {
    @Test("the socket opens once the devices are journaled: the first client's hello already counts every device.added")
    func devicesAnnouncedBeforeTheSocketOpens() async throws {
        // Many devices, so announcing them takes many commits: were the socket open meanwhile, a
        // client connecting at once would be greeted with a seq short of them, and an event it
        // published would be journaled ahead of them.
        let count = 300
        let config = (1...count).map { index in
            """
            [[device]]
            name = "printer-\(index)"
            role = "printer"
            driver = "escpos"
            path = "/dev/usb/lp\(index)"
            """
        }.joined(separator: "\n")
        let daemon = try await DaemonUnderTest(config: config, demo: false)
        let raw = try RawClient(path: daemon.socket)
        let hello = try #require(try raw.readJSON())
        #expect(hello["seq"]?.intValue == Int64(count), "\(hello)")
    }

    @Test("the demo scanner is the serial-scanner driver on a pseudo-terminal: an AIM identifier and a GS1 separator go down the line and come back parsed")
    func demoScannerOnTheSerialPath() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            let scanner = try #require(devices.first { $0["name"] == "sim-scanner" })
            #expect(scanner["driver"] == "serial-scanner" && scanner["transport"] == "serial" && scanner["state"] == "online", "\(scanner)")
            try await till.request("subscribe", ["topics": ["scanner.*"]])
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "0104006381333931\u{1D}10ABC", "aim": "]C1"]])
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "Caf\u{E9} cr\u{E8}me"]])
            let scans = try await till.collect { $0.count >= 2 }
            #expect(scans[0].data["aim"] == "]C1" && scans[0].data["symbology"] == "gs1-128", "\(scans[0].data)")
            #expect(scans[0].data["text"] == "0104006381333931\u{1D}10ABC")
            #expect(scans[0].data["gs1"] == ["01": "04006381333931", "10": "ABC"], "the GS1 element string parsed")
            #expect(scans[0].data["kind"] == "product" && scans[0].data["check_digit_ok"] == true)
            #expect(scans[1].data["text"] == "Caf\u{E9} cr\u{E8}me", "UTF-8 through the tty's raw mode unchanged")
            // Refused before anything reaches the line.
            await #expect { try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "a\rb"]]) } throws: {
                ($0 as? WireError)?.code == .badRequest
            }
        }
    }

    @Test("an in-store price code, by the shop's [[scanner.variable_measure]] scheme, carries its item and price")
    func variableMeasure() async throws {
        let config = """
            [scanner]
            [[scanner.variable_measure]]
            prefix = "28"
            value = "price"
            """
        let daemon = try await DaemonUnderTest(config: config)
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["scanner.*"]])
            // 28 12345 00499 and its check digit 9: item 12345, 4.99.
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "2812345004999"]])
            let scan = try await till.collect { $0.count >= 1 }[0]
            #expect(scan.data["check_digit_ok"] == true, "\(scan.data)")
            #expect(scan.data["variable_measure"] == ["item": "12345", "price": "4.99"], "\(scan.data)")
        }
    }

    @Test("a simulated scan, a print, a drawer and the display, through the real daemon")
    func wholeFlow() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            #expect(till.hello.protocolVersion == 1)
            #expect(till.hello.server.hasPrefix("tilld/"))
            let devices = try await till.request("devices")["devices"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
            #expect(devices == ["sim-scanner", "sim-printer", "sim-drawer", "sim-display"])

            try await till.request("subscribe", ["topics": ["scanner.*", "printer.job", "drawer.*", "display.*"]])
            try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "4006381333931"]])
            let scan = try await till.collect { $0.count >= 1 }[0]
            #expect(scan.topic == "scanner.data")
            #expect(scan.device == "sim-scanner")
            #expect(scan.data["text"] == "4006381333931")
            #expect(scan.data["symbology"] == "ean13")
            #expect(scan.data["check_digit_ok"] == true)
            #expect(scan.data["kind"] == "product")
            #expect(scan.data["raw"] == .string(Data("4006381333931".utf8).base64EncodedString()))

            let receipt: JSONValue = ["lines": [["text": "M&M Coffee", "align": "center"], ["columns": [["text": "Flat white x2"], ["text": "7.00", "align": "right"]]], ["cut": "partial"]], "open_drawer": true]
            let job = try await till.request("print", ["receipt": receipt])["job"]?.stringValue
            let jobEvents = try await till.collect { events in events.contains { $0.topic == "drawer.closed" } }
            let states = jobEvents.filter { $0.topic == "printer.job" }.map { $0.data["state"]?.stringValue }
            #expect(states == ["queued", "printing", "done"])
            #expect(jobEvents.allSatisfy { $0.topic != "printer.job" || $0.data["job"]?.stringValue == job })
            #expect(jobEvents.contains { $0.topic == "drawer.opened" })
            let printed = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
            #expect(printed.contains("--- job \(job!) at "))
            #expect(printed.contains("Flat white x2" + String(repeating: " ", count: 48 - 13 - 4) + "7.00"), "\(printed)")

            try await till.request("display", ["lines": ["Flat white", "7.00 EUR"]])
            let shown = try await till.collect { $0.count >= 1 }[0]
            #expect(shown.topic == "display.updated" && shown.data["lines"] == ["Flat white", "7.00 EUR"])
            #expect(try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-display.txt", encoding: .utf8) == "Flat white\n7.00 EUR\n")
        }
        #expect(await daemon.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: daemon.socket), "the socket file is removed on a clean stop")
    }

    @Test("the drawer audit: who opened it for which sale, a second kick into an open drawer refused, the log after a restart")
    func drawerAudit() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["drawer.*"]])
            // Long enough that a loaded machine still kicks again before it closes.
            try await till.request("simulate", ["device": "sim-drawer", "data": ["close_after": 8]])
            try await till.request("drawer.open", ["sale": "S42"])
            // At once: the kick has gone out and the drawer has not said it is open yet.
            do {
                try await till.request("drawer.open")
                Issue.record("a second kick right after the first was sent")
            } catch let error as WireError {
                #expect(error.code == .busy && (error.message.contains("already open") || error.message.contains("has not said it opened")), "\(error.message)")
            }
            var events = try await till.collect { $0.contains { $0.topic == "drawer.opened" } }
            do {
                try await till.request("drawer.open")
                Issue.record("a second kick into an open drawer was sent")
            } catch let error as WireError {
                #expect(error.code == .busy && error.message.contains("already open"), "\(error.message)")
            }
            events += try await till.collect { $0.contains { $0.topic == "drawer.closed" } }
            let kicked = try #require(events.first { $0.topic == "drawer.kicked" })
            #expect(kicked.data["sale"] == "S42" && kicked.data["uid"] == .int(Int64(getuid())) && kicked.data["pid"]?.intValue ?? 0 > 0, "\(kicked.data)")
            #expect(events.filter { $0.topic == "drawer.kicked" }.count == 1, "the refused kick is not in the trail")
        }
        #expect(await daemon.stop() == 0)
        try await daemon.start()
        let (code, output, error) = try runProcess(Binaries.tillctl, ["drawer", "log", "--socket", daemon.socket])
        #expect(code == 0, "\(error)")
        let rows = output.split(separator: "\n").map(String.init)
        #expect(rows.contains { $0.contains("kicked") && $0.contains("S42") && $0.contains("(pid ") }, "\(output)")
        #expect(rows.contains { $0.contains("closed") && $0.contains(" s") }, "\(output)")
    }

    @Test("the demo display follows the sale the POS publishes: item and total, tender, change")
    func saleDrivenDisplay() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["display.updated"]])
            try await till.request("publish", ["topic": "sale.started", "data": ["sale": "S1", "till": "T1"]])
            try await till.request("publish", ["topic": "sale.line", "data": ["sale": "S1", "name": "Flat white", "qty": 2, "unit_price": "3.50", "amount": "7.00"]])
            try await till.request("publish", ["topic": "sale.tender", "data": ["sale": "S1", "method": "cash", "amount": "10.00"]])
            try await till.request("publish", ["topic": "sale.completed", "data": ["sale": "S1", "total": "7.00", "currency": "EUR"]])
            let shown = try await till.collect { $0.count >= 3 }.map { $0.data["lines"] }
            #expect(shown == [
                ["2x Flat white   7.00", "TOTAL           7.00"],
                ["TOTAL           7.00", "CASH           10.00"],
                ["CHANGE          3.00", "Thank you!"],
            ])
        }
        let glass = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-display.txt", encoding: .utf8)
        #expect(glass == "CHANGE          3.00\nThank you!\n")
    }

    @Test("a receipt the printer cannot take is refused naming the field, and nothing is spooled")
    func badReceipt() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"]])
            let cases: [(JSONValue, String)] = [
                (["lines": [["text": "x", "allign": "center"]]], "receipt.lines[0].allign"),
                (["lines": [["text": "ok"], ["barcode": ["type": "ean13", "data": "4006381333932"]]]], "receipt.lines[1].barcode.data"),
                (["lines": [["image": ["png": "aGVsbG8="]]]], "receipt.lines[0].image.png"),
                (["lines": [["qr": ["data": .string(String(repeating: "x", count: 3000)), "error": "H"]]]], "receipt.lines[0].qr.data"),
            ]
            for (receipt, field) in cases {
                do {
                    try await till.request("print", ["receipt": receipt])
                    Issue.record("accepted \(receipt)")
                } catch let error as WireError {
                    #expect(error.code == .badRequest && error.message.hasPrefix(field), "\(error.message)")
                }
            }
            #expect(try await till.request("status")["print_queue"] == 0)
            // The next good receipt is J1: nothing was spooled before it.
            let job = try await till.request("print", ["receipt": ["lines": [["text": "fine"]]]])["job"]
            #expect(job == "J1")
        }
    }

    @Test("paper out keeps the job queued; it prints once paper is back, exactly once")
    func paperOut() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.*"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["paper": "out"]])
            let status = try await till.collect { $0.count >= 1 }[0]
            #expect(status.topic == "printer.status" && status.data["paper"] == "out")
            let job = try await till.request("print", ["receipt": ["lines": [["text": "hello"]]]])["job"]
            let queued = try await till.collect { $0.count >= 1 }
            #expect(queued[0].data["state"] == "queued")
            #expect(try await till.request("status")["print_queue"] == 1)
            try await till.request("simulate", ["device": "sim-printer", "data": ["paper": "ok"]])
            let after = try await till.collect { events in events.contains { $0.data["state"] == "done" } }
            #expect(after.filter { $0.data["state"] == "done" }.map { $0.data["job"] } == [job])
        }
        let printed = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        #expect(printed.components(separatedBy: "--- job").count == 2)
    }

    @Test("a queued job can be cancelled and is never printed; cancelling it again, a finished job or an unknown one says which")
    func cancel() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["cover_open": true]])
            let job = try await till.request("print", ["raw": .string(Data("cancelled\n".utf8).base64EncodedString())])["job"]!
            try await till.request("print.cancel", ["job": job])
            let events = try await till.collect { $0.contains { $0.data["state"] == "cancelled" } }
            #expect(events.map { $0.data["state"] } == ["queued", "cancelled"])
            #expect(events.allSatisfy { $0.data["job"] == job })
            await #expect { try await till.request("print.cancel", ["job": job]) } throws: { error in
                (error as? WireError)?.code == .badRequest && (error as? WireError)?.message.contains("already cancelled") == true
            }
            await #expect { try await till.request("print.cancel", ["job": "J999"]) } throws: { error in
                (error as? WireError)?.code == .notFound
            }
            // The cover closes: the cancelled job stays unprinted; a new one prints, then cannot be cancelled.
            try await till.request("simulate", ["device": "sim-printer", "data": ["cover_open": false]])
            let printed = try await till.request("print", ["raw": .string(Data("printed\n".utf8).base64EncodedString())])["job"]!
            _ = try await till.collect { $0.contains { $0.data["job"] == printed && $0.data["state"] == "done" } }
            await #expect { try await till.request("print.cancel", ["job": printed]) } throws: { error in
                (error as? WireError)?.code == .badRequest && (error as? WireError)?.message.contains("already done") == true
            }
            do {
                try await till.request("drawer.open", ["device": "sim-printer"])
                Issue.record("a printer opened as a drawer")
            } catch let error as WireError {
                #expect(error.code == .badRequest)
            }
        }
        let paper = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        #expect(!paper.contains("cancelled") && paper.contains("printed"), "\(paper)")
    }

    @Test("jobs print one at a time, in the order they were accepted")
    func inOrder() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["paper": "out"]])
            var jobs: [JSONValue] = []
            for n in 1...5 {
                jobs.append(try await till.request("print", ["receipt": ["lines": [["text": .string("receipt \(n)")]]]])["job"]!)
            }
            try await till.request("simulate", ["device": "sim-printer", "data": ["paper": "ok"]])
            let events = try await till.collect { $0.filter { $0.data["state"] == "done" }.count == 5 }
            let progress = events.filter { $0.data["state"] == "printing" || $0.data["state"] == "done" }
            // printing J1, done J1, printing J2, done J2...: never two at once.
            #expect(progress.map { $0.data["job"]! } == jobs.flatMap { [$0, $0] })
            #expect(progress.map { $0.data["state"]! } == Array(repeating: ["printing", "done"], count: 5).flatMap { $0 })
        }
        let paper = try String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)
        let order = (1...5).map { paper.range(of: "receipt \($0)")?.lowerBound }
        #expect(order.allSatisfy { $0 != nil } && order.map { $0! } == order.map { $0! }.sorted(), "paper order follows job order")
    }

    @Test("simulate outside demo mode is refused; a configured device that is not there is listed offline with the reason, and a kick says why")
    func noDemo() async throws {
        let config = """
            [[device]]
            name = "cash"
            role = "drawer"
            driver = "serial-drawer"
            path = "/dev/ttyUSB7"
            pulse_line = "dtr"
            """
        let daemon = try await DaemonUnderTest(config: config, demo: false)
        try await daemon.connect { till in
            let devices = try await till.request("devices")["devices"]?.arrayValue ?? []
            #expect(devices.count == 1)
            #expect(devices.first?["state"] == "offline")
            #expect(devices.first?["reason"]?.stringValue?.contains("no device at /dev/ttyUSB7") == true, "\(devices)")
            do {
                try await till.request("simulate", ["device": "sim-scanner", "data": ["text": "1"]])
                Issue.record("simulate accepted without --demo")
            } catch let error as WireError {
                #expect(error.code == .badRequest && error.message.contains("--demo"))
            }
            do {
                try await till.request("drawer.open")
                Issue.record("opened a drawer that is not there")
            } catch let error as WireError {
                #expect(error.code == .deviceError && error.message.contains("cash") && error.message.contains("/dev/ttyUSB7"), "\(error.message)")
            }
            do {
                try await till.request("display", ["lines": ["x"]])
                Issue.record("showed text on a display that does not exist")
            } catch let error as WireError {
                #expect(error.code == .notFound)
            }
        }
    }
}

@Suite("Print jobs across crashes", .serialized, .timeLimit(.minutes(2)))
struct PrintCrashTests {
    private func paper(_ daemon: DaemonUnderTest) -> String {
        (try? String(contentsOfFile: daemon.stateDirectory + "/demo/sim-printer.txt", encoding: .utf8)) ?? ""
    }

    @Test("a job is acknowledged only once spooled: kill -9 right after the reply, and it still prints, once")
    func acknowledgedMeansSpooled() async throws {
        let daemon = try await DaemonUnderTest()
        let job = try await daemon.connect { till in
            try await till.request("simulate", ["device": "sim-printer", "data": ["paper": "out"]])
            return try await till.request("print", ["receipt": ["lines": [["text": "survives the crash"]]]])["job"]!.stringValue!
        }
        daemon.crash()
        try await daemon.start()  // a new sim printer: paper is back
        try await poll("the spooled job to print after the restart") { self.paper(daemon).contains("--- job \(job) ") }
        try await Task.sleep(for: .milliseconds(500))
        #expect(paper(daemon).components(separatedBy: "--- job \(job) ").count == 2, "printed exactly once")
        #expect(paper(daemon).contains("survives the crash"))
    }

    @Test("tilld killed part-way through a job: after the restart it prints again in full under a REPRINT banner, once")
    func crashMidJob() async throws {
        let daemon = try await DaemonUnderTest()
        let job = try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["print_seconds": 30]])
            let job = try await till.request("print", ["receipt": ["lines": [["text": "first line"], ["text": "second line"]]]])["job"]!
            _ = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "printing" } }
            return job.stringValue!
        }
        try await poll("the job's first line on paper") { self.paper(daemon).contains("first line") }
        daemon.crash()
        #expect(!paper(daemon).contains("second line"))
        try await daemon.start()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"], "since": 0])
            let events = try await till.collect { $0.contains { $0.data["job"] == .string(job) && $0.data["state"] == "done" } }
            let states = events.filter { $0.data["job"] == .string(job) }.map { $0.data["state"]?.stringValue ?? "" }
            #expect(states == ["queued", "printing", "queued", "printing", "done"], "\(states)")
            let requeued = events.filter { $0.data["job"] == .string(job) }[2]
            #expect(requeued.data["error"]?.stringValue?.contains("REPRINT") == true, "\(requeued.data)")
            // Later jobs print after it, in order.
            let next = try await till.request("print", ["receipt": ["lines": [["text": "next"]]]])["job"]!
            _ = try await till.collect { $0.contains { $0.data["job"] == next && $0.data["state"] == "done" } }
        }
        let text = paper(daemon)
        #expect(text.components(separatedBy: "R E P R I N T").count == 2, "one REPRINT banner: \(text)")
        #expect(text.components(separatedBy: "job \(job) was interrupted").count == 2)
        #expect(text.components(separatedBy: "second line").count == 2, "the rest of the job on paper once, in the reprint")
        #expect(text.components(separatedBy: "first line").count == 3, "the first line: once cut off, once in the reprint")
    }

    @Test("the printer unplugged part-way through a job: the job waits, and prints again whole under a REPRINT banner when it is back")
    func unplugMidJob() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job", "device.state"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["print_seconds": 30]])
            let job = try await till.request("print", ["receipt": ["lines": [["text": "first line"], ["text": "second line"]]]])["job"]!
            try await poll("the job's first line on paper") { self.paper(daemon).contains("first line") }
            try await till.request("simulate", ["device": "sim-printer", "data": ["plugged": false]])
            let cut = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "queued" && $0.data["error"]?.stringValue != nil } }
            let requeued = try #require(cut.last { $0.data["job"] == job })
            #expect(requeued.data["error"]?.stringValue?.contains("REPRINT") == true, "\(requeued.data)")
            try await till.request("simulate", ["device": "sim-printer", "data": ["plugged": true, "print_seconds": 0]])
            let rest = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "done" } }
            #expect(rest.contains { $0.topic == "device.state" && $0.data["state"] == "online" })
        }
        let text = paper(daemon)
        #expect(text.components(separatedBy: "R E P R I N T").count == 2, "one REPRINT banner: \(text)")
        #expect(text.components(separatedBy: "second line").count == 2, "the whole job once after the replug")
        #expect(text.components(separatedBy: "first line").count == 3)
    }

    @Test("a job that is printing cannot be cancelled: busy")
    func cancelWhilePrinting() async throws {
        let daemon = try await DaemonUnderTest()
        try await daemon.connect { till in
            try await till.request("subscribe", ["topics": ["printer.job"]])
            try await till.request("simulate", ["device": "sim-printer", "data": ["print_seconds": 2]])
            let job = try await till.request("print", ["receipt": ["lines": [["text": "slow"]]]])["job"]!
            _ = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "printing" } }
            await #expect { try await till.request("print.cancel", ["job": job]) } throws: { error in
                (error as? WireError)?.code == .busy
            }
            let rest = try await till.collect { $0.contains { $0.data["job"] == job && $0.data["state"] == "done" } }
            #expect(!rest.contains { $0.data["state"] == "cancelled" })
        }
    }
}

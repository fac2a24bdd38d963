import Testing
import TillScanner

@Suite("Scan decoding: UPC-E, ITF-14")
struct ScanDecodingTests {
    // Expected values computed from the expansion table (GS1 General Specifications, UPC-E),
    // independently of this code; 04252614 ↔ 042100005264 is the textbook example.
    @Test("UPC-E expands to the UPC-A it stands for, by each rule of its last digit", arguments: [
        ("01234505", "012000003455"),  // last digit 0-2: manufacturer d1 d2 d6 0 0, product 0 0 d3 d4 d5
        ("04252614", "042100005264"),
        ("01234531", "012300000451"),  // 3: manufacturer d1 d2 d3 0 0, product 0 0 0 d4 d5
        ("01234543", "012340000053"),  // 4: manufacturer d1 d2 d3 d4 0, product 0 0 0 0 d5
        ("01234558", "012345000058"),  // 5-9: manufacturer d1-d5, product 0 0 0 0 d6
        ("06543297", "065432000097"),
        ("123455", "012345000058"),  // 6 digits: number system 0, no check digit sent
    ])
    func expand(_ upce: String, _ upca: String) {
        #expect(UPCE.expand(upce) == upca)
    }

    @Test("a UPC-E's check digit is the UPC-A's; number system 2 is not UPC-E")
    func upceCheck() {
        let classifier = ScanClassifier()
        let good = classifier.classify(text: "04252614", aim: "]E0")
        #expect(good.symbology == .upce && good.checkDigitOK == true && good.kind == .product)
        let bad = classifier.classify(text: "04252615", aim: "]E0")
        #expect(bad.checkDigitOK == false && bad.kind == .unknown)
        #expect(UPCE.expand("24252614") == nil)
    }

    @Test("ITF-14 on a carton is a GTIN-14 with its check digit")
    func itf14() {
        let classifier = ScanClassifier()
        let carton = classifier.classify(text: "10040063813339", aim: "]I0")
        #expect(carton.symbology == .itf && carton.checkDigitOK == GTIN.isValid("10040063813339"))
        let valid = "1" + "004006381333" + "9"
        let result = classifier.classify(text: valid, aim: "]I0")
        #expect(result.checkDigitOK == GTIN.isValid(valid))
        #expect(result.kind == (GTIN.isValid(valid) ? .product : .unknown))
    }
}

@Suite("In-store codes with a price or weight (restricted circulation, 20-29)")
struct VariableMeasureTests {
    /// An EAN-13 from its first 12 digits, with its check digit.
    static func ean(_ twelve: String) -> String {
        twelve + String(GTIN.checkDigit(for: twelve.utf8.map { Int($0) - 48 }))
    }

    @Test("price and weight schemes give the item and the value with its decimal point")
    func decode() {
        let price = VariableMeasureScheme(prefix: "28", itemDigits: 5, valueDigits: 5, kind: .price, decimals: 2)
        let weight = VariableMeasureScheme(prefix: "23", kind: .weight, decimals: 3)
        let withPriceCheck = VariableMeasureScheme(prefix: "21", itemDigits: 4, valueDigits: 5, kind: .price, decimals: 2)
        let classifier = ScanClassifier(variableMeasures: [price, weight, withPriceCheck])
        let a = classifier.classify(text: Self.ean("281234500499"))
        #expect(a.variableMeasure == VariableMeasure(item: "12345", kind: .price, value: "4.99"))
        #expect(a.kind == .product && a.checkDigitOK == true)
        #expect(classifier.classify(text: Self.ean("235432101250")).variableMeasure == VariableMeasure(item: "54321", kind: .weight, value: "1.250"))
        // 4 item digits, then the price check digit (not part of the value), then 5 value digits.
        #expect(classifier.classify(text: Self.ean("211234700499")).variableMeasure == VariableMeasure(item: "1234", kind: .price, value: "4.99"))
        #expect(classifier.classify(text: Self.ean("400638133393")).variableMeasure == nil, "not an in-store prefix")
        let wrongCheck = String(Self.ean("281234500499").dropLast()) + "0"
        if wrongCheck != Self.ean("281234500499") {
            #expect(classifier.classify(text: wrongCheck).variableMeasure == nil, "a misread code gives no price")
        }
    }

    @Test("a scheme that cannot fit, or a prefix outside 20-29, says so")
    func problems() {
        #expect(VariableMeasureScheme(prefix: "40", kind: .price, decimals: 2).problem?.contains("20 to 29") == true)
        #expect(VariableMeasureScheme(prefix: "28", itemDigits: 6, valueDigits: 5, kind: .price, decimals: 2).problem?.contains("fit") == true)
        #expect(VariableMeasureScheme(prefix: "28", itemDigits: 5, valueDigits: 4, kind: .price, decimals: 5).problem?.contains("decimals") == true)
    }
}

@Suite("The shop's classification rules, coupons and garbled codes")
struct ScanRulesTests {
    @Test("a receipt number and a loyalty card by the shop's patterns, even where they look like an in-store EAN-13")
    func shopPatterns() throws {
        let classifier = ScanClassifier(
            loyaltyPatterns: [try ScanPattern(#"27\d{10}[0-9]"#)], receiptPatterns: [try ScanPattern(#"R-\d{4}-\d{6}"#)],
            variableMeasures: [VariableMeasureScheme(prefix: "27", kind: .price, decimals: 2)])
        #expect(classifier.classify(text: "R-0042-000123").kind == .receipt)
        #expect(classifier.classify(text: "R-0042-000123X").kind == .unknown, "the whole scan must match")
        let card = classifier.classify(text: VariableMeasureTests.ean("271234500499"))
        #expect(card.kind == .loyalty && card.variableMeasure == nil, "the shop's rule wins over the price scheme")
        #expect(classifier.classify(text: "4006381333931").kind == .product)
    }

    @Test("a pattern that is not a regular expression is refused with the reason")
    func badPattern() {
        #expect(throws: ScanPatternError.self) { try ScanPattern("R-(\\d{4}") }
        do {
            _ = try ScanPattern("[unclosed")
        } catch {
            #expect(error.description.contains("[unclosed") && error.description.contains("not a regular expression"))
        }
    }

    @Test("coupons: GS1 coupon AIs, the 99 and 981-984 EAN-13 prefixes, UPC-A number system 5; a shop may set its own prefixes")
    func coupons() {
        let standard = ScanClassifier()
        #expect(standard.classify(text: "8110106141416543213500110000310123196000", aim: "]C1").kind == .coupon)
        #expect(standard.classify(text: "25506141410000121234", aim: "]C1").kind == .coupon)
        #expect(standard.classify(text: VariableMeasureTests.ean("990000000012")).kind == .coupon)
        #expect(standard.classify(text: VariableMeasureTests.ean("981234567890")).kind == .coupon)
        let upcCoupon = String(VariableMeasureTests.ean("051234567890").dropFirst())  // UPC-A 5...
        #expect(standard.classify(text: upcCoupon).symbology == .upca && standard.classify(text: upcCoupon).kind == .coupon)
        #expect(standard.classify(text: VariableMeasureTests.ean("400638133393")).kind == .product)
        let shop = ScanClassifier(couponPrefixes: ["22"])
        #expect(shop.classify(text: VariableMeasureTests.ean("221234567890")).kind == .coupon)
        #expect(shop.classify(text: VariableMeasureTests.ean("990000000012")).kind == .product)
    }

    @Test("a GS1 code that does not parse keeps its text, is unknown and says which AI failed")
    func garbledGS1() {
        let result = ScanClassifier().classify(text: "0104006381333931" + "17261399", aim: "]C1")
        #expect(result.kind == .unknown && result.checkDigitOK == false && result.gs1 == nil)
        #expect(result.gs1Problem?.ai == "17" && result.gs1Problem?.message.contains("261399") == true, "\(String(describing: result.gs1Problem))")
        let noAI = ScanClassifier().classify(text: "ZZZZ", aim: "]d2")
        #expect(noAI.gs1Problem?.ai == nil && noAI.gs1Problem?.message.contains("no GS1 Application Identifier") == true)
        #expect(noAI.kind == .unknown && noAI.symbology == .datamatrix)
    }

    @Test("Digital Link: a GTIN of 8 to 13 digits, 1.0 short names, a path prefix and non-AI query keys; a plain web address is no GS1 code")
    func digitalLink() throws {
        let link = try GS1DigitalLink.parse("https://shop.example/p/gtin/4006381333931/lot/AB%2F1?exp=x&17=261231&linkType=gs1:pip").get()
        #expect(link.values == ["01": "04006381333931", "10": "AB/1", "17": "261231"])
        let result = ScanClassifier().classify(text: "https://id.gs1.org/01/09506000134352", aim: "]Q1")
        #expect(result.symbology == .qr && result.kind == .product && result.checkDigitOK == true && result.gs1?["01"] == "09506000134352")
        let plain = ScanClassifier().classify(text: "https://shop.example/01/opening-hours", aim: "]Q1")
        #expect(plain.gs1 == nil && plain.gs1Problem?.ai == "01" && plain.kind == .unknown, "01 then a value that is no GTIN: a broken link, said")
        let website = ScanClassifier().classify(text: "https://shop.example/about", aim: "]Q1")
        #expect(website.gs1Problem == nil && website.checkDigitOK == nil && website.kind == .unknown)
    }

    @Test("property: every generated GTIN-8/12/13/14 passes, every single-digit change fails")
    func checkDigitProperty() {
        var generator = SystemRandomNumberGenerator()
        for length in [8, 12, 13, 14] {
            for _ in 0..<200 {
                let body = (0..<(length - 1)).map { _ in Int.random(in: 0...9, using: &generator) }
                let code = (body + [GTIN.checkDigit(for: body)]).map(String.init).joined()
                #expect(GTIN.isValid(code))
                var digits = Array(code)
                let position = Int.random(in: 0..<length, using: &generator)
                let original = digits[position].wholeNumberValue!
                digits[position] = Character(String((original + Int.random(in: 1...9, using: &generator)) % 10))
                #expect(!GTIN.isValid(String(digits)), "\(code) → \(String(digits))")
            }
        }
    }
}

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
        #expect(good.symbology == "upce" && good.checkDigitOK == true && good.kind == "product")
        let bad = classifier.classify(text: "04252615", aim: "]E0")
        #expect(bad.checkDigitOK == false && bad.kind == "unknown")
        #expect(UPCE.expand("24252614") == nil)
    }

    @Test("ITF-14 on a carton is a GTIN-14 with its check digit")
    func itf14() {
        let classifier = ScanClassifier()
        let carton = classifier.classify(text: "10040063813339", aim: "]I0")
        #expect(carton.symbology == "itf" && carton.checkDigitOK == GTIN.isValid("10040063813339"))
        let valid = "1" + "004006381333" + "9"
        let result = classifier.classify(text: valid, aim: "]I0")
        #expect(result.checkDigitOK == GTIN.isValid(valid))
        #expect(result.kind == (GTIN.isValid(valid) ? "product" : "unknown"))
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
        #expect(a.kind == "product" && a.checkDigitOK == true)
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

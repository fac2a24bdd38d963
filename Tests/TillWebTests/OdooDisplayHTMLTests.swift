import Testing
import TillCore
@testable import TillWeb

/// Odoo 16/17 send their customer display a page, not data: the order is read out of their
/// template (`CustomerFacingDisplayOrder`) as the POS's browser serialises it.
@Suite("Odoo 16/17's customer display HTML")
struct OdooDisplayHTMLTests {
    /// Odoo 16's template, rendered and serialised as the POS's browser sends it: the
    /// resources, the header row, a picture cell with a data URL, no-break spaces in amounts.
    static func page(lines: [(name: String, qty: String, price: String)], total: String, payments: [(String, String)] = [], change: String = "€&nbsp;0.00", extraClasses: String = "") -> String {
        let items = lines.map { line in
            #"<div class="pos_orderlines_item\#(extraClasses)"><div><div style="background-image:url(data:image/png;base64,iVBORw0KGgo=)"></div></div><div>\#(line.name)</div><div>\#(line.qty)</div><div>\#(line.price)</div></div>"#
        }.joined(separator: "\n                ")
        let paid = payments.map { #"<div><span>\#($0.0):</span></div><div><span>\#($0.1)</span></div>"# }.joined()
        return """
            <div class="resources"><base href="https://shop.odoo.com"><link href="/point_of_sale/static/src/css/customer_facing_display.css" rel="stylesheet"></div>
            <!-- Header --><script type="text/javascript">var foreign_js = function () { /* Total 99.99 < 1 */ };</script>
            <div class="pos-customer_facing_display pos-palette_01">
              <div class="pos-customer_products" name="Products list">
                <div class="pos_orderlines">
                  <div class="pos_orderlines_item pos_orderlines_header"><div></div><div></div><div>Quantity</div><div>Price</div></div>
                  <div class="pos_orderlines_list">
                    \(items)
                  </div>
                </div>
              </div>
              <div class="pos-payment_info">
                <div class="pos-company_logo" style="background-image:url('/logo?company=1')"></div>
                <div class="pos-payment_info_details">
                  <div class="pos-total"><div><span class="total-amount-formatting">TOTAL</span></div>
                    <div><span class="pos_total-amount">\(total)</span></div></div>
                  <div class="pos-paymentlines">\(paid)
                    <div><span class="pos-change_title">Change</span></div>
                    <div><span class="pos-change_amount">\(change)</span></div>
                  </div>
                  <div class="pos-odoo_logo_container"><img src="/web/static/src/img/logo_inverse_white_206px.png" alt="Odoo Logo"></div>
                </div>
              </div>
            </div>
            """
    }

    @Test("mid-sale: the last line (name, quantity when not one, price) and the total; the header row, the script and the picture are not taken for lines")
    func midSale() throws {
        let html = Self.page(lines: [("Flat white", "1.00", "€&nbsp;3.20"), ("Croissant au beurre", "2.00", "€&nbsp;5.00")], total: "€&nbsp;8.20")
        let order = try #require(OdooDisplayHTML.order(html))
        #expect(order["lines"]?.arrayValue?.count == 2)
        #expect(order["lines"]?.arrayValue?.first?["productName"] == "Flat white")
        #expect(order["amount"] == "€ 8.20")
        #expect(order["paymentLines"]?.arrayValue?.isEmpty == true, "the change's title and amount are not a payment")
        #expect(CustomerDisplay.lines(html: html) == ["Croissant x2  € 5.00", "Total         € 8.20"])
        // A quantity of one is not shown, in any of Odoo's formats.
        for one in ["1", "1.00", "1,00", "1.000"] {
            let single = Self.page(lines: [("Flat white", one, "€&nbsp;3.20")], total: "€&nbsp;3.20")
            #expect(CustomerDisplay.lines(html: single)?.first == "Flat white    € 3.20", "\(one)")
        }
    }

    @Test("paid: the total and the change, as Odoo 18's data shows them")
    func paid() throws {
        let html = Self.page(lines: [("Flat white", "1", "3.20 $")], total: "3.20 $", payments: [("Cash", "5.00 $")], change: "1.80 $")
        #expect(CustomerDisplay.lines(html: html) == ["Total         3.20 $", "Change        1.80 $"])
    }

    @Test("Odoo 17's extra classes and entities: lines are still found; names are text (&amp;, &lt;, numeric) never markup")
    func seventeen() throws {
        let html = Self.page(lines: [("Fish &amp; chips &lt;large&gt;", "1", "&#8364;&#xa0;9.50")], total: "€&nbsp;9.50", extraClasses: " d-flex align-items-center")
        let order = try #require(OdooDisplayHTML.order(html))
        #expect(order["lines"]?.arrayValue?.first?["productName"] == "Fish & chips <large>")
        #expect(order["lines"]?.arrayValue?.first?["price"] == "€ 9.50")
    }

    @Test("markup that is not the template: a shop's own page gives the amount after 'Total'; Odoo's welcome page changes nothing")
    func otherPages() {
        #expect(OdooDisplayHTML.order("<html><body><h1>Total</h1><p>12.50</p></body></html>") == nil)
        #expect(CustomerDisplay.lines(html: "<html><body><h1>Total</h1><p>12.50</p></body></html>") == ["Total          12.50"])
        let welcome = #"<div class="pos-customer_facing_display pos-palette_01"><div class="pos-hello">Welcome to Café Lumière</div></div>"#
        #expect(CustomerDisplay.lines(html: welcome) == nil)
    }

    @Test("odd markup: unquoted and single-quoted attributes, '>' inside a quoted value, capital tags, a stray '<', an unclosed page")
    func oddMarkup() throws {
        let html = #"""
            <DIV CLASS=pos_orderlines_list><div class='pos_orderlines_item' data-x="a>b"><div><img src=x.png></div><div>Tea < coffee</div><div>3</div><div>6.00</div></DIV>
            <span class="pos_total-amount">6.00
            """#
        let order = try #require(OdooDisplayHTML.order(html))
        #expect(order["lines"]?.arrayValue?.first?["productName"] == "Tea < coffee")
        #expect(order["lines"]?.arrayValue?.first?["qty"] == "3")
        #expect(order["amount"] == "6.00")
        #expect(CustomerDisplay.lines(html: html) == ["Tea < coffee x3 6.00", "Total           6.00"])
    }

    @Test("every prefix of a page, and the page with any one byte changed, is read without a crash")
    func truncatedAndMutated() {
        let html = Self.page(lines: [("Flat white", "1", "€&nbsp;3.20"), ("Croissant", "2", "€&nbsp;5.00")], total: "€&nbsp;8.20", payments: [("Cash", "€&nbsp;10.00")], change: "€&nbsp;1.80")
        let bytes = Array(html.utf8)
        var read = 0
        for end in 0...bytes.count {
            if OdooDisplayHTML.order(String(decoding: bytes[..<end], as: UTF8.self)) != nil { read += 1 }
        }
        #expect(read > 0)
        for (at, replacement) in zip(stride(from: 0, to: bytes.count, by: 7), [UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "\""), UInt8(ascii: "&"), UInt8(ascii: "/")].cycled(bytes.count)) {
            var mutated = bytes
            mutated[at] = replacement
            _ = CustomerDisplay.lines(html: String(decoding: mutated, as: UTF8.self))
        }
        #expect(CustomerDisplay.lines(html: html) == ["Total         € 8.20", "Change        € 1.80"])
    }
}

extension Array {
    /// The elements over and over, `count` in all.
    fileprivate func cycled(_ count: Int) -> [Element] { (0..<count).map { self[$0 % self.count] } }
}

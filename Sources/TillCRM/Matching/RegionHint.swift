import TillPhoneNumber

/// Which country a national phone number ("07911 123456") is most likely from, read from the
/// other things a person gave: a postcode whose format only one country uses, then the
/// country of their email domain, then the shop's default. A German visitor's "0151 ..."
/// is not parsed as British because the shop is in London.
public enum RegionHint {
    /// Regions to try, best first, for a person with this postcode and email.
    public static func regions(postcode: String?, email: String?, defaultRegion: String) -> [String] {
        var regions: [String] = []
        func add(_ region: String?) {
            if let region, !regions.contains(region) { regions.append(region) }
        }
        let format = postcode.map(PostcodeFormat.init(postcode:))
        add(format?.uniqueRegion)
        // A five-digit postcode is German, French, Italian...: it says nothing on its own, but
        // one the shop's own country uses keeps the default ahead of a foreign email domain.
        if let shared = format?.sharedBy, shared.contains(defaultRegion) { add(defaultRegion) }
        add(email.flatMap(region(ofEmail:)))
        add(defaultRegion)
        return regions
    }

    /// The country of an email's domain, for country-code domains ("web.de" → DE, "x.co.uk" → GB).
    public static func region(ofEmail email: String) -> String? {
        guard let tld = email.split(separator: ".").last?.lowercased(), tld.count == 2, !email.hasSuffix(".") else { return nil }
        switch tld {
        case "uk": return "GB"
        case "eu", "io", "co", "me", "tv", "ai", "cc", "ws", "fm", "gg", "je", "im", "to", "ly", "nu", "tk": return nil  // generic in practice
        default: return tld.uppercased()
        }
    }
}

/// The shape of a postcode, and the countries that use it.
struct PostcodeFormat {
    var uniqueRegion: String?
    var sharedBy: [String] = []

    init(postcode raw: String) {
        let code = raw.uppercased().filter { !$0.isWhitespace }
        let shape = String(code.map { $0.isNumber ? "9" : ($0.isLetter ? "A" : $0) })
        switch shape {
        // United Kingdom: A9 9AA, A99 9AA, AA9 9AA, AA99 9AA, A9A 9AA, AA9A 9AA.
        case "A99AA", "A999AA", "AA99AA", "AA999AA", "A9A9AA", "AA9A9AA": uniqueRegion = "GB"
        case "A99AAAA", "A999AAA", "A99A9AA", "A999A9A", "A99AA9A", "A9999AA": uniqueRegion = code.first == "D" || code.count == 7 ? "IE" : nil  // Eircode
        case "9999AA": uniqueRegion = "NL"
        case "99-999": uniqueRegion = "PL"
        case "9999-999": uniqueRegion = "PT"
        case "A9A9A9": uniqueRegion = "CA"
        case "999-9999": uniqueRegion = "JP"
        case "99999": sharedBy = ["DE", "FR", "IT", "ES", "FI", "US", "HR", "EE", "LT", "GR", "CZ", "SK", "SE", "UA", "RS"]
        case "9999": sharedBy = ["AT", "CH", "BE", "DK", "NO", "LU", "HU", "SI", "BG", "AU", "NZ"]
        case "999999": sharedBy = ["RU", "BY", "RO", "IN", "SG", "KZ", "CN"]
        default: break
        }
    }
}

extension IdentifierNormalizer {
    /// E.164 for a phone number given with a postcode and email: the regions `RegionHint`
    /// suggests are tried in turn and the first that makes a valid number wins. An
    /// international number ("+49 ...") parses the same whatever the region.
    public func phone(_ raw: String, postcode: String?, email: String?) throws -> CustomerIdentifier {
        for region in RegionHint.regions(postcode: postcode, email: email, defaultRegion: defaultRegion) {
            // The default's own error is the one to report: it names the shop's region.
            if region == defaultRegion { break }
            if let number = try? PhoneNumber.e164(raw, defaultRegion: region) {
                return CustomerIdentifier(kind: .phone, raw: raw, normalized: number)
            }
        }
        return try phone(raw)
    }
}

// C shim over libphonenumber (Debian libphonenumber-dev): Swift imports C, not this C++ API.
#include "till_phone.h"

#include <cstring>
#include <string>

#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberUtil;

static int copy_out(const std::string &text, char *out, size_t out_size) {
    if (text.size() + 1 > out_size) return TILL_PHONE_BUFFER;
    std::memcpy(out, text.c_str(), text.size() + 1);
    return TILL_PHONE_OK;
}

extern "C" int till_phone_to_e164(const char *raw, const char *default_region, char *out, size_t out_size) {
    PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    switch (util->Parse(raw, default_region, &number)) {
    case PhoneNumberUtil::NO_PARSING_ERROR: break;
    case PhoneNumberUtil::INVALID_COUNTRY_CODE_ERROR: return TILL_PHONE_INVALID_COUNTRY;
    case PhoneNumberUtil::NOT_A_NUMBER: return TILL_PHONE_NOT_A_NUMBER;
    case PhoneNumberUtil::TOO_SHORT_AFTER_IDD:
    case PhoneNumberUtil::TOO_SHORT_NSN: return TILL_PHONE_TOO_SHORT;
    case PhoneNumberUtil::TOO_LONG_NSN: return TILL_PHONE_TOO_LONG;
    default: return TILL_PHONE_NOT_A_NUMBER;
    }
    if (!util->IsValidNumber(number)) return TILL_PHONE_INVALID;
    std::string formatted;
    util->Format(number, PhoneNumberUtil::E164, &formatted);
    return copy_out(formatted, out, out_size);
}

extern "C" int till_phone_region(const char *e164, char *out, size_t out_size) {
    PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    if (util->Parse(e164, "ZZ", &number) != PhoneNumberUtil::NO_PARSING_ERROR) return copy_out("", out, out_size);
    std::string region;
    util->GetRegionCodeForNumber(number, &region);
    return copy_out(region == "ZZ" ? "" : region, out, out_size);
}

extern "C" int till_phone_country_code(const char *region) {
    // 0 for a region libphonenumber does not know ("XX", "UK"): the caller refuses it.
    return PhoneNumberUtil::GetInstance()->GetCountryCodeForRegion(region);
}

extern "C" int till_phone_kind(const char *e164) {
    PhoneNumberUtil *util = PhoneNumberUtil::GetInstance();
    PhoneNumber number;
    if (util->Parse(e164, "ZZ", &number) != PhoneNumberUtil::NO_PARSING_ERROR) return TILL_PHONE_KIND_UNKNOWN;
    switch (util->GetNumberType(number)) {
    case PhoneNumberUtil::MOBILE:
    case PhoneNumberUtil::PERSONAL_NUMBER: return TILL_PHONE_KIND_MOBILE;
    case PhoneNumberUtil::FIXED_LINE: return TILL_PHONE_KIND_FIXED_LINE;
    case PhoneNumberUtil::FIXED_LINE_OR_MOBILE: return TILL_PHONE_KIND_FIXED_OR_MOBILE;
    default: return TILL_PHONE_KIND_UNKNOWN;
    }
}

#ifndef TILL_PHONE_H
#define TILL_PHONE_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Outcomes of till_phone_to_e164, mirroring libphonenumber's parse errors. */
enum till_phone_result {
    TILL_PHONE_OK = 0,
    TILL_PHONE_INVALID_COUNTRY = 1, /* no country code and the default region is unknown */
    TILL_PHONE_NOT_A_NUMBER = 2,
    TILL_PHONE_TOO_SHORT = 3,
    TILL_PHONE_TOO_LONG = 4,
    TILL_PHONE_INVALID = 5,         /* parses, but no such number exists in that country's plan */
    TILL_PHONE_BUFFER = 6
};

/* Parses `raw` as dialled in `default_region` (ISO 3166 alpha-2, e.g. "GB") and writes the
 * E.164 form ("+447700900123") to `out`. A thin C face on libphonenumber for Swift. */
int till_phone_to_e164(const char *raw, const char *default_region, char *out, size_t out_size);

/* The region a valid E.164 number belongs to ("GB"), or "" if unknown. */
int till_phone_region(const char *e164, char *out, size_t out_size);

/* The calling code of a region ("GB" -> 44), or 0 when libphonenumber does not know the region. */
int till_phone_country_code(const char *region);

/* What kind of line a valid E.164 number is, from the country's numbering plan. */
enum till_phone_kind {
    TILL_PHONE_KIND_UNKNOWN = 0,
    TILL_PHONE_KIND_MOBILE = 1,         /* mobile or personal number: one person's, as a rule */
    TILL_PHONE_KIND_FIXED_LINE = 2,     /* a landline: often a household's */
    TILL_PHONE_KIND_FIXED_OR_MOBILE = 3 /* the plan cannot tell (the United States, Canada) */
};
int till_phone_kind(const char *e164);

#ifdef __cplusplus
}
#endif
#endif

/*
 * Fuzz target: the one text rule of every API field and the MIS sync
 * (msgr_text_check()), language tags, email addresses, dates and RFC 3339
 * timestamps as query parameters and fields carry them, and SMS segments.
 * Properties: a checked text stays inside the input, is trimmed and no
 * longer than its limit; a valid date's days give the same date back.
 */

#include "msgr_fuzz.h"
#include "msgr_routing.h"
#include "msgr_text.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int            ucs2;
    long           days;
    char           buf[48];
    size_t         len, max, half;
    int64_t        t;
    uint32_t       mix;
    const char    *s, *err;

    s = (const char *) data;
    mix = msgr_fuzz_mix(data, size);

    (void) msgr_date_parse(s, size, &days);
    (void) msgr_timestamp_parse(s, size, &t);
    (void) msgr_sms_segments(s, size, &ucs2);

    if (!msgr_utf8_valid(s, size)) {
        return 0;
    }

    (void) msgr_utf8_chars(s, size);
    (void) msgr_email_valid(s, size);
    (void) msgr_text_language(s, size);

    half = mix % (size + 1);
    while (half < size && (data[half] & 0xc0) == 0x80) {
        half++;
    }
    (void) msgr_utf8_casecmp(s, half, s + half, size - half);

    max = mix % 64;
    len = size;
    err = msgr_text_check(&s, &len, max, (mix >> 8) & 3, buf, sizeof(buf));

    msgr_fuzz_assert(s >= (const char *) data
                     && s + len <= (const char *) data + size);

    if (err == NULL) {
        msgr_fuzz_assert(msgr_utf8_chars(s, len) <= max);
        msgr_fuzz_assert(msgr_text_space_at(s, len) == 0
                         && msgr_text_space_before(s, len) == 0);
    }

    return 0;
}

/*
 * msgr: text helpers shared by the settings, the MIS sync and the API:
 * UTF-8 character counts, case-insensitive comparison, email addresses.
 * Pure C.
 */

#include <stdint.h>
#include <string.h>

#include "msgr_text.h"


size_t
msgr_utf8_chars(const char *s, size_t len)
{
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {
        if (((unsigned char) s[i] & 0xc0) != 0x80) {
            n++;
        }
    }

    return n;
}


/* spaces and control characters, including the C1 range of UTF-8 */

int
msgr_text_has_space(const char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c <= 0x20 || c == 0x7f) {
            return 1;
        }

        if (c == 0xc2 && i + 1 < len
            && (((unsigned char) s[i + 1] >= 0x80
                 && (unsigned char) s[i + 1] <= 0x9f)
                || (unsigned char) s[i + 1] == 0xa0))
        {
            return 1;
        }
    }

    return 0;
}


int
msgr_email_valid(const char *s, size_t len)
{
    size_t       i, at, dlen;
    const char  *domain;

    if (msgr_text_has_space(s, len)) {
        return 0;
    }

    at = len;

    for (i = 0; i < len; i++) {
        if (s[i] == '@') {
            if (at != len) {
                return 0;
            }
            at = i;
        }
    }

    if (at == len || at == 0) {
        return 0;
    }

    if (msgr_utf8_chars(s, at) > 64) {
        return 0;
    }

    domain = s + at + 1;
    dlen = len - at - 1;

    if (dlen < 3 || domain[0] == '.' || domain[dlen - 1] == '.'
        || memchr(domain, '.', dlen) == NULL)
    {
        return 0;
    }

    for (i = 1; i < dlen; i++) {
        if (domain[i] == '.' && domain[i - 1] == '.') {
            return 0;
        }
    }

    return 1;
}


/*
 * The lower case of a code point, for the scripts schools' names and
 * topics are written in: Latin (ASCII, Latin-1, Latin Extended-A), Greek
 * and Cyrillic.  Others are left as they are.
 */

static uint32_t
msgr_text_fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z') {
        return c + 32;
    }

    if (c < 0xc0) {
        return c;
    }

    if (c <= 0xde) {
        return c == 0xd7 ? c : c + 32;
    }

    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x178) {
            return 0xff;
        }

        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) {
            return (c & 1) ? c + 1 : c;
        }

        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149
            || c == 0x17f)
        {
            return c;
        }

        return (c & 1) ? c : c + 1;
    }

    if (c >= 0x391 && c <= 0x3ab && c != 0x3a2) {
        return c + 32;
    }

    if (c >= 0x410 && c <= 0x42f) {
        return c + 32;
    }

    if (c >= 0x400 && c <= 0x40f) {
        return c + 80;
    }

    return c;
}


/* the next code point of valid UTF-8 (jansson checked it) */

static uint32_t
msgr_text_next(const unsigned char **p, const unsigned char *end)
{
    uint32_t              c;
    size_t                n, i;
    const unsigned char  *s;

    s = *p;
    c = *s;

    if (c < 0x80) {
        n = 0;

    } else if ((c & 0xe0) == 0xc0) {
        c &= 0x1f;
        n = 1;

    } else if ((c & 0xf0) == 0xe0) {
        c &= 0x0f;
        n = 2;

    } else {
        c &= 0x07;
        n = 3;
    }

    for (i = 1; i <= n && s + i < end; i++) {
        c = (c << 6) | (s[i] & 0x3f);
    }

    *p = s + i;

    return c;
}


int
msgr_utf8_casecmp(const char *a, size_t alen, const char *b, size_t blen)
{
    uint32_t              ca, cb;
    const unsigned char  *pa, *pb, *ea, *eb;

    pa = (const unsigned char *) a;
    pb = (const unsigned char *) b;
    ea = pa + alen;
    eb = pb + blen;

    while (pa < ea && pb < eb) {
        ca = msgr_text_fold(msgr_text_next(&pa, ea));
        cb = msgr_text_fold(msgr_text_next(&pb, eb));

        if (ca != cb) {
            return ca < cb ? -1 : 1;
        }
    }

    if (pa < ea) {
        return 1;
    }

    return pb < eb ? -1 : 0;
}

/*
 * msgr: text helpers shared by the settings, the MIS sync and the API:
 * UTF-8 checks and character counts, the one rule for text fields,
 * language tags, case-insensitive comparison, email addresses, lists of
 * names and calendar dates.  Pure C.
 */

#include <stdint.h>
#include <stdio.h>
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


int
msgr_utf8_valid(const char *s, size_t len)
{
    size_t               n, i;
    uint32_t             c, min;
    const unsigned char  *p, *end;

    p = (const unsigned char *) s;
    end = p + len;

    while (p < end) {
        c = *p;

        if (c < 0x80) {
            p++;
            continue;
        }

        if (c >= 0xc2 && c <= 0xdf) {
            c &= 0x1f;
            n = 1;
            min = 0x80;

        } else if ((c & 0xf0) == 0xe0) {
            c &= 0x0f;
            n = 2;
            min = 0x800;

        } else if (c >= 0xf0 && c <= 0xf4) {
            c &= 0x07;
            n = 3;
            min = 0x10000;

        } else {
            return 0;
        }

        if ((size_t) (end - p) <= n) {
            return 0;
        }

        for (i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }

            c = (c << 6) | (p[i] & 0x3f);
        }

        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
            return 0;
        }

        p += n + 1;
    }

    return 1;
}


/* C0 and C1 control characters and DEL */

int
msgr_text_has_control(const char *s, size_t len)
{
    size_t         i;
    unsigned char  c;

    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];

        if (c < 0x20 || c == 0x7f) {
            return 1;
        }

        if (c == 0xc2 && i + 1 < len
            && (unsigned char) s[i + 1] >= 0x80
            && (unsigned char) s[i + 1] <= 0x9f)
        {
            return 1;
        }
    }

    return 0;
}


/* ASCII white space and U+00A0 (no-break space) */

static int
msgr_text_ascii_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
           || c == '\f';
}


size_t
msgr_text_space_at(const char *s, size_t len)
{
    if (len > 0 && msgr_text_ascii_space(s[0])) {
        return 1;
    }

    if (len > 1 && (unsigned char) s[0] == 0xc2
        && (unsigned char) s[1] == 0xa0)
    {
        return 2;
    }

    return 0;
}


size_t
msgr_text_space_before(const char *s, size_t len)
{
    if (len > 0 && msgr_text_ascii_space(s[len - 1])) {
        return 1;
    }

    if (len > 1 && (unsigned char) s[len - 2] == 0xc2
        && (unsigned char) s[len - 1] == 0xa0)
    {
        return 2;
    }

    return 0;
}


void
msgr_text_trim(const char **s, size_t *len)
{
    size_t  n;

    while ((n = msgr_text_space_at(*s, *len)) != 0) {
        *s += n;
        *len -= n;
    }

    while ((n = msgr_text_space_before(*s, *len)) != 0) {
        *len -= n;
    }
}


const char *
msgr_text_check(const char **s, size_t *len, size_t max, unsigned flags,
    char *buf, size_t size)
{
    size_t         i, chars;
    const char    *p;
    unsigned char  c;

    if (memchr(*s, '\0', *len) != NULL) {
        return MSGR_TEXT_NUL;
    }

    msgr_text_trim(s, len);

    p = *s;

    for (i = 0; i < *len; i++) {
        c = (unsigned char) p[i];

        if ((flags & MSGR_TEXT_MULTILINE)
            && (c == '\n' || c == '\r' || c == '\t'))
        {
            continue;
        }

        if (c < 0x20 || c == 0x7f
            || (c == 0xc2 && i + 1 < *len
                && (unsigned char) p[i + 1] >= 0x80
                && (unsigned char) p[i + 1] <= 0x9f))
        {
            return (flags & MSGR_TEXT_MULTILINE) ? MSGR_TEXT_CONTROL_ML
                                                 : MSGR_TEXT_CONTROL;
        }
    }

    chars = msgr_utf8_chars(p, *len);

    if (chars == 0 && (flags & MSGR_TEXT_REQUIRED)) {
        return MSGR_TEXT_EMPTY;
    }

    if (chars > max) {
        snprintf(buf, size, "must be at most %zu characters", max);
        return buf;
    }

    return NULL;
}


int
msgr_text_language(const char *s, size_t len)
{
    size_t  i;

    if (len < 2 || len > 8) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')) {
            continue;
        }

        if (s[i] != '-' || i < 2 || i == len - 1 || s[i - 1] == '-') {
            return 0;
        }
    }

    return 1;
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


int
msgr_text_choice(const char *const *choices, const char *s, size_t len)
{
    int  i;

    for (i = 0; choices[i] != NULL; i++) {
        if (strlen(choices[i]) == len && memcmp(choices[i], s, len) == 0) {
            return i;
        }
    }

    return -1;
}


void
msgr_text_join(char *buf, size_t size, const char *const *choices,
    const int64_t *ints)
{
    int     i;
    size_t  n;

    n = strlen(buf);

    for (i = 0; n < size; i++) {
        if (choices != NULL ? choices[i] == NULL : ints[i] == -1) {
            break;
        }

        if (choices != NULL) {
            snprintf(buf + n, size - n, "%s%s", i ? ", " : "", choices[i]);

        } else {
            snprintf(buf + n, size - n, "%s%lld", i ? ", " : "",
                     (long long) ints[i]);
        }

        n += strlen(buf + n);
    }
}


/* days since 1970-01-01 of a proleptic Gregorian date */

static long
msgr_date_days(long y, unsigned m, unsigned d)
{
    long      era;
    unsigned  yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned) (y - era * 400);
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + (long) doe - 719468;
}


int
msgr_date_parse(const char *s, size_t len, long *days)
{
    long      y;
    size_t    i;
    unsigned  m, d, mdays;

    static const unsigned char  month_days[] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (len != 10 || s[4] != '-' || s[7] != '-') {
        return MSGR_DATE_FORMAT;
    }

    for (i = 0; i < len; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9')) {
            return MSGR_DATE_FORMAT;
        }
    }

    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10
        + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');

    if (y == 0 || m < 1 || m > 12 || d < 1) {
        return MSGR_DATE_DAY;
    }

    mdays = month_days[m - 1];

    if (m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) {
        mdays = 29;
    }

    if (d > mdays) {
        return MSGR_DATE_DAY;
    }

    if (days != NULL) {
        *days = msgr_date_days(y, m, d);
    }

    return MSGR_DATE_OK;
}


/* two digits at s as a number, or -1 */

static int
msgr_text_2digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9') {
        return -1;
    }

    return (s[0] - '0') * 10 + (s[1] - '0');
}


int
msgr_timestamp_parse(const char *s, size_t len, int64_t *t)
{
    int     hh, mm, ss, oh, om, sign;
    long    days;
    size_t  i;

    /* "YYYY-MM-DDTHH:MM:SS", then fractions, then Z or an offset */

    if (len < 20 || (s[10] != 'T' && s[10] != 't') || s[13] != ':'
        || s[16] != ':'
        || msgr_date_parse(s, 10, &days) != MSGR_DATE_OK)
    {
        return -1;
    }

    hh = msgr_text_2digits(s + 11);
    mm = msgr_text_2digits(s + 14);
    ss = msgr_text_2digits(s + 17);

    if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60) {
        return -1;
    }

    i = 19;

    if (s[i] == '.') {
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            /* fractions of a second are dropped */
        }

        if (i == 20) {
            return -1;
        }
    }

    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        oh = 0;
        om = 0;
        sign = 1;

    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')
               && s[i + 3] == ':')
    {
        sign = (s[i] == '-') ? -1 : 1;
        oh = msgr_text_2digits(s + i + 1);
        om = msgr_text_2digits(s + i + 4);

        if (oh < 0 || oh > 23 || om < 0 || om > 59) {
            return -1;
        }

    } else {
        return -1;
    }

    if (t != NULL) {
        *t = (int64_t) days * 86400 + hh * 3600 + mm * 60 + ss
             - sign * (oh * 3600 + om * 60);
    }

    return 0;
}

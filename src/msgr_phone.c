/*
 * msgr phone numbers: normalisation to E.164.
 *
 * The rules:
 *
 *  1. Characters.  Digits, spaces, tabs, '-', '.', '/' and one level of
 *     parentheses are allowed anywhere; one '+' only before the first
 *     digit.  An extension ("ext", "ext.", "x" followed by anything) is
 *     refused ("has an extension"), and so is any other letter ("contains
 *     letters") or character.  At most 20 digits are looked at.
 *
 *  2. International form.  The number is international when it starts
 *     with '+', with "00", or with the international prefix of the
 *     country it is written in (011 in the US and Canada, 0011 in
 *     Australia).  The calling code comes next and must not start with 0.
 *
 *     - A calling code in the table below: the rest is that country's
 *       national significant number (NSN).  A trunk prefix written after
 *       the calling code is dropped, so "+44 (0)20 7946 0000" is
 *       +442079460000.  The NSN must start with a digit the country allows
 *       and have one of its lengths.  Where countries share a code (+1),
 *       the country the number is written in is preferred.
 *
 *     - Any other calling code: accepted as it is when the calling code
 *       and the NSN together have 8 to 15 digits (E.164's maximum).
 *
 *  3. National form, anything else: a number of the country it is written
 *     in.  Its trunk prefix (0 in GB) is dropped; when the country's trunk
 *     prefix is required, a number without it is refused ("no leading 0":
 *     often a spreadsheet ate it).  The rest is the NSN, checked as in 2,
 *     and the calling code is put in front.
 *
 * The table holds, for each country: the ISO 3166 alpha-2 code, the
 * calling code, the international prefix, the trunk prefix and whether it
 * is required, the digits an NSN may start with, and the NSN's lengths.
 * Adding a country is adding a row.
 */

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "msgr_phone.h"


#define MSGR_PHONE_MAX_DIGITS  20


typedef struct {
    const char             *country;   /* ISO 3166 alpha-2 */
    const char             *code;      /* calling code */
    const char             *idd;       /* international prefix; "00" too */
    const char             *trunk;     /* national trunk prefix, or "" */
    unsigned                trunk_required:1;
    const char             *first;     /* digits an NSN may start with */
    size_t                  min, max;  /* NSN lengths */
    const char             *national;  /* why: no trunk prefix */
    const char             *foreign;   /* why: NSN's first digit */
} msgr_phone_country_t;


static const msgr_phone_country_t  msgr_phone_table[] = {

    { "GB", "44", "00", "0", 1, "123456789", 9, 10,
      "no leading 0", "not a GB number" },

    { "IE", "353", "00", "0", 1, "123456789", 7, 9,
      "no leading 0", "not an IE number" },

    { "US", "1", "011", "1", 0, "23456789", 10, 10,
      NULL, "not a US number" },

    { "CA", "1", "011", "1", 0, "23456789", 10, 10,
      NULL, "not a CA number" },

    { "FR", "33", "00", "0", 1, "123456789", 9, 9,
      "no leading 0", "not an FR number" },

    { "ES", "34", "00", "", 0, "123456789", 9, 9,
      NULL, "not an ES number" },

    { "DE", "49", "00", "0", 1, "123456789", 6, 11,
      "no leading 0", "not a DE number" },

    { "PL", "48", "00", "", 0, "123456789", 9, 9,
      NULL, "not a PL number" },

    { "IN", "91", "00", "0", 1, "123456789", 10, 10,
      "no leading 0", "not an IN number" },

    { "AU", "61", "0011", "0", 1, "123456789", 9, 9,
      "no leading 0", "not an AU number" },

    { NULL, NULL, NULL, NULL, 0, NULL, 0, 0, NULL, NULL }
};


static const msgr_phone_country_t *
msgr_phone_find(const char *country)
{
    const msgr_phone_country_t  *c;

    if (country == NULL) {
        return NULL;
    }

    for (c = msgr_phone_table; c->country != NULL; c++) {
        if (strcmp(c->country, country) == 0) {
            return c;
        }
    }

    return NULL;
}


int
msgr_phone_country_known(const char *country)
{
    return msgr_phone_find(country) != NULL;
}


const char *
msgr_phone_country(size_t i)
{
    if (i >= sizeof(msgr_phone_table) / sizeof(msgr_phone_table[0]) - 1) {
        return NULL;
    }

    return msgr_phone_table[i].country;
}


static int
msgr_phone_prefix(const char *s, const char *prefix)
{
    size_t  n;

    n = strlen(prefix);

    return n > 0 && strncmp(s, prefix, n) == 0;
}


/*
 * Copies the digits of in to digits (NUL-terminated) and tells whether a
 * '+' came first: 0, or -1 with *why.
 */

static int
msgr_phone_digits(const char *in, char *digits, int *plus, const char **why)
{
    int          depth;
    size_t       n;
    const char  *p;

    n = 0;
    depth = 0;
    *plus = 0;

    for (p = in; *p != '\0'; p++) {

        if (*p >= '0' && *p <= '9') {
            if (n == MSGR_PHONE_MAX_DIGITS) {
                *why = "too long";
                return -1;
            }

            digits[n++] = *p;
            continue;
        }

        switch (*p) {

        case ' ':
        case '\t':
        case '-':
        case '.':
        case '/':
            continue;

        case '+':
            if (n > 0 || *plus) {
                *why = "+ is allowed only at the start";
                return -1;
            }

            *plus = 1;
            continue;

        case '(':
            if (++depth > 1) {
                *why = "unbalanced parentheses";
                return -1;
            }

            continue;

        case ')':
            if (--depth < 0) {
                *why = "unbalanced parentheses";
                return -1;
            }

            continue;
        }

        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
            if (*p == 'x' || *p == 'X' || strncasecmp(p, "ext", 3) == 0) {
                *why = "has an extension";

            } else {
                *why = "contains letters";
            }

            return -1;
        }

        *why = "contains a character that is not allowed";
        return -1;
    }

    if (depth != 0) {
        *why = "unbalanced parentheses";
        return -1;
    }

    if (n == 0) {
        *why = "no digits";
        return -1;
    }

    digits[n] = '\0';

    return 0;
}


/* Checks an NSN of c: 0, or -1 with *why */

static int
msgr_phone_nsn(const msgr_phone_country_t *c, const char *nsn,
    const char **why)
{
    size_t  len;

    len = strlen(nsn);

    if (len > 0 && strchr(c->first, nsn[0]) == NULL) {
        *why = c->foreign;
        return -1;
    }

    if (len < c->min) {
        *why = "too short";
        return -1;
    }

    if (len > c->max) {
        *why = "too long";
        return -1;
    }

    return 0;
}


int
msgr_phone_e164(const char *in, const char *country, char *out,
    size_t size, const char **why)
{
    int                          plus, n;
    size_t                       len;
    const char                  *nsn, *intl, *reason;
    const msgr_phone_country_t  *c, *t;
    char                         digits[MSGR_PHONE_MAX_DIGITS + 1];

    if (why == NULL) {
        why = &reason;
    }

    if (out != NULL && size > 0) {
        out[0] = '\0';
    }

    c = msgr_phone_find(country);

    if (c == NULL) {
        *why = "unknown country";
        return -1;
    }

    if (in == NULL) {
        *why = "no digits";
        return -1;
    }

    if (msgr_phone_digits(in, digits, &plus, why) != 0) {
        return -1;
    }

    intl = NULL;

    if (plus) {
        intl = digits;

    } else if (msgr_phone_prefix(digits, c->idd)) {
        intl = digits + strlen(c->idd);

    } else if (msgr_phone_prefix(digits, "00")) {
        intl = digits + 2;
    }

    if (intl != NULL) {

        if (intl[0] == '\0') {
            *why = "no digits after the international prefix";
            return -1;
        }

        if (intl[0] == '0') {
            *why = "not a valid country calling code";
            return -1;
        }

        /* the country it is written in first: +1 is both US and CA */

        t = msgr_phone_prefix(intl, c->code) ? c : NULL;

        for (c = msgr_phone_table; t == NULL && c->country != NULL; c++) {
            if (msgr_phone_prefix(intl, c->code)) {
                t = c;
            }
        }

        if (t == NULL) {
            len = strlen(intl);

            if (len < 8) {
                *why = "too short";
                return -1;
            }

            if (len > 15) {
                *why = "too long";
                return -1;
            }

            nsn = intl;

        } else {
            nsn = intl + strlen(t->code);

            if (msgr_phone_prefix(nsn, t->trunk)) {
                nsn += strlen(t->trunk);
            }

            if (msgr_phone_nsn(t, nsn, why) != 0) {
                return -1;
            }
        }

    } else {
        t = c;
        nsn = digits;

        if (msgr_phone_prefix(nsn, t->trunk)) {
            nsn += strlen(t->trunk);

        } else if (t->trunk_required) {
            *why = t->national;
            return -1;
        }

        if (msgr_phone_nsn(t, nsn, why) != 0) {
            return -1;
        }
    }

    if (out == NULL) {
        *why = "no room for the number";
        return -1;
    }

    n = snprintf(out, size, "+%s%s", t != NULL ? t->code : "", nsn);

    if (n < 0 || (size_t) n >= size) {
        if (size > 0) {
            out[0] = '\0';
        }

        *why = "no room for the number";
        return -1;
    }

    return 0;
}

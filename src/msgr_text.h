/*
 * msgr: text helpers (pure C).
 */

#ifndef _MSGR_TEXT_H_INCLUDED_
#define _MSGR_TEXT_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


/* the characters (code points) of valid UTF-8 text of len bytes */
size_t msgr_utf8_chars(const char *s, size_t len);

/*
 * 1 when s (len bytes) is well-formed UTF-8: shortest forms only, no
 * surrogates, nothing past U+10FFFF (NUL bytes are well-formed; callers
 * refuse them on their own)
 */
int msgr_utf8_valid(const char *s, size_t len);

/* 1 when s has spaces or control characters (C0, C1, DEL, no-break space) */
int msgr_text_has_space(const char *s, size_t len);

/* 1 when s has control characters (C0, DEL, C1) */
int msgr_text_has_control(const char *s, size_t len);

/* the bytes of white space (ASCII or no-break space) at s, or just before */
size_t msgr_text_space_at(const char *s, size_t len);
size_t msgr_text_space_before(const char *s, size_t len);

/* drops white space at both ends: *s moves on, *len shrinks */
void msgr_text_trim(const char **s, size_t *len);


/*
 * The one rule for text fields, in the API and the MIS sync alike.  Valid
 * UTF-8 (what jansson gives) is trimmed of white space at both ends
 * (*s and *len are updated), then checked: no NUL, no control characters
 * (a multi-line field allows line feeds, carriage returns and tabs), not
 * empty when required, at most max characters.  NULL when the text is
 * good, else the message to put beside the field's name; buf (size bytes,
 * 48 are plenty) holds messages that name the limit.
 */

#define MSGR_TEXT_REQUIRED   0x01
#define MSGR_TEXT_MULTILINE  0x02

const char *msgr_text_check(const char **s, size_t *len, size_t max,
    unsigned flags, char *buf, size_t size);

#define MSGR_TEXT_NUL        "must not contain NUL characters"
#define MSGR_TEXT_CONTROL    "must not contain control characters"
#define MSGR_TEXT_CONTROL_ML "must not contain control characters other " \
                             "than line breaks and tabs"
#define MSGR_TEXT_EMPTY      "must not be empty"
#define MSGR_TEXT_UTF8       "must be valid UTF-8"


/*
 * 1 when s (len bytes, trimmed) is a language tag: 2 to 8 letters and
 * hyphens, starting with two letters, no hyphen at the end or twice in a
 * row ("en", "pt-BR")
 */
int msgr_text_language(const char *s, size_t len);

#define MSGR_TEXT_LANGUAGE   "must be a language tag of 2 to 8 letters and " \
                             "-, such as en or pt-BR"

/*
 * 1 when s (len bytes) is a plausible email address: one @, a local part of
 * 1 to 64 characters, a domain with a dot and no empty label, no spaces
 */
int msgr_email_valid(const char *s, size_t len);

/*
 * Compares valid UTF-8 texts without case (Latin, Greek and Cyrillic
 * letters): <0, 0, >0
 */
int msgr_utf8_casecmp(const char *a, size_t alen, const char *b,
    size_t blen);


/* lists of names */

/* the index of s (len bytes) in choices (NULL-ended), or -1 */
int msgr_text_choice(const char *const *choices, const char *s, size_t len);

/*
 * Appends "a, b, c" to the text in buf (size bytes, cut short when it does
 * not fit): the strings of choices (NULL-ended) or, when choices is NULL,
 * the integers of ints (ended by -1).
 */
void msgr_text_join(char *buf, size_t size, const char *const *choices,
    const int64_t *ints);


/* dates */

#define MSGR_DATE_OK      0
#define MSGR_DATE_FORMAT  1   /* not "YYYY-MM-DD" */
#define MSGR_DATE_DAY     2   /* no such day (year 0000 included) */

/*
 * Reads a calendar date "YYYY-MM-DD" of len bytes: MSGR_DATE_OK and, when
 * days is not NULL, *days set to the days since 1970-01-01; otherwise
 * MSGR_DATE_FORMAT or MSGR_DATE_DAY.
 */
int msgr_date_parse(const char *s, size_t len, long *days);

/*
 * Reads an RFC 3339 timestamp, "2026-12-02T15:04:05Z", with or without
 * fractions of a second (dropped), with Z or an offset ("+01:00"): 0 and,
 * when t is not NULL, *t set to the seconds since 1970-01-01T00:00:00Z;
 * -1 otherwise.
 */
int msgr_timestamp_parse(const char *s, size_t len, int64_t *t);


#endif /* _MSGR_TEXT_H_INCLUDED_ */

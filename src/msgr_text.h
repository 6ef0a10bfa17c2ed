/*
 * msgr: text helpers (pure C).
 */

#ifndef _MSGR_TEXT_H_INCLUDED_
#define _MSGR_TEXT_H_INCLUDED_


#include <stddef.h>


/* the characters (code points) of valid UTF-8 text of len bytes */
size_t msgr_utf8_chars(const char *s, size_t len);

/* 1 when s has spaces or control characters (C0, C1, DEL, no-break space) */
int msgr_text_has_space(const char *s, size_t len);

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


#endif /* _MSGR_TEXT_H_INCLUDED_ */

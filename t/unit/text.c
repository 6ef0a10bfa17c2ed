/*
 * Unit tests of src/msgr_text.c, printing TAP.
 */

#include <stdio.h>
#include <string.h>

#include "msgr_text.h"
#include "msgr_tap.h"


static int
msgr_test_same(const char *a, const char *b)
{
    return msgr_utf8_casecmp(a, strlen(a), b, strlen(b)) == 0;
}


/* the message of msgr_text_check, "" when good; *out the trimmed text */

static char  msgr_test_out[256];

static const char *
msgr_test_check(const char *text, size_t len, size_t max, unsigned flags)
{
    char         buf[64];
    size_t       n;
    const char  *s, *why;

    s = text;
    n = len;

    why = msgr_text_check(&s, &n, max, flags, buf, sizeof(buf));

    if (why != NULL) {
        snprintf(msgr_test_out, sizeof(msgr_test_out), "%s", why);
        return msgr_test_out;
    }

    snprintf(msgr_test_out, sizeof(msgr_test_out), "=%.*s", (int) n, s);
    return msgr_test_out;
}


static int
msgr_test_is(const char *got, const char *want)
{
    if (strcmp(got, want) == 0) {
        return 1;
    }

    printf("# got \"%s\", want \"%s\"\n", got, want);
    return 0;
}


#define MSGR_T(text, max, flags)                                             \
    msgr_test_check(text, sizeof(text) - 1, max, flags)

#define MSGR_REQ   MSGR_TEXT_REQUIRED
#define MSGR_ML    (MSGR_TEXT_REQUIRED|MSGR_TEXT_MULTILINE)


/* seconds since the epoch, or -1 when refused */

static long long
msgr_test_time(const char *s)
{
    int64_t  t;

    if (msgr_timestamp_parse(s, strlen(s), &t) != 0) {
        return -1;
    }

    return (long long) t;
}


int
main(void)
{
    printf("1..73\n");

    msgr_test_ok(msgr_test_same("Lunch", "LUNCH"), "ASCII without case");
    msgr_test_ok(!msgr_test_same("Lunch", "Lunches"), "a longer text differs");
    msgr_test_ok(!msgr_test_same("Lunches", "Lunch"), "a shorter text differs");
    msgr_test_ok(msgr_test_same("\xc3\x89" "t" "\xc3\xa9",
                                "\xc3\xa9" "t" "\xc3\xa9"),
                 "an accented capital (Latin-1)");
    msgr_test_ok(msgr_test_same("\xc5\x81\xc3\xb3" "d" "\xc5\xba",
                                "\xc5\x82\xc3\xb3" "d" "\xc5\xba"),
                 "Polish letters (Latin Extended-A, even upper)");
    msgr_test_ok(msgr_test_same("\xc5\xbb", "\xc5\xbc"),
                 "Latin Extended-A, odd upper");
    msgr_test_ok(msgr_test_same("\xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91",
                                "\xce\xb1\xce\xb8\xce\xb7\xce\xbd\xce\xb1"),
                 "Greek");
    msgr_test_ok(msgr_test_same("\xd0\x9c\xd0\x90\xd0\xa8\xd0\x90",
                                "\xd0\xbc\xd0\xb0\xd1\x88\xd0\xb0"),
                 "Cyrillic");
    msgr_test_ok(msgr_test_same("\xd0\x81", "\xd1\x91"), "Cyrillic Io");
    msgr_test_ok(!msgr_test_same("\xc3\x97", "\xc3\xb7"),
                 "the multiplication sign is not a letter");
    msgr_test_ok(!msgr_test_same("e", "\xc3\xa9"), "accents matter");

    msgr_test_ok(msgr_utf8_chars("\xc3\xa9" "t" "\xc3\xa9", 5) == 3,
                 "characters, not bytes");

    msgr_test_ok(msgr_email_valid("jane@example.org", 16),
                 "an email address");
    msgr_test_ok(!msgr_email_valid("jane@@example.org", 17), "two @");
    msgr_test_ok(!msgr_email_valid("jane @example.org", 17), "a space");
    msgr_test_ok(!msgr_email_valid("jane@example..org", 17),
                 "an empty domain label");

    /* UTF-8 */

    msgr_test_ok(msgr_utf8_valid("caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80",
                                 14), "valid UTF-8");
    msgr_test_ok(msgr_utf8_valid("", 0), "the empty text is valid UTF-8");
    msgr_test_ok(msgr_utf8_valid("a\0b", 3), "NUL is well-formed");
    msgr_test_ok(!msgr_utf8_valid("\xff", 1), "0xff is not UTF-8");
    msgr_test_ok(!msgr_utf8_valid("\xc3", 1), "a cut two-byte character");
    msgr_test_ok(!msgr_utf8_valid("\xe6\x97", 2),
                 "a cut three-byte character");
    msgr_test_ok(!msgr_utf8_valid("\xc3\x28", 2), "a broken sequence");
    msgr_test_ok(!msgr_utf8_valid("\xc0\xaf", 2), "an overlong slash");
    msgr_test_ok(!msgr_utf8_valid("\xe0\x80\xaf", 3),
                 "an overlong three-byte form");
    msgr_test_ok(!msgr_utf8_valid("\xed\xa0\x80", 3), "a surrogate");
    msgr_test_ok(!msgr_utf8_valid("\xf4\x90\x80\x80", 4),
                 "past U+10FFFF");
    msgr_test_ok(!msgr_utf8_valid("\x80", 1), "a lone continuation byte");

    /* the one rule: single-line fields */

    msgr_test_ok(msgr_test_is(MSGR_T("  Jane \t", 100, MSGR_REQ), "=Jane"),
                 "trimmed of spaces and tabs");
    msgr_test_ok(msgr_test_is(MSGR_T("\xc2\xa0Jane\xc2\xa0\n", 100,
                                     MSGR_REQ), "=Jane"),
                 "trimmed of no-break spaces and line breaks");
    msgr_test_ok(msgr_test_is(MSGR_T("Mary Ann", 100, MSGR_REQ),
                              "=Mary Ann"), "a space inside is kept");
    msgr_test_ok(msgr_test_is(MSGR_T("Line1\nLine2", 100, MSGR_REQ),
                              MSGR_TEXT_CONTROL), "a newline inside");
    msgr_test_ok(msgr_test_is(MSGR_T("a\tb", 100, MSGR_REQ),
                              MSGR_TEXT_CONTROL), "a tab inside");
    msgr_test_ok(msgr_test_is(MSGR_T("bell\x07", 100, MSGR_REQ),
                              MSGR_TEXT_CONTROL), "a bell");
    msgr_test_ok(msgr_test_is(MSGR_T("del\x7fx", 100, MSGR_REQ),
                              MSGR_TEXT_CONTROL), "DEL");
    msgr_test_ok(msgr_test_is(MSGR_T("c1\xc2\x85x", 100, MSGR_REQ),
                              MSGR_TEXT_CONTROL), "a C1 control (NEL)");
    msgr_test_ok(msgr_test_is(MSGR_T("a\0b", 100, MSGR_REQ), MSGR_TEXT_NUL),
                 "NUL");
    msgr_test_ok(msgr_test_is(MSGR_T("   ", 100, MSGR_REQ), MSGR_TEXT_EMPTY),
                 "blank where required");
    msgr_test_ok(msgr_test_is(MSGR_T("", 100, MSGR_REQ), MSGR_TEXT_EMPTY),
                 "empty where required");
    msgr_test_ok(msgr_test_is(MSGR_T("  ", 50, 0), "="),
                 "blank where optional is empty");
    msgr_test_ok(msgr_test_is(MSGR_T("abc", 3, MSGR_REQ), "=abc"),
                 "at the limit");
    msgr_test_ok(msgr_test_is(MSGR_T("abcd", 3, MSGR_REQ),
                              "must be at most 3 characters"),
                 "past the limit");
    msgr_test_ok(msgr_test_is(MSGR_T("\xc3\xa9\xc3\xa9\xc3\xa9", 3,
                                     MSGR_REQ), "=\xc3\xa9\xc3\xa9\xc3\xa9"),
                 "the limit counts characters, not bytes");
    msgr_test_ok(msgr_test_is(MSGR_T(" abc ", 3, MSGR_REQ), "=abc"),
                 "the limit counts after trimming");
    msgr_test_ok(msgr_test_is(MSGR_T("caf\xc3\xa9 \xc2\xa9", 10, MSGR_REQ),
                              "=caf\xc3\xa9 \xc2\xa9"),
                 "Latin-1 letters and signs are not controls");

    /* multi-line fields */

    msgr_test_ok(msgr_test_is(MSGR_T("\n Hello\r\n\tthere \n", 100, MSGR_ML),
                              "=Hello\r\n\tthere"),
                 "multi-line: line breaks and tabs inside, trimmed");
    msgr_test_ok(msgr_test_is(MSGR_T("a\x07" "b", 100, MSGR_ML),
                              MSGR_TEXT_CONTROL_ML), "multi-line: a bell");
    msgr_test_ok(msgr_test_is(MSGR_T("a\x7f", 100, MSGR_ML),
                              MSGR_TEXT_CONTROL_ML), "multi-line: DEL");
    msgr_test_ok(msgr_test_is(MSGR_T("a\xc2\x9b" "b", 100, MSGR_ML),
                              MSGR_TEXT_CONTROL_ML),
                 "multi-line: a C1 control");
    msgr_test_ok(msgr_test_is(MSGR_T(" \n\t ", 100, MSGR_ML), MSGR_TEXT_EMPTY),
                 "multi-line: white space only");

    /* language tags, one rule */

    msgr_test_ok(msgr_text_language("en", 2), "language: en");
    msgr_test_ok(msgr_text_language("pt-BR", 5), "language: pt-BR");
    msgr_test_ok(msgr_text_language("zh-Hant", 7), "language: zh-Hant");
    msgr_test_ok(!msgr_text_language("-en", 3), "language: a leading -");
    msgr_test_ok(!msgr_text_language("e-n", 3),
                 "language: a - after one letter");
    msgr_test_ok(!msgr_text_language("en-", 3), "language: a trailing -");
    msgr_test_ok(!msgr_text_language("en--gb", 6), "language: --");
    msgr_test_ok(!msgr_text_language("e", 1), "language: one letter");
    msgr_test_ok(!msgr_text_language("abcdefghi", 9),
                 "language: 9 characters");
    msgr_test_ok(!msgr_text_language("en_GB", 5), "language: an underscore");

    /* RFC 3339 timestamps */

    msgr_test_ok(msgr_test_time("1970-01-01T00:00:00Z") == 0,
                 "timestamp: the epoch");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05Z") == 1796223845,
                 "timestamp: Z");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05.123456Z")
                 == 1796223845, "timestamp: fractions dropped");
    msgr_test_ok(msgr_test_time("2026-12-02T16:04:05+01:00") == 1796223845,
                 "timestamp: an offset east");
    msgr_test_ok(msgr_test_time("2026-12-02T10:34:05-04:30") == 1796223845,
                 "timestamp: an offset west");
    msgr_test_ok(msgr_test_time("2024-02-29T00:00:00z") == 1709164800,
                 "timestamp: a leap day, z");
    msgr_test_ok(msgr_test_time("2026-12-02 15:04:05Z") == -1,
                 "timestamp: a space for T");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05") == -1,
                 "timestamp: no zone");
    msgr_test_ok(msgr_test_time("2026-02-30T15:04:05Z") == -1,
                 "timestamp: no such day");
    msgr_test_ok(msgr_test_time("2026-12-02T24:00:00Z") == -1,
                 "timestamp: hour 24");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05.Z") == -1,
                 "timestamp: a dot without digits");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05+0100") == -1,
                 "timestamp: an offset without a colon");
    msgr_test_ok(msgr_test_time("2026-12-02T15:04:05Zjunk") == -1,
                 "timestamp: something after the zone");

    return msgr_test_end(73);
}

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


int
main(void)
{
    printf("1..16\n");

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

    return msgr_test_end(16);
}

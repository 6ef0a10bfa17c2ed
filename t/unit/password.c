/*
 * Unit tests of src/msgr_password.c: each strength level accepts and
 * refuses the right passwords and names the rule that failed; the
 * history depths.  Prints TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_password.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  36


typedef struct {
    int          n;
    char         messages[512];
} msgr_test_report_t;


static void
msgr_test_report(void *data, const char *message)
{
    msgr_test_report_t *rep = data;

    rep->n++;
    strncat(rep->messages, message,
            sizeof(rep->messages) - strlen(rep->messages) - 2);
    strcat(rep->messages, "|");
}


/* ok when pw at level breaks exactly the rules whose messages hold want */

static void
msgr_test_check(const char *level, const char *pw, const char *want,
    const char *desc)
{
    int                 n, ok;
    char                line[256];
    const char         *w, *bar;
    msgr_test_report_t  rep;

    memset(&rep, 0, sizeof(rep));

    n = msgr_password_check(pw, strlen(pw), msgr_password_strength(level),
                            "Alice Smith", "alice.smith@example.org",
                            msgr_test_report, &rep);

    ok = (n == rep.n);

    if (want == NULL) {
        ok = ok && n == 0;

    } else {
        /* want: the fragments each message holds, "|"-separated, in order */
        for (w = want; ok && *w; w = *bar ? bar + 1 : bar) {
            bar = strchr(w, '|');
            bar = bar ? bar : w + strlen(w);
            snprintf(line, sizeof(line), "%.*s", (int) (bar - w), w);
            ok = strstr(rep.messages, line) != NULL;
        }

        ok = ok && n > 0;
    }

    if (!msgr_test_ok(ok, desc)) {
        printf("# %s %s: %d rules broken: %s\n", level, pw, n,
               rep.messages);
    }
}


int
main(void)
{
    printf("1..%d\n", MSGR_TEST_PLAN);

    /* any: 8 characters */
    msgr_test_check("any", "abcdefgh", NULL, "any: 8 letters");
    msgr_test_check("any", "abcdefg", "at least 8 characters",
                    "any: 7 letters are too short");
    msgr_test_check("any", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "at least 8",
                    "any: characters, not bytes, are counted");
    msgr_test_check("any", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                    "\xc3\xa9\xc3\xa9", NULL, "any: 8 accented letters");
    msgr_test_check("any", "password", NULL,
                    "any: a dictionary word is allowed");
    msgr_test_check("any", "abc\tdefgh", "control characters",
                    "any: a tab is refused");

    /* medium: 8, both cases and a digit */
    msgr_test_check("medium", "Password1", NULL, "medium: Password1");
    msgr_test_check("medium", "password1", "upper-case letter",
                    "medium: no upper case");
    msgr_test_check("medium", "PASSWORD1", "lower-case letter",
                    "medium: no lower case");
    msgr_test_check("medium", "Password", "a digit", "medium: no digit");
    msgr_test_check("medium", "Pass1", "at least 8 characters",
                    "medium: too short");
    msgr_test_check("medium", "abc", "at least 8|upper-case|digit",
                    "medium: every broken rule is named");

    /* strong: 10, both cases, a digit and a symbol */
    msgr_test_check("strong", "Password1!", NULL, "strong: Password1!");
    msgr_test_check("strong", "Password12", "a symbol", "strong: no symbol");
    msgr_test_check("strong", "Passw0rd!", "at least 10 characters",
                    "strong: 9 characters are too short");
    msgr_test_check("strong", "password1!", "upper-case",
                    "strong: no upper case");
    msgr_test_check("strong", "Pass word 1", NULL,
                    "strong: a space is a symbol");

    /* very_strong: 12, all four kinds, not found by a dictionary attack */
    msgr_test_check("very_strong", "Gz7!tR2@pL9#", NULL,
                    "very_strong: Gz7!tR2@pL9#");
    msgr_test_check("very_strong", "hV8%nB3^kD6&zQ", NULL,
                    "very_strong: hV8%nB3^kD6&zQ");
    msgr_test_check("very_strong", "Password123!", "dictionary attack",
                    "very_strong: Password123! is a dictionary word");
    msgr_test_check("very_strong", "Sunshine2024!!", "dictionary attack",
                    "very_strong: a word and a year");
    msgr_test_check("very_strong", "Qw3rty!Qw3rty!", "dictionary attack",
                    "very_strong: a keyboard pattern repeated");
    msgr_test_check("very_strong", "Alice.Smith2026!", "dictionary attack",
                    "very_strong: the user's own name");
    msgr_test_check("very_strong", "Xsmithalice#9Y", "dictionary attack",
                    "very_strong: the parts of the user's name");
    msgr_test_check("very_strong", "Gz7!tR2@pL9", "at least 12",
                    "very_strong: 11 characters are too short");
    msgr_test_check("very_strong", "gz7!tr2@pl9#x", "upper-case",
                    "very_strong: no upper case");
    msgr_test_check("very_strong", "Gz7xtR2ypL9zQ", "a symbol",
                    "very_strong: no symbol");

    /* the longest */
    msgr_test_check("any", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                    "aaaaaaaaaaaaaaaaaaaaa", "at most 128",
                    "any: 129 characters are too long");

    /* the level names, and history */
    msgr_test_ok(msgr_password_strength("any") == MSGR_PASSWORD_ANY,
                 "strength: any");
    msgr_test_ok(msgr_password_strength("very_strong")
                 == MSGR_PASSWORD_VERY_STRONG, "strength: very_strong");
    msgr_test_ok(msgr_password_strength("weak") == -1,
                 "strength: an unknown level");
    msgr_test_ok(msgr_password_strength(NULL) == -1, "strength: NULL");
    msgr_test_ok(msgr_password_history_depth("previous") == 1,
                 "history: previous is the current password");
    msgr_test_ok(msgr_password_history_depth("last_5") == 5,
                 "history: last_5 is five passwords");
    msgr_test_ok(msgr_password_history_depth(NULL) == 1,
                 "history: none given is previous");

    {
        msgr_test_report_t  rep;

        memset(&rep, 0, sizeof(rep));
        msgr_test_ok(msgr_password_check("Gz7!tR2@pL9#", 12,
                                         MSGR_PASSWORD_VERY_STRONG, NULL,
                                         NULL, msgr_test_report, &rep) == 0,
                     "very_strong: no name and no email");
    }

    return msgr_test_end(MSGR_TEST_PLAN);
}

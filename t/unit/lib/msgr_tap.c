/*
 * msgr unit tests: the TAP they print.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_tap.h"


int  msgr_test_n;
int  msgr_test_failed;


int
msgr_test_ok(int ok, const char *desc)
{
    msgr_test_n++;

    printf("%sok %d - %s\n", ok ? "" : "not ", msgr_test_n, desc);

    if (!ok) {
        msgr_test_failed++;
    }

    return ok;
}


void
msgr_test_diag(const char *what, json_t *v)
{
    char  *s;

    s = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    printf("# %s: %s\n", what, s != NULL ? s : "NULL");
    free(s);
}


int
msgr_test_end(int plan)
{
    if (msgr_test_n != plan) {
        printf("# planned %d tests but ran %d\n", plan, msgr_test_n);
        return 1;
    }

    return msgr_test_failed ? 1 : 0;
}


json_t *
msgr_test_json(const char *text)
{
    char          *s, *p;
    json_t        *v;
    json_error_t   err;

    s = strdup(text);
    if (s == NULL) {
        printf("Bail out! out of memory\n");
        exit(255);
    }

    for (p = s; *p != '\0'; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }

    v = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL) {
        printf("Bail out! bad JSON in the test: %s: %s\n", s, err.text);
        exit(255);
    }

    free(s);

    return v;
}

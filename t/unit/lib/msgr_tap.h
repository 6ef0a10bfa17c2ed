/*
 * msgr unit tests: the TAP they print, shared by every test in t/unit.
 */

#ifndef _MSGR_TAP_H_INCLUDED_
#define _MSGR_TAP_H_INCLUDED_


#include <jansson.h>


extern int  msgr_test_n;
extern int  msgr_test_failed;


/* "ok N - desc" or "not ok N - desc"; returns ok */
int msgr_test_ok(int ok, const char *desc);

/* "# what: <v as JSON>" */
void msgr_test_diag(const char *what, json_t *v);

/*
 * JSON text written with ' for " (any value, NUL escapes allowed): a new
 * reference; bad JSON bails out of the test
 */
json_t *msgr_test_json(const char *text);

/* the exit status: 1 on a failure or when plan tests did not all run */
int msgr_test_end(int plan);


#endif /* _MSGR_TAP_H_INCLUDED_ */

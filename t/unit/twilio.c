/*
 * Unit tests of src/msgr_twilio.c: form bodies with their escapes,
 * Twilio's signature (the example of Twilio's "Webhooks security" page,
 * whose expected value is written out here), the constant-time check
 * against a changed URL, parameter, token or signature, and TwiML text.
 * Prints TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_twilio.h"
#include "msgr_tap.h"


#define MSGR_TEST_URL  "https://mycompany.com/myapp.php?foo=1&bar=2"
#define MSGR_TEST_SIG  "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

/* the parameters out of order and escaped, as a form may carry them */
#define MSGR_TEST_BODY  "To=%2B18005551212&Digits=1234&Caller=%2B12349013030"\
                        "&From=%2b12349013030&CallSid=CA1234567890ABCDE"


static void
msgr_test_form(void)
{
    size_t              len;
    const char         *v;
    msgr_twilio_form_t  f;

    msgr_test_ok(msgr_twilio_form_parse("a=1&b=x%20y+z&&c&d=%26%3d", 25,
                                        &f) == 0,
                 "a form is parsed");
    msgr_test_ok(f.n == 4, "empty pieces are skipped: four parameters");

    v = msgr_twilio_form_get(&f, "b", &len);
    msgr_test_ok(v && strcmp(v, "x y z") == 0 && len == 5,
                 "%20 and + are spaces");

    v = msgr_twilio_form_get(&f, "c", &len);
    msgr_test_ok(v && len == 0, "a name without = has an empty value");

    v = msgr_twilio_form_get(&f, "d", NULL);
    msgr_test_ok(v && strcmp(v, "&=") == 0, "escaped & and = are data");

    msgr_test_ok(msgr_twilio_form_get(&f, "e", NULL) == NULL,
                 "a missing name is NULL");
    msgr_twilio_form_free(&f);

    msgr_test_ok(msgr_twilio_form_parse("a=%2", 4, &f) == -1,
                 "a cut %-escape is not a form");
    msgr_test_ok(msgr_twilio_form_parse("a=%zz", 5, &f) == -1,
                 "a %-escape of non-hex is not a form");

    msgr_test_ok(msgr_twilio_form_parse("Body=a%00b", 10, &f) == 0
                 && f.params[0].value_len == 3,
                 "a NUL keeps its length");
    msgr_twilio_form_free(&f);

    msgr_test_ok(msgr_twilio_form_parse("", 0, &f) == 0 && f.n == 0,
                 "an empty body has no parameters");
    msgr_twilio_form_free(&f);
}


static void
msgr_test_signature(void)
{
    char                sig[MSGR_TWILIO_SIGNATURE_SIZE];
    msgr_twilio_form_t  f;

    if (msgr_twilio_form_parse(MSGR_TEST_BODY, strlen(MSGR_TEST_BODY), &f)
        != 0)
    {
        msgr_test_ok(0, "the example's form is parsed");
        return;
    }

    msgr_test_ok(msgr_twilio_signature("12345", 5, MSGR_TEST_URL,
                                       strlen(MSGR_TEST_URL), &f, sig,
                                       sizeof(sig)) == 0
                 && strcmp(sig, MSGR_TEST_SIG) == 0,
                 "Twilio's example: its signature, parameters sorted");

    msgr_test_ok(msgr_twilio_signature("12345", 5, MSGR_TEST_URL,
                                       strlen(MSGR_TEST_URL), &f, sig, 20)
                 == -1,
                 "a buffer too small is refused");

    msgr_test_ok(msgr_twilio_verify("12345", 5, MSGR_TEST_URL,
                                    strlen(MSGR_TEST_URL), &f,
                                    MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)),
                 "the right signature is verified");

    msgr_test_ok(!msgr_twilio_verify("12346", 5, MSGR_TEST_URL,
                                     strlen(MSGR_TEST_URL), &f,
                                     MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)),
                 "another token: refused");

    msgr_test_ok(!msgr_twilio_verify("12345", 5, MSGR_TEST_URL,
                                     strlen(MSGR_TEST_URL) - 1, &f,
                                     MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)),
                 "another URL: refused");

    msgr_test_ok(!msgr_twilio_verify("12345", 5, MSGR_TEST_URL,
                                     strlen(MSGR_TEST_URL), &f,
                                     MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)
                                     - 1),
                 "a cut signature: refused");

    msgr_test_ok(!msgr_twilio_verify("", 0, MSGR_TEST_URL,
                                     strlen(MSGR_TEST_URL), &f,
                                     MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)),
                 "no token: nothing is verified");

    free(f.params[1].value);
    f.params[1].value = strdup("1235");

    msgr_test_ok(!msgr_twilio_verify("12345", 5, MSGR_TEST_URL,
                                     strlen(MSGR_TEST_URL), &f,
                                     MSGR_TEST_SIG, strlen(MSGR_TEST_SIG)),
                 "a changed parameter: refused");

    msgr_twilio_form_free(&f);
}


static void
msgr_test_xml(void)
{
    char  *s;

    s = msgr_twilio_xml_escape("a<b>&\"c'", 8);
    msgr_test_ok(s && strcmp(s, "a&lt;b&gt;&amp;&quot;c&apos;") == 0,
                 "TwiML text is escaped");
    free(s);

    s = msgr_twilio_xml_escape("", 0);
    msgr_test_ok(s && s[0] == '\0', "an empty text is an empty string");
    free(s);
}


int
main(void)
{
    printf("1..20\n");

    msgr_test_form();
    msgr_test_signature();
    msgr_test_xml();

    return msgr_test_end(20);
}

/*
 * Fuzz target: a phone number (the MIS sync's contacts and staff, msgrctl),
 * as a number of one of the known countries (or of an unknown one), into a
 * buffer of exactly MSGR_PHONE_E164_SIZE bytes.  Properties: a number
 * given is "+" and at most 15 digits, and normalises to itself.
 */

#include <stdlib.h>
#include <string.h>

#include "msgr_fuzz.h"
#include "msgr_phone.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int          rc;
    char        *in, *out, *again;
    size_t       n, i, len;
    uint32_t     mix;
    const char  *country, *why;

    in = msgr_fuzz_string(data, size);
    out = malloc(MSGR_PHONE_E164_SIZE);
    again = malloc(MSGR_PHONE_E164_SIZE);

    if (in == NULL || out == NULL || again == NULL) {
        goto done;
    }

    for (n = 0; msgr_phone_country(n) != NULL; n++) { /* void */ }

    mix = msgr_fuzz_mix(data, size);
    i = mix % (n + 2);
    country = i < n ? msgr_phone_country(i) : (i == n ? "ZZ" : "");

    why = NULL;
    rc = msgr_phone_e164(in, country, out, MSGR_PHONE_E164_SIZE, &why);

    if (rc == 0) {
        len = strlen(out);
        msgr_fuzz_assert(out[0] == '+' && len >= 2 && len <= 16);
        msgr_fuzz_assert(strspn(out + 1, "0123456789") == len - 1);

        rc = msgr_phone_e164(out, country, again, MSGR_PHONE_E164_SIZE,
                             &why);
        msgr_fuzz_assert(rc == 0 && strcmp(out, again) == 0);

    } else {
        msgr_fuzz_assert(rc == -1 && why != NULL && out[0] == '\0');
    }

done:

    free(in);
    free(out);
    free(again);

    return 0;
}

/*
 * Fuzz target: a MIS snapshot (POST /v1/mis/sync), the JSON a school's MIS
 * sends.  Properties: exactly the outputs the outcome promises are set,
 * and normalising the same snapshot twice gives the same result.
 */

#include "msgr_fuzz.h"
#include "msgr_mis.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int      rc;
    json_t  *in, *norm, *warnings, *errors, *again;

    in = msgr_fuzz_json(data, size);
    if (in == NULL) {
        return 0;
    }

    rc = msgr_mis_normalise(in, &norm, &warnings, &errors);

    switch (rc) {

    case MSGR_MIS_OK:
        msgr_fuzz_assert(norm && json_is_array(warnings) && !errors);

        again = NULL;
        rc = msgr_mis_normalise(in, &again, NULL, NULL);
        msgr_fuzz_assert(rc == MSGR_MIS_OK || rc == MSGR_MIS_ERROR);
        if (rc == MSGR_MIS_OK) {
            msgr_fuzz_assert(json_equal(again, norm));
        }
        json_decref(again);
        break;

    case MSGR_MIS_INVALID:
        msgr_fuzz_assert(!norm && !warnings);
        msgr_fuzz_assert(json_is_array(errors)
                         && json_array_size(errors) > 0);
        break;

    default:
        msgr_fuzz_assert(rc == MSGR_MIS_ERROR);
        msgr_fuzz_assert(!norm && !warnings && !errors);
    }

    json_decref(norm);
    json_decref(warnings);
    json_decref(errors);
    json_decref(in);

    return 0;
}

/*
 * Fuzz target: a settings merge patch (PATCH /v1/settings and
 * /v1/settings/<tab>, msgrctl school settings).
 *
 * The input is the patch's JSON, or [stored, patch]: the stored overrides
 * come from the database, but a row written by an older msgr is input
 * too.  The tab patched and the caller's capabilities come from
 * msgr_fuzz_mix().  Properties: every output is set exactly as the
 * outcome says, and the new overrides resolve to the resolved object
 * returned.
 */

#include <stdlib.h>

#include "msgr_fuzz.h"
#include "msgr_settings.h"


static const char *const  msgr_fuzz_tabs[] = {
    NULL, "sending", "contacts", "security", "school", "xpressions", "mis",
    "nonesuch"
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                    rc;
    json_t                *in, *stored, *patch, *new_stored, *changes,
                          *resolved, *errors, *again;
    uint32_t               mix;
    const char            *tab;
    msgr_settings_caps_t   caps;

    in = msgr_fuzz_json(data, size);
    if (in == NULL) {
        return 0;
    }

    mix = msgr_fuzz_mix(data, size);

    if (json_is_array(in) && json_array_size(in) == 2) {
        stored = json_array_get(in, 0);
        patch = json_array_get(in, 1);

    } else {
        stored = NULL;
        patch = in;
    }

    tab = msgr_fuzz_tabs[mix % 8];
    caps.enhanced = (mix >> 3) & 1;
    caps.operator = (mix >> 4) & 1;

    rc = msgr_settings_patch(stored, "Fuzz School", tab, patch, caps,
                             &new_stored, &changes, &resolved, &errors);

    switch (rc) {

    case MSGR_SETTINGS_OK:
        msgr_fuzz_assert(new_stored && changes && resolved && !errors);
        msgr_fuzz_assert(json_is_array(changes));

        again = msgr_settings_resolve(new_stored, "Fuzz School");
        msgr_fuzz_assert(again != NULL);
        msgr_fuzz_assert(json_equal(again, resolved));
        json_decref(again);
        break;

    case MSGR_SETTINGS_INVALID:
    case MSGR_SETTINGS_FORBIDDEN:
        msgr_fuzz_assert(!new_stored && !changes && !resolved);
        msgr_fuzz_assert(json_is_array(errors)
                         && json_array_size(errors) > 0);
        break;

    default:
        msgr_fuzz_assert(rc == MSGR_SETTINGS_ERROR);
    }

    json_decref(new_stored);
    json_decref(changes);
    json_decref(resolved);
    json_decref(errors);

    /* what a stored row the settings table no longer knows resolves to */
    resolved = msgr_settings_resolve(stored ? stored : patch, "Fuzz School");
    json_decref(resolved);

    json_decref(in);

    return 0;
}

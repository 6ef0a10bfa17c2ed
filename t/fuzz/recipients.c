/*
 * Fuzz target: the records of a send (docs/recipients.md) resolved into
 * recipients, for each send_to and each combination of the settings'
 * rules (from msgr_fuzz_mix()), then masked as a key that sees staff
 * masked sees them.  Property: a result has its four parts.
 */

#include <stdlib.h>

#include "msgr_fuzz.h"
#include "msgr_recipients.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *name;
    size_t                    i;
    json_t                   *in, *res, *e;
    uint32_t                  mix;
    const char               *why;
    msgr_recipient_rules_t    rules;

    in = msgr_fuzz_json(data, size);
    if (in == NULL) {
        return 0;
    }

    mix = msgr_fuzz_mix(data, size);

    msgr_recipient_rules_from_settings(NULL, &rules);
    rules.next_available_if_no_primary = mix & 1;
    rules.show_registration_in_names = (mix >> 1) & 1;
    rules.teachers_in_class_groups = (mix >> 2) & 1;
    rules.guest_students = (mix >> 3) & 1;
    rules.pre_admissions = (mix >> 4) & 1;
    rules.leavers_included = (mix >> 5) & 1;
    rules.leavers_persistence_days = (mix >> 6) % 400;
    rules.voice_all_numbers = (mix >> 15) & 1;
    rules.mask_staff_details = (mix >> 16) & 1;

    why = NULL;
    res = msgr_recipients_resolve(in, (msgr_send_to_e) ((mix >> 17) % 4),
                                  &rules, "2026-04-10", &why);

    if (res != NULL) {
        msgr_fuzz_assert(json_is_array(json_object_get(res, "recipients")));
        msgr_fuzz_assert(json_is_array(json_object_get(res, "unreachable")));
        msgr_fuzz_assert(json_is_array(json_object_get(res, "excluded")));
        msgr_fuzz_assert(json_is_object(json_object_get(res, "counts")));

        json_array_foreach(json_object_get(res, "recipients"), i, e) {
            (void) msgr_recipients_mask_entry(e);
        }

        json_decref(res);

    } else {
        msgr_fuzz_assert(why != NULL);
    }

    /* a staff record of any shape, masked for display */
    if (json_is_object(in)) {
        (void) msgr_staff_mask(in);
    }

    if (json_is_string(in)) {
        name = msgr_mask_detail(json_string_value(in));
        free(name);
    }

    json_decref(in);

    return 0;
}

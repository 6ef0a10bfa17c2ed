/*
 * Fuzz target: composing a send or a preview from {"message": ..., "data":
 * ..., "settings": ...}: the message as POST /v1/messages takes it, the
 * records of its send and the school's stored settings (resolved first,
 * as the module does).  send_to and the flags come from msgr_fuzz_mix().
 * Property: rc is 0 with a result, 1 with errors, or -1 with a reason.
 */

#include "msgr_compose.h"
#include "msgr_fuzz.h"
#include "msgr_settings.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t              *in, *settings;
    uint32_t             mix;
    msgr_compose_in_t    cin;
    msgr_compose_out_t   out;

    in = msgr_fuzz_json(data, size);
    if (!json_is_object(in)) {
        json_decref(in);
        return 0;
    }

    settings = msgr_settings_resolve(json_object_get(in, "settings"),
                                     "Fuzz School");
    if (settings == NULL) {
        json_decref(in);
        return 0;
    }

    mix = msgr_fuzz_mix(data, size);

    cin.message = json_object_get(in, "message");
    cin.data = json_object_get(in, "data");
    cin.settings = settings;
    cin.send_to = (msgr_send_to_e) (mix % 4);
    cin.today = "2026-04-10";
    cin.warning_url = "https://msgr.example/v1/translation-warning";
    cin.mask_staff = (mix >> 2) & 1;
    cin.deliveries = (mix >> 3) & 1;
    cin.check_only = ((mix >> 4) & 7) == 0;

    if (cin.message == NULL || cin.data == NULL) {
        json_decref(settings);
        json_decref(in);
        return 0;
    }

    msgr_compose(&cin, &out);

    switch (out.rc) {

    case 0:
        msgr_fuzz_assert(cin.check_only || out.result != NULL);
        break;

    case 1:
        msgr_fuzz_assert(json_array_size(out.errors) > 0);
        break;

    default:
        msgr_fuzz_assert(out.rc == -1 && out.why != NULL);
    }

    msgr_compose_free(&out);
    json_decref(settings);
    json_decref(in);

    return 0;
}

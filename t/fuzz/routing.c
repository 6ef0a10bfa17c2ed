/*
 * Fuzz target: routing.  The input is a resolved result (as
 * msgr_recipients_resolve() gives it; the module builds it, but from rows
 * the MIS sync filled) routed with each mode and the message's types from
 * msgr_fuzz_mix(); the same JSON as a price list (msgrctl school prices)
 * and as a message's "channels".  Properties: a routed result has its
 * counts and cost; a price list read is within bounds.
 */

#include "msgr_fuzz.h"
#include "msgr_routing.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t          *in, *res, *back;
    unsigned         types;
    uint32_t         mix;
    const char      *why;
    msgr_prices_t    p;
    msgr_routing_t   rt;

    in = msgr_fuzz_json(data, size);
    if (in == NULL) {
        return 0;
    }

    mix = msgr_fuzz_mix(data, size);

    types = 0;
    why = NULL;
    if (msgr_channels_from_json(in, &types, &why) != 0) {
        msgr_fuzz_assert(why != NULL);
    }

    msgr_prices_default(&p);
    why = NULL;
    if (msgr_prices_from_json(in, &p, &why) == 0) {
        msgr_fuzz_assert(p.push >= 0 && p.push <= MSGR_PRICE_MAX);
        msgr_fuzz_assert(p.email >= 0 && p.email <= MSGR_PRICE_MAX);
        msgr_fuzz_assert(p.sms_segment >= 0
                         && p.sms_segment <= MSGR_PRICE_MAX);
        msgr_fuzz_assert(p.voice_call >= 0
                         && p.voice_call <= MSGR_PRICE_MAX);

        back = msgr_prices_to_json(&p);
        json_decref(back);

    } else {
        msgr_fuzz_assert(why != NULL);
    }

    types = (mix & MSGR_CHANNEL_ALL) ? (mix & MSGR_CHANNEL_ALL)
                                     : MSGR_CHANNEL_ALL;

    msgr_routing_from_settings(NULL, types, &rt);
    rt.mode = (msgr_routing_mode_e) ((mix >> 4) % 4);
    rt.sms_voice = (msgr_sms_voice_e) ((mix >> 6) % 3);
    rt.backup_sms = (mix >> 8) & 1;
    rt.backup_sms_after_minutes = (mix >> 9) % 120;
    rt.sms_segments = 1 + (mix >> 16) % 4;
    rt.prices = p;

    if (rt.mode == MSGR_ROUTING_CUSTOM) {
        rt.npriority = 1 + (mix >> 20) % MSGR_CHANNELS;
        rt.priority[0] = MSGR_CHANNEL_SMS;
        rt.priority[1] = MSGR_CHANNEL_XPRESSIONS;
        rt.priority[2] = MSGR_CHANNEL_EMAIL;
        rt.priority[3] = MSGR_CHANNEL_VOICE;
    }

    why = NULL;
    res = msgr_route(in, &rt, &why);

    if (res != NULL) {
        msgr_fuzz_assert(json_is_object(json_object_get(res, "counts")));
        msgr_fuzz_assert(json_is_object(json_object_get(res, "cost")));
        json_decref(res);

    } else {
        msgr_fuzz_assert(why != NULL);
    }

    json_decref(in);

    return 0;
}

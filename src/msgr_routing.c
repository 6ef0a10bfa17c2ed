/*
 * msgr routing: which deliveries a message makes to each recipient, what
 * they cost, and who cannot be reached by the chosen channels.  Pure C;
 * the rules are in docs/routing.md.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "msgr_settings.h"
#include "msgr_text.h"
#include "msgr_routing.h"


static const char *const  msgr_channel_names[] = {
    "xpressions", "sms", "voice", "email", NULL
};

static const char *const  msgr_routing_mode_names[] = {
    "default", "least_cost", "fastest", "custom", NULL
};

static const char *const  msgr_sms_voice_names[] = {
    "sms_priority", "voice_priority", "send_both", NULL
};


/* the order least_cost breaks ties in, and the order fastest tries */

static const msgr_channel_e  msgr_route_cheap_order[] = {
    MSGR_CHANNEL_XPRESSIONS, MSGR_CHANNEL_EMAIL, MSGR_CHANNEL_SMS,
    MSGR_CHANNEL_VOICE
};

static const msgr_channel_e  msgr_route_fast_order[] = {
    MSGR_CHANNEL_XPRESSIONS, MSGR_CHANNEL_SMS, MSGR_CHANNEL_VOICE,
    MSGR_CHANNEL_EMAIL
};


const char *
msgr_channel_name(msgr_channel_e ch)
{
    return (unsigned) ch < MSGR_CHANNELS ? msgr_channel_names[ch] : NULL;
}


/* the index of s (may be NULL) in names, or -1 */

static int
msgr_routing_choice(const char *const *names, const char *s)
{
    return s != NULL ? msgr_text_choice(names, s, strlen(s)) : -1;
}


int
msgr_channel_parse(const char *s, msgr_channel_e *out)
{
    int  i;

    i = msgr_routing_choice(msgr_channel_names, s);
    if (i < 0) {
        return -1;
    }

    *out = (msgr_channel_e) i;

    return 0;
}


int
msgr_channels_from_json(json_t *types, unsigned *out, const char **why)
{
    size_t           i;
    json_t          *v;
    unsigned         bits;
    msgr_channel_e   ch;

    if (!json_is_array(types)) {
        *why = "types must be an array of channels";
        return -1;
    }

    bits = 0;

    json_array_foreach(types, i, v) {
        if (msgr_channel_parse(json_string_value(v), &ch) != 0) {
            *why = "types must hold only xpressions, sms, voice and email";
            return -1;
        }

        if (bits & MSGR_CHANNEL_BIT(ch)) {
            *why = "types must not name a channel twice";
            return -1;
        }

        bits |= MSGR_CHANNEL_BIT(ch);
    }

    *out = bits;

    return 0;
}


int
msgr_routing_mode_parse(const char *s, msgr_routing_mode_e *out)
{
    int  i;

    i = msgr_routing_choice(msgr_routing_mode_names, s);
    if (i < 0) {
        return -1;
    }

    *out = (msgr_routing_mode_e) i;

    return 0;
}


const char *
msgr_routing_mode_name(msgr_routing_mode_e mode)
{
    return (unsigned) mode <= MSGR_ROUTING_CUSTOM
           ? msgr_routing_mode_names[mode] : NULL;
}


const char *
msgr_sms_voice_name(msgr_sms_voice_e rule)
{
    return (unsigned) rule <= MSGR_SMS_VOICE_SEND_BOTH
           ? msgr_sms_voice_names[rule] : NULL;
}


/* prices */

void
msgr_prices_default(msgr_prices_t *p)
{
    p->push = 1;
    p->email = 2;
    p->sms_segment = 35;
    p->voice_call = 80;
}


typedef struct {
    const char  *name;
    size_t       offset;
    const char  *message;
} msgr_price_field_t;

#define MSGR_PRICE_BAD  " must be an integer from 0 to 1000000"

static const msgr_price_field_t  msgr_price_fields[] = {
    { "push", offsetof(msgr_prices_t, push), "push" MSGR_PRICE_BAD },
    { "email", offsetof(msgr_prices_t, email), "email" MSGR_PRICE_BAD },
    { "sms_segment", offsetof(msgr_prices_t, sms_segment),
      "sms_segment" MSGR_PRICE_BAD },
    { "voice_call", offsetof(msgr_prices_t, voice_call),
      "voice_call" MSGR_PRICE_BAD },
    { NULL, 0, NULL }
};


int
msgr_prices_from_json(json_t *obj, msgr_prices_t *p, const char **why)
{
    json_t                    *v;
    const char                *key;
    msgr_prices_t              out;
    const msgr_price_field_t  *f;

    msgr_prices_default(&out);

    if (obj == NULL || json_is_null(obj)) {
        *p = out;
        return 0;
    }

    if (!json_is_object(obj)) {
        *why = "prices must be an object of push, email, sms_segment and "
               "voice_call";
        return -1;
    }

    json_object_foreach(obj, key, v) {
        for (f = msgr_price_fields; f->name != NULL; f++) {
            if (strcmp(f->name, key) == 0) {
                break;
            }
        }

        if (f->name == NULL) {
            *why = "prices has an unknown field: the fields are push, email, "
                   "sms_segment and voice_call";
            return -1;
        }

        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > MSGR_PRICE_MAX)
        {
            *why = f->message;
            return -1;
        }

        *(int64_t *) ((char *) &out + f->offset) = json_integer_value(v);
    }

    *p = out;

    return 0;
}


json_t *
msgr_prices_to_json(const msgr_prices_t *p)
{
    return json_pack("{s:I, s:I, s:I, s:I}",
                     "push", (json_int_t) p->push,
                     "email", (json_int_t) p->email,
                     "sms_segment", (json_int_t) p->sms_segment,
                     "voice_call", (json_int_t) p->voice_call);
}


/* SMS segments */

/* the characters of the GSM 03.38 basic set outside ASCII */

static const uint16_t  msgr_gsm7_basic[] = {
    0x00a1, 0x00a3, 0x00a4, 0x00a5, 0x00a7, 0x00bf, 0x00c4, 0x00c5,
    0x00c6, 0x00c7, 0x00c9, 0x00d1, 0x00d6, 0x00d8, 0x00dc, 0x00df,
    0x00e0, 0x00e4, 0x00e5, 0x00e6, 0x00e8, 0x00e9, 0x00ec, 0x00f1,
    0x00f2, 0x00f6, 0x00f8, 0x00f9, 0x00fc, 0x0393, 0x0394, 0x0398,
    0x039b, 0x039e, 0x03a0, 0x03a3, 0x03a6, 0x03a8, 0x03a9
};


/* the septets of a character in GSM-7: 1, 2 (the extension table) or 0 */

static int
msgr_gsm7_septets(uint32_t c)
{
    size_t  i;

    if (c < 0x80) {
        if (c == '\n' || c == '\r') {
            return 1;
        }

        if (c == '\f') {
            return 2;
        }

        if (c < 0x20 || c == 0x7f || c == '`') {
            return 0;
        }

        return strchr("^{}\\[~]|", (int) c) != NULL ? 2 : 1;
    }

    if (c == 0x20ac) {
        return 2;
    }

    for (i = 0; i < sizeof(msgr_gsm7_basic) / sizeof(uint16_t); i++) {
        if (msgr_gsm7_basic[i] == c) {
            return 1;
        }
    }

    return 0;
}


/* the code point at s (valid UTF-8), its bytes in *n */

static uint32_t
msgr_utf8_decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }

    if (s[0] < 0xe0) {
        *n = 2;
        return ((uint32_t) (s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    }

    if (s[0] < 0xf0) {
        *n = 3;
        return ((uint32_t) (s[0] & 0x0f) << 12)
               | ((uint32_t) (s[1] & 0x3f) << 6) | (s[2] & 0x3f);
    }

    *n = 4;
    return ((uint32_t) (s[0] & 0x07) << 18) | ((uint32_t) (s[1] & 0x3f) << 12)
           | ((uint32_t) (s[2] & 0x3f) << 6) | (s[3] & 0x3f);
}


/* the units (septets or UTF-16 code units) of the character c */

static int
msgr_sms_units(uint32_t c, int ucs2)
{
    if (ucs2) {
        return c > 0xffff ? 2 : 1;
    }

    return msgr_gsm7_septets(c);
}


int
msgr_sms_segments(const char *s, size_t len, int *ucs2)
{
    int                   u, parts, wide;
    size_t                i, n, total, used, one, per;
    const unsigned char  *p;

    if (!msgr_utf8_valid(s, len)) {
        return -1;
    }

    p = (const unsigned char *) s;
    wide = 0;

    for (i = 0; i < len; i += n) {
        if (msgr_gsm7_septets(msgr_utf8_decode(p + i, &n)) == 0) {
            wide = 1;
            break;
        }
    }

    if (ucs2 != NULL) {
        *ucs2 = wide;
    }

    one = wide ? 70 : 160;
    per = wide ? 67 : 153;
    total = 0;

    for (i = 0; i < len; i += n) {
        total += msgr_sms_units(msgr_utf8_decode(p + i, &n), wide);
    }

    if (total <= one) {
        return 1;
    }

    /* parts of per units; a character that does not fit starts the next */

    parts = 1;
    used = 0;

    for (i = 0; i < len; i += n) {
        u = msgr_sms_units(msgr_utf8_decode(p + i, &n), wide);

        if (used + u > per) {
            parts++;
            used = 0;
        }

        used += u;
    }

    return parts;
}


/* settings */

static void
msgr_routing_priority(json_t *settings, msgr_routing_t *rt)
{
    size_t                 i;
    json_t                *list, *v, *def;
    unsigned               seen;
    msgr_channel_e         ch;
    const msgr_setting_t  *s;

    def = NULL;
    list = json_object_get(json_object_get(settings, "sending"),
                           "custom_priority");

    if (!json_is_array(list)) {
        s = msgr_settings_find("sending", "custom_priority");
        def = json_loads(s->default_json, 0, NULL);
        list = def;
    }

    rt->npriority = 0;
    seen = 0;

    json_array_foreach(list, i, v) {
        if (msgr_channel_parse(json_string_value(v), &ch) != 0
            || (seen & MSGR_CHANNEL_BIT(ch)))
        {
            continue;
        }

        seen |= MSGR_CHANNEL_BIT(ch);
        rt->priority[rt->npriority++] = ch;
    }

    json_decref(def);
}


void
msgr_routing_from_settings(json_t *settings, unsigned types,
    msgr_routing_t *rt)
{
    int  i;

    memset(rt, 0, sizeof(msgr_routing_t));

    rt->types = types & MSGR_CHANNEL_ALL;

    for (i = 0; msgr_routing_mode_names[i] != NULL; i++) {
        if (msgr_settings_is(settings, "sending", "advanced_routing",
                             msgr_routing_mode_names[i]))
        {
            rt->mode = (msgr_routing_mode_e) i;
        }
    }

    for (i = 0; msgr_sms_voice_names[i] != NULL; i++) {
        if (msgr_settings_is(settings, "sending", "sms_voice_routing",
                             msgr_sms_voice_names[i]))
        {
            rt->sms_voice = (msgr_sms_voice_e) i;
        }
    }

    msgr_routing_priority(settings, rt);

    rt->backup_sms = msgr_settings_bool(settings, "xpressions",
                                        "backup_sms") ? 1 : 0;
    rt->backup_sms_after_minutes = (int) msgr_settings_int(settings,
                                       "xpressions",
                                       "backup_sms_after_minutes");

    msgr_prices_default(&rt->prices);
    rt->sms_segments = 1;
}


/* routing one recipient */

typedef struct {
    json_t       *rcpt;
    const char   *who;        /* "contact", "member of staff" */
    int           app;
    const char   *sms;
    json_t       *voice;      /* strings; NULL when none */
    size_t        nvoice;
    const char   *email;
    int           landline;   /* a voice number other than the mobile */
    int           segments;   /* -1 until asked */
} msgr_route_rcpt_t;


typedef struct {
    json_int_t    n[MSGR_CHANNELS];
    json_int_t    cost[MSGR_CHANNELS];
    json_int_t    backups;
    json_int_t    backup_cost;
} msgr_route_tally_t;


static const char *
msgr_route_address(json_t *v, int *bad)
{
    if (v == NULL || json_is_null(v)) {
        return NULL;
    }

    if (!json_is_string(v)) {
        *bad = 1;
        return NULL;
    }

    return json_string_length(v) ? json_string_value(v) : NULL;
}


/* reads a recipient's channels: 0, or -1 when malformed */

static int
msgr_route_read(json_t *rcpt, msgr_route_rcpt_t *r)
{
    int          bad, staff;
    size_t       i;
    json_t      *ch, *v;
    const char  *type;

    memset(r, 0, sizeof(msgr_route_rcpt_t));

    r->rcpt = rcpt;
    r->segments = -1;

    type = json_string_value(json_object_get(rcpt, "type"));
    ch = json_object_get(rcpt, "channels");

    if (type == NULL || !json_is_object(ch)) {
        return -1;
    }

    if (strcmp(type, "staff") == 0) {
        staff = 1;

    } else if (strcmp(type, "contact") == 0) {
        staff = 0;

    } else {
        return -1;
    }

    bad = 0;

    r->who = staff ? "member of staff" : "contact";
    r->app = !staff && json_is_true(json_object_get(ch, "xpressions"));
    r->sms = msgr_route_address(json_object_get(ch, "sms"), &bad);
    r->email = msgr_route_address(json_object_get(ch, "email"), &bad);

    v = json_object_get(ch, "voice");

    if (v != NULL && !json_is_null(v)) {
        if (!json_is_array(v)) {
            return -1;
        }

        r->voice = v;
        r->nvoice = json_array_size(v);

        json_array_foreach(r->voice, i, v) {
            if (!json_is_string(v)) {
                return -1;
            }

            if (r->sms == NULL || strcmp(json_string_value(v), r->sms) != 0) {
                r->landline = 1;
            }
        }
    }

    return bad ? -1 : 0;
}


/* the channels of the message the recipient can receive */

static unsigned
msgr_route_can(const msgr_routing_t *rt, msgr_route_rcpt_t *r)
{
    unsigned  can;

    can = 0;

    if (r->app) {
        can |= MSGR_CHANNEL_BIT(MSGR_CHANNEL_XPRESSIONS);
    }

    if (r->sms != NULL) {
        can |= MSGR_CHANNEL_BIT(MSGR_CHANNEL_SMS);
    }

    if (r->nvoice > 0) {
        can |= MSGR_CHANNEL_BIT(MSGR_CHANNEL_VOICE);
    }

    if (r->email != NULL) {
        can |= MSGR_CHANNEL_BIT(MSGR_CHANNEL_EMAIL);
    }

    return can & rt->types;
}


/* the cost of sending the recipient ch (every voice number): 0 or -1 */

static int
msgr_route_cost(const msgr_routing_t *rt, msgr_route_rcpt_t *r,
    msgr_channel_e ch, int64_t *cost)
{
    switch (ch) {

    case MSGR_CHANNEL_XPRESSIONS:
        *cost = rt->prices.push;
        return 0;

    case MSGR_CHANNEL_EMAIL:
        *cost = rt->prices.email;
        return 0;

    case MSGR_CHANNEL_VOICE:
        *cost = (int64_t) r->nvoice * rt->prices.voice_call;
        return 0;

    default:
        break;
    }

    if (r->segments < 0) {
        r->segments = rt->segments != NULL
                      ? rt->segments(rt->segments_data, r->rcpt)
                      : rt->sms_segments;

        if (r->segments < 0) {
            return -1;
        }
    }

    *cost = (int64_t) r->segments * rt->prices.sms_segment;

    return 0;
}


/*
 * default routing: the channels to send (bits), a reason for each in
 * why[] (new references, NULL on out of memory)
 */

static unsigned
msgr_route_default(const msgr_routing_t *rt, msgr_route_rcpt_t *r,
    unsigned can, json_t **why)
{
    unsigned     send, sms, voice;
    const char  *rule;

    sms = MSGR_CHANNEL_BIT(MSGR_CHANNEL_SMS);
    voice = MSGR_CHANNEL_BIT(MSGR_CHANNEL_VOICE);
    send = can & MSGR_CHANNEL_BIT(MSGR_CHANNEL_EMAIL);
    rule = msgr_sms_voice_name(rt->sms_voice);

    if (send) {
        why[MSGR_CHANNEL_EMAIL] = json_string("default: email is chosen "
                                              "and there is an address");
    }

    if ((rt->types & (sms | voice)) != (sms | voice)) {
        send |= can & (sms | voice);

        if (send & sms) {
            why[MSGR_CHANNEL_SMS] = json_string("default: SMS is chosen "
                                                "and there is a mobile");
        }

        if (send & voice) {
            why[MSGR_CHANNEL_VOICE] = json_string("default: voice is chosen "
                                          "and there is a number to call");
        }

    } else if (rt->sms_voice == MSGR_SMS_VOICE_SMS_PRIORITY) {
        if (can & sms) {
            send |= sms;
            why[MSGR_CHANNEL_SMS] = json_sprintf("%s: a mobile, so an SMS",
                                                 rule);

        } else if (can & voice) {
            send |= voice;
            why[MSGR_CHANNEL_VOICE] = json_sprintf("%s: no mobile, so a "
                                                   "voice call", rule);
        }

    } else if (rt->sms_voice == MSGR_SMS_VOICE_VOICE_PRIORITY) {
        if (r->landline) {
            send |= voice;
            why[MSGR_CHANNEL_VOICE] = json_sprintf("%s: a Home or Work "
                                          "number, so a voice call", rule);

        } else if (can & sms) {
            send |= sms;
            why[MSGR_CHANNEL_SMS] = json_sprintf("%s: only a mobile, so an "
                                                 "SMS", rule);
        }

    } else {
        send |= can & (sms | voice);

        if (send & sms) {
            why[MSGR_CHANNEL_SMS] = json_sprintf("%s: SMS and voice "
                                          "wherever possible, so an SMS",
                                          rule);
        }

        if (send & voice) {
            why[MSGR_CHANNEL_VOICE] = json_sprintf("%s: SMS and voice "
                                          "wherever possible, so a voice "
                                          "call", rule);
        }
    }

    if (can & MSGR_CHANNEL_BIT(MSGR_CHANNEL_XPRESSIONS)) {
        why[MSGR_CHANNEL_XPRESSIONS] = json_string((send & sms)
            ? "default: the contact has the Xpressions app, which stands "
              "in for the SMS"
            : "default: the contact has the Xpressions app");

        send = (send & ~sms) | MSGR_CHANNEL_BIT(MSGR_CHANNEL_XPRESSIONS);

        json_decref(why[MSGR_CHANNEL_SMS]);
        why[MSGR_CHANNEL_SMS] = NULL;
    }

    return send;
}


/*
 * least_cost, fastest and custom: the one channel to send (bits, 0 when
 * none), its reason in why[] (NULL on out of memory); -1 when a segments
 * callback failed
 */

static int
msgr_route_one(const msgr_routing_t *rt, msgr_route_rcpt_t *r,
    unsigned can, json_t **why, unsigned *send)
{
    int64_t                cost, best;
    unsigned               i, n;
    const char            *name;
    msgr_channel_e         ch;
    const msgr_channel_e  *order;

    *send = 0;

    if (rt->mode == MSGR_ROUTING_LEAST_COST) {
        best = -1;
        ch = MSGR_CHANNELS;

        for (i = 0; i < MSGR_CHANNELS; i++) {
            if (!(can & MSGR_CHANNEL_BIT(msgr_route_cheap_order[i]))) {
                continue;
            }

            if (msgr_route_cost(rt, r, msgr_route_cheap_order[i], &cost)
                != 0)
            {
                return -1;
            }

            if (best < 0 || cost < best) {
                best = cost;
                ch = msgr_route_cheap_order[i];
            }
        }

        if (ch != MSGR_CHANNELS) {
            *send = MSGR_CHANNEL_BIT(ch);
            why[ch] = json_sprintf("least_cost: %s is the cheapest chosen "
                                   "channel this %s can receive",
                                   msgr_channel_names[ch], r->who);
        }

        return 0;
    }

    if (rt->mode == MSGR_ROUTING_FASTEST) {
        order = msgr_route_fast_order;
        n = MSGR_CHANNELS;

    } else {
        order = rt->priority;
        n = rt->npriority < MSGR_CHANNELS ? rt->npriority : MSGR_CHANNELS;
    }

    for (i = 0; i < n; i++) {
        if ((unsigned) order[i] < MSGR_CHANNELS
            && (can & MSGR_CHANNEL_BIT(order[i])))
        {
            break;
        }
    }

    if (i == n) {
        return 0;
    }

    *send = MSGR_CHANNEL_BIT(order[i]);
    name = msgr_channel_names[order[i]];

    why[order[i]] = rt->mode == MSGR_ROUTING_FASTEST
        ? json_sprintf("fastest: %s is the fastest chosen channel this %s "
                       "can receive", name, r->who)
        : json_sprintf("custom: %s is the first channel of "
                       "sending.custom_priority this %s can receive", name,
                       r->who);

    return 0;
}


/* appends a delivery to a: 0, or -1 on out of memory */

static int
msgr_route_add(json_t *a, msgr_channel_e ch, json_t *address,
    const char *purpose, int64_t cost, json_t *why, int after)
{
    json_t  *d;

    d = json_pack("{s:s, s:O?, s:s, s:I, s:O}",
                  "channel", msgr_channel_names[ch], "address", address,
                  "purpose", purpose, "cost", (json_int_t) cost,
                  "reason", why);

    if (d != NULL && after >= 0
        && json_object_set_new(d, "after_minutes", json_integer(after)) != 0)
    {
        json_decref(d);
        d = NULL;
    }

    return json_array_append_new(a, d);
}


/*
 * The deliveries of the channels in send, in channel order, then the
 * backup SMS; counted in *t.  0, -1 on out of memory, -2 when a segments
 * callback failed.
 */

static int
msgr_route_deliver(const msgr_routing_t *rt, msgr_route_rcpt_t *r,
    unsigned send, json_t **why, json_t *a, msgr_route_tally_t *t)
{
    int       rc;
    size_t    i, j;
    json_t   *ch, *v, *addr;
    int64_t   cost;

    ch = json_object_get(r->rcpt, "channels");

    for (i = 0; i < MSGR_CHANNELS; i++) {
        if (!(send & MSGR_CHANNEL_BIT(i))) {
            continue;
        }

        if (why[i] == NULL) {
            return -1;
        }

        if (msgr_route_cost(rt, r, (msgr_channel_e) i, &cost) != 0) {
            return -2;
        }

        if (i == MSGR_CHANNEL_VOICE) {
            cost = rt->prices.voice_call;

            json_array_foreach(r->voice, j, v) {
                if (msgr_route_add(a, MSGR_CHANNEL_VOICE, v, "primary", cost,
                                   why[MSGR_CHANNEL_VOICE], -1)
                    != 0)
                {
                    return -1;
                }

                t->n[MSGR_CHANNEL_VOICE]++;
                t->cost[MSGR_CHANNEL_VOICE] += cost;
            }

            continue;
        }

        addr = i == MSGR_CHANNEL_XPRESSIONS
               ? NULL : json_object_get(ch, msgr_channel_names[i]);

        if (msgr_route_add(a, (msgr_channel_e) i, addr, "primary", cost,
                           why[i], -1)
            != 0)
        {
            return -1;
        }

        t->n[i]++;
        t->cost[i] += cost;
    }

    /* the backup SMS of a push, unless the mobile has the SMS already */

    if (!rt->backup_sms || r->sms == NULL
        || !(send & MSGR_CHANNEL_BIT(MSGR_CHANNEL_XPRESSIONS))
        || (send & MSGR_CHANNEL_BIT(MSGR_CHANNEL_SMS)))
    {
        return 0;
    }

    if (msgr_route_cost(rt, r, MSGR_CHANNEL_SMS, &cost) != 0) {
        return -2;
    }

    v = json_sprintf("backup_sms: an SMS if the Xpression is not delivered "
                     "within %d minutes", rt->backup_sms_after_minutes);
    if (v == NULL) {
        return -1;
    }

    rc = msgr_route_add(a, MSGR_CHANNEL_SMS, json_object_get(ch, "sms"),
                        "backup", cost, v, rt->backup_sms_after_minutes);
    json_decref(v);

    t->backups++;
    t->backup_cost += cost;

    return rc;
}


/*
 * The reason a recipient with no delivery is unreachable, the same for
 * every one of a message: a new reference, NULL on out of memory.
 */

static json_t *
msgr_route_unreachable_reason(const msgr_routing_t *rt)
{
    char         list[64], chosen[64];
    unsigned     i, n, usable;
    const char  *names[MSGR_CHANNELS + 1];

    if (rt->types == 0) {
        return json_string("no channel was chosen");
    }

    usable = rt->types;

    if (rt->mode == MSGR_ROUTING_CUSTOM) {
        usable = 0;

        for (i = 0; i < rt->npriority && i < MSGR_CHANNELS; i++) {
            if ((unsigned) rt->priority[i] < MSGR_CHANNELS) {
                usable |= MSGR_CHANNEL_BIT(rt->priority[i]) & rt->types;
            }
        }
    }

    for (n = 0, i = 0; i < MSGR_CHANNELS; i++) {
        if (rt->types & MSGR_CHANNEL_BIT(i)) {
            names[n++] = msgr_channel_names[i];
        }
    }

    names[n] = NULL;
    chosen[0] = '\0';
    msgr_text_join(chosen, sizeof(chosen), names, NULL);

    if (usable == 0) {
        return json_sprintf("none of the chosen channels (%s) is in "
                            "sending.custom_priority", chosen);
    }

    for (n = 0, i = 0; i < MSGR_CHANNELS; i++) {
        if (usable & MSGR_CHANNEL_BIT(i)) {
            names[n++] = msgr_channel_names[i];
        }
    }

    names[n] = NULL;
    list[0] = '\0';
    msgr_text_join(list, sizeof(list), names, NULL);

    return json_sprintf("cannot be reached by the chosen channels (%s)",
                        list);
}


/*
 * Routes one recipient: its deliveries in *out (a new array, maybe
 * empty).  0, or -1 with *why.
 */

static int
msgr_route_recipient(const msgr_routing_t *rt, json_t *rcpt,
    msgr_route_tally_t *t, json_t **out, const char **why)
{
    int                rc;
    size_t             i;
    json_t            *reason[MSGR_CHANNELS], *a;
    unsigned           can, send;
    msgr_route_rcpt_t  r;

    *out = NULL;

    if (!json_is_object(rcpt) || msgr_route_read(rcpt, &r) != 0) {
        *why = "malformed recipients: each needs a type (contact or staff) "
               "and its channels";
        return -1;
    }

    memset(reason, 0, sizeof(reason));
    can = msgr_route_can(rt, &r);
    rc = 0;

    if (rt->mode == MSGR_ROUTING_DEFAULT) {
        send = msgr_route_default(rt, &r, can, reason);

    } else {
        rc = msgr_route_one(rt, &r, can, reason, &send) != 0 ? -2 : 0;
    }

    a = json_array();

    if (rc == 0) {
        rc = a == NULL ? -1 : msgr_route_deliver(rt, &r, send, reason, a, t);
    }

    for (i = 0; i < MSGR_CHANNELS; i++) {
        json_decref(reason[i]);
    }

    if (rc != 0) {
        json_decref(a);
        *why = rc == -2 ? "the SMS segments of a recipient could not be "
                          "counted"
                        : "out of memory";
        return -1;
    }

    *out = a;

    return 0;
}


/* the counts and cost of a routed result: 0, or -1 on out of memory */

static int
msgr_route_counts(json_t *res, const msgr_route_tally_t *t)
{
    size_t       i;
    json_t      *counts, *by, *cost, *rcpt;
    json_int_t   contacts, staff, total, pin;
    const char  *type;

    counts = json_object_get(res, "counts");
    contacts = 0;
    staff = 0;

    json_array_foreach(json_object_get(res, "recipients"), i, rcpt) {
        type = json_string_value(json_object_get(rcpt, "type"));

        if (strcmp(type, "staff") == 0) {
            staff++;

        } else {
            contacts++;
        }
    }

    by = json_object();
    cost = json_object();
    total = 0;

    for (i = 0; i < MSGR_CHANNELS; i++) {
        total += t->cost[i];

        if (json_object_set_new(by, msgr_channel_names[i],
                                json_integer(t->n[i])) != 0
            || json_object_set_new(cost, msgr_channel_names[i],
                                   json_integer(t->cost[i])) != 0)
        {
            json_decref(by);
            json_decref(cost);
            return -1;
        }
    }

    pin = t->n[MSGR_CHANNEL_SMS] + t->n[MSGR_CHANNEL_VOICE]
          + t->n[MSGR_CHANNEL_EMAIL] + t->backups;

    if (json_object_set_new(counts, "by_channel", by) != 0
        || json_object_set_new(counts, "recipients",
                               json_integer(contacts + staff)) != 0
        || json_object_set_new(counts, "contacts", json_integer(contacts))
           != 0
        || json_object_set_new(counts, "staff", json_integer(staff)) != 0
        || json_object_set_new(counts, "unreachable",
               json_integer(json_array_size(json_object_get(res,
                                                "unreachable")))) != 0
        || json_object_set_new(counts, "backup_sms",
                               json_integer(t->backups)) != 0
        || json_object_set_new(counts, "deliveries",
               json_integer(t->n[0] + t->n[1] + t->n[2] + t->n[3]
                            + t->backups)) != 0
        || json_object_set_new(counts, "pin_counted", json_integer(pin))
           != 0)
    {
        json_decref(cost);
        return -1;
    }

    return json_object_set_new(res, "cost",
               json_pack("{s:I, s:o, s:I}", "total", total, "by_channel",
                         cost, "backup_sms", t->backup_cost));
}


json_t *
msgr_route(json_t *resolved, const msgr_routing_t *rt, const char **why)
{
    size_t              i;
    json_t             *res, *rcpts, *unreach, *kept, *reason, *a, *rcpt;
    const char         *dummy, *mode;
    msgr_route_tally_t  t;

    if (why == NULL) {
        why = &dummy;
    }

    mode = msgr_routing_mode_name(rt->mode);
    if (mode == NULL) {
        *why = "unknown routing mode";
        return NULL;
    }

    if (!json_is_array(json_object_get(resolved, "recipients"))
        || !json_is_array(json_object_get(resolved, "unreachable"))
        || !json_is_object(json_object_get(resolved, "counts")))
    {
        *why = "malformed recipients: recipients, unreachable and counts "
               "are needed";
        return NULL;
    }

    memset(&t, 0, sizeof(msgr_route_tally_t));

    res = json_deep_copy(resolved);
    kept = json_array();
    reason = msgr_route_unreachable_reason(rt);

    *why = "out of memory";

    if (res == NULL || kept == NULL || reason == NULL) {
        goto failed;
    }

    rcpts = json_object_get(res, "recipients");
    unreach = json_object_get(res, "unreachable");

    json_array_foreach(rcpts, i, rcpt) {
        if (msgr_route_recipient(rt, rcpt, &t, &a, why) != 0) {
            goto failed;
        }

        if (json_array_size(a) == 0) {
            json_decref(a);

            if (json_object_set(rcpt, "reason", reason) != 0
                || json_array_append(unreach, rcpt) != 0)
            {
                goto failed;
            }

            continue;
        }

        if (json_object_set_new(rcpt, "deliveries", a) != 0
            || json_array_append(kept, rcpt) != 0)
        {
            goto failed;
        }
    }

    if (json_object_set(res, "recipients", kept) != 0
        || msgr_route_counts(res, &t) != 0
        || json_object_set_new(res, "routing", json_string(mode)) != 0)
    {
        *why = "out of memory";
        goto failed;
    }

    json_decref(kept);
    json_decref(reason);

    return res;

failed:

    json_decref(res);
    json_decref(kept);
    json_decref(reason);

    return NULL;
}

/*
 * msgr routing: pure C, shared by the module (previewing and sending a
 * message) and the sender.
 *
 * Given who a message reaches (msgr_recipients_resolve()'s result), the
 * channels the message was written for and the school's routing settings,
 * it decides which deliveries are made to each recipient, what they cost
 * by the school's price list, and who cannot be reached at all.  The rules
 * are in docs/routing.md.
 */

#ifndef _MSGR_ROUTING_H_INCLUDED_
#define _MSGR_ROUTING_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


typedef enum {
    MSGR_CHANNEL_XPRESSIONS = 0,
    MSGR_CHANNEL_SMS,
    MSGR_CHANNEL_VOICE,
    MSGR_CHANNEL_EMAIL,
    MSGR_CHANNELS
} msgr_channel_e;

#define MSGR_CHANNEL_BIT(ch)  (1u << (ch))
#define MSGR_CHANNEL_ALL      ((1u << MSGR_CHANNELS) - 1)

/* "xpressions", "sms", "voice", "email"; NULL when unknown */
const char *msgr_channel_name(msgr_channel_e ch);

/* 0 and *out set when s (may be NULL) names a channel, -1 otherwise */
int msgr_channel_parse(const char *s, msgr_channel_e *out);

/*
 * A message's types, ["sms","email"], as bits (MSGR_CHANNEL_BIT): 0, or -1
 * with *why (static) when types is not an array of distinct channel names.
 */
int msgr_channels_from_json(json_t *types, unsigned *out, const char **why);


typedef enum {
    MSGR_ROUTING_DEFAULT = 0,
    MSGR_ROUTING_LEAST_COST,
    MSGR_ROUTING_FASTEST,
    MSGR_ROUTING_CUSTOM
} msgr_routing_mode_e;

/* 0 and *out set when s (may be NULL) names a mode, -1 otherwise */
int msgr_routing_mode_parse(const char *s, msgr_routing_mode_e *out);

/* "default", "least_cost", "fastest", "custom"; NULL when unknown */
const char *msgr_routing_mode_name(msgr_routing_mode_e mode);


/* sending.sms_voice_routing, for default routing */
typedef enum {
    MSGR_SMS_VOICE_SMS_PRIORITY = 0,
    MSGR_SMS_VOICE_VOICE_PRIORITY,
    MSGR_SMS_VOICE_SEND_BOTH
} msgr_sms_voice_e;

/* "sms_priority", "voice_priority", "send_both"; NULL when unknown */
const char *msgr_sms_voice_name(msgr_sms_voice_e rule);


/*
 * A school's price list, in its billing unit (tenths of a penny unless the
 * operator says otherwise): one push, one email, one SMS segment, one voice
 * call.  Each is 0 to MSGR_PRICE_MAX.
 */
typedef struct {
    int64_t   push;
    int64_t   email;
    int64_t   sms_segment;
    int64_t   voice_call;
} msgr_prices_t;

#define MSGR_PRICE_MAX  1000000

/* push 1, email 2, sms_segment 35, voice_call 80 */
void msgr_prices_default(msgr_prices_t *p);

/*
 * Reads {"push":1,"email":2,"sms_segment":35,"voice_call":80} into *p:
 * missing keys take their defaults, obj NULL (or JSON null) gives the
 * defaults.  0, or -1 with *why (static, naming the field) when obj is not
 * an object, has an unknown key or a value that is not an integer from 0
 * to MSGR_PRICE_MAX; *p is then left as it was.
 */
int msgr_prices_from_json(json_t *obj, msgr_prices_t *p, const char **why);

/* {"push":..,"email":..,"sms_segment":..,"voice_call":..}; NULL on OOM */
json_t *msgr_prices_to_json(const msgr_prices_t *p);


/*
 * The number of parts an SMS of the UTF-8 text s (len bytes) is sent in:
 * GSM-7 when every character is in the GSM 03.38 alphabet or its extension
 * table (which takes two septets): 160 septets in one part, else parts of
 * 153; otherwise UCS-2 (UTF-16 code units, two for a character outside the
 * BMP): 70 in one part, else parts of 67.  A character is never split
 * between parts.  An empty text is one part.  *ucs2 (may be NULL) is set
 * to 1 for UCS-2, 0 for GSM-7.  -1 when s is not valid UTF-8.
 */
int msgr_sms_segments(const char *s, size_t len, int *ucs2);


/*
 * The SMS segments of one recipient's text (merge tokens and translations
 * make texts differ): recipient is the entry of the resolved result; a
 * negative return fails the routing.
 */
typedef int (*msgr_sms_segments_pt)(void *data, json_t *recipient);


typedef struct {
    msgr_routing_mode_e    mode;         /* a message may override it */
    unsigned               types;        /* MSGR_CHANNEL_BIT()s chosen */
    msgr_channel_e         priority[MSGR_CHANNELS];   /* custom */
    unsigned               npriority;
    msgr_sms_voice_e       sms_voice;    /* default routing */
    unsigned               backup_sms:1;
    int                    backup_sms_after_minutes;
    msgr_prices_t          prices;
    int                    sms_segments;  /* when segments is NULL */
    msgr_sms_segments_pt   segments;
    void                  *segments_data;
} msgr_routing_t;


/*
 * Fills rt from a resolved settings object ({"sending":{...},
 * "xpressions":{...}}, as msgr_settings_resolve() gives it; NULL gives the
 * defaults) and the message's types: mode, custom priority, sms/voice
 * rule, backup SMS.  Prices are the defaults, sms_segments 1, no callback:
 * the caller sets those, and may override mode.
 */
void msgr_routing_from_settings(json_t *settings, unsigned types,
    msgr_routing_t *rt);

/*
 * resolved: msgr_recipients_resolve()'s result, not modified.  Returns a
 * new object: the same, each recipient given "deliveries" [{"channel",
 * "address" (null for xpressions), "purpose" ("primary" or "backup"),
 * "cost", "reason", and "after_minutes" on backups}], recipients with no
 * delivery moved to the end of "unreachable" with a "reason", "counts"
 * updated ("by_channel" counts primary deliveries; "backup_sms",
 * "deliveries" and "pin_counted" added), "cost" {"total","by_channel",
 * "backup_sms"} and "routing" (the mode's name).  NULL with *why (static)
 * on out of memory, malformed input or a failed segments callback.
 */
json_t *msgr_route(json_t *resolved, const msgr_routing_t *rt,
    const char **why);


#endif /* _MSGR_ROUTING_H_INCLUDED_ */

/*
 * Unit tests of src/msgr_routing.c: which deliveries a message makes.
 * The decision table (every mode, chosen channels and kind of recipient),
 * the SMS and voice rules, backup SMS, custom orders, prices that change
 * the cheapest channel, the shape, counts and costs of a result, SMS
 * segments, the price list's JSON and the settings.  Prints TAP.
 *
 * Fixtures are JSON with ' for "; the expected deliveries are written out
 * here from docs/routing.md, not computed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_routing.h"
#include "msgr_tap.h"


#define X  MSGR_CHANNEL_BIT(MSGR_CHANNEL_XPRESSIONS)
#define S  MSGR_CHANNEL_BIT(MSGR_CHANNEL_SMS)
#define V  MSGR_CHANNEL_BIT(MSGR_CHANNEL_VOICE)
#define E  MSGR_CHANNEL_BIT(MSGR_CHANNEL_EMAIL)

#define DEF    MSGR_ROUTING_DEFAULT
#define CHEAP  MSGR_ROUTING_LEAST_COST
#define FAST   MSGR_ROUTING_FASTEST
#define CUST   MSGR_ROUTING_CUSTOM

#define SMS_P    MSGR_SMS_VOICE_SMS_PRIORITY
#define VOICE_P  MSGR_SMS_VOICE_VOICE_PRIORITY
#define BOTH     MSGR_SMS_VOICE_SEND_BOTH


/*
 * Recipients as msgr_recipients_resolve() gives them.  M is the mobile,
 * H the home number, W the work number.  With voice_calling first_number
 * a contact's voice list is Home else Work (none when only a mobile), a
 * staff member's Work else mobile; with all_numbers, every number.
 */

#define MOB   "'+447700900123'"
#define HOME  "'+442079460000'"
#define WORK  "'+442079460001'"

#define CONTACT(app, sms, voice, email)                                     \
    "{'type': 'contact', 'id': 10, 'name': 'Mrs Jane Jones',"               \
    " 'students': [{'id': 1, 'name': 'Amy Jones', 'relationship': null}],"  \
    " 'channels': {'xpressions': " app ", 'sms': " sms ", 'voice': ["       \
    voice "], 'email': " email "}}"

#define STAFF(app, sms, voice, email)                                       \
    "{'type': 'staff', 'id': 7, 'name': 'Mr Tom Smith', 'groups': [3],"     \
    " 'channels': {'xpressions': " app ", 'sms': " sms ", 'voice': ["       \
    voice "], 'email': " email "}}"

#define EMAIL "'jane@example.org'"

/* everything: app, mobile, home, email (first_number) */
#define C_ALL     CONTACT("true", MOB, HOME, EMAIL)
/* the same with all_numbers: home, work, mobile */
#define C_ALLN    CONTACT("true", MOB, HOME ", " WORK ", " MOB, EMAIL)
/* mobile and home, no app, no email */
#define C_ML      CONTACT("false", MOB, HOME, "null")
/* the same with all_numbers */
#define C_MLN     CONTACT("false", MOB, HOME ", " MOB, "null")
/* only a mobile: first_number, all_numbers */
#define C_MOB     CONTACT("false", MOB, "", "null")
#define C_MOBN    CONTACT("false", MOB, MOB, "null")
/* only a landline */
#define C_LAND    CONTACT("false", "null", HOME, "null")
/* only an email address */
#define C_EMAIL   CONTACT("false", "null", "", EMAIL)
/* the app only; the app and a mobile */
#define C_APP     CONTACT("true", "null", "", "null")
#define C_APPMOB  CONTACT("true", MOB, "", "null")
/* the app and a landline */
#define C_APPLAND CONTACT("true", "null", HOME, "null")
/* staff: mobile only (first_number and all_numbers alike) */
#define S_MOB     STAFF("false", MOB, MOB, "null")
/* staff with work and mobile: first_number, all_numbers */
#define S_WORK    STAFF("false", MOB, WORK, EMAIL)
#define S_WORKN   STAFF("false", MOB, WORK ", " MOB, EMAIL)
/* a staff entry claiming the app: staff never have Xpressions */
#define S_APP     STAFF("true", MOB, WORK, "null")


typedef struct {
    msgr_routing_mode_e   mode;
    unsigned              types;
    msgr_sms_voice_e      rule;
    int                   backup;
    const char           *priority;   /* custom: "email,sms" */
    const char           *rcpt;
    const char           *want;       /* channels; "sms*" a backup; "-" */
    const char           *desc;
} msgr_test_cell_t;


static const msgr_test_cell_t  msgr_test_cells[] = {

    /* default: SMS and voice by sending.sms_voice_routing */

    { DEF, S|V, SMS_P, 0, NULL, C_ML, "sms",
      "sms_priority: mobile and landline get the SMS only" },
    { DEF, S|V, SMS_P, 0, NULL, C_MLN, "sms",
      "sms_priority, all_numbers: mobile and landline get the SMS only" },
    { DEF, S|V, SMS_P, 0, NULL, C_LAND, "voice",
      "sms_priority: no mobile, so a voice call" },
    { DEF, S|V, SMS_P, 0, NULL, C_MOB, "sms",
      "sms_priority: mobile only gets the SMS" },
    { DEF, S|V, SMS_P, 0, NULL, C_EMAIL, "-",
      "sms_priority: email only is unreachable by SMS and voice" },
    { DEF, S|V, SMS_P, 0, NULL, C_ALL, "sms",
      "sms_priority: the app is not used when xpressions is not chosen" },
    { DEF, S|V, SMS_P, 0, NULL, S_WORK, "sms",
      "sms_priority: staff with a mobile get the SMS" },

    { DEF, S|V, VOICE_P, 0, NULL, C_ML, "voice",
      "voice_priority: a home number gets the call, no SMS" },
    { DEF, S|V, VOICE_P, 0, NULL, C_LAND, "voice",
      "voice_priority: landline only gets the call" },
    { DEF, S|V, VOICE_P, 0, NULL, C_MOB, "sms",
      "voice_priority, first_number: mobile only gets an SMS" },
    { DEF, S|V, VOICE_P, 0, NULL, C_MOBN, "sms",
      "voice_priority, all_numbers: the mobile alone is not Home or Work" },
    { DEF, S|V, VOICE_P, 0, NULL, C_MLN, "voice voice",
      "voice_priority, all_numbers: every number is called, no SMS" },
    { DEF, S|V, VOICE_P, 0, NULL, C_ALLN, "voice voice voice",
      "voice_priority, all_numbers, email not chosen: three calls" },
    { DEF, S|V, VOICE_P, 0, NULL, S_MOB, "sms",
      "voice_priority: staff with only a mobile get an SMS" },
    { DEF, S|V, VOICE_P, 0, NULL, S_WORK, "voice",
      "voice_priority: staff with a work number get the call" },
    { DEF, S|V, VOICE_P, 0, NULL, S_WORKN, "voice voice",
      "voice_priority, all_numbers: staff get a call per number" },
    { DEF, S|V, VOICE_P, 0, NULL, C_EMAIL, "-",
      "voice_priority: email only is unreachable" },

    { DEF, S|V, BOTH, 0, NULL, C_ML, "sms voice",
      "send_both: mobile and landline get both" },
    { DEF, S|V, BOTH, 0, NULL, C_ALLN, "sms voice voice voice",
      "send_both, all_numbers: the SMS and a call per number" },
    { DEF, S|V, BOTH, 0, NULL, C_MOB, "sms",
      "send_both, first_number: mobile only gets the SMS alone" },
    { DEF, S|V, BOTH, 0, NULL, C_MOBN, "sms voice",
      "send_both, all_numbers: mobile only gets the SMS and a call" },
    { DEF, S|V, BOTH, 0, NULL, C_LAND, "voice",
      "send_both: landline only gets the call" },
    { DEF, S|V, BOTH, 0, NULL, S_MOB, "sms voice",
      "send_both: staff with a mobile get both" },

    /* default: each alone when only one is chosen */

    { DEF, S, VOICE_P, 0, NULL, C_ML, "sms",
      "SMS alone goes to a mobile whatever the rule" },
    { DEF, S, SMS_P, 0, NULL, C_LAND, "-",
      "SMS alone: landline only is unreachable" },
    { DEF, V, SMS_P, 0, NULL, C_ML, "voice",
      "voice alone is a call even with a mobile" },
    { DEF, V, SMS_P, 0, NULL, C_MOB, "-",
      "voice alone, first_number: mobile only is unreachable" },
    { DEF, V, SMS_P, 0, NULL, C_MOBN, "voice",
      "voice alone, all_numbers: the mobile is called" },
    { DEF, V, BOTH, 0, NULL, C_ALLN, "voice voice voice",
      "voice alone, all_numbers: a call per number" },
    { DEF, E, SMS_P, 0, NULL, C_ALL, "email",
      "email alone goes to an address" },
    { DEF, E, SMS_P, 0, NULL, C_MOB, "-",
      "email alone: no address is unreachable" },
    { DEF, S|E, SMS_P, 0, NULL, C_ALL, "sms email",
      "email goes alongside the SMS" },
    { DEF, S|V|E, SMS_P, 0, NULL, C_EMAIL, "email",
      "email only gets the email" },

    /* default: Xpressions stands in for the SMS */

    { DEF, X|S|V|E, SMS_P, 0, NULL, C_ALL, "xpressions email",
      "sms_priority: the push replaces the SMS, no call" },
    { DEF, X|S|V|E, VOICE_P, 0, NULL, C_ALL, "xpressions voice email",
      "voice_priority: push, call and email" },
    { DEF, X|S|V|E, BOTH, 0, NULL, C_ALL, "xpressions voice email",
      "send_both: the push replaces the SMS, the call stays" },
    { DEF, X|S|V|E, BOTH, 0, NULL, C_ALLN, "xpressions voice voice voice "
      "email", "send_both, all_numbers: push, a call per number, email" },
    { DEF, X|S, SMS_P, 0, NULL, C_APPMOB, "xpressions",
      "the push replaces the SMS" },
    { DEF, X|S|V, SMS_P, 0, NULL, C_APPLAND, "xpressions voice",
      "sms_priority: app and landline get the push and the call" },
    { DEF, X, SMS_P, 0, NULL, C_APP, "xpressions",
      "Xpressions alone goes to the app" },
    { DEF, X, SMS_P, 0, NULL, C_MOB, "-",
      "Xpressions alone: no app is unreachable" },
    { DEF, X|S, SMS_P, 0, NULL, C_ML, "sms",
      "no app: the SMS as usual" },
    { DEF, X, SMS_P, 0, NULL, S_APP, "-",
      "staff never get Xpressions" },
    { DEF, X|S, SMS_P, 0, NULL, S_APP, "sms",
      "staff get the SMS even when the entry claims the app" },

    /* backup SMS */

    { DEF, X|S, SMS_P, 1, NULL, C_APPMOB, "xpressions sms*",
      "backup on: the push has a backup SMS" },
    { DEF, X, SMS_P, 1, NULL, C_APPMOB, "xpressions sms*",
      "backup on: a backup SMS even when SMS is not chosen" },
    { DEF, X|E, SMS_P, 1, NULL, C_ALL, "xpressions email sms*",
      "backup on: backup after the primary deliveries" },
    { DEF, X|S, SMS_P, 1, NULL, C_APP, "xpressions",
      "backup on: no mobile, no backup" },
    { DEF, X|S, SMS_P, 1, NULL, C_ML, "sms",
      "backup on: no push, no backup" },
    { DEF, X|S, SMS_P, 0, NULL, C_APPMOB, "xpressions",
      "backup off: no backup" },

    /* least_cost, default prices: push 1, email 2, SMS 35, call 80 */

    { CHEAP, X|S|V|E, SMS_P, 0, NULL, C_ALL, "xpressions",
      "least_cost: the push is cheapest" },
    { CHEAP, X|S|V|E, SMS_P, 1, NULL, C_ALL, "xpressions sms*",
      "least_cost: the push with its backup" },
    { CHEAP, S|V|E, SMS_P, 0, NULL, C_ALL, "email",
      "least_cost: email before SMS" },
    { CHEAP, S|V, VOICE_P, 0, NULL, C_ML, "sms",
      "least_cost: SMS before a call, whatever sms_voice_routing says" },
    { CHEAP, S|V, SMS_P, 0, NULL, C_LAND, "voice",
      "least_cost: a call when that is all they can receive" },
    { CHEAP, V, SMS_P, 0, NULL, C_ALLN, "voice voice voice",
      "least_cost: voice with all_numbers is one call per number" },
    { CHEAP, X|S|V|E, SMS_P, 0, NULL, S_APP, "sms",
      "least_cost: staff get no push, so the SMS" },
    { CHEAP, X, SMS_P, 0, NULL, C_EMAIL, "-",
      "least_cost: nothing chosen they can receive" },

    /* fastest: xpressions, sms, voice, email */

    { FAST, X|S|V|E, SMS_P, 0, NULL, C_ALL, "xpressions",
      "fastest: the push first" },
    { FAST, S|V|E, VOICE_P, 0, NULL, C_ALL, "sms",
      "fastest: then SMS" },
    { FAST, V|E, SMS_P, 0, NULL, C_ALL, "voice",
      "fastest: then voice" },
    { FAST, V|E, SMS_P, 0, NULL, C_ALLN, "voice voice voice",
      "fastest: voice with all_numbers calls every number" },
    { FAST, S|V|E, SMS_P, 0, NULL, C_EMAIL, "email",
      "fastest: email last" },
    { FAST, S|V|E, SMS_P, 0, NULL, C_LAND, "voice",
      "fastest: a call when there is no mobile" },
    { FAST, X|S, SMS_P, 1, NULL, C_APPMOB, "xpressions sms*",
      "fastest: the push with its backup" },
    { FAST, S, SMS_P, 0, NULL, C_EMAIL, "-",
      "fastest: nothing chosen they can receive" },

    /* custom: sending.custom_priority */

    { CUST, X|S|V|E, SMS_P, 0, "email,voice,sms,xpressions", C_ALL, "email",
      "custom: email first" },
    { CUST, X|S|V|E, SMS_P, 0, "email,voice,sms,xpressions", C_ML, "voice",
      "custom: then voice" },
    { CUST, X|S|V|E, SMS_P, 0, "email,voice,sms,xpressions", C_APPMOB,
      "sms", "custom: SMS before the push" },
    { CUST, X|S|V|E, SMS_P, 0, "email,voice,sms,xpressions", C_APP,
      "xpressions", "custom: the push last" },
    { CUST, X|S|V|E, SMS_P, 0, "voice,sms", C_ALLN, "voice voice voice",
      "custom: voice with all_numbers calls every number" },
    { CUST, X|S|V|E, SMS_P, 0, "sms,email", C_APPLAND, "-",
      "custom: channels not in the list are never used" },
    { CUST, S|E, SMS_P, 0, "voice,xpressions", C_ALL, "-",
      "custom: none of the chosen channels in the list" },
    { CUST, X|S, SMS_P, 1, "xpressions,sms", C_APPMOB, "xpressions sms*",
      "custom: the push with its backup" },
    { CUST, X|S|E, SMS_P, 0, "xpressions,sms,email", S_APP, "sms",
      "custom: staff skip xpressions" },
};

#define MSGR_TEST_CELLS                                                      \
    (int) (sizeof(msgr_test_cells) / sizeof(msgr_test_cell_t))

#define MSGR_TEST_PLAN  (MSGR_TEST_CELLS + 136)


/* a resolved result of the recipients (a JSON array text) */

static json_t *
msgr_test_resolved(const char *rcpts)
{
    json_t  *res, *a;

    a = msgr_test_json(rcpts);
    res = json_pack("{s:o, s:[], s:[], s:{s:i, s:I, s:i, s:i, s:i, s:i}}",
                    "recipients", a, "unreachable", "excluded", "counts",
                    "students", 1, "recipients",
                    (json_int_t) json_array_size(a), "contacts", 0,
                    "staff", 0, "unreachable", 0, "excluded", 0);

    return res;
}


static void
msgr_test_routing(msgr_routing_t *rt, msgr_routing_mode_e mode,
    unsigned types)
{
    msgr_routing_from_settings(NULL, types, rt);
    rt->mode = mode;
}


/*
 * The deliveries of the only recipient, "email sms*" ("*" a backup); "-"
 * when unreachable; "NULL: why" on failure.
 */

static char  msgr_test_buf[512];

static const char *
msgr_test_summary(json_t *res, const char *why)
{
    size_t   i;
    json_t  *r, *d;

    msgr_test_buf[0] = '\0';

    if (res == NULL) {
        snprintf(msgr_test_buf, sizeof(msgr_test_buf), "NULL: %s", why);
        return msgr_test_buf;
    }

    r = json_array_get(json_object_get(res, "recipients"), 0);

    if (r == NULL) {
        return "-";
    }

    json_array_foreach(json_object_get(r, "deliveries"), i, d) {
        snprintf(msgr_test_buf + strlen(msgr_test_buf),
                 sizeof(msgr_test_buf) - strlen(msgr_test_buf), "%s%s%s",
                 i ? " " : "",
                 json_string_value(json_object_get(d, "channel")),
                 strcmp(json_string_value(json_object_get(d, "purpose")),
                        "backup") == 0 ? "*" : "");
    }

    return msgr_test_buf;
}


static int
msgr_test_is(const char *got, const char *want, const char *desc)
{
    if (msgr_test_ok(strcmp(got, want) == 0, desc)) {
        return 1;
    }

    printf("# got \"%s\", want \"%s\"\n", got, want);
    return 0;
}


static int
msgr_test_int(json_t *v, json_int_t want, const char *desc)
{
    if (msgr_test_ok(json_is_integer(v) && json_integer_value(v) == want,
                     desc))
    {
        return 1;
    }

    msgr_test_diag("got", v);
    printf("# want %lld\n", (long long) want);
    return 0;
}


static int
msgr_test_str(json_t *v, const char *want, const char *desc)
{
    if (want == NULL) {
        if (msgr_test_ok(json_is_null(v), desc)) {
            return 1;
        }

    } else if (msgr_test_ok(json_is_string(v)
                            && strcmp(json_string_value(v), want) == 0,
                            desc))
    {
        return 1;
    }

    msgr_test_diag("got", v);
    printf("# want %s\n", want ? want : "null");
    return 0;
}


/* routes one recipient; the summary of its deliveries */

static const char *
msgr_test_route1(const char *rcpt, const msgr_routing_t *rt)
{
    char         list[2048];
    json_t      *in, *res;
    const char  *why, *s;

    snprintf(list, sizeof(list), "[%s]", rcpt);
    in = msgr_test_resolved(list);
    why = NULL;
    res = msgr_route(in, rt, &why);
    s = msgr_test_summary(res, why);

    json_decref(res);
    json_decref(in);

    return s;
}


static void
msgr_test_priority(msgr_routing_t *rt, const char *list)
{
    char         *s, *tok, *save;
    msgr_channel_e  ch;

    rt->npriority = 0;
    s = strdup(list);

    for (tok = strtok_r(s, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save))
    {
        if (msgr_channel_parse(tok, &ch) == 0) {
            rt->priority[rt->npriority++] = ch;
        }
    }

    free(s);
}


static void
msgr_test_table(void)
{
    int                      i;
    char                     desc[256];
    msgr_routing_t           rt;
    const msgr_test_cell_t  *c;

    for (i = 0; i < MSGR_TEST_CELLS; i++) {
        c = &msgr_test_cells[i];

        msgr_test_routing(&rt, c->mode, c->types);
        rt.sms_voice = c->rule;
        rt.backup_sms = c->backup;

        if (c->priority != NULL) {
            msgr_test_priority(&rt, c->priority);
        }

        snprintf(desc, sizeof(desc), "%s: %s", msgr_routing_mode_name(c->mode),
                 c->desc);
        msgr_test_is(msgr_test_route1(c->rcpt, &rt), c->want, desc);
    }
}


/* least_cost with other prices and SMS lengths */

static int
msgr_test_segments_cb(void *data, json_t *rcpt)
{
    json_int_t  id;

    (void) data;

    id = json_integer_value(json_object_get(rcpt, "id"));

    return id == 10 ? 3 : id == 11 ? -1 : 1;
}


static void
msgr_test_least_cost(void)
{
    msgr_routing_t  rt;

    msgr_test_routing(&rt, CHEAP, S|V);
    rt.prices.sms_segment = 100;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "voice",
                 "least_cost: an SMS dearer than a call gives the call");

    msgr_test_is(msgr_test_route1(C_MLN, &rt), "sms",
                 "least_cost, all_numbers: two calls cost more than the SMS");

    msgr_test_routing(&rt, CHEAP, S|V);
    rt.sms_segments = 3;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "voice",
                 "least_cost: a 3-part SMS (105) costs more than a call");

    rt.sms_segments = 2;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "sms",
                 "least_cost: a 2-part SMS (70) costs less than a call");

    msgr_test_routing(&rt, CHEAP, S|V);
    rt.segments = msgr_test_segments_cb;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "voice",
                 "least_cost: the callback's segment count is used");

    msgr_test_routing(&rt, CHEAP, X|E);
    rt.prices.push = 50;
    msgr_test_is(msgr_test_route1(C_ALL, &rt), "email",
                 "least_cost: a dear push gives the email");

    /* ties: xpressions, email, sms, voice */

    msgr_test_routing(&rt, CHEAP, X|S|V|E);
    rt.prices.push = 5;
    rt.prices.email = 5;
    rt.prices.sms_segment = 5;
    rt.prices.voice_call = 5;
    msgr_test_is(msgr_test_route1(C_ALL, &rt), "xpressions",
                 "least_cost tie: xpressions first");

    rt.types = S|V|E;
    msgr_test_is(msgr_test_route1(C_ALL, &rt), "email",
                 "least_cost tie: email before sms and voice");

    rt.types = S|V;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "sms",
                 "least_cost tie: sms before voice");

    rt.prices.sms_segment = 6;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "voice",
                 "least_cost: one unit dearer SMS loses to the call");

    rt.prices.voice_call = 0;
    msgr_test_is(msgr_test_route1(C_ML, &rt), "voice",
                 "least_cost: free calls win");
}


/* a whole result: shape, order, counts, costs, reasons */

static const char  msgr_test_mixed[] =
    "[" C_ALL ","
    "{'type': 'contact', 'id': 11, 'name': 'Mr John Jones', 'students': [],"
    " 'channels': {'xpressions': false, 'sms': '+447700900999',"
    "              'voice': [], 'email': null}},"
    "{'type': 'contact', 'id': 12, 'name': 'Ms Land Line', 'students': [],"
    " 'channels': {'xpressions': false, 'sms': null,"
    "              'voice': ['+442079460002'], 'email': null}},"
    STAFF("false", "null", "", "'t.smith@school.example'") "]";


/* the counts and cost of msgr_test_result()'s routing */

static void
msgr_test_result_counts(json_t *res)
{
    json_t  *c;

    /* counts */

    c = json_object_get(res, "counts");
    msgr_test_int(json_object_get(c, "recipients"), 2, "counts.recipients");
    msgr_test_int(json_object_get(c, "contacts"), 2, "counts.contacts");
    msgr_test_int(json_object_get(c, "staff"), 0, "counts.staff");
    msgr_test_int(json_object_get(c, "unreachable"), 3,
                  "counts.unreachable");
    msgr_test_int(json_object_get(c, "students"), 1,
                  "counts.students is resolve's");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"),
                                  "xpressions"), 1,
                  "counts.by_channel.xpressions");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"), "sms"),
                  1, "counts.by_channel.sms counts primary SMS only");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"), "email"),
                  0, "counts.by_channel.email");
    msgr_test_int(json_object_get(c, "backup_sms"), 1, "counts.backup_sms");
    msgr_test_int(json_object_get(c, "deliveries"), 3, "counts.deliveries");
    msgr_test_int(json_object_get(c, "pin_counted"), 2,
                  "counts.pin_counted: the SMS and the backup");

    /* cost */

    c = json_object_get(res, "cost");
    msgr_test_int(json_object_get(c, "total"), 71,
                  "cost.total: push and SMS, not the backup");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"), "sms"),
                  70, "cost.by_channel.sms");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"),
                                  "xpressions"), 1,
                  "cost.by_channel.xpressions");
    msgr_test_int(json_object_get(c, "backup_sms"), 70,
                  "cost.backup_sms: what the backups could add");
}


static void
msgr_test_result(void)
{
    char            *a, *b, *before, *after;
    json_t          *in, *res, *r, *d, *u;
    msgr_routing_t   rt;
    const char      *why;

    in = msgr_test_resolved(msgr_test_mixed);
    json_array_append_new(json_object_get(in, "unreachable"),
                          msgr_test_json("{'type': 'student', 'id': 5,"
                                         " 'name': 'Cal', 'reason': "
                                         "'no contacts'}"));
    before = json_dumps(in, 0);

    msgr_test_routing(&rt, DEF, X|S);
    rt.backup_sms = 1;
    rt.backup_sms_after_minutes = 15;
    rt.sms_segments = 2;

    why = NULL;
    res = msgr_route(in, &rt, &why);
    after = json_dumps(in, 0);

    msgr_test_ok(strcmp(before, after) == 0, "the input is not modified");

    if (!msgr_test_ok(res != NULL, "a mixed list is routed")) {
        printf("# why: %s\n", why);
        exit(1);
    }

    msgr_test_str(json_object_get(res, "routing"), "default",
                  "routing names the mode");

    r = json_object_get(res, "recipients");
    msgr_test_ok(json_array_size(r) == 2, "two recipients are reached");
    msgr_test_int(json_object_get(json_array_get(r, 0), "id"), 10,
                  "recipients keep their order: 10");
    msgr_test_int(json_object_get(json_array_get(r, 1), "id"), 11,
                  "recipients keep their order: 11");
    msgr_test_str(json_object_get(json_array_get(r, 0), "name"),
                  "Mrs Jane Jones", "recipients keep their fields");

    /* contact 10: the push and its backup */

    d = json_object_get(json_array_get(r, 0), "deliveries");
    msgr_test_ok(json_array_size(d) == 2, "10 has two deliveries");
    msgr_test_str(json_object_get(json_array_get(d, 0), "channel"),
                  "xpressions", "10: the push first");
    msgr_test_str(json_object_get(json_array_get(d, 0), "address"), NULL,
                  "10: a push has no address");
    msgr_test_str(json_object_get(json_array_get(d, 0), "purpose"),
                  "primary", "10: the push is primary");
    msgr_test_int(json_object_get(json_array_get(d, 0), "cost"), 1,
                  "10: a push costs 1");
    msgr_test_str(json_object_get(json_array_get(d, 0), "reason"),
                  "default: the contact has the Xpressions app, which "
                  "stands in for the SMS", "10: the push's reason");
    msgr_test_ok(json_object_get(json_array_get(d, 0), "after_minutes")
                 == NULL, "10: a primary delivery has no after_minutes");
    msgr_test_str(json_object_get(json_array_get(d, 1), "channel"), "sms",
                  "10: then the backup SMS");
    msgr_test_str(json_object_get(json_array_get(d, 1), "address"),
                  "+447700900123", "10: the backup goes to the mobile");
    msgr_test_str(json_object_get(json_array_get(d, 1), "purpose"),
                  "backup", "10: its purpose is backup");
    msgr_test_int(json_object_get(json_array_get(d, 1), "after_minutes"),
                  15, "10: after backup_sms_after_minutes");
    msgr_test_int(json_object_get(json_array_get(d, 1), "cost"), 70,
                  "10: a 2-part backup SMS costs 70");
    msgr_test_str(json_object_get(json_array_get(d, 1), "reason"),
                  "backup_sms: an SMS if the Xpression is not delivered "
                  "within 15 minutes", "10: the backup's reason");

    /* contact 11: the SMS */

    d = json_object_get(json_array_get(r, 1), "deliveries");
    msgr_test_ok(json_array_size(d) == 1, "11 has one delivery");
    msgr_test_str(json_object_get(json_array_get(d, 0), "address"),
                  "+447700900999", "11: the SMS goes to the mobile");
    msgr_test_int(json_object_get(json_array_get(d, 0), "cost"), 70,
                  "11: a 2-part SMS costs 70");
    msgr_test_str(json_object_get(json_array_get(d, 0), "reason"),
                  "default: SMS is chosen and there is a mobile",
                  "11: the SMS's reason");

    /* unreachable: the student first, then 12 and the staff member */

    u = json_object_get(res, "unreachable");
    msgr_test_ok(json_array_size(u) == 3, "three are unreachable");
    msgr_test_int(json_object_get(json_array_get(u, 0), "id"), 5,
                  "resolve's unreachable come first");
    msgr_test_int(json_object_get(json_array_get(u, 1), "id"), 12,
                  "then the contact with only a landline");
    msgr_test_str(json_object_get(json_array_get(u, 1), "reason"),
                  "cannot be reached by the chosen channels "
                  "(xpressions, sms)", "the reason names the channels");
    msgr_test_str(json_object_get(json_array_get(u, 2), "type"), "staff",
                  "then the staff member with only an email");
    msgr_test_ok(json_object_get(json_array_get(u, 2), "deliveries") == NULL,
                 "the unreachable have no deliveries");

    msgr_test_result_counts(res);

    /* determinism */

    a = json_dumps(res, 0);
    json_decref(res);
    res = msgr_route(in, &rt, &why);
    b = json_dumps(res, 0);
    msgr_test_ok(a != NULL && b != NULL && strcmp(a, b) == 0,
                 "the same input twice gives the same JSON, byte for byte");

    free(a);
    free(b);
    free(before);
    free(after);
    json_decref(res);
    json_decref(in);
}


static void
msgr_test_costs_and_reasons(void)
{
    json_t          *in, *res, *c, *d;
    msgr_routing_t   rt;
    const char      *why;

    /* voice with all_numbers: a call per number, each costing a call */

    in = msgr_test_resolved("[" C_ALLN "," S_WORKN "]");
    msgr_test_routing(&rt, DEF, S|V|E);
    rt.sms_voice = BOTH;
    res = msgr_route(in, &rt, &why);

    d = json_object_get(json_array_get(json_object_get(res, "recipients"),
                                       0), "deliveries");
    msgr_test_str(json_object_get(json_array_get(d, 1), "address"),
                  "+442079460000", "the first call goes to Home");
    msgr_test_str(json_object_get(json_array_get(d, 2), "address"),
                  "+442079460001", "the second call goes to Work");
    msgr_test_str(json_object_get(json_array_get(d, 3), "address"),
                  "+447700900123", "the third call goes to the mobile");
    msgr_test_int(json_object_get(json_array_get(d, 3), "cost"), 80,
                  "each call costs one call");
    msgr_test_str(json_object_get(json_array_get(d, 4), "address"),
                  "jane@example.org", "the email goes to the address");
    msgr_test_str(json_object_get(json_array_get(d, 1), "reason"),
                  "send_both: SMS and voice wherever possible, so a voice "
                  "call", "send_both's reason");

    c = json_object_get(res, "counts");
    msgr_test_int(json_object_get(json_object_get(c, "by_channel"), "voice"),
                  5, "by_channel.voice counts calls");
    msgr_test_int(json_object_get(c, "deliveries"), 9,
                  "deliveries: 2 SMS, 5 calls, 2 emails");
    msgr_test_int(json_object_get(c, "staff"), 1, "counts.staff");
    msgr_test_int(json_object_get(c, "pin_counted"), 9,
                  "pin_counted: SMS, calls and emails");
    msgr_test_int(json_object_get(json_object_get(res, "cost"), "total"),
                  2 * 35 + 5 * 80 + 2 * 2, "cost.total adds them up");
    msgr_test_int(json_object_get(json_object_get(json_object_get(res,
                                  "cost"), "by_channel"), "voice"), 400,
                  "cost.by_channel.voice");

    json_decref(res);

    /* reasons of the other rules */

    rt.sms_voice = SMS_P;
    rt.types = S|V;
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 0),
                  "deliveries"), 0), "reason"),
                  "sms_priority: a mobile, so an SMS", "sms_priority's reason");
    json_decref(res);

    rt.mode = CHEAP;
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 1),
                  "deliveries"), 0), "reason"),
                  "least_cost: sms is the cheapest chosen channel this "
                  "member of staff can receive", "least_cost's reason");
    msgr_test_str(json_object_get(res, "routing"), "least_cost",
                  "routing names least_cost");
    json_decref(res);

    rt.mode = FAST;
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 0),
                  "deliveries"), 0), "reason"),
                  "fastest: sms is the fastest chosen channel this contact "
                  "can receive", "fastest's reason");
    json_decref(res);

    rt.mode = CUST;
    msgr_test_priority(&rt, "voice,sms");
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 0),
                  "deliveries"), 0), "reason"),
                  "custom: voice is the first channel of "
                  "sending.custom_priority this contact can receive",
                  "custom's reason");
    json_decref(res);

    rt.types = E;
    msgr_test_priority(&rt, "sms");
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(res,
                  "unreachable"), 0), "reason"),
                  "none of the chosen channels (email) is in "
                  "sending.custom_priority", "custom: the list's reason");
    json_decref(res);

    rt.types = 0;
    rt.mode = DEF;
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(res,
                  "unreachable"), 0), "reason"), "no channel was chosen",
                  "no channel chosen: everyone is unreachable");
    json_decref(res);

    rt.mode = DEF;
    rt.sms_voice = VOICE_P;
    rt.types = S|V;
    json_decref(in);
    in = msgr_test_resolved("[" C_LAND "," C_MOB "]");
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 0),
                  "deliveries"), 0), "reason"),
                  "voice_priority: a Home or Work number, so a voice call",
                  "voice_priority's call reason");
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 1),
                  "deliveries"), 0), "reason"),
                  "voice_priority: only a mobile, so an SMS",
                  "voice_priority's SMS reason");
    json_decref(res);

    rt.sms_voice = SMS_P;
    res = msgr_route(in, &rt, &why);
    msgr_test_str(json_object_get(json_array_get(json_object_get(
                  json_array_get(json_object_get(res, "recipients"), 0),
                  "deliveries"), 0), "reason"),
                  "sms_priority: no mobile, so a voice call",
                  "sms_priority's call reason");
    json_decref(res);
    json_decref(in);
}


static void
msgr_test_malformed(void)
{
    json_t          *in, *res;
    msgr_routing_t   rt;
    const char      *why;

    msgr_test_routing(&rt, DEF, S);

    why = NULL;
    res = msgr_route(NULL, &rt, &why);
    msgr_test_ok(res == NULL && why != NULL, "NULL input is refused");

    in = msgr_test_json("{'recipients': {}, 'unreachable': [],"
                        " 'counts': {}}");
    why = NULL;
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL && why != NULL
                 && strstr(why, "malformed") != NULL,
                 "recipients that is not an array is refused");
    json_decref(in);

    in = msgr_test_resolved("[{'type': 'contact', 'id': 1, 'channels':"
                            " {'sms': '+447700900123', 'voice': 'x'}}]");
    why = NULL;
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL && why != NULL,
                 "a voice that is not a list is refused");
    json_decref(in);

    in = msgr_test_resolved("[{'type': 'parent', 'id': 1, 'channels':"
                            " {'sms': '+447700900123'}}]");
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL, "an unknown type is refused");
    json_decref(in);

    in = msgr_test_resolved("[{'type': 'contact', 'id': 1, 'channels':"
                            " {'sms': 7}}]");
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL, "an sms that is not a string is refused");
    json_decref(in);

    in = msgr_test_resolved("[{'type': 'contact', 'id': 11, 'channels':"
                            " {'sms': '+447700900123'}}]");
    rt.segments = msgr_test_segments_cb;
    why = NULL;
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL && why != NULL
                 && strstr(why, "segments") != NULL,
                 "a failing segments callback fails the routing");
    json_decref(in);

    rt.segments = NULL;
    rt.mode = (msgr_routing_mode_e) 9;
    in = msgr_test_resolved("[]");
    res = msgr_route(in, &rt, &why);
    msgr_test_ok(res == NULL, "an unknown mode is refused");
    json_decref(in);
}


static void
msgr_test_names(void)
{
    json_t               *t;
    unsigned              bits;
    const char           *why;
    msgr_channel_e        ch;
    msgr_routing_mode_e   mode;

    msgr_test_ok(strcmp(msgr_channel_name(MSGR_CHANNEL_XPRESSIONS),
                        "xpressions") == 0
                 && strcmp(msgr_channel_name(MSGR_CHANNEL_EMAIL), "email")
                    == 0
                 && msgr_channel_name(MSGR_CHANNELS) == NULL,
                 "channel names");
    msgr_test_ok(msgr_channel_parse("voice", &ch) == 0
                 && ch == MSGR_CHANNEL_VOICE
                 && msgr_channel_parse("fax", &ch) == -1
                 && msgr_channel_parse("", &ch) == -1
                 && msgr_channel_parse(NULL, &ch) == -1,
                 "channels are parsed");
    msgr_test_ok(msgr_routing_mode_parse("least_cost", &mode) == 0
                 && mode == CHEAP
                 && msgr_routing_mode_parse("cheapest", &mode) == -1
                 && msgr_routing_mode_parse(NULL, &mode) == -1
                 && strcmp(msgr_routing_mode_name(CUST), "custom") == 0
                 && msgr_routing_mode_name((msgr_routing_mode_e) 4) == NULL,
                 "modes are parsed and named");

    t = msgr_test_json("['email', 'xpressions']");
    msgr_test_ok(msgr_channels_from_json(t, &bits, &why) == 0
                 && bits == (E|X), "types are read as bits");
    json_decref(t);

    t = msgr_test_json("['email', 'email']");
    msgr_test_ok(msgr_channels_from_json(t, &bits, &why) == -1
                 && strstr(why, "twice") != NULL,
                 "a channel twice in types is refused");
    json_decref(t);

    t = msgr_test_json("['email', 'fax']");
    msgr_test_ok(msgr_channels_from_json(t, &bits, &why) == -1,
                 "an unknown type is refused");
    json_decref(t);
}


static void
msgr_test_settings(void)
{
    json_t          *s;
    msgr_routing_t   rt;

    msgr_routing_from_settings(NULL, S|E|0x100, &rt);
    msgr_test_ok(rt.mode == DEF && rt.sms_voice == SMS_P
                 && rt.backup_sms == 0 && rt.backup_sms_after_minutes == 30
                 && rt.types == (S|E) && rt.sms_segments == 1
                 && rt.segments == NULL,
                 "no settings: the table's defaults");
    msgr_test_ok(rt.npriority == 4 && rt.priority[0] == MSGR_CHANNEL_XPRESSIONS
                 && rt.priority[1] == MSGR_CHANNEL_SMS
                 && rt.priority[2] == MSGR_CHANNEL_VOICE
                 && rt.priority[3] == MSGR_CHANNEL_EMAIL,
                 "no settings: custom_priority's default order");
    msgr_test_ok(rt.prices.push == 1 && rt.prices.email == 2
                 && rt.prices.sms_segment == 35
                 && rt.prices.voice_call == 80, "the default prices");

    s = msgr_test_json("{'sending': {'advanced_routing': 'custom',"
                       " 'sms_voice_routing': 'send_both',"
                       " 'custom_priority': ['email', 'sms']},"
                       " 'xpressions': {'backup_sms': true,"
                       " 'backup_sms_after_minutes': 60}}");
    msgr_routing_from_settings(s, X, &rt);
    msgr_test_ok(rt.mode == CUST && rt.sms_voice == BOTH
                 && rt.backup_sms == 1 && rt.backup_sms_after_minutes == 60,
                 "settings: mode, sms_voice_routing, backup SMS");
    msgr_test_ok(rt.npriority == 2 && rt.priority[0] == MSGR_CHANNEL_EMAIL
                 && rt.priority[1] == MSGR_CHANNEL_SMS,
                 "settings: custom_priority");
    json_decref(s);

    s = msgr_test_json("{'sending': {'advanced_routing': 'least_cost',"
                       " 'sms_voice_routing': 'voice_priority'}}");
    msgr_routing_from_settings(s, X, &rt);
    msgr_test_ok(rt.mode == CHEAP && rt.sms_voice == VOICE_P,
                 "settings: least_cost and voice_priority");
    json_decref(s);

    s = msgr_test_json("{'sending': {'advanced_routing': 'fastest',"
                       " 'sms_voice_routing': 7},"
                       " 'xpressions': {'backup_sms_after_minutes': 7}}");
    msgr_routing_from_settings(s, X, &rt);
    msgr_test_ok(rt.mode == FAST && rt.sms_voice == SMS_P
                 && rt.backup_sms_after_minutes == 30,
                 "settings: fastest; bad values take the defaults");
    json_decref(s);
}


static void
msgr_test_prices(void)
{
    char           *s;
    json_t         *j;
    const char     *why;
    msgr_prices_t   p, q;

    msgr_prices_default(&p);
    msgr_test_ok(msgr_prices_from_json(NULL, &p, &why) == 0
                 && p.push == 1 && p.email == 2 && p.sms_segment == 35
                 && p.voice_call == 80, "prices: NULL gives the defaults");

    j = msgr_test_json("{'sms_segment': 40, 'voice_call': 0}");
    msgr_test_ok(msgr_prices_from_json(j, &p, &why) == 0
                 && p.push == 1 && p.email == 2 && p.sms_segment == 40
                 && p.voice_call == 0,
                 "prices: missing keys take their defaults");
    json_decref(j);

    q = p;

#define MSGR_TEST_BAD_PRICE(text, field, desc)                               \
    j = msgr_test_json(text);                                                \
    why = NULL;                                                              \
    msgr_test_ok(msgr_prices_from_json(j, &p, &why) == -1 && why != NULL     \
                 && strstr(why, field) != NULL                               \
                 && memcmp(&p, &q, sizeof(p)) == 0, desc);                   \
    json_decref(j)

    MSGR_TEST_BAD_PRICE("{'push': -1}", "push",
                        "prices: a negative push is refused, naming push");
    MSGR_TEST_BAD_PRICE("{'email': '2'}", "email",
                        "prices: a string is refused, naming email");
    MSGR_TEST_BAD_PRICE("{'sms_segment': 3.5}", "sms_segment",
                        "prices: a real number is refused");
    MSGR_TEST_BAD_PRICE("{'voice_call': 1000001}", "voice_call",
                        "prices: more than 1000000 is refused");
    MSGR_TEST_BAD_PRICE("{'voice_call': true}", "voice_call",
                        "prices: a boolean is refused");
    MSGR_TEST_BAD_PRICE("{'push': 1, 'fax': 3}", "unknown",
                        "prices: an unknown key is refused");
    MSGR_TEST_BAD_PRICE("[1, 2]", "object",
                        "prices: an array is refused");

    j = msgr_test_json("{'voice_call': 1000000, 'push': 0}");
    msgr_test_ok(msgr_prices_from_json(j, &p, &why) == 0
                 && p.voice_call == 1000000 && p.push == 0,
                 "prices: 0 and 1000000 are allowed");
    json_decref(j);

    msgr_prices_default(&p);
    j = msgr_prices_to_json(&p);
    s = json_dumps(j, 0);
    msgr_test_ok(s != NULL && strcmp(s, "{\"push\": 1, \"email\": 2, "
                 "\"sms_segment\": 35, \"voice_call\": 80}") == 0,
                 "prices: written as JSON");
    free(s);
    json_decref(j);
}


/* the parts of n copies of the UTF-8 character c, mid, m copies of c */

static void
msgr_test_seg(const char *c, int n, const char *mid, int m, int want,
    int ucs2, const char *desc)
{
    int    i, got, u;
    char  *s;

    s = malloc(strlen(c) * (n + m) + strlen(mid) + 1);
    s[0] = '\0';

    for (i = 0; i < n + m; i++) {
        strcat(s, c);

        if (i == n - 1) {
            strcat(s, mid);
        }
    }

    if (n == 0) {
        strcat(s, mid);
    }

    u = -1;
    got = msgr_sms_segments(s, strlen(s), &u);

    if (!msgr_test_ok(got == want && u == ucs2, desc)) {
        printf("# got %d parts (ucs2 %d), want %d (ucs2 %d)\n", got, u,
               want, ucs2);
    }

    free(s);
}


#define EURO   "\xe2\x82\xac"
#define ZHE    "\xd0\xb6"
#define EMOJI  "\xf0\x9f\x98\x80"

static void
msgr_test_segments(void)
{
    int  u;

    msgr_test_seg("a", 0, "", 0, 1, 0, "segments: an empty text is one part");
    msgr_test_seg("a", 160, "", 0, 1, 0, "GSM-7: 160 characters, one part");
    msgr_test_seg("a", 161, "", 0, 2, 0, "GSM-7: 161 characters, two parts");
    msgr_test_seg("a", 306, "", 0, 2, 0, "GSM-7: 306 characters, two parts");
    msgr_test_seg("a", 307, "", 0, 3, 0,
                  "GSM-7: 307 characters, three parts");
    msgr_test_seg(EURO, 80, "", 0, 1, 0,
                  "GSM-7: 80 euro signs are 160 septets, one part");
    msgr_test_seg(EURO, 81, "", 0, 2, 0,
                  "GSM-7: 81 euro signs are 162 septets, two parts");
    msgr_test_seg("a", 159, "[", 0, 2, 0,
                  "GSM-7: [ takes two septets (161)");
    msgr_test_seg("a", 158, "[", 0, 1, 0, "GSM-7: 158 and [ fit one part");
    msgr_test_seg("a", 157, "{}", 0, 2, 0,
                  "GSM-7: { and } take two septets each (161)");
    msgr_test_seg("a", 156, "{}", 0, 1, 0,
                  "GSM-7: 156 and {} fit one part (160)");
    msgr_test_seg("a", 152, EURO, 152, 3, 0,
                  "GSM-7: an extension character is not split between parts");
    msgr_test_seg("\xc2\xa3", 160, "", 0, 1, 0,
                  "GSM-7: the pound sign is in the basic set");
    msgr_test_seg("\xc3\xa9", 161, "", 0, 2, 0,
                  "GSM-7: e acute is in the basic set");
    msgr_test_seg("a", 69, "`", 0, 1, 1, "a backquote is not GSM-7");
    msgr_test_seg(ZHE, 70, "", 0, 1, 1, "UCS-2: 70 characters, one part");
    msgr_test_seg(ZHE, 71, "", 0, 2, 1, "UCS-2: 71 characters, two parts");
    msgr_test_seg(ZHE, 134, "", 0, 2, 1, "UCS-2: 134 characters, two parts");
    msgr_test_seg(ZHE, 135, "", 0, 3, 1,
                  "UCS-2: 135 characters, three parts");
    msgr_test_seg("a", 159, ZHE, 0, 3, 1,
                  "one character outside GSM-7 makes it all UCS-2");
    msgr_test_seg(EMOJI, 35, "", 0, 1, 1,
                  "UCS-2: 35 emoji are 70 code units, one part");
    msgr_test_seg(EMOJI, 36, "", 0, 2, 1,
                  "UCS-2: 36 emoji are 72 code units, two parts");
    msgr_test_seg(ZHE, 66, EMOJI, 66, 3, 1,
                  "UCS-2: an emoji is not split between parts");
    msgr_test_seg("a", 10, "\n\r", 0, 1, 0, "line breaks are GSM-7");

    msgr_test_ok(msgr_sms_segments("\xc3", 1, &u) == -1,
                 "invalid UTF-8 is refused");
    msgr_test_ok(msgr_sms_segments("abc", 3, NULL) == 1,
                 "ucs2 may be NULL");
}


int
main(void)
{
    printf("1..%d\n", MSGR_TEST_PLAN);

    msgr_test_table();
    msgr_test_least_cost();
    msgr_test_result();
    msgr_test_costs_and_reasons();
    msgr_test_malformed();
    msgr_test_names();
    msgr_test_settings();
    msgr_test_prices();
    msgr_test_segments();

    return msgr_test_end(MSGR_TEST_PLAN);
}

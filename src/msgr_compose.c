/*
 * msgr: composing a message: recipients, texts, routing, outbox rows.
 * See msgr_compose.h; the rules are in docs/routing.md and
 * docs/templates.md.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_compose.h"
#include "msgr_routing.h"
#include "msgr_settings.h"
#include "msgr_template.h"


typedef struct {
    const msgr_compose_in_t  *in;
    msgr_compose_out_t       *out;
    json_t                   *school;      /* the school's tokens */
    json_t                   *texts;       /* "type:id" -> its texts */
    const char               *warning_url;
    unsigned                  warning:1;
} msgr_compose_t;


static json_t *msgr_compose_names(msgr_compose_t *c);
static void msgr_compose_check(msgr_compose_t *c, json_t *names);
static void msgr_compose_check_one(msgr_compose_t *c, json_t *names,
    json_t *text, const char *field);
static int msgr_compose_texts(msgr_compose_t *c, json_t *rec);
static json_t *msgr_compose_tokens(msgr_compose_t *c, json_t *rec,
    const char **language);
static int msgr_compose_render(json_t *texts, const char *name,
    json_t *tokens, json_t *text);
static int msgr_compose_warn(msgr_compose_t *c, json_t *texts,
    const char *name);
static int msgr_compose_segments(void *data, json_t *rec);
static int msgr_compose_rows(msgr_compose_t *c, json_t *routed);
static int msgr_compose_mask(json_t *routed);
static void msgr_compose_key(json_t *rec, char *buf, size_t size);


/* the message's text for a purpose: sms_body, else body */

static json_t *
msgr_compose_text(json_t *msg, const char *name, const char *fallback)
{
    json_t  *v;

    v = json_object_get(msg, name);

    if (!json_is_string(v) && fallback != NULL) {
        v = json_object_get(msg, fallback);
    }

    return json_is_string(v) ? v : NULL;
}


void
msgr_compose(const msgr_compose_in_t *in, msgr_compose_out_t *out)
{
    size_t                  i;
    json_t                 *names, *resolved, *routed, *recs, *channels;
    const char             *mode, *why;
    msgr_routing_t          rt;
    msgr_channel_e          ch;
    msgr_compose_t          c;
    unsigned                types;
    msgr_recipient_rules_t  rules;

    memset(out, 0, sizeof(msgr_compose_out_t));
    memset(&c, 0, sizeof(msgr_compose_t));

    c.in = in;
    c.out = out;

    out->rc = -1;
    out->why = "out of memory";
    out->errors = json_array();
    c.school = msgr_template_school_tokens(in->settings);
    c.texts = json_object();

    resolved = NULL;
    routed = NULL;
    names = NULL;

    if (out->errors == NULL || c.school == NULL || c.texts == NULL) {
        goto done;
    }

    c.warning = msgr_settings_bool(in->settings, "sending",
                                   "include_translation_warning_link");
    c.warning_url = msgr_settings_string(in->settings, "sending",
                                         "translation_warning_url");

    if (in->warning_url != NULL
        && (c.warning_url == NULL || c.warning_url[0] == '\0'))
    {
        c.warning_url = in->warning_url;
    }

    /* every merge token is known, or nothing is sent */

    names = msgr_compose_names(&c);
    if (names == NULL) {
        goto done;
    }

    msgr_compose_check(&c, names);

    if (json_array_size(out->errors) || in->check_only) {
        out->rc = json_array_size(out->errors) ? 1 : 0;
        out->why = NULL;
        goto done;
    }

    msgr_recipient_rules_from_settings(in->settings, &rules);
    rules.mask_staff_details = 0;

    why = NULL;
    resolved = msgr_recipients_resolve(json_object_get(in->data, "records"),
                                       in->send_to, &rules, in->today, &why);
    if (resolved == NULL) {
        out->why = why ? why : "out of memory";
        goto done;
    }

    recs = json_object_get(resolved, "recipients");

    for (i = 0; i < json_array_size(recs); i++) {
        if (msgr_compose_texts(&c, json_array_get(recs, i)) != 0) {
            goto done;
        }
    }

    /* the routing: the school's, or the message's own */

    types = 0;
    channels = json_object_get(in->message, "channels");

    for (i = 0; i < json_array_size(channels); i++) {
        if (msgr_channel_parse(json_string_value(json_array_get(channels, i)),
                               &ch)
            == 0)
        {
            types |= 1u << ch;
        }
    }

    msgr_routing_from_settings(in->settings, types, &rt);

    mode = json_string_value(json_object_get(in->message, "routing"));

    if (mode != NULL && msgr_routing_mode_parse(mode, &rt.mode) != 0) {
        out->why = "an unknown routing mode";
        goto done;
    }

    if (msgr_prices_from_json(json_object_get(in->data, "prices"),
                              &rt.prices, &why)
        != 0)
    {
        out->why = why ? why : "a bad price list";
        goto done;
    }

    rt.segments = msgr_compose_segments;
    rt.segments_data = c.texts;

    why = NULL;
    routed = msgr_route(resolved, &rt, &why);
    if (routed == NULL) {
        out->why = why ? why : "out of memory";
        goto done;
    }

    out->pin_counted = json_integer_value(
        json_object_get(json_object_get(routed, "counts"), "pin_counted"));
    out->pin_required = out->pin_counted
                        > msgr_settings_int(in->settings, "sending",
                                            "pin_threshold");

    if (json_object_set_new(routed, "pin_required",
                            json_boolean(out->pin_required))
        != 0)
    {
        goto done;
    }

    if (in->deliveries && msgr_compose_rows(&c, routed) != 0) {
        goto done;
    }

    if (in->mask_staff && msgr_compose_mask(routed) != 0) {
        goto done;
    }

    out->result = routed;
    routed = NULL;
    out->rc = 0;
    out->why = NULL;

done:

    json_decref(names);
    json_decref(resolved);
    json_decref(routed);
    json_decref(c.school);
    json_decref(c.texts);
}


void
msgr_compose_free(msgr_compose_out_t *out)
{
    json_decref(out->errors);
    json_decref(out->result);
    json_decref(out->deliveries);

    out->errors = NULL;
    out->result = NULL;
    out->deliveries = NULL;
}


/* the merge tokens a message may use: a contact's, with every attribute */

static json_t *
msgr_compose_names(msgr_compose_t *c)
{
    json_t  *nobody, *names;

    nobody = json_object();
    if (nobody == NULL) {
        return NULL;
    }

    names = msgr_template_contact_tokens(nobody,
                json_object_get(c->in->data, "attributes"), c->school);

    json_decref(nobody);

    return names;
}


static void
msgr_compose_check(msgr_compose_t *c, json_t *names)
{
    char         field[96];
    json_t      *msg, *tr, *v;
    const char  *lang, *key;

    static const char *const  texts[] = {
        "subject", "body", "sms_body", "voice_body", NULL
    };
    const char *const        *t;

    msg = c->in->message;

    for (t = texts; *t; t++) {
        msgr_compose_check_one(c, names, json_object_get(msg, *t), *t);
    }

    json_object_foreach(json_object_get(msg, "translations"), lang, tr) {
        json_object_foreach(tr, key, v) {
            snprintf(field, sizeof(field), "translations.%s.%s", lang, key);
            msgr_compose_check_one(c, names, v, field);
        }
    }
}


static void
msgr_compose_check_one(msgr_compose_t *c, json_t *names, json_t *text,
    const char *field)
{
    char  *why;

    if (!json_is_string(text)) {
        return;
    }

    why = msgr_template_check(json_string_value(text),
                              json_string_length(text), names);
    if (why == NULL) {
        return;
    }

    json_array_append_new(c->out->errors,
                          json_pack("{s:s, s:s}", "field", field,
                                    "message", why));
    free(why);
}


/* "contact:10" */

static void
msgr_compose_key(json_t *rec, char *buf, size_t size)
{
    const char  *type;

    type = json_string_value(json_object_get(rec, "type"));

    snprintf(buf, size, "%s:%lld", type ? type : "",
             (long long) json_integer_value(json_object_get(rec, "id")));
}


/*
 * A recipient's texts, rendered: {"subject", "body", "sms", "voice",
 * "language"}, in their language when the message has a translation for
 * it.
 */

static int
msgr_compose_texts(msgr_compose_t *c, json_t *rec)
{
    int          rc, warn;
    char         key[64];
    json_t      *tokens, *texts, *msg, *tr, *v;
    const char  *language, *lang;

    msg = c->in->message;
    language = NULL;

    tokens = msgr_compose_tokens(c, rec, &language);
    texts = json_object();

    if (tokens == NULL || texts == NULL) {
        json_decref(tokens);
        json_decref(texts);
        return -1;
    }

    tr = msgr_template_translation(json_object_get(msg, "translations"),
                                   language);
    warn = (tr != NULL && c->warning);

    if (tr == NULL) {
        tr = msg;
        language = NULL;

    } else {
        /* the translation's own tag: "pl" for a contact's "pl-PL" */
        json_object_foreach(json_object_get(msg, "translations"), lang, v) {
            if (v == tr) {
                language = lang;
                break;
            }
        }
    }

    /* a translation without a subject or an SMS text keeps the message's */

    rc = msgr_compose_render(texts, "subject", tokens,
             json_object_get(tr, "subject") ? json_object_get(tr, "subject")
                                            : json_object_get(msg, "subject"))
         | msgr_compose_render(texts, "body", tokens,
                               msgr_compose_text(tr, "body", NULL))
         | msgr_compose_render(texts, "sms", tokens,
                               msgr_compose_text(tr, "sms_body", "body"))
         | msgr_compose_render(texts, "voice", tokens,
                               msgr_compose_text(tr, "voice_body", "body"));

    /* the written texts of a translation end with the warning and link */

    if (rc == 0 && warn) {
        rc = msgr_compose_warn(c, texts, "body")
             | msgr_compose_warn(c, texts, "sms");
    }

    if (rc == 0) {
        rc = json_object_set_new(texts, "language",
                                 language ? json_string(language)
                                          : json_null());
    }

    json_decref(tokens);

    msgr_compose_key(rec, key, sizeof(key));

    if (rc != 0 || json_object_set_new(c->texts, key, texts) != 0) {
        return -1;
    }

    return 0;
}


/* the recipient's merge tokens, and their language */

static json_t *
msgr_compose_tokens(msgr_compose_t *c, json_t *rec, const char **language)
{
    char         id[32];
    json_t      *data, *person, *own, *contact, *tokens, *attrs,
                *students;
    const char  *type;

    data = c->in->data;
    type = json_string_value(json_object_get(rec, "type"));

    snprintf(id, sizeof(id), "%lld",
             (long long) json_integer_value(json_object_get(rec, "id")));

    if (type != NULL && strcmp(type, "staff") == 0) {
        person = json_object_get(json_object_get(
                     json_object_get(data, "records"), "staff"), id);

        return msgr_template_staff_tokens(person,
                   json_object_get(data, "attributes"), c->school);
    }

    person = json_object_get(json_object_get(
                 json_object_get(data, "records"), "contacts"), id);
    own = json_object_get(json_object_get(data, "contact_tokens"), id);

    *language = json_string_value(json_object_get(person, "language"));

    /* the contact as GET /v1/contacts/{id}/tokens has it */

    contact = json_copy(person);
    if (contact == NULL) {
        return NULL;
    }

    /* a contact without tokens of its own has no students */

    students = json_object_get(own, "students");

    if (json_object_set_new(contact, "students",
                            json_is_array(students) ? json_incref(students)
                                                    : json_array())
        != 0)
    {
        json_decref(contact);
        return NULL;
    }

    attrs = json_object_get(own, "attributes");

    tokens = msgr_template_contact_tokens(contact,
                 attrs ? attrs : json_object_get(data, "attributes"),
                 c->school);

    json_decref(contact);

    return tokens;
}


/* texts[name] = text rendered with tokens ("" when there is no text) */

static int
msgr_compose_render(json_t *texts, const char *name, json_t *tokens,
    json_t *text)
{
    int      rc;
    char    *s;
    size_t   len;

    if (text == NULL) {
        return json_object_set_new(texts, name, json_null()) ? -1 : 0;
    }

    s = msgr_template_render(json_string_value(text),
                             json_string_length(text), tokens, &len);
    if (s == NULL) {
        return -1;
    }

    rc = json_object_set_new(texts, name, json_stringn(s, len));

    free(s);

    return rc ? -1 : 0;
}


static int
msgr_compose_warn(msgr_compose_t *c, json_t *texts, const char *name)
{
    int          rc;
    char        *w, *s;
    size_t       len, wlen;
    json_t      *v;

    v = json_object_get(texts, name);

    if (!json_is_string(v)) {
        return 0;
    }

    w = msgr_template_translation_warning(c->warning_url);
    if (w == NULL) {
        return -1;
    }

    len = json_string_length(v);
    wlen = strlen(w);

    s = malloc(len + wlen + 1);
    if (s == NULL) {
        free(w);
        return -1;
    }

    memcpy(s, json_string_value(v), len);
    memcpy(s + len, w, wlen + 1);

    rc = json_object_set_new(texts, name, json_stringn(s, len + wlen));

    free(s);
    free(w);

    return rc ? -1 : 0;
}


/* the routing's question: how many parts this recipient's SMS has */

static int
msgr_compose_segments(void *data, json_t *rec)
{
    char     key[64];
    json_t  *sms;

    msgr_compose_key(rec, key, sizeof(key));

    sms = json_object_get(json_object_get((json_t *) data, key), "sms");

    if (!json_is_string(sms)) {
        return 1;
    }

    return msgr_sms_segments(json_string_value(sms), json_string_length(sms),
                             NULL);
}


/* one outbox row per delivery, with its text */

static int
msgr_compose_rows(msgr_compose_t *c, json_t *routed)
{
    char         key[64];
    size_t       i, j;
    json_t      *recs, *rec, *dels, *d, *texts, *row, *after;
    const char  *channel, *text, *subject;

    c->out->deliveries = json_array();
    if (c->out->deliveries == NULL) {
        return -1;
    }

    recs = json_object_get(routed, "recipients");

    for (i = 0; i < json_array_size(recs); i++) {
        rec = json_array_get(recs, i);
        dels = json_object_get(rec, "deliveries");

        msgr_compose_key(rec, key, sizeof(key));
        texts = json_object_get(c->texts, key);

        for (j = 0; j < json_array_size(dels); j++) {
            d = json_array_get(dels, j);
            channel = json_string_value(json_object_get(d, "channel"));

            if (channel == NULL) {
                return -1;
            }

            subject = NULL;

            if (strcmp(channel, "sms") == 0) {
                text = "sms";

            } else if (strcmp(channel, "voice") == 0) {
                text = "voice";

            } else {
                text = "body";
                subject = "subject";
            }

            after = json_object_get(d, "after_minutes");

            row = json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?,"
                            " s:O?, s:O?, s:I}",
                    "recipient_type", json_object_get(rec, "type"),
                    "recipient_id", json_object_get(rec, "id"),
                    "channel", json_object_get(d, "channel"),
                    "address", json_object_get(d, "address"),
                    "purpose", json_object_get(d, "purpose"),
                    "language", json_object_get(texts, "language"),
                    "subject", subject ? json_object_get(texts, subject)
                                       : json_null(),
                    "body", json_object_get(texts, text),
                    "cost", json_object_get(d, "cost"),
                    "after_minutes",
                    (json_int_t) (after ? json_integer_value(after) : 0));

            if (row == NULL
                || json_array_append_new(c->out->deliveries, row) != 0)
            {
                return -1;
            }
        }
    }

    return 0;
}


/* staff entries masked for display (msgr_recipients_mask_entry()) */

static int
msgr_compose_mask(json_t *routed)
{
    size_t       i;
    json_t      *list, *e;
    const char  *type;

    static const char *const  lists[] = { "recipients", "unreachable",
                                          NULL };
    const char *const        *l;

    for (l = lists; *l; l++) {
        list = json_object_get(routed, *l);

        for (i = 0; i < json_array_size(list); i++) {
            e = json_array_get(list, i);
            type = json_string_value(json_object_get(e, "type"));

            if (type != NULL && strcmp(type, "staff") == 0
                && msgr_recipients_mask_entry(e) != 0)
            {
                return -1;
            }
        }
    }

    return 0;
}

/*
 * msgr: sending messages.
 *
 *   POST /v1/messages/preview         who, how and what it costs; no write
 *   POST /v1/messages                 routes and writes the outbox
 *   GET  /v1/messages/defaults        what a new message starts with
 *   GET  /v1/messages?before=&limit=  the school's messages, newest first
 *   GET  /v1/messages/{id}            one, with its deliveries by state
 *   GET  /v1/messages/{id}/deliveries?state=&channel=&before=&limit=
 *   POST /v1/messages/{id}/cancel     what has not been sent
 *   GET  /v1/sending-pin, PUT /v1/sending-pin {"pin"}   (admin)
 *   GET  /v1/translation-warning      the page a translation's link opens
 *
 * A message may start from a template ("template_id", sql/0015): the
 * template's texts fill what the message leaves out.
 *
 * A message is resolved, rendered and routed by msgr_compose()
 * (src/msgr_compose.c) in nginx's thread pool; the message and one outbox
 * row per delivery are written by msgr_message_send() (sql/0013) in one
 * statement, which NOTIFYs msgr-sender.  docs/api.md and docs/routing.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_thread.h"
#include "ngx_http_msgr_settings.h"
#include "ngx_http_msgr_contacts.h"
#include "ngx_http_msgr_messages.h"
#include "msgr_compose.h"
#include "msgr_routing.h"
#include "msgr_settings.h"
#include "msgr_text.h"


#define NGX_HTTP_MSGR_SUBJECT_MAX     200
#define NGX_HTTP_MSGR_BODY_MAX        10000
#define NGX_HTTP_MSGR_SMS_MAX         1600
#define NGX_HTTP_MSGR_VOICE_MAX       2000
#define NGX_HTTP_MSGR_LANGUAGES_MAX   20
#define NGX_HTTP_MSGR_SEND_AHEAD      (90 * 86400)
#define NGX_HTTP_MSGR_IDEM_MAX        255


static void ngx_http_msgr_compose(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_messages(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_message_defaults(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_message(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_message_deliveries(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_message_cancel(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_sending_pin(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_translation_page(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_messages_routes[] = {

    { NGX_HTTP_POST, "v1/messages/preview", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_compose },

    { NGX_HTTP_MSGR_READ, "v1/messages/defaults", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_message_defaults },

    { NGX_HTTP_MSGR_READ|NGX_HTTP_POST, "v1/messages",
      NGX_HTTP_MSGR_ROLE_ANY, ngx_http_msgr_messages },

    { NGX_HTTP_MSGR_READ, "v1/messages/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_message },

    { NGX_HTTP_MSGR_READ, "v1/messages/{}/deliveries",
      NGX_HTTP_MSGR_ROLE_ANY, ngx_http_msgr_message_deliveries },

    { NGX_HTTP_POST, "v1/messages/{}/cancel", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_message_cancel },

    { NGX_HTTP_MSGR_READ|NGX_HTTP_PUT, "v1/sending-pin",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_sending_pin },

    { NGX_HTTP_MSGR_READ, "v1/translation-warning", 0,
      ngx_http_msgr_translation_page },

    { 0, NULL, 0, NULL }
};


/* a preview or a send, from the body to the answer */

typedef struct {
    unsigned                  preview:1;

    /* the request */
    json_t                   *message;
    json_t                   *errors;        /* its bad fields so far */
    ngx_array_t               groups;        /* int64_t */
    ngx_array_t               students;      /* int64_t */
    msgr_send_to_e            send_to;
    ngx_str_t                 pin;
    ngx_str_t                 idem;          /* Idempotency-Key */
    u_char                    hash[2 * crypto_generichash_BYTES + 1];
    ngx_str_t                 send_at;       /* as given; empty: now */
    int64_t                   template_id;   /* 0: none */

    /* the records, as PostgreSQL gave them, and the thread's copies */
    ngx_str_t                 text;
    json_t                   *data;
    json_t                   *settings;
    u_char                    today[NGX_HTTP_MSGR_TODAY_LEN];
    char                     *warning_url;
    unsigned                  mask:1;

    /* what the thread found */
    msgr_compose_out_t        out;
    int                       parsed;        /* 0, or -1: bad records */
    const char               *missing;       /* "group", "student", NULL */
    int64_t                   missing_id;
    json_t                   *replay;
    json_t                   *locked;
    char                     *answer;        /* a preview, written out */
    unsigned                  pin_set:1;
    unsigned                  pin_ok:1;
    char                     *message_text;  /* the rows for the write */
    char                     *deliveries_text;
} ngx_http_msgr_compose_ctx_t;


static ngx_int_t ngx_http_msgr_compose_read(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_compose_ctx_t *mc);
static void ngx_http_msgr_compose_check(ngx_http_msgr_compose_ctx_t *mc,
    json_t *body, json_t *errors);
static void ngx_http_msgr_compose_when(ngx_http_msgr_compose_ctx_t *mc,
    json_t *v, json_t *errors);
static void ngx_http_msgr_compose_pin(ngx_http_msgr_compose_ctx_t *mc,
    json_t *v, json_t *errors);
static void ngx_http_msgr_compose_to(ngx_http_request_t *r,
    ngx_http_msgr_compose_ctx_t *mc, json_t *to, json_t *errors);
static void ngx_http_msgr_compose_translations(json_t *tr,
    ngx_uint_t email, json_t *errors);
static void ngx_http_msgr_compose_load(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_compose_loaded(ngx_http_msgr_pg_query_t *q);
static ngx_int_t ngx_http_msgr_compose_template(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_compose_ctx_t *mc,
    ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_compose_work(void *data);
static void ngx_http_msgr_compose_run(ngx_http_msgr_compose_ctx_t *mc);
static void ngx_http_msgr_compose_done(ngx_http_request_t *r, void *data);
static void ngx_http_msgr_compose_cleanup(void *data);
static void ngx_http_msgr_compose_write(ngx_http_request_t *r,
    ngx_http_msgr_compose_ctx_t *mc);
static void ngx_http_msgr_compose_pin_needed(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_compose_ctx_t *mc);
static void ngx_http_msgr_compose_written(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pin_failed_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_send_locked(ngx_http_request_t *r,
    const char *until, ngx_int_t retry_after);


/*
 * Everything composing needs, as one document (msgr_compose.h): $4 the
 * key, $5 its Idempotency-Key; then the template $6, when it is this
 * school's (sql/0015).
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_compose = {
    "msgr_compose",
    "SELECT (msgr_compose_data($1, $2::bigint[], $3::bigint[])"
    " || jsonb_build_object("
    "  'pin_hash', (SELECT p.pin_hash FROM msgr_sending_pins p"
    "     WHERE p.school_id = $1),"
    "  'locked', (SELECT jsonb_build_object("
    "     'until', " NGX_HTTP_MSGR_TIME("l.locked_until") ","
    "     'retry_after', ceil(extract(epoch FROM l.locked_until - now())))"
    "     FROM msgr_send_locks l"
    "    WHERE l.school_id = $1 AND l.key_id = $4"
    "      AND l.locked_until > now()),"
    "  'replay', (SELECT jsonb_build_object('body_hash', i.body_hash,"
    "     'status', i.status, 'response', i.response)"
    "     FROM msgr_idempotency i"
    "    WHERE i.school_id = $1 AND i.key_id = $4 AND i.idem_key = $5"
    "      AND i.status <> 0"
    "      AND i.created_at > now() - interval '24 hours')))::text,"
    " (SELECT msgr_template_json(t)::text FROM msgr_templates t"
    "   WHERE t.school_id = $1 AND t.template_id = $6)",
    6, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_send = {
    "msgr_send",
    "SELECT msgr_message_send($1, $2, $3, $4, $5, $6::jsonb,"
    " $7::jsonb)::text",
    7, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pin_failed = {
    "msgr_pin_failed",
    "SELECT msgr_pin_failed($1, $2)::text",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_messages = {
    "msgr_messages",
    "SELECT coalesce(jsonb_agg(msgr_message_json(m)"
    "                          ORDER BY m.message_id DESC), '[]')::text"
    "  FROM (SELECT * FROM msgr_messages"
    "         WHERE school_id = $1"
    "           AND ($2::bigint IS NULL OR message_id < $2)"
    "         ORDER BY message_id DESC LIMIT $3) m",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_message = {
    "msgr_message",
    "SELECT msgr_message_json(m)::text FROM msgr_messages m"
    " WHERE m.school_id = $1 AND m.message_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_deliveries = {
    "msgr_deliveries",
    "SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "   'id', d.delivery_id, 'message_id', d.message_id,"
    "   'recipient_type', d.recipient_type,"
    "   'recipient_id', d.recipient_id, 'channel', d.channel,"
    "   'address', nullif(d.address, ''), 'purpose', d.purpose,"
    "   'language', d.language, 'subject', d.subject, 'body', d.body,"
    "   'cost', d.cost, 'state', d.state, 'attempt', d.attempt,"
    "   'error', d.error, 'provider_id', d.provider_id,"
    "   'run_at', " NGX_HTTP_MSGR_TIME("d.run_at") ","
    "   'sent_at', " NGX_HTTP_MSGR_TIME("d.sent_at") ","
    "   'delivered_at', " NGX_HTTP_MSGR_TIME("d.delivered_at") ","
    "   'read_at', " NGX_HTTP_MSGR_TIME("d.read_at") ")"
    "   ORDER BY d.delivery_id DESC), '[]')"
    "   FROM (SELECT * FROM msgr_deliveries"
    "          WHERE school_id = $1 AND message_id = $2"
    "            AND ($3::text IS NULL OR state = $3)"
    "            AND ($4::text IS NULL OR channel = $4)"
    "            AND ($5::bigint IS NULL OR delivery_id < $5)"
    "          ORDER BY delivery_id DESC LIMIT $6) d)::text"
    "  FROM msgr_messages m"
    " WHERE m.school_id = $1 AND m.message_id = $2",
    6, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_cancel = {
    "msgr_cancel",
    "SELECT m::text FROM msgr_message_cancel($1, $2) AS m",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_defaults = {
    "msgr_send_defaults",
    "SELECT send_to FROM msgr_send_defaults"
    " WHERE school_id = $1 AND key_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pin = {
    "msgr_sending_pin",
    "SELECT jsonb_build_object('pin_set', p.school_id IS NOT NULL,"
    " 'set_by', p.set_by,"
    " 'set_at', " NGX_HTTP_MSGR_TIME("p.set_at") ")::text"
    "  FROM (SELECT 1) AS one"
    "  LEFT JOIN msgr_sending_pins p ON p.school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pin_put = {
    "msgr_sending_pin_put",
    "WITH p AS ("
    "  INSERT INTO msgr_sending_pins (school_id, pin_hash, set_by)"
    "  VALUES ($1, $2, $3)"
    "  ON CONFLICT (school_id) DO UPDATE"
    "  SET pin_hash = excluded.pin_hash, set_by = excluded.set_by,"
    "      set_at = now()"
    "  RETURNING school_id)"
    " INSERT INTO msgr_sending_audit (school_id, actor, event)"
    " SELECT school_id, $3, 'pin_set' FROM p"
    " RETURNING 1",
    3, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_messages_stmts[] = {
    &ngx_http_msgr_stmt_compose,
    &ngx_http_msgr_stmt_send,
    &ngx_http_msgr_stmt_pin_failed,
    &ngx_http_msgr_stmt_messages,
    &ngx_http_msgr_stmt_message,
    &ngx_http_msgr_stmt_deliveries,
    &ngx_http_msgr_stmt_cancel,
    &ngx_http_msgr_stmt_defaults,
    &ngx_http_msgr_stmt_pin,
    &ngx_http_msgr_stmt_pin_put,
    NULL
};


/* POST /v1/messages/preview, POST /v1/messages */

static void
ngx_http_msgr_compose(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgr_compose_ctx_t  *mc;

    mc = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_compose_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (mc == NULL || cln == NULL
        || ngx_array_init(&mc->groups, r->pool, 4, sizeof(int64_t))
           != NGX_OK
        || ngx_array_init(&mc->students, r->pool, 4, sizeof(int64_t))
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_msgr_compose_cleanup;
    cln->data = mc;

    mc->preview = (ctx->route->handler == ngx_http_msgr_compose);
    ctx->data = mc;

    if (ngx_http_msgr_compose_read(r, ctx, mc) != NGX_OK) {
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_compose_load);
}


static ngx_int_t
ngx_http_msgr_compose_read(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_http_msgr_compose_ctx_t *mc)
{
    u_char     h[crypto_generichash_BYTES];
    json_t    *body, *errors;
    ngx_str_t  raw;

    static ngx_str_t  idem = ngx_string("Idempotency-Key");

    static const char *const  allowed[] = {
        "channels", "to", "subject", "body", "sms_body", "voice_body",
        "translations", "routing", "send_at", "pin", "template_id", NULL
    };

    /* the body's bytes name it for Idempotency-Key */

    if (ngx_http_msgr_read_body(r, 0, &raw) != NGX_OK) {
        return NGX_ERROR;
    }

    crypto_generichash(h, sizeof(h), raw.data, raw.len, NULL, 0);
    sodium_bin2hex((char *) mc->hash, sizeof(mc->hash), h, sizeof(h));

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return NGX_ERROR;
    }

    if (!mc->preview
        && ngx_http_msgr_header_in(r, &idem, &mc->idem) == NGX_OK
        && (mc->idem.len == 0 || mc->idem.len > NGX_HTTP_MSGR_IDEM_MAX))
    {
        ngx_http_msgr_field_error(errors, "Idempotency-Key",
                                  "must be 1 to 255 characters");
    }

    ngx_http_msgr_compose_check(mc, body, errors);
    ngx_http_msgr_compose_to(r, mc, json_object_get(body, "to"), errors);

    /*
     * With bad fields the merge tokens are still checked (they need the
     * school's attributes), so that one 422 names every bad field.
     */

    mc->message = body;
    mc->errors = errors;

    return NGX_OK;
}


/* the message's own fields, by the one text rule */

static void
ngx_http_msgr_compose_check(ngx_http_msgr_compose_ctx_t *mc, json_t *body,
    json_t *errors)
{
    size_t          i;
    json_t         *channels, *v;
    ngx_uint_t      email, seen;
    const char     *s;
    msgr_channel_e  ch;

    channels = json_object_get(body, "channels");
    email = 0;
    seen = 0;

    /* a template's texts fill what the message leaves out */

    v = json_object_get(body, "template_id");

    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            ngx_http_msgr_field_error(errors, "template_id",
                                      "must be a template's id");

        } else {
            mc->template_id = json_integer_value(v);
        }
    }

    if (!json_is_array(channels) || json_array_size(channels) == 0) {
        ngx_http_msgr_field_error(errors, "channels",
                                  "must be a list of one or more of: "
                                  "xpressions, sms, voice, email");
    }

    for (i = 0; i < json_array_size(channels); i++) {
        s = json_string_value(json_array_get(channels, i));

        if (s == NULL || msgr_channel_parse(s, &ch) != 0) {
            ngx_http_msgr_field_error(errors, "channels",
                                      "must be a list of one or more of: "
                                      "xpressions, sms, voice, email");
            break;
        }

        if (seen & (1u << ch)) {
            ngx_http_msgr_field_error(errors, "channels",
                                      "names a channel twice");
            break;
        }

        seen |= 1u << ch;
        email |= (ch == MSGR_CHANNEL_EMAIL);
    }

    v = json_object_get(body, "subject");

    if (v != NULL && !json_is_null(v)) {
        (void) ngx_http_msgr_text_field(v, "subject",
                                        NGX_HTTP_MSGR_SUBJECT_MAX,
                                        MSGR_TEXT_REQUIRED, errors);

    } else if (email && mc->template_id == 0) {
        ngx_http_msgr_field_error(errors, "subject",
                                  "is required when email is a channel");
    }

    v = json_object_get(body, "body");

    if (v == NULL) {
        if (mc->template_id == 0) {
            ngx_http_msgr_field_error(errors, "body", "is required");
        }

    } else {
        (void) ngx_http_msgr_text_field(v, "body", NGX_HTTP_MSGR_BODY_MAX,
                                        MSGR_TEXT_REQUIRED
                                        |MSGR_TEXT_MULTILINE, errors);
    }

    v = json_object_get(body, "sms_body");

    if (v != NULL && !json_is_null(v)) {
        (void) ngx_http_msgr_text_field(v, "sms_body", NGX_HTTP_MSGR_SMS_MAX,
                                        MSGR_TEXT_REQUIRED
                                        |MSGR_TEXT_MULTILINE, errors);
    }

    v = json_object_get(body, "voice_body");

    if (v != NULL && !json_is_null(v)) {
        (void) ngx_http_msgr_text_field(v, "voice_body",
                                        NGX_HTTP_MSGR_VOICE_MAX,
                                        MSGR_TEXT_REQUIRED
                                        |MSGR_TEXT_MULTILINE, errors);
    }

    ngx_http_msgr_compose_translations(json_object_get(body, "translations"),
                                       email, errors);

    v = json_object_get(body, "routing");
    s = json_string_value(v);

    if (v != NULL && !json_is_null(v)) {
        msgr_routing_mode_e  mode;

        if (s == NULL || msgr_routing_mode_parse(s, &mode) != 0) {
            ngx_http_msgr_field_error(errors, "routing",
                                      "must be one of: default, least_cost, "
                                      "fastest, custom");
        }
    }

    ngx_http_msgr_compose_when(mc, json_object_get(body, "send_at"),
                               errors);
    ngx_http_msgr_compose_pin(mc, json_object_get(body, "pin"), errors);
}


/* "send_at": now (absent, or passed by a minute at most) or ahead */

static void
ngx_http_msgr_compose_when(ngx_http_msgr_compose_ctx_t *mc, json_t *v,
    json_t *errors)
{
    int64_t      at;
    const char  *s;

    if (v != NULL && !json_is_null(v)) {
        s = json_string_value(v);

        if (s == NULL
            || msgr_timestamp_parse(s, json_string_length(v), &at) != 0)
        {
            ngx_http_msgr_field_error(errors, "send_at",
                                      "must be a time such as "
                                      "2026-09-01T08:00:00Z");

        } else if (at < ngx_time() - 60) {
            ngx_http_msgr_field_error(errors, "send_at",
                                      "must not be in the past");

        } else if (at > ngx_time() + NGX_HTTP_MSGR_SEND_AHEAD) {
            ngx_http_msgr_field_error(errors, "send_at",
                                      "must be at most 90 days ahead");

        } else if (at > ngx_time()) {
            mc->send_at.data = (u_char *) s;
            mc->send_at.len = json_string_length(v);
        }
    }
}


/* "pin": the school's sending PIN, 4 to 12 digits */

static void
ngx_http_msgr_compose_pin(ngx_http_msgr_compose_ctx_t *mc, json_t *v,
    json_t *errors)
{
    size_t       i, j;
    const char  *s;

    if (v != NULL && !json_is_null(v)) {
        s = json_string_value(v);
        j = s ? json_string_length(v) : 0;

        for (i = 0; i < j && s[i] >= '0' && s[i] <= '9'; i++) {
            /* void */
        }

        if (s == NULL || i != j || j < 4 || j > 12) {
            ngx_http_msgr_field_error(errors, "pin",
                                      "must be 4 to 12 digits");

        } else {
            mc->pin.data = (u_char *) s;
            mc->pin.len = j;
        }
    }
}


/* "to": {"groups": [ids], "students": [ids], "send_to": ...} */

static void
ngx_http_msgr_compose_to(ngx_http_request_t *r,
    ngx_http_msgr_compose_ctx_t *mc, json_t *to, json_t *errors)
{
    size_t        i, bad;
    json_t       *v, *list;
    int64_t      *id;
    const char   *key, *s;
    ngx_array_t  *ids;

    static const char *const  lists[] = { "groups", "students", NULL };
    const char *const        *l;

    mc->send_to = MSGR_SEND_PRIMARY_CONTACT;
    bad = json_array_size(errors);

    if (!json_is_object(to)) {
        ngx_http_msgr_field_error(errors, "to",
                                  "must be an object with groups, students "
                                  "and send_to");
        return;
    }

    json_object_foreach(to, key, v) {
        if (ngx_strcmp(key, "groups") != 0
            && ngx_strcmp(key, "students") != 0
            && ngx_strcmp(key, "send_to") != 0)
        {
            ngx_http_msgr_field_error(errors, "to",
                                      "takes only groups, students and "
                                      "send_to");
            return;
        }
    }

    for (l = lists; *l; l++) {
        list = json_object_get(to, *l);
        ids = (*l)[0] == 'g' ? &mc->groups : &mc->students;

        if (list == NULL) {
            continue;
        }

        if (!json_is_array(list)
            || json_array_size(list) > NGX_HTTP_MSGR_IDS_MAX)
        {
            ngx_http_msgr_field_error(errors, (*l)[0] == 'g' ? "to.groups"
                                                             : "to.students",
                                      "must be a list of at most 500 ids");
            continue;
        }

        json_array_foreach(list, i, v) {
            if (!json_is_integer(v) || json_integer_value(v) < 1) {
                ngx_http_msgr_field_error(errors,
                    (*l)[0] == 'g' ? "to.groups" : "to.students",
                    "must be a list of positive integer ids");
                break;
            }

            id = ngx_array_push(ids);
            if (id == NULL) {
                return;
            }

            *id = json_integer_value(v);
        }
    }

    if (mc->groups.nelts == 0 && mc->students.nelts == 0
        && json_array_size(errors) == bad)
    {
        ngx_http_msgr_field_error(errors, "to",
                                  "name at least one group or student");
    }

    v = json_object_get(to, "send_to");

    if (v != NULL) {
        s = json_string_value(v);

        if (s == NULL || msgr_send_to_parse(s, &mc->send_to) != 0) {
            ngx_http_msgr_field_error(errors, "to.send_to",
                                      "must be one of: primary_contact, "
                                      "all_contacts, staff");
        }
    }

    (void) r;
}


/* {"pl": {"subject", "body", "sms_body", "voice_body"}} */

static void
ngx_http_msgr_compose_translations(json_t *tr, ngx_uint_t email,
    json_t *errors)
{
    u_char       field[80];
    json_t      *t, *v;
    const char  *lang, *key;

    if (tr == NULL || json_is_null(tr)) {
        return;
    }

    if (!json_is_object(tr)
        || json_object_size(tr) > NGX_HTTP_MSGR_LANGUAGES_MAX)
    {
        ngx_http_msgr_field_error(errors, "translations",
                                  "must be an object of at most 20 "
                                  "languages, {\"pl\": {\"body\": ...}}");
        return;
    }

    json_object_foreach(tr, lang, t) {

        if (!msgr_text_language(lang, ngx_strlen(lang))) {
            ngx_snprintf(field, sizeof(field) - 1, "translations.%s%Z",
                         lang);
            ngx_http_msgr_field_error(errors, (char *) field,
                                      MSGR_TEXT_LANGUAGE);
            continue;
        }

        if (!json_is_object(t) || json_object_get(t, "body") == NULL) {
            ngx_snprintf(field, sizeof(field) - 1, "translations.%s%Z",
                         lang);
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "must be an object with a body");
            continue;
        }

        json_object_foreach(t, key, v) {
            ngx_snprintf(field, sizeof(field) - 1, "translations.%s.%s%Z",
                         lang, key);

            if (ngx_strcmp(key, "subject") == 0) {
                (void) ngx_http_msgr_text_field(v, (char *) field,
                                                NGX_HTTP_MSGR_SUBJECT_MAX,
                                                MSGR_TEXT_REQUIRED, errors);

            } else if (ngx_strcmp(key, "body") == 0) {
                (void) ngx_http_msgr_text_field(v, (char *) field,
                                                NGX_HTTP_MSGR_BODY_MAX,
                                                MSGR_TEXT_REQUIRED
                                                |MSGR_TEXT_MULTILINE,
                                                errors);

            } else if (ngx_strcmp(key, "sms_body") == 0) {
                (void) ngx_http_msgr_text_field(v, (char *) field,
                                                NGX_HTTP_MSGR_SMS_MAX,
                                                MSGR_TEXT_REQUIRED
                                                |MSGR_TEXT_MULTILINE,
                                                errors);

            } else if (ngx_strcmp(key, "voice_body") == 0) {
                (void) ngx_http_msgr_text_field(v, (char *) field,
                                                NGX_HTTP_MSGR_VOICE_MAX,
                                                MSGR_TEXT_REQUIRED
                                                |MSGR_TEXT_MULTILINE,
                                                errors);

            } else {
                ngx_http_msgr_field_error(errors, (char *) field,
                                          "unknown field; a translation has "
                                          "subject, body, sms_body and "
                                          "voice_body");
            }
        }

        (void) email;
    }
}


/* the page msgr serves for sending.translation_warning_url's default */

static char *
ngx_http_msgr_warning_url(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    u_char     *p, *url;
    size_t      len, prefix;
    ngx_str_t   scheme, host;

    static const char  page[] = "v1/translation-warning";

    ngx_str_set(&scheme, "http");
#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        ngx_str_set(&scheme, "https");
    }
#endif

    host = r->headers_in.server;
    if (host.len == 0) {
        ngx_str_set(&host, "localhost");
    }

    /* the API's location: the URI before the route's path */
    prefix = (r->uri.len >= ctx->path.len) ? r->uri.len - ctx->path.len : 0;

    len = scheme.len + sizeof("://") - 1 + host.len + prefix
          + sizeof(page);

    url = ngx_pnalloc(r->pool, len);
    if (url == NULL) {
        return NULL;
    }

    p = ngx_cpymem(url, scheme.data, scheme.len);
    p = ngx_cpymem(p, "://", 3);
    p = ngx_cpymem(p, host.data, host.len);
    p = ngx_cpymem(p, r->uri.data, prefix);
    ngx_memcpy(p, page, sizeof(page));

    return (char *) url;
}


static void
ngx_http_msgr_compose_load(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_pg_query_t     *q;
    ngx_http_msgr_compose_ctx_t  *mc;

    mc = ctx->data;

    mc->settings = json_deep_copy(settings);
    mc->warning_url = ngx_http_msgr_warning_url(r, ctx);

    if (mc->settings == NULL || mc->warning_url == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    mc->mask = ngx_http_msgr_staff_masked(ctx);

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_compose,
                            ngx_http_msgr_compose_loaded);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_param_ids(q, 1, &mc->groups) != NGX_OK
              || ngx_http_msgr_param_ids(q, 2, &mc->students) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, (u_char *) ctx->key.id,
                                        ngx_strlen(ctx->key.id)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 4, mc->idem.data, mc->idem.len)
                 != NGX_OK
              || (mc->template_id
                  && ngx_http_msgr_pg_param_int(q, 5, mc->template_id)
                     != NGX_OK)))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_compose_loaded(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t           *r;
    ngx_http_msgr_ctx_t          *ctx;
    ngx_http_msgr_compose_ctx_t  *mc;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    mc = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (mc->template_id
        && ngx_http_msgr_compose_template(r, ctx, mc, q) != NGX_OK)
    {
        return;
    }

    /* the thread parses the records: a big school's are megabytes */

    mc->text.len = PQgetlength(q->result, 0, 0);
    mc->text.data = ngx_pnalloc(r->pool, mc->text.len);

    if (mc->text.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(mc->text.data, PQgetvalue(q->result, 0, 0), mc->text.len);

    ngx_http_msgr_today(mc->today);

    ngx_http_msgr_offload(r, ctx, mc, ngx_http_msgr_compose_work,
                          ngx_http_msgr_compose_done);
}


/*
 * The message from a template: what the message does not give, the
 * template gives; a letter's texts are changed only by an administrator,
 * or by another key when sending.allow_template_edit_on_compose is on.
 * NGX_DECLINED: the client has its answer.
 */

static ngx_int_t
ngx_http_msgr_compose_template(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_compose_ctx_t *mc,
    ngx_http_msgr_pg_query_t *q)
{
    u_char        detail[80];
    size_t        i;
    json_t       *tpl, *v, *given;
    ngx_uint_t    letter, edited, email;
    json_error_t  err;

    static const char *const  texts[] = {
        "subject", "body", "sms_body", "voice_body", NULL
    };
    const char *const        *t;

    if (PQgetisnull(q->result, 0, 1)) {
        ngx_snprintf(detail, sizeof(detail) - 1, "no template %L%Z",
                     mc->template_id);
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, (char *) detail,
                              NULL);
        return NGX_DECLINED;
    }

    tpl = json_loads(PQgetvalue(q->result, 0, 1), 0, &err);

    if (ngx_http_msgr_json_keep(r, tpl) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_DECLINED;
    }

    v = json_object_get(tpl, "kind");
    letter = json_is_string(v)
             && ngx_strcmp(json_string_value(v), "letter") == 0;
    edited = 0;

    for (t = texts; *t; t++) {
        given = json_object_get(mc->message, *t);
        v = json_object_get(tpl, *t);

        if (given == NULL || json_is_null(given)) {
            if (json_is_string(v)) {
                json_object_set(mc->message, *t, v);
            }

            continue;
        }

        if (!json_is_string(v) || !json_is_string(given)
            || ngx_strcmp(json_string_value(v), json_string_value(given))
               != 0)
        {
            edited = 1;
        }
    }

    if (letter && edited && ctx->role != NGX_HTTP_MSGR_ROLE_ADMIN
        && !msgr_settings_bool(mc->settings, "sending",
                               "allow_template_edit_on_compose"))
    {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN,
                              "template-edit-forbidden",
                              "this letter template is sent as it is: only "
                              "administrators change its text, unless the "
                              "Sending setting "
                              "sending.allow_template_edit_on_compose is on",
                              json_pack("[{s:s, s:s}]", "field",
                                        "sending.allow_template_edit_on_"
                                        "compose", "message", "is off"));
        return NGX_DECLINED;
    }

    /* what the message must have, now that the template filled it */

    email = 0;

    json_array_foreach(json_object_get(mc->message, "channels"), i, v) {
        email |= (json_is_string(v)
                  && ngx_strcmp(json_string_value(v), "email") == 0);
    }

    if (email && !json_is_string(json_object_get(mc->message, "subject"))) {
        ngx_http_msgr_field_error(mc->errors, "subject",
                                  "is required when email is a channel");
    }

    return NGX_OK;
}


/*
 * In a thread: the records are parsed, the message composed, the PIN
 * checked when the send needs it, and the rows written out as text for
 * msgr_message_send().  Nothing of nginx's is touched.
 */

static void
ngx_http_msgr_compose_work(void *data)
{
    ngx_http_msgr_compose_ctx_t *mc = data;

    json_t  *records, *missing;

    ngx_http_msgr_compose_run(mc);

    if (mc->data == NULL) {
        return;
    }

    /*
     * What the event loop needs to answer, kept small; the big trees are
     * freed here, and a preview is written out here, so that a whole
     * school's send costs the event loop nothing but a copy.
     */

    records = json_object_get(mc->data, "records");
    missing = json_object_get(records, "missing_groups");
    mc->missing = "group";

    if (json_array_size(missing) == 0) {
        missing = json_object_get(records, "missing_students");
        mc->missing = "student";
    }

    mc->missing_id = json_integer_value(json_array_get(missing, 0));

    if (json_array_size(missing) == 0) {
        mc->missing = NULL;
    }

    mc->replay = json_incref(json_object_get(mc->data, "replay"));
    mc->locked = json_incref(json_object_get(mc->data, "locked"));
    mc->pin_set = json_is_string(json_object_get(mc->data, "pin_hash"));

    if (mc->preview && mc->out.rc == 0 && mc->out.result != NULL) {
        mc->answer = json_dumps(mc->out.result, JSON_COMPACT);
    }

    json_decref(mc->out.result);
    json_decref(mc->out.deliveries);
    json_decref(mc->data);
    mc->out.result = NULL;
    mc->out.deliveries = NULL;
    mc->data = NULL;
}


static void
ngx_http_msgr_compose_run(ngx_http_msgr_compose_ctx_t *mc)
{
    json_t             *replay, *hash, *pin, *to;
    json_error_t        err;
    msgr_compose_in_t   in;

    mc->data = json_loadb((char *) mc->text.data, mc->text.len, 0, &err);

    if (mc->data == NULL) {
        mc->parsed = -1;
        return;
    }

    /* an answer given before, or a key that may not send: no work */

    replay = json_object_get(mc->data, "replay");

    if (json_array_size(mc->errors) == 0
        && ((!mc->preview && json_is_object(replay))
        || json_array_size(json_object_get(json_object_get(mc->data,
                           "records"), "missing_groups"))
        || json_array_size(json_object_get(json_object_get(mc->data,
                           "records"), "missing_students"))
        || (!mc->preview && json_is_object(json_object_get(mc->data,
                                                            "locked")))))
    {
        return;
    }

    ngx_memzero(&in, sizeof(msgr_compose_in_t));

    in.check_only = (json_array_size(mc->errors) != 0);
    in.message = mc->message;
    in.data = mc->data;
    in.settings = mc->settings;
    in.send_to = mc->send_to;
    in.today = (char *) mc->today;
    in.warning_url = mc->warning_url;
    in.mask_staff = mc->preview && mc->mask;
    in.deliveries = !mc->preview;

    msgr_compose(&in, &mc->out);

    if (mc->out.rc != 0 || mc->preview || in.check_only) {
        return;
    }

    /* Argon2id, only when the count asks for the PIN */

    hash = json_object_get(mc->data, "pin_hash");
    pin = json_object_get(mc->message, "pin");

    if (mc->out.pin_required && json_is_string(hash) && mc->pin.len
        && crypto_pwhash_str_verify(json_string_value(hash),
                                    json_string_value(pin),
                                    json_string_length(pin))
           == 0)
    {
        mc->pin_ok = 1;
    }

    if (mc->out.pin_required && !mc->pin_ok) {
        return;
    }

    mc->deliveries_text = json_dumps(mc->out.deliveries, JSON_COMPACT);

    /* the message as msgr_message_send() takes it */

    to = json_object_get(mc->message, "to");

    json_object_set_new(mc->message, "send_to",
                        json_string(msgr_send_to_name(mc->send_to)));
    json_object_set_new(mc->message, "groups",
                        json_is_array(json_object_get(to, "groups"))
                        ? json_incref(json_object_get(to, "groups"))
                        : json_array());
    json_object_set_new(mc->message, "students",
                        json_is_array(json_object_get(to, "students"))
                        ? json_incref(json_object_get(to, "students"))
                        : json_array());
    json_object_del(mc->message, "to");
    json_object_set_new(mc->message, "routing_override",
                        json_boolean(json_is_string(
                            json_object_get(mc->message, "routing"))));
    json_object_set_new(mc->message, "send_at",
                        mc->send_at.len
                        ? json_stringn((char *) mc->send_at.data,
                                       mc->send_at.len)
                        : json_null());

    json_object_set(mc->message, "counts",
                    json_object_get(mc->out.result, "counts"));
    json_object_set(mc->message, "cost",
                    json_object_get(mc->out.result, "cost"));
    json_object_set(mc->message, "routing",
                    json_object_get(mc->out.result, "routing"));
    json_object_set_new(mc->message, "pin_used",
                        json_boolean(mc->out.pin_required));
    json_object_del(mc->message, "pin");

    mc->message_text = json_dumps(mc->message, JSON_COMPACT);
}


static void
ngx_http_msgr_compose_cleanup(void *data)
{
    ngx_http_msgr_compose_ctx_t *mc = data;

    msgr_compose_free(&mc->out);
    json_decref(mc->data);
    json_decref(mc->settings);
    json_decref(mc->replay);
    json_decref(mc->locked);
    free(mc->answer);
    free(mc->message_text);
    free(mc->deliveries_text);
}


static void
ngx_http_msgr_compose_done(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_compose_ctx_t *mc = data;

    u_char                 detail[160];
    json_t                *replay, *locked, *v;
    ngx_http_msgr_ctx_t   *ctx;

    static ngx_str_t  replayed = ngx_string("true");

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (mc->parsed != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: the records of a send could not be read");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* every bad field, its merge tokens included; nothing is written */

    if (json_array_size(mc->errors)) {
        json_array_extend(mc->errors, mc->out.errors);
        ngx_http_msgr_invalid(r, mc->errors);
        return;
    }

    /* another school's ids, or retired ones, are not found */

    if (mc->missing != NULL) {
        ngx_snprintf(detail, sizeof(detail) - 1, "no %s %L%Z", mc->missing,
                     mc->missing_id);
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, (char *) detail,
                              NULL);
        return;
    }

    replay = mc->preview ? NULL : mc->replay;

    if (json_is_object(replay)) {
        v = json_object_get(replay, "body_hash");

        if (!json_is_string(v)
            || ngx_strcmp(json_string_value(v), mc->hash) != 0)
        {
            ngx_http_msgr_problem(r, 422, "idempotency-key-reused",
                                  "this Idempotency-Key was used with "
                                  "another body in the last 24 hours", NULL);
            return;
        }

        if (ngx_http_msgr_header(r, "Idempotent-Replayed", &replayed)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_msgr_send_json(r, json_integer_value(
                                       json_object_get(replay, "status")),
                                json_incref(json_object_get(replay,
                                                            "response")));
        return;
    }

    locked = mc->preview ? NULL : mc->locked;

    if (json_is_object(locked)) {
        ngx_http_msgr_send_locked(r,
            json_string_value(json_object_get(locked, "until")),
            (ngx_int_t) json_number_value(json_object_get(locked,
                                                          "retry_after")));
        return;
    }

    if (mc->out.rc == 1) {
        ngx_http_msgr_invalid(r, mc->out.errors);
        return;
    }

    if (mc->out.rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: composing a message failed: %s",
                      mc->out.why ? mc->out.why : "out of memory");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (mc->preview) {
        if (mc->answer == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_msgr_send_raw(r, NGX_HTTP_OK, &ngx_http_msgr_json_type,
                               (u_char *) mc->answer,
                               ngx_strlen(mc->answer));
        return;
    }

    if (mc->out.pin_required && !mc->pin_ok) {
        ngx_http_msgr_compose_pin_needed(r, ctx, mc);
        return;
    }

    ngx_http_msgr_compose_write(r, mc);
}


/* a send over the PIN threshold without the right PIN */

static void
ngx_http_msgr_compose_pin_needed(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_compose_ctx_t *mc)
{
    u_char                     detail[160];
    ngx_http_msgr_pg_query_t  *q;

    if (!mc->pin_set) {
        ngx_snprintf(detail, sizeof(detail) - 1,
                     "this message counts %L SMS, email and voice "
                     "messages, more than sending.pin_threshold; the "
                     "school has no sending PIN yet%Z",
                     mc->out.pin_counted);
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "pin-required",
                              (char *) detail,
                              json_pack("[{s:s, s:s}]", "field", "pin",
                                        "message", "an administrator "
                                        "sets one with PUT "
                                        "/v1/sending-pin"));
        return;
    }

    if (mc->pin.len == 0) {
        ngx_snprintf(detail, sizeof(detail) - 1,
                     "this message counts %L SMS, email and voice "
                     "messages, more than sending.pin_threshold: send "
                     "it with the school's sending PIN%Z",
                     mc->out.pin_counted);
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "pin-required",
                              (char *) detail,
                              json_pack("[{s:s, s:s}]", "field", "pin",
                                        "message", "is required"));
        return;
    }

    /* a wrong PIN counts towards the key's lockout */

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pin_failed,
                            ngx_http_msgr_pin_failed_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                        ngx_strlen(ctx->key.id))
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_compose_write(ngx_http_request_t *r,
    ngx_http_msgr_compose_ctx_t *mc)
{
    const char                *role;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (mc->message_text == NULL || mc->deliveries_text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    role = (ctx->role == NGX_HTTP_MSGR_ROLE_ADMIN) ? "admin"
           : (ctx->role == NGX_HTTP_MSGR_ROLE_STAFF) ? "staff"
           : "integrator";

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_send,
                            ngx_http_msgr_compose_written);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                        ngx_strlen(ctx->key.id)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) role,
                                        ngx_strlen(role)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, mc->idem.data, mc->idem.len)
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 4, mc->hash,
                                        ngx_strlen(mc->hash)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 5, (u_char *) mc->message_text,
                                        ngx_strlen(mc->message_text))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 6, (u_char *) mc->deliveries_text,
                                        ngx_strlen(mc->deliveries_text))
                 != NGX_OK))
    {
        q = NULL;
    }

    /* the parameters are copies: the texts can go now */

    free(mc->message_text);
    free(mc->deliveries_text);
    mc->message_text = NULL;
    mc->deliveries_text = NULL;

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_compose_written(ngx_http_msgr_pg_query_t *q)
{
    json_t              *answer, *status;
    ngx_http_request_t  *r;

    static ngx_str_t  replayed = ngx_string("true");

    r = q->data;

    answer = ngx_http_msgr_result_json(r, q);
    if (answer == NULL) {
        return;
    }

    status = json_object_get(answer, "status");

    if (json_object_get(answer, "error")) {
        /* a request with the same key committed first, with another body */
        ngx_http_msgr_problem(r, 422, "idempotency-key-reused",
                              "this Idempotency-Key was used with another "
                              "body in the last 24 hours", NULL);
        return;
    }

    if (json_is_true(json_object_get(answer, "replayed"))
        && ngx_http_msgr_header(r, "Idempotent-Replayed", &replayed)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_json(r, json_integer_value(status),
                            json_incref(json_object_get(answer, "message")));
}


static void
ngx_http_msgr_pin_failed_done(ngx_http_msgr_pg_query_t *q)
{
    u_char               detail[96];
    json_t              *answer, *left;
    ngx_http_request_t  *r;

    r = q->data;

    answer = ngx_http_msgr_result_json(r, q);
    if (answer == NULL) {
        return;
    }

    left = json_object_get(answer, "attempts_left");

    if (left == NULL) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "msgr: five wrong sending PINs: the key's sending is "
                      "locked until %s",
                      json_string_value(json_object_get(answer,
                                                        "locked_until")));

        ngx_http_msgr_send_locked(r,
            json_string_value(json_object_get(answer, "locked_until")),
            (ngx_int_t) json_integer_value(json_object_get(answer,
                                                           "retry_after")));
        return;
    }

    ngx_snprintf(detail, sizeof(detail) - 1,
                 "the sending PIN is not right; %L more wrong PINs lock "
                 "sending for 15 minutes%Z",
                 (int64_t) json_integer_value(left));

    ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "pin-incorrect",
                          (char *) detail,
                          json_pack("[{s:s, s:s}]", "field", "pin",
                                    "message", "is not the school's "
                                    "sending PIN"));
}


/* 429: this key may not send until then */

static void
ngx_http_msgr_send_locked(ngx_http_request_t *r, const char *until,
    ngx_int_t retry_after)
{
    u_char     detail[160], buf[NGX_INT_T_LEN];
    ngx_str_t  value;

    if (retry_after < 1) {
        retry_after = 1;
    }

    value.data = buf;
    value.len = ngx_sprintf(buf, "%i", retry_after) - buf;

    ngx_snprintf(detail, sizeof(detail) - 1,
                 "five wrong sending PINs: this key may not send until "
                 "%s%Z", until ? until : "later");

    if (ngx_http_msgr_header(r, "Retry-After", &value) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_problem(r, NGX_HTTP_TOO_MANY_REQUESTS, "send-locked",
                          (char *) detail, NULL);
}


/* GET /v1/messages?before=&limit=, POST /v1/messages */

static void
ngx_http_msgr_messages(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    if (r->method == NGX_HTTP_POST) {
        ngx_http_msgr_compose(r, ctx);
        return;
    }

    ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_messages, 0,
                             ngx_http_msgr_page_done);
}


/* GET /v1/messages/defaults */

static void ngx_http_msgr_defaults_load(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_defaults_done(ngx_http_msgr_pg_query_t *q);


static void
ngx_http_msgr_message_defaults(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_defaults_load);
}


static void
ngx_http_msgr_defaults_load(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_pg_query_t  *q;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_defaults,
                            ngx_http_msgr_defaults_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                        ngx_strlen(ctx->key.id)) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_defaults_done(ngx_http_msgr_pg_query_t *q)
{
    const char           *send_to, *from;
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    send_to = msgr_send_to_name(MSGR_SEND_PRIMARY_CONTACT);
    from = "sending.default_send_to";

    if (msgr_settings_is(ctx->settings, "sending", "default_send_to",
                         "last_chosen")
        && PQntuples(q->result) == 1)
    {
        send_to = PQgetvalue(q->result, 0, 0);
        from = "last_chosen";
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
        json_pack("{s:s, s:s, s:s}", "send_to", send_to, "from", from,
                  "routing", msgr_settings_string(ctx->settings, "sending",
                                                  "advanced_routing")));
}


/* GET /v1/messages/{id} */

static void
ngx_http_msgr_message(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ctx->not_found = "no such message";

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_message,
                                  ngx_http_msgr_json_done);
}


/* GET /v1/messages/{id}/deliveries?state=&channel=&before=&limit= */

static void
ngx_http_msgr_message_deliveries(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    id, before;
    json_t                    *errors;
    ngx_str_t                  state, channel;
    msgr_channel_e             ch;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  states[] = {
        "scheduled", "queued", "sending", "sent", "delivered", "read",
        "cancelled", "temporary-failure", "permanent-failure",
        "technical-failure", NULL
    };

    if (ngx_http_msgr_page_args(r, ctx, &before) != NGX_OK) {
        return;
    }

    errors = json_array();

    if (ngx_http_msgr_json_keep(r, errors) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_msgr_arg(r, "state", &state) != NGX_OK) {
        state.data = NULL;
        state.len = 0;

    } else if (msgr_text_choice(states, (char *) state.data, state.len) < 0)
    {
        ngx_http_msgr_field_error(errors, "state",
                                  "must be one of: scheduled, queued, "
                                  "sending, sent, delivered, read, "
                                  "cancelled, temporary-failure, "
                                  "permanent-failure, technical-failure");
    }

    if (ngx_http_msgr_arg(r, "channel", &channel) != NGX_OK) {
        channel.data = NULL;
        channel.len = 0;

    } else if (msgr_channel_parse((char *) channel.data, &ch) != 0) {
        ngx_http_msgr_field_error(errors, "channel",
                                  "must be one of: xpressions, sms, voice, "
                                  "email");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_bad_args(r, errors);
        return;
    }

    ctx->not_found = "no such message";
    id = ngx_http_msgr_id(&ctx->args[0]);

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_deliveries,
                            ngx_http_msgr_page_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, state.data, state.len)
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, channel.data, channel.len)
                 != NGX_OK
              || (before
                  && ngx_http_msgr_pg_param_int(q, 4, before) != NGX_OK)
              || ngx_http_msgr_pg_param_int(q, 5, ctx->limit) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* POST /v1/messages/{id}/cancel */

static void
ngx_http_msgr_message_cancel(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_discard_request_body(r);

    ctx->not_found = "no such message";

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_cancel,
                                  ngx_http_msgr_json_done);
}


/*
 * GET /v1/sending-pin: whether one is set, when and by which key;
 * PUT /v1/sending-pin {"pin": "4 to 12 digits"}: only its Argon2id hash is
 * kept, made in the thread pool.
 */

typedef struct {
    char                      pin[16];
    char                      hash[crypto_pwhash_STRBYTES];
    int                       rc;
} ngx_http_msgr_pin_work_t;


static void ngx_http_msgr_pin_hash(void *data);
static void ngx_http_msgr_pin_hashed(ngx_http_request_t *r, void *data);


static void
ngx_http_msgr_sending_pin(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    size_t                     i, len;
    json_t                    *body, *errors, *pin;
    const char                *s;
    ngx_http_msgr_pin_work_t  *w;

    static const char *const  allowed[] = { "pin", NULL };

    if (r->method != NGX_HTTP_PUT) {
        ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_pin,
                                   ngx_http_msgr_json_done);
        return;
    }

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    pin = json_object_get(body, "pin");
    s = json_string_value(pin);
    len = s ? json_string_length(pin) : 0;

    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        /* void */
    }

    if (s == NULL || i != len || len < 4 || len > 12) {
        ngx_http_msgr_field_error(errors, "pin", "must be 4 to 12 digits");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    w = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_pin_work_t));
    if (w == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(w->pin, s, len);

    ngx_http_msgr_offload_only(r, ctx, w, ngx_http_msgr_pin_hash,
                               ngx_http_msgr_pin_hashed);
}


static void
ngx_http_msgr_pin_hash(void *data)
{
    ngx_http_msgr_pin_work_t *w = data;

    w->rc = crypto_pwhash_str_alg(w->hash, w->pin, strlen(w->pin),
                                  crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                  crypto_pwhash_ALG_ARGON2ID13);

    sodium_memzero(w->pin, sizeof(w->pin));
}


static void
ngx_http_msgr_pin_hashed(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_pin_work_t *w = data;

    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (w->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: the sending PIN could not be hashed "
                      "(out of memory)");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pin_put,
                            ngx_http_msgr_no_content_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) w->hash,
                                        ngx_strlen(w->hash)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) ctx->key.id,
                                        ngx_strlen(ctx->key.id)) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* GET /v1/translation-warning: what a translated message's link says */

static void
ngx_http_msgr_translation_page(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    static ngx_str_t  type = ngx_string("text/html; charset=utf-8");

    static u_char  page[] =
        "<!DOCTYPE html>\n"
        "<html lang=\"en\">\n"
        "<head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width\">"
        "<title>This message was translated</title></head>\n"
        "<body>\n"
        "<h1>This message was translated</h1>\n"
        "<p>Your school wrote this message in its own language and sent it "
        "to you translated into yours. A translation can miss or change "
        "what was meant, above all names, dates, times and amounts.</p>\n"
        "<p>If anything in it is unclear or important, please contact the "
        "school to check, or ask for the message in its original "
        "language.</p>\n"
        "</body>\n"
        "</html>\n";

    ngx_http_discard_request_body(r);

    ngx_http_msgr_send_raw(r, NGX_HTTP_OK, &type, page, sizeof(page) - 1);
}

/*
 * msgr: the dial-in webhooks: staff broadcast by phone or text with a
 * pincode, without signing in (Twilio-compatible, answers in TwiML).
 *
 *   POST /v1/dial-in/sms     Body "PINCODE OPTION message text"
 *   POST /v1/dial-in/voice   ?step= (none), pin, option, recorded, confirm
 *
 * Every request is signed (X-Twilio-Signature, src/msgr_twilio.c) with
 * msgr_twilio_auth_token over msgr_twilio_callback_url (else the request's
 * own scheme and Host) and the request URI; 403 otherwise.  The caller's
 * number must be permitted by a pincode whose code (Argon2id, checked in
 * the thread pool) matches; three wrong codes from a number in 10 minutes
 * lock it out for 30 (sql/0016_emergency.sql).  A call carries its state
 * from one webhook to the next in the action URLs' query (step, pincode,
 * option, recording), which Twilio's signature covers; each step checks
 * again that the caller's number may use the pincode.  The broadcast is
 * composed in the thread pool and written by msgr_pincode_broadcast() at
 * the emergency priority.  docs/emergency.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_thread.h"
#include "ngx_http_msgr_settings.h"
#include "ngx_http_msgr_pincodes.h"
#include "msgr_buf.h"
#include "msgr_compose.h"
#include "msgr_twilio.h"


#define NGX_HTTP_MSGR_TWIML_USAGE                                            \
    "To send an emergency message, text: PINCODE OPTION message"

#define NGX_HTTP_MSGR_TWIML_REFUSED                                          \
    "<Say>Sorry, that pincode cannot be used. Goodbye.</Say><Hangup/>"

#define NGX_HTTP_MSGR_SMS_TEXT_MAX  1600
#define NGX_HTTP_MSGR_URL_MAX       2000

static ngx_str_t  ngx_http_msgr_twiml_type = ngx_string("text/xml");

/* a literal piece of TwiML */
#define NGX_HTTP_MSGR_TWIML_ADD(b, lit)                                      \
    (void) msgr_buf_add(b, lit, sizeof(lit) - 1)


/* where a call is: the action URL's "step" */
typedef enum {
    NGX_HTTP_MSGR_STEP_CALL = 0,    /* a new call: ask for the pincode */
    NGX_HTTP_MSGR_STEP_PIN,         /* the pincode's digits */
    NGX_HTTP_MSGR_STEP_OPTION,      /* the menu option's digit */
    NGX_HTTP_MSGR_STEP_RECORDED,    /* the recording: replay, confirm */
    NGX_HTTP_MSGR_STEP_CONFIRM      /* 1 sends it, else record again */
} ngx_http_msgr_step_e;

static ngx_str_t  ngx_http_msgr_steps[] = {
    ngx_null_string,
    ngx_string("pin"),
    ngx_string("option"),
    ngx_string("recorded"),
    ngx_string("confirm")
};


static void ngx_http_msgr_dial_in(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_dial_in_routes[] = {

    { NGX_HTTP_POST, "v1/dial-in/sms", 0, ngx_http_msgr_dial_in },

    { NGX_HTTP_POST, "v1/dial-in/voice", 0, ngx_http_msgr_dial_in },

    { 0, NULL, 0, NULL }
};


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_dial_in_lookup = {
    "msgr_dial_in_lookup",
    "SELECT msgr_dial_in_lookup($1)::text",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* the attempt, and the pincode as the caller may use it (NULL: not) */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_dial_in_attempt = {
    "msgr_dial_in_attempt",
    "SELECT msgr_dial_in_attempt($1, $2, $3, $4)::text,"
    " (SELECT x::text FROM msgr_dial_in_pincode($4, $1) AS x)",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* a later step of a call: the pincode, if the caller may still use it */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_dial_in_pincode = {
    "msgr_dial_in_pincode",
    "SELECT '{}', x::text FROM msgr_dial_in_pincode($1, $2) AS x",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_dial_in_data = {
    "msgr_dial_in_data",
    "SELECT msgr_compose_data($1,"
    " ARRAY(SELECT jsonb_array_elements_text($2::jsonb)::bigint),"
    " '{}')::text",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_dial_in_send = {
    "msgr_dial_in_send",
    "SELECT msgr_pincode_broadcast($1, $2, $3, $4::jsonb, $5::jsonb)::text",
    5, NGX_HTTP_MSGR_PG_WRITE, 0
};


ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_dial_in_stmts[] = {
    &ngx_http_msgr_stmt_dial_in_lookup,
    &ngx_http_msgr_stmt_dial_in_attempt,
    &ngx_http_msgr_stmt_dial_in_pincode,
    &ngx_http_msgr_stmt_dial_in_data,
    &ngx_http_msgr_stmt_dial_in_send,
    NULL
};


typedef struct {
    unsigned                  voice:1;
    ngx_http_msgr_step_e      step;
    msgr_twilio_form_t        form;
    const char               *from;
    char                      code[16];
    ngx_int_t                 digit;
    ngx_str_t                 text;         /* SMS text, recording URL */
    int64_t                   pincode;      /* 0: not yet known */
    json_t                   *pin;          /* msgr_dial_in_pincode() */
    json_t                   *option;

    /* the thread's: candidates in, the match or the broadcast out */
    json_t                   *lookup;
    json_t                   *settings;
    char                     *data_text;
    msgr_compose_out_t        out[2];       /* contacts, staff */
    char                     *message_text;
    char                     *deliveries_text;
    int64_t                   recipients;
    u_char                    today[NGX_HTTP_MSGR_TODAY_LEN];
    int                       failed;
} ngx_http_msgr_dial_in_t;


static ngx_int_t ngx_http_msgr_dial_in_read(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_sms_parse(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_lookup(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_looked_up(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_dial_in_verify(void *data);
static void ngx_http_msgr_dial_in_verified(ngx_http_request_t *r,
    void *data);
static void ngx_http_msgr_dial_in_attempted(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_dial_in_option(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_settings(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_dial_in_loaded(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_dial_in_compose(void *data);
static void ngx_http_msgr_dial_in_composed(ngx_http_request_t *r,
    void *data);
static void ngx_http_msgr_dial_in_sent(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_dial_in_refused(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_voice(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_voice_next(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_menu(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_record(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d);
static void ngx_http_msgr_dial_in_replay(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d, const char *url, size_t len);
static void ngx_http_msgr_twiml_action(msgr_buf_t *b, ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d, ngx_http_msgr_step_e step, ngx_str_t *rec);
static void ngx_http_msgr_twiml_text(msgr_buf_t *b, const char *s,
    size_t len);
static void ngx_http_msgr_twiml_send(ngx_http_request_t *r, msgr_buf_t *b);
static void ngx_http_msgr_twiml(ngx_http_request_t *r, const char *fmt,
    ...);
static void ngx_http_msgr_dial_in_cleanup(void *data);


static void
ngx_http_msgr_dial_in(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_pool_cleanup_t       *cln;
    ngx_http_msgr_dial_in_t  *d;

    d = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_dial_in_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (d == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_msgr_dial_in_cleanup;
    cln->data = d;
    ctx->data = d;

    if (ngx_http_msgr_dial_in_read(r, ctx, d) != NGX_OK) {
        return;
    }

    if (ctx->path.data[ctx->path.len - 1] == 's') {
        ngx_http_msgr_dial_in_sms_parse(r, d);
        return;
    }

    d->voice = 1;
    ngx_http_msgr_dial_in_voice(r, d);
}


/* the form, its signature, the caller */

static ngx_int_t
ngx_http_msgr_dial_in_read(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_http_msgr_dial_in_t *d)
{
    if (ngx_http_msgr_twilio_form(r, ctx, &d->form) != NGX_OK) {
        return NGX_ERROR;
    }

    d->from = msgr_twilio_form_get(&d->form, "From", NULL);

    if (d->from == NULL) {
        d->from = "";
    }

    return NGX_OK;
}


/* "PINCODE OPTION message text"; anything else gets the usage reply */

static void
ngx_http_msgr_dial_in_sms_parse(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    size_t       len, i, n;
    const char  *s, *end;

    s = msgr_twilio_form_get(&d->form, "Body", &len);
    if (s == NULL) {
        goto usage;
    }

    end = s + len;

    while (s < end && (*s == ' ' || *s == '\n' || *s == '\r')) {
        s++;
    }

    for (n = 0; s + n < end && s[n] >= '0' && s[n] <= '9'; n++) {
        /* void */
    }

    if (n < 4 || n >= sizeof(d->code) || s + n == end || s[n] != ' ') {
        goto usage;
    }

    ngx_memcpy(d->code, s, n);
    s += n;

    while (s < end && *s == ' ') {
        s++;
    }

    if (end - s < 2 || *s < '1' || *s > '9' || s[1] != ' ') {
        goto usage;
    }

    d->digit = *s - '0';
    s += 2;

    while (s < end && (*s == ' ' || *s == '\n' || *s == '\r')) {
        s++;
    }

    while (end > s && (end[-1] == ' ' || end[-1] == '\n'
                       || end[-1] == '\r'))
    {
        end--;
    }

    for (i = 0; s + i < end; i++) {
        if (s[i] == '\0') {
            goto usage;
        }
    }

    if (s == end || (size_t) (end - s) > NGX_HTTP_MSGR_SMS_TEXT_MAX) {
        goto usage;
    }

    d->text.data = (u_char *) s;
    d->text.len = end - s;

    ngx_http_msgr_dial_in_lookup(r, d);
    return;

usage:

    ngx_http_msgr_twiml(r, "<Message>%s</Message>",
                        NGX_HTTP_MSGR_TWIML_USAGE);
}


static void
ngx_http_msgr_dial_in_lookup(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    ngx_http_msgr_pg_query_t  *q;

    /* no caller's number in E.164: nobody's */
    if (d->from[0] != '+') {
        ngx_http_msgr_dial_in_refused(r, d);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_dial_in_lookup,
                            ngx_http_msgr_dial_in_looked_up);

    if (q && ngx_http_msgr_pg_param(q, 0, (u_char *) d->from,
                                    ngx_strlen(d->from)) != NGX_OK)
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_dial_in_looked_up(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_dial_in_t  *d;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    d = ctx->data;

    d->lookup = ngx_http_msgr_result_json(r, q);
    if (d->lookup == NULL) {
        return;
    }

    ngx_http_msgr_offload(r, ctx, d, ngx_http_msgr_dial_in_verify,
                          ngx_http_msgr_dial_in_verified);
}


/* in a thread: the code against each candidate's Argon2id hash */

static void
ngx_http_msgr_dial_in_verify(void *data)
{
    ngx_http_msgr_dial_in_t *d = data;

    size_t   i;
    json_t  *c;

    if (!json_is_null(json_object_get(d->lookup, "locked"))) {
        return;
    }

    json_array_foreach(json_object_get(d->lookup, "candidates"), i, c) {
        if (crypto_pwhash_str_verify(
                json_string_value(json_object_get(c, "hash")),
                d->code, strlen(d->code)) == 0)
        {
            d->pincode = json_integer_value(json_object_get(c, "id"));
            break;
        }
    }

    sodium_memzero(d->code, sizeof(d->code));
}


static void
ngx_http_msgr_dial_in_verified(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_dial_in_t *d = data;

    const char                *outcome, *channel;
    ngx_http_msgr_pg_query_t  *q;

    outcome = d->pincode ? "accepted"
              : json_is_null(json_object_get(d->lookup, "locked")) ? "wrong"
              : "locked";
    channel = d->voice ? "voice" : "sms";

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_dial_in_attempt,
                            ngx_http_msgr_dial_in_attempted);

    if (q && (ngx_http_msgr_pg_param(q, 0, (u_char *) d->from,
                                     ngx_strlen(d->from)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) channel,
                                        ngx_strlen(channel)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) outcome,
                                        ngx_strlen(outcome)) != NGX_OK
              || (d->pincode
                  && ngx_http_msgr_pg_param_int(q, 3, d->pincode)
                     != NGX_OK)))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* the attempt recorded; the pincode as the caller may use it, or NULL */

static void
ngx_http_msgr_dial_in_attempted(ngx_http_msgr_pg_query_t *q)
{
    json_t                   *pin;
    json_error_t              err;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_dial_in_t  *d;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    d = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1 || PQgetisnull(q->result, 0, 1)) {
        ngx_http_msgr_dial_in_refused(r, d);
        return;
    }

    pin = json_loads(PQgetvalue(q->result, 0, 1), 0, &err);

    if (pin == NULL || ngx_http_msgr_json_keep(r, pin) != NGX_OK) {
        json_decref(pin);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    d->pin = pin;
    d->pincode = json_integer_value(json_object_get(pin, "id"));
    ctx->school_id = json_integer_value(json_object_get(pin, "school"));

    if (d->voice) {
        ngx_http_msgr_dial_in_voice_next(r, d);
        return;
    }

    ngx_http_msgr_dial_in_option(r, d);
}


/* the option of the text: its groups and channels; then the school's */

static void
ngx_http_msgr_dial_in_option(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    size_t                i;
    json_t               *o;
    ngx_http_msgr_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    json_array_foreach(json_object_get(d->pin, "options"), i, o) {
        if (json_integer_value(json_object_get(o, "digit")) == d->digit) {
            d->option = o;
        }
    }

    if (d->option == NULL) {
        ngx_http_msgr_dial_in_refused(r, d);
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_dial_in_settings);
}


static void
ngx_http_msgr_dial_in_settings(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings)
{
    ngx_http_msgr_dial_in_t   *d;
    ngx_http_msgr_pg_query_t  *q;

    d = ctx->data;

    d->settings = json_deep_copy(settings);
    if (d->settings == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_dial_in_data,
                            ngx_http_msgr_dial_in_loaded);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_param_json(q, 1,
                     json_object_get(d->option, "groups")) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_dial_in_loaded(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_dial_in_t  *d;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    d = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    d->data_text = strdup(PQgetvalue(q->result, 0, 0));
    if (d->data_text == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_today(d->today);

    ngx_http_msgr_offload(r, ctx, d, ngx_http_msgr_dial_in_compose,
                          ngx_http_msgr_dial_in_composed);
}


/*
 * In a thread: the text to the option's groups, their contacts by the
 * school's routing (send_to primary_contact) and their staff, and the
 * message and rows as msgr_pincode_broadcast() takes them.
 */

static void
ngx_http_msgr_dial_in_compose(void *data)
{
    ngx_http_msgr_dial_in_t *d = data;

    json_t             *data_json, *message, *rows, *counts;
    ngx_uint_t          i;
    json_error_t        err;
    msgr_compose_in_t   in;

    static const msgr_send_to_e  to[2] = {
        MSGR_SEND_PRIMARY_CONTACT, MSGR_SEND_STAFF
    };

    d->failed = 1;

    data_json = json_loads(d->data_text, 0, &err);
    /* a recording can only be played: voice */
    message = d->voice
              ? json_pack("{s:[s], s:s%, s:s%}", "channels", "voice",
                          "body", d->text.data, d->text.len,
                          "voice_body", d->text.data, d->text.len)
              : json_pack("{s:O, s:s%}", "channels",
                          json_object_get(d->option, "channels"),
                          "body", d->text.data, d->text.len);
    rows = json_array();

    if (data_json == NULL || message == NULL || rows == NULL) {
        goto done;
    }

    for (i = 0; i < 2; i++) {
        memset(&in, 0, sizeof(msgr_compose_in_t));

        in.message = message;
        in.data = data_json;
        in.settings = d->settings;
        in.send_to = to[i];
        in.today = (char *) d->today;
        in.warning_url = "";
        in.deliveries = 1;

        msgr_compose(&in, &d->out[i]);

        if (d->out[i].rc != 0) {
            goto done;
        }

        json_array_extend(rows, d->out[i].deliveries);
        d->recipients += json_integer_value(json_object_get(
                             json_object_get(d->out[i].result, "counts"),
                             "recipients"));
    }

    counts = json_deep_copy(json_object_get(d->out[0].result, "counts"));

    if (counts == NULL) {
        goto done;
    }

    json_object_set_new(counts, "recipients", json_integer(d->recipients));
    json_object_set(counts, "staff", json_object_get(json_object_get(
                        d->out[1].result, "counts"), "recipients"));

    json_object_set_new(message, "send_to", json_string("primary_contact"));
    json_object_set(message, "groups", json_object_get(d->option, "groups"));
    json_object_set_new(message, "students", json_array());
    json_object_set(message, "routing",
                    json_object_get(d->out[0].result, "routing"));
    json_object_set_new(message, "counts", counts);
    json_object_set(message, "cost",
                    json_object_get(d->out[0].result, "cost"));

    d->message_text = json_dumps(message, JSON_COMPACT);
    d->deliveries_text = json_dumps(rows, JSON_COMPACT);

    d->failed = (d->message_text == NULL || d->deliveries_text == NULL);

done:

    json_decref(data_json);
    json_decref(message);
    json_decref(rows);
}


static void
ngx_http_msgr_dial_in_composed(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_dial_in_t *d = data;

    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (d->failed) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: a broadcast of pincode %L could not be "
                      "composed: %s", d->pincode,
                      d->out[0].why ? d->out[0].why
                      : d->out[1].why ? d->out[1].why : "out of memory");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_dial_in_send,
                            ngx_http_msgr_dial_in_sent);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, d->pincode) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) (d->voice ? "true"
                                                                : "false"),
                                        d->voice ? 4 : 5) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, (u_char *) d->message_text,
                                        ngx_strlen(d->message_text))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 4, (u_char *) d->deliveries_text,
                                        ngx_strlen(d->deliveries_text))
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_dial_in_sent(ngx_http_msgr_pg_query_t *q)
{
    json_t                   *message;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_dial_in_t  *d;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    d = ctx->data;

    message = ngx_http_msgr_result_json(r, q);
    if (message == NULL) {
        return;
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "msgr: pincode %L broadcast message %L of school %L to "
                  "%L recipients", d->pincode,
                  (int64_t) json_integer_value(json_object_get(message,
                                                               "id")),
                  ctx->school_id, d->recipients);

    if (d->voice) {
        ngx_http_msgr_twiml(r, "<Say>Your message is going to %L "
                            "recipient%s. Goodbye.</Say><Hangup/>",
                            d->recipients, d->recipients == 1 ? "" : "s");
        return;
    }

    ngx_http_msgr_twiml(r, "<Message>Your message is going to %L "
                        "recipient%s.</Message>", d->recipients,
                        d->recipients == 1 ? "" : "s");
}


/* a wrong code, a number not permitted, locked out, a bad option: alike */

static void
ngx_http_msgr_dial_in_refused(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    if (d->voice) {
        ngx_http_msgr_twiml(r, NGX_HTTP_MSGR_TWIML_REFUSED);
        return;
    }

    ngx_http_msgr_twiml(r, "<Message>%s</Message>",
                        NGX_HTTP_MSGR_TWIML_USAGE);
}


/* a fixed answer, fmt's strings TwiML already (no user text) */

static void
ngx_http_msgr_twiml(ngx_http_request_t *r, const char *fmt, ...)
{
    u_char      buf[256], *p;
    va_list     args;
    msgr_buf_t  b;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    ngx_memzero(&b, sizeof(msgr_buf_t));
    (void) msgr_buf_add(&b, buf, p - buf);

    ngx_http_msgr_twiml_send(r, &b);
}


static void
ngx_http_msgr_dial_in_cleanup(void *data)
{
    ngx_http_msgr_dial_in_t *d = data;

    msgr_compose_free(&d->out[0]);
    msgr_compose_free(&d->out[1]);
    json_decref(d->settings);
    free(d->data_text);
    free(d->message_text);
    free(d->deliveries_text);
    sodium_memzero(d->code, sizeof(d->code));
}


/*
 * A call's webhook.  A new call is asked for its pincode; the pincode's
 * digits are checked like a text's; a later step reads the pincode from
 * its action URL and checks that the caller may still use it.
 */

static void
ngx_http_msgr_dial_in_voice(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    size_t                     len, i;
    ngx_str_t                  v;
    ngx_uint_t                 s;
    const char                *digits;
    msgr_buf_t                 b;
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_http_msgr_arg(r, "step", &v) == NGX_OK) {
        for (s = 1; s <= NGX_HTTP_MSGR_STEP_CONFIRM; s++) {
            if (v.len == ngx_http_msgr_steps[s].len
                && ngx_strncmp(v.data, ngx_http_msgr_steps[s].data, v.len)
                   == 0)
            {
                d->step = s;
            }
        }

        if (d->step == NGX_HTTP_MSGR_STEP_CALL) {
            ngx_http_msgr_dial_in_refused(r, d);
            return;
        }
    }

    if (d->step == NGX_HTTP_MSGR_STEP_CALL) {
        ngx_memzero(&b, sizeof(msgr_buf_t));
        NGX_HTTP_MSGR_TWIML_ADD(&b, "<Gather input=\"dtmf\" "
                                "finishOnKey=\"#\" action=\"");
        ngx_http_msgr_twiml_action(&b, r, d, NGX_HTTP_MSGR_STEP_PIN, NULL);
        NGX_HTTP_MSGR_TWIML_ADD(&b, "\"><Say>Please enter your pincode, "
                                "then press hash.</Say></Gather>"
                                "<Say>Goodbye.</Say>");
        ngx_http_msgr_twiml_send(r, &b);
        return;
    }

    if (d->step == NGX_HTTP_MSGR_STEP_PIN) {
        digits = msgr_twilio_form_get(&d->form, "Digits", &len);

        for (i = 0; digits && i < len && digits[i] >= '0' && digits[i] <= '9';
             i++)
        {
            /* void */
        }

        if (digits == NULL || i != len || len < 4 || len >= sizeof(d->code))
        {
            ngx_http_msgr_dial_in_refused(r, d);
            return;
        }

        ngx_memcpy(d->code, digits, len);
        ngx_http_msgr_dial_in_lookup(r, d);
        return;
    }

    if (ngx_http_msgr_arg(r, "pincode", &v) != NGX_OK
        || (d->pincode = ngx_http_msgr_id(&v)) == 0)
    {
        ngx_http_msgr_dial_in_refused(r, d);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_dial_in_pincode,
                            ngx_http_msgr_dial_in_attempted);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, d->pincode) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) d->from,
                                        ngx_strlen(d->from)) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* the caller may use the pincode: the step's answer */

static void
ngx_http_msgr_dial_in_voice_next(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    size_t       i, len;
    json_t      *o;
    ngx_str_t    v;
    const char  *digits, *url;

    digits = msgr_twilio_form_get(&d->form, "Digits", &len);

    if (d->step == NGX_HTTP_MSGR_STEP_OPTION) {
        d->digit = (digits && len == 1) ? digits[0] - '0' : 0;

    } else if (d->step != NGX_HTTP_MSGR_STEP_PIN) {
        d->digit = (ngx_http_msgr_arg(r, "option", &v) == NGX_OK
                    && v.len == 1) ? v.data[0] - '0' : 0;
    }

    json_array_foreach(json_object_get(d->pin, "options"), i, o) {
        if (json_integer_value(json_object_get(o, "digit")) == d->digit) {
            d->option = o;
        }
    }

    if (d->step == NGX_HTTP_MSGR_STEP_PIN
        || (d->step == NGX_HTTP_MSGR_STEP_OPTION && d->option == NULL))
    {
        ngx_http_msgr_dial_in_menu(r, d);
        return;
    }

    if (d->option == NULL) {
        ngx_http_msgr_dial_in_refused(r, d);
        return;
    }

    if (d->step == NGX_HTTP_MSGR_STEP_OPTION) {
        ngx_http_msgr_dial_in_record(r, d);
        return;
    }

    if (d->step == NGX_HTTP_MSGR_STEP_RECORDED) {
        url = msgr_twilio_form_get(&d->form, "RecordingUrl", &len);
        ngx_http_msgr_dial_in_replay(r, d, url, url ? len : 0);
        return;
    }

    /* confirm: 1 sends the recording of the action URL */

    if (digits == NULL || len != 1 || digits[0] != '1'
        || ngx_http_msgr_arg(r, "recording", &d->text) != NGX_OK
        || d->text.len == 0)
    {
        ngx_http_msgr_dial_in_record(r, d);
        return;
    }

    ngx_http_msgr_dial_in_option(r, d);
}


/* the menu script and "Press 1 for ...", one digit gathered */

static void
ngx_http_msgr_dial_in_menu(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    u_char       num[NGX_INT_T_LEN + 16];
    size_t       i;
    json_t      *o, *script, *label;
    msgr_buf_t   b;

    ngx_memzero(&b, sizeof(msgr_buf_t));

    script = json_object_get(d->pin, "menu_script");

    NGX_HTTP_MSGR_TWIML_ADD(&b, "<Gather input=\"dtmf\" numDigits=\"1\" "
                            "action=\"");
    ngx_http_msgr_twiml_action(&b, r, d, NGX_HTTP_MSGR_STEP_OPTION, NULL);
    NGX_HTTP_MSGR_TWIML_ADD(&b, "\"><Say>");
    ngx_http_msgr_twiml_text(&b, json_string_value(script),
                             json_string_length(script));
    NGX_HTTP_MSGR_TWIML_ADD(&b, "</Say>");

    json_array_foreach(json_object_get(d->pin, "options"), i, o) {
        label = json_object_get(o, "label");

        (void) msgr_buf_add(&b, num,
                            ngx_sprintf(num, "<Say>Press %L for ",
                                (int64_t) json_integer_value(
                                    json_object_get(o, "digit")))
                            - num);
        ngx_http_msgr_twiml_text(&b, json_string_value(label),
                                 json_string_length(label));
        NGX_HTTP_MSGR_TWIML_ADD(&b, ".</Say>");
    }

    NGX_HTTP_MSGR_TWIML_ADD(&b, "</Gather><Say>Goodbye.</Say>");

    ngx_http_msgr_twiml_send(r, &b);
}


static void
ngx_http_msgr_dial_in_record(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d)
{
    msgr_buf_t  b;

    ngx_memzero(&b, sizeof(msgr_buf_t));

    NGX_HTTP_MSGR_TWIML_ADD(&b, "<Say>Record your message after the tone, "
                            "then press hash.</Say><Record "
                            "finishOnKey=\"#\" maxLength=\"120\" "
                            "action=\"");
    ngx_http_msgr_twiml_action(&b, r, d, NGX_HTTP_MSGR_STEP_RECORDED, NULL);
    NGX_HTTP_MSGR_TWIML_ADD(&b, "\"/>");

    ngx_http_msgr_twiml_send(r, &b);
}


/* the recording played back: 1 sends it, anything else records again */

static void
ngx_http_msgr_dial_in_replay(ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d, const char *url, size_t len)
{
    size_t      i;
    ngx_str_t   rec;
    msgr_buf_t  b;

    for (i = 0; url && i < len && url[i] > ' ' && url[i] < 0x7f; i++) {
        /* void */
    }

    if (url == NULL || i != len || len > NGX_HTTP_MSGR_URL_MAX
        || (ngx_strncmp(url, "https://", 8) != 0
            && ngx_strncmp(url, "http://", 7) != 0))
    {
        ngx_http_msgr_dial_in_record(r, d);
        return;
    }

    rec.data = (u_char *) url;
    rec.len = len;

    ngx_memzero(&b, sizeof(msgr_buf_t));

    NGX_HTTP_MSGR_TWIML_ADD(&b, "<Gather input=\"dtmf\" numDigits=\"1\" "
                            "action=\"");
    ngx_http_msgr_twiml_action(&b, r, d, NGX_HTTP_MSGR_STEP_CONFIRM, &rec);
    NGX_HTTP_MSGR_TWIML_ADD(&b, "\"><Say>Your message:</Say><Play>");
    ngx_http_msgr_twiml_text(&b, url, len);
    NGX_HTTP_MSGR_TWIML_ADD(&b, "</Play><Say>Press 1 to send it, or any "
                            "other key to record it again.</Say></Gather>");
    NGX_HTTP_MSGR_TWIML_ADD(&b, "<Say>Nothing was sent. Goodbye.</Say>");

    ngx_http_msgr_twiml_send(r, &b);
}


/* this route's URI and the call's state, escaped for an attribute */

static void
ngx_http_msgr_twiml_action(msgr_buf_t *b, ngx_http_request_t *r,
    ngx_http_msgr_dial_in_t *d, ngx_http_msgr_step_e step, ngx_str_t *rec)
{
    u_char  *p, num[64];
    size_t   n;

    ngx_http_msgr_twiml_text(b, (char *) r->uri.data, r->uri.len);
    NGX_HTTP_MSGR_TWIML_ADD(b, "?step=");
    (void) msgr_buf_add(b, ngx_http_msgr_steps[step].data,
                        ngx_http_msgr_steps[step].len);

    if (step == NGX_HTTP_MSGR_STEP_PIN) {
        return;
    }

    (void) msgr_buf_add(b, num, ngx_sprintf(num, "&amp;pincode=%L",
                                            d->pincode) - num);

    if (step == NGX_HTTP_MSGR_STEP_OPTION) {
        return;
    }

    (void) msgr_buf_add(b, num, ngx_sprintf(num, "&amp;option=%i",
                                            d->digit) - num);

    if (rec == NULL) {
        return;
    }

    n = ngx_escape_uri(NULL, rec->data, rec->len, NGX_ESCAPE_URI_COMPONENT);

    p = malloc(rec->len + 2 * n);
    if (p == NULL) {
        b->failed = 1;
        return;
    }

    ngx_escape_uri(p, rec->data, rec->len, NGX_ESCAPE_URI_COMPONENT);

    NGX_HTTP_MSGR_TWIML_ADD(b, "&amp;recording=");
    (void) msgr_buf_add(b, p, rec->len + 2 * n);

    free(p);
}


static void
ngx_http_msgr_twiml_text(msgr_buf_t *b, const char *s, size_t len)
{
    char  *e;

    e = msgr_twilio_xml_escape(s ? s : "", s ? len : 0);

    if (e == NULL) {
        b->failed = 1;
        return;
    }

    (void) msgr_buf_add(b, e, ngx_strlen(e));
    free(e);
}


/* <Response> and b, from the request's pool; b is released */

static void
ngx_http_msgr_twiml_send(ngx_http_request_t *r, msgr_buf_t *b)
{
    u_char  *p, *buf;
    size_t   len;

    static const char  head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                "<Response>";
    static const char  tail[] = "</Response>\n";

    if (b->failed) {
        free(b->data);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = sizeof(head) - 1 + b->len + sizeof(tail) - 1;

    buf = ngx_pnalloc(r->pool, len);
    if (buf == NULL) {
        free(b->data);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = ngx_cpymem(buf, head, sizeof(head) - 1);
    p = ngx_cpymem(p, b->data, b->len);
    ngx_memcpy(p, tail, sizeof(tail) - 1);

    free(b->data);

    ngx_http_msgr_send_raw(r, NGX_HTTP_OK, &ngx_http_msgr_twiml_type, buf,
                           len);
}

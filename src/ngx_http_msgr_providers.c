/*
 * msgr: providers' delivery receipts.
 *
 *   POST /v1/providers/twilio/status?delivery=ID    Twilio's status callback
 *
 * No API key: the credential is Twilio's signature (X-Twilio-Signature,
 * HMAC-SHA1 keyed with msgr_twilio_auth_token over the URL Twilio called
 * and the form's parameters sorted by name).  A receipt moves its delivery
 * forward in one statement, only from a state it may leave (sending, sent;
 * queued when it says delivered) and only when the provider's id is the
 * one stored or none is yet: a late or repeated receipt changes nothing
 * and gets 204 like the first.  docs/api.md, "Provider receipts".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_providers.h"


/* what a Twilio status means for its delivery */

typedef struct {
    const char                   *status;
    ngx_uint_t                    call;     /* a CallStatus */
    const char                   *state;    /* NULL: nothing to record */
} ngx_http_msgr_twilio_status_t;


static void ngx_http_msgr_twilio_status(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static ngx_int_t ngx_http_msgr_twilio_signed(ngx_http_request_t *r,
    ngx_http_msgr_loc_conf_t *conf, ngx_array_t *form);
static ngx_str_t *ngx_http_msgr_form_get(ngx_array_t *form,
    const char *name);
static void ngx_http_msgr_twilio_receipt_done(ngx_http_msgr_pg_query_t *q);


const ngx_http_msgr_route_t  ngx_http_msgr_providers_routes[] = {

    { NGX_HTTP_POST, "v1/providers/twilio/status", 0,
      ngx_http_msgr_twilio_status },

    { 0, NULL, 0, NULL }
};


/*
 * $1 the delivery, $2 the provider's id, $3 the state, $4 the error.
 * Terminal states are final (a trigger refuses leaving them): the WHERE
 * skips them, so a late or repeated receipt is a no-op, not an error.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_twilio_receipt = {
    "msgr_twilio_receipt",
    "UPDATE msgr_deliveries"
    "   SET state = $3::text,"
    "       provider_id = coalesce(provider_id, nullif($2, '')),"
    "       error = nullif($4, ''),"
    "       sent_at = coalesce(sent_at, now()),"
    "       delivered_at = CASE WHEN $3::text = 'delivered' THEN now()"
    "                           ELSE delivered_at END,"
    "       locked_by = NULL, locked_until = NULL"
    " WHERE delivery_id = $1 AND channel IN ('sms', 'voice')"
    "   AND (provider_id IS NULL OR provider_id = $2)"
    "   AND (state IN ('sending', 'sent')"
    "        OR (state = 'queued' AND $3::text = 'delivered'))",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_providers_stmts[] = {
    &ngx_http_msgr_stmt_twilio_receipt,
    NULL
};


/*
 * Twilio's message and call statuses; the failures' state for a message
 * depends on its ErrorCode (ngx_http_msgr_twilio_failure()).  Statuses on
 * the way (queued, sent, ringing...) change nothing.
 */
static const ngx_http_msgr_twilio_status_t  ngx_http_msgr_twilio_statuses[] = {
    { "delivered", 0, "delivered" },
    { "undelivered", 0, "permanent-failure" },
    { "failed", 0, "permanent-failure" },
    { "completed", 1, "delivered" },
    { "busy", 1, "temporary-failure" },
    { "no-answer", 1, "temporary-failure" },
    { "failed", 1, "permanent-failure" },
    { NULL, 0, NULL }
};


/* a message's error codes that say "the phone, for now" */
static const char  *ngx_http_msgr_twilio_temporary[] = {
    "30003",    /* unreachable handset */
    "30008",    /* unknown error */
    NULL
};


static ngx_str_t  ngx_http_msgr_twilio_signature =
    ngx_string("X-Twilio-Signature");


static void
ngx_http_msgr_twilio_status(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                               id;
    ngx_str_t                            *status, *sid, *code, arg;
    ngx_uint_t                            call, i;
    const char                           *state, *error;
    ngx_array_t                          *form;
    ngx_http_msgr_pg_query_t             *q;
    const ngx_http_msgr_twilio_status_t  *st;

    if (ngx_http_msgr_read_form(r, &form) != NGX_OK) {
        return;
    }

    if (ngx_http_msgr_twilio_signed(r, ctx->conf, form) != NGX_OK) {
        return;
    }

    id = -1;

    if (ngx_http_msgr_arg(r, "delivery", &arg) == NGX_OK) {
        id = ngx_http_msgr_id(&arg);
    }

    if (id <= 0) {
        ngx_http_msgr_bad_arg(r, "delivery", "must be a delivery's id");
        return;
    }

    /* a message's status, or a call's */

    call = 0;
    status = ngx_http_msgr_form_get(form, "MessageStatus");
    sid = ngx_http_msgr_form_get(form, "MessageSid");

    if (status == NULL) {
        call = 1;
        status = ngx_http_msgr_form_get(form, "CallStatus");
        sid = ngx_http_msgr_form_get(form, "CallSid");
    }

    code = ngx_http_msgr_form_get(form, "ErrorCode");

    state = NULL;

    for (st = ngx_http_msgr_twilio_statuses; status && st->status; st++) {
        if (st->call == call
            && status->len == ngx_strlen(st->status)
            && ngx_strncmp(status->data, st->status, status->len) == 0)
        {
            state = st->state;
            break;
        }
    }

    if (state == NULL) {
        /* on its way, or nothing msgr records */
        ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT,
                               &ngx_http_msgr_json_type, NULL, 0);
        return;
    }

    /* the error: Twilio's code for a message, the status for a call */

    error = NULL;

    if (ngx_strcmp(state, "delivered") != 0) {
        if (code != NULL && code->len) {
            for (i = 0; ngx_http_msgr_twilio_temporary[i]; i++) {
                if (ngx_strcmp(code->data, ngx_http_msgr_twilio_temporary[i])
                    == 0)
                {
                    state = "temporary-failure";
                }
            }

            error = (const char *) ngx_pnalloc(r->pool, code->len + 32);
            if (error == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_sprintf((u_char *) error, "twilio %V: %s%Z", code,
                        (char *) status->data);

        } else {
            error = (const char *) ngx_pnalloc(r->pool, status->len + 16);
            if (error == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_sprintf((u_char *) error, "twilio: %V%Z", status);
        }
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_twilio_receipt,
                            ngx_http_msgr_twilio_receipt_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, sid ? sid->data : (u_char *) "",
                                        sid ? sid->len : 0)
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) state,
                                        ngx_strlen(state)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, (u_char *) (error ? error : ""),
                                        error ? ngx_strlen(error) : 0)
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static int
ngx_http_msgr_pair_cmp(const void *one, const void *two)
{
    int                          rc;
    const ngx_http_msgr_pair_t  *a, *b;

    a = one;
    b = two;

    rc = (int) ngx_memn2cmp(a->name.data, b->name.data, a->name.len,
                            b->name.len);

    if (rc == 0) {
        rc = (int) ngx_memn2cmp(a->value.data, b->value.data, a->value.len,
                                b->value.len);
    }

    return rc;
}


/*
 * Twilio's signature: base64(HMAC-SHA1(token, URL + name1 + value1 + ...)),
 * the parameters sorted by name.  The URL is the one Twilio called:
 * msgr_twilio_callback_url with this request's query, else this request's
 * scheme, Host and target.  NGX_ERROR: the client has had its 403.
 */

static ngx_int_t
ngx_http_msgr_twilio_signed(ngx_http_request_t *r,
    ngx_http_msgr_loc_conf_t *conf, ngx_array_t *form)
{
    u_char                 *data, *p, md[EVP_MAX_MD_SIZE];
    u_char                  b64[64];
    size_t                  len;
    ngx_str_t               given, url, host, mine, raw;
    ngx_uint_t              i;
    unsigned int            mdlen;
    const char             *scheme;
    ngx_http_msgr_pair_t   *pair;

    if (conf->twilio_auth_token.len == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "no Twilio auth token is configured here "
                              "(msgr_twilio_auth_token)", NULL);
        return NGX_ERROR;
    }

    if (ngx_http_msgr_header_in(r, &ngx_http_msgr_twilio_signature, &given)
        != NGX_OK)
    {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "the receipt is not signed: "
                              "X-Twilio-Signature is missing", NULL);
        return NGX_ERROR;
    }

    /* the URL */

    if (conf->twilio_callback_url.len) {
        scheme = NULL;
        host = conf->twilio_callback_url;
        raw.data = (u_char *) "?";
        raw.len = r->args.len ? 1 : 0;
        mine = r->args;

    } else {
#if (NGX_HTTP_SSL)
        scheme = r->connection->ssl ? "https://" : "http://";
#else
        scheme = "http://";
#endif
        if (r->headers_in.host) {
            host = r->headers_in.host->value;
        } else {
            ngx_str_null(&host);
        }

        ngx_str_null(&raw);
        mine = r->unparsed_uri;
    }

    url.len = (scheme ? ngx_strlen(scheme) : 0) + host.len + raw.len
              + mine.len;

    len = url.len;
    pair = form->elts;

    for (i = 0; i < form->nelts; i++) {
        len += pair[i].name.len + pair[i].value.len;
    }

    data = ngx_pnalloc(r->pool, len + 1);
    if (data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p = data;

    if (scheme) {
        p = ngx_cpymem(p, scheme, ngx_strlen(scheme));
    }

    p = ngx_cpymem(p, host.data, host.len);
    p = ngx_cpymem(p, raw.data, raw.len);
    p = ngx_cpymem(p, mine.data, mine.len);

    url.data = data;

    /* the parameters, sorted by name (then value) */

    ngx_qsort(pair, form->nelts, sizeof(ngx_http_msgr_pair_t),
              ngx_http_msgr_pair_cmp);

    for (i = 0; i < form->nelts; i++) {
        p = ngx_cpymem(p, pair[i].name.data, pair[i].name.len);
        p = ngx_cpymem(p, pair[i].value.data, pair[i].value.len);
    }

    if (HMAC(EVP_sha1(), conf->twilio_auth_token.data,
             (int) conf->twilio_auth_token.len, data, p - data, md, &mdlen)
        == NULL)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    raw.data = md;
    raw.len = mdlen;
    mine.data = b64;
    ngx_encode_base64(&mine, &raw);

    if (given.len != mine.len
        || sodium_memcmp(given.data, mine.data, mine.len) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgr: a Twilio receipt's signature does not match "
                      "the URL \"%V\" and msgr_twilio_auth_token "
                      "(behind a proxy? msgr_twilio_callback_url)", &url);
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "X-Twilio-Signature does not match", NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_str_t *
ngx_http_msgr_form_get(ngx_array_t *form, const char *name)
{
    size_t                 len;
    ngx_uint_t             i;
    ngx_http_msgr_pair_t  *pair;

    len = ngx_strlen(name);
    pair = form->elts;

    for (i = 0; i < form->nelts; i++) {
        if (pair[i].name.len == len
            && ngx_strncmp(pair[i].name.data, name, len) == 0)
        {
            return &pair[i].value;
        }
    }

    return NULL;
}


/* moved forward, or ignored (late, repeated, unknown): 204 either way */

static void
ngx_http_msgr_twilio_receipt_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT, &ngx_http_msgr_json_type,
                           NULL, 0);
}

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



static void
ngx_http_msgr_twilio_status(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    size_t                                status_len, sid_len, code_len;
    int64_t                               id;
    ngx_str_t                             arg;
    ngx_uint_t                            call, i;
    const char                           *state, *error, *status, *sid;
    const char                           *code;
    ngx_http_msgr_pg_query_t             *q;
    msgr_twilio_form_t                    form;
    const ngx_http_msgr_twilio_status_t  *st;

    if (ngx_http_msgr_twilio_form(r, ctx, &form) != NGX_OK) {
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
    status = msgr_twilio_form_get(&form, "MessageStatus", &status_len);
    sid = msgr_twilio_form_get(&form, "MessageSid", &sid_len);

    if (status == NULL) {
        call = 1;
        status = msgr_twilio_form_get(&form, "CallStatus", &status_len);
        sid = msgr_twilio_form_get(&form, "CallSid", &sid_len);
    }

    code = msgr_twilio_form_get(&form, "ErrorCode", &code_len);

    state = NULL;

    for (st = ngx_http_msgr_twilio_statuses; status && st->status; st++) {
        if (st->call == call && ngx_strcmp(status, st->status) == 0)
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
        if (code != NULL && code_len) {
            for (i = 0; ngx_http_msgr_twilio_temporary[i]; i++) {
                if (ngx_strcmp(code, ngx_http_msgr_twilio_temporary[i]) == 0)
                {
                    state = "temporary-failure";
                }
            }

            error = (const char *) ngx_pnalloc(r->pool,
                                               code_len + status_len + 32);
            if (error == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_sprintf((u_char *) error, "twilio %s: %s%Z", code, status);

        } else {
            error = (const char *) ngx_pnalloc(r->pool, status_len + 16);
            if (error == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            ngx_sprintf((u_char *) error, "twilio: %s%Z", status);
        }
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_twilio_receipt,
                            ngx_http_msgr_twilio_receipt_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) (sid ? sid : ""),
                                        sid ? sid_len : 0)
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

/*
 * msgr: the parents' app inbox, the Xpressions sent to a parent.
 *
 *   GET  /v1/app/inbox?before=&limit=     newest first
 *   POST /v1/app/inbox/{id}/received      the app has it: delivered
 *   POST /v1/app/inbox/{id}/read          the parent opened it
 *
 * Only the parent's own deliveries answer (404 otherwise).  A receipt
 * cancels the parent's pending backup SMS for that message in the same
 * transaction, under the same row locks as msgr-sender's claim, so a
 * backup SMS is never sent after the app confirmed (msgr_app_receipt(),
 * sql/0013_messages.sql).  Both receipts are idempotent.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_inbox.h"


static void ngx_http_msgr_inbox(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_inbox_received(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_inbox_read(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_inbox_receipt(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_uint_t read);
static void ngx_http_msgr_receipt_done(ngx_http_msgr_pg_query_t *q);


const ngx_http_msgr_route_t  ngx_http_msgr_inbox_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/app/inbox", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_inbox },

    { NGX_HTTP_POST, "v1/app/inbox/{}/received", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_inbox_received },

    { NGX_HTTP_POST, "v1/app/inbox/{}/read", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_inbox_read },

    { 0, NULL, 0, NULL }
};


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_inbox = {
    "msgr_inbox",
    "SELECT coalesce(jsonb_agg(jsonb_build_object("
    "   'id', d.delivery_id, 'message_id', d.message_id,"
    "   'school', s.name, 'subject', d.subject, 'body', d.body,"
    "   'language', d.language, 'state', d.state,"
    "   'sent_at', " NGX_HTTP_MSGR_TIME("coalesce(d.sent_at, d.run_at)") ","
    "   'read_at', " NGX_HTTP_MSGR_TIME("d.read_at") ")"
    "   ORDER BY d.delivery_id DESC), '[]')::text"
    "  FROM (SELECT * FROM msgr_deliveries"
    "         WHERE school_id = $1 AND recipient_id = $2"
    "           AND recipient_type = 'contact' AND channel = 'xpressions'"
    "           AND purpose = 'primary'"
    "           AND state NOT IN ('scheduled', 'cancelled')"
    "           AND ($3::bigint IS NULL OR delivery_id < $3)"
    "         ORDER BY delivery_id DESC LIMIT $4) d"
    "  JOIN msgr_schools s ON s.school_id = d.school_id",
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_receipt = {
    "msgr_app_receipt",
    "SELECT s FROM msgr_app_receipt($1, $2, $3, $4) AS s",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_inbox_stmts[] = {
    &ngx_http_msgr_stmt_inbox,
    &ngx_http_msgr_stmt_receipt,
    NULL
};


static void
ngx_http_msgr_inbox(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_inbox, ctx->contact_id,
                             ngx_http_msgr_page_done);
}


static void
ngx_http_msgr_inbox_received(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_inbox_receipt(r, ctx, 0);
}


static void
ngx_http_msgr_inbox_read(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_inbox_receipt(r, ctx, 1);
}


static void
ngx_http_msgr_inbox_receipt(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_uint_t read)
{
    int64_t                    id;
    ngx_http_msgr_pg_query_t  *q;

    ngx_http_discard_request_body(r);

    id = ngx_http_msgr_id(&ctx->args[0]);

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_receipt,
                            ngx_http_msgr_receipt_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, ctx->contact_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 2, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3,
                                        (u_char *) (read ? "t" : "f"), 1)
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_receipt_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "no such message in this inbox", NULL);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
                            json_pack("{s:I, s:s}", "id",
                                      (json_int_t) ngx_http_msgr_id(
                                          &ctx->args[0]),
                                      "state",
                                      PQgetvalue(q->result, 0, 0)));
}

/*
 * msgr: POST /v1/mis/sync, a snapshot of the school's MIS.
 *
 * The snapshot is checked and normalised in C (src/msgr_mis.c: every bad
 * record and field is named, phone numbers become E.164, those without a
 * +code taken as of school.phone_country unless the snapshot names its
 * default_country), then handed to
 * msgr_mis_sync() (sql/0005_mis_sync.sql) as one statement, so the whole
 * sync is one transaction.  With contacts.auto_sync_contacts off, contacts
 * and their links to students are left as they are.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr.h"
#include "msgr_mis.h"


static void ngx_http_msgr_mis_sync_run(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_mis_sync_done(ngx_http_msgr_pg_query_t *q);


static const ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_mis_sync = {
    NGX_HTTP_MSGR_STMT_MIS_SYNC, "msgr_mis_sync",
    "SELECT msgr_mis_sync($1, $2::jsonb, $3)::text",
    3, 0
};


typedef struct {
    json_t  *snapshot;
    json_t  *normalised;
    json_t  *warnings;
} ngx_http_msgr_mis_ctx_t;


void
ngx_http_msgr_mis_sync(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                   *snapshot;
    ngx_http_msgr_mis_ctx_t  *mctx;

    snapshot = ngx_http_msgr_read_json(r);
    if (snapshot == NULL) {
        return;
    }

    mctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_mis_ctx_t));
    if (mctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    mctx->snapshot = snapshot;
    ctx->data = mctx;

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_mis_sync_run);
}


static void
ngx_http_msgr_mis_sync_run(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    int                        rc;
    json_t                    *errors, *country;
    ngx_uint_t                 contacts;
    ngx_http_msgr_pg_query_t  *q;
    ngx_http_msgr_mis_ctx_t   *mctx;

    mctx = ctx->data;

    /* numbers without +code are of the school's country unless it says */

    country = ngx_http_msgr_setting(settings, "school", "phone_country");

    if (json_is_object(mctx->snapshot) && country
        && json_object_get(mctx->snapshot, "default_country") == NULL)
    {
        json_object_set(mctx->snapshot, "default_country", country);
    }

    errors = NULL;

    rc = msgr_mis_normalise(mctx->snapshot, &mctx->normalised,
                            &mctx->warnings, &errors);

    if (rc == 1) {
        ngx_http_msgr_problem(r, 422, NULL,
                              "the snapshot has invalid records; "
                              "nothing was changed", errors);
        return;
    }

    if (rc != 0
        || ngx_http_msgr_json_keep(r, mctx->normalised) != NGX_OK
        || ngx_http_msgr_json_keep(r, mctx->warnings) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    contacts = json_is_true(ngx_http_msgr_setting(settings, "contacts",
                                                  "auto_sync_contacts"));

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_mis_sync,
                            ngx_http_msgr_mis_sync_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_param_json(q, 1, mctx->normalised) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2,
                                        (u_char *) (contacts ? "t" : "f"), 1)
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_mis_sync_done(ngx_http_msgr_pg_query_t *q)
{
    json_t                   *counts;
    json_error_t              err;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_mis_ctx_t  *mctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    mctx = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    counts = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);
    if (counts == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_object_set(counts, "warnings", mctx->warnings);

    ngx_http_msgr_send_json(r, NGX_HTTP_OK, counts);
}

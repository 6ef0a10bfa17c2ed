/*
 * msgr: POST /v1/mis/sync, a snapshot of the school's MIS.
 *
 * The snapshot is parsed, checked and normalised in C (src/msgr_mis.c:
 * every bad record and field is named, phone numbers become E.164, those
 * without a +code taken as of school.phone_country unless the snapshot
 * names its default_country).  A big school's snapshot is megabytes of
 * JSON, so that work runs in nginx's thread pool, not in the worker's event
 * loop.  The result goes to msgr_mis_sync() (sql/0005_mis_sync.sql) as one
 * statement, so the whole sync is one transaction.  With
 * contacts.auto_sync_contacts off, contacts and their links to students are
 * left as they are.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_thread.h"
#include "msgr_mis.h"
#include "msgr_settings.h"
#include "ngx_http_msgr_mis.h"
#include "ngx_http_msgr_settings.h"


static void ngx_http_msgr_mis_sync(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_mis_routes[] = {

    { NGX_HTTP_POST, "v1/mis/sync",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_INTEGRATOR,
      ngx_http_msgr_mis_sync },

    { 0, NULL, 0, NULL }
};


/* what the thread is given and gives back; malloc'd results only */

typedef struct {
    ngx_str_t                 body;
    char                      country[8];

    int                       rc;      /* 0, 1 invalid, -1 memory, -2 JSON */
    json_error_t              err;
    json_t                   *warnings;
    json_t                   *errors;
    char                     *normalised;
} ngx_http_msgr_mis_work_t;


typedef struct {
    ngx_str_t                 body;
    ngx_http_request_t       *request;
    ngx_http_msgr_mis_work_t *work;
} ngx_http_msgr_mis_ctx_t;


static void ngx_http_msgr_mis_sync_run(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_mis_prepare(void *data);
static void ngx_http_msgr_mis_prepared(ngx_http_request_t *r, void *data);
static void ngx_http_msgr_mis_sync_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_mis_work_cleanup(void *data);


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_mis_sync = {
    "msgr_mis_sync",
    "SELECT msgr_mis_sync($1, $2::jsonb, $3)::text",
    3, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_mis_stmts[] = {
    &ngx_http_msgr_stmt_mis_sync,
    NULL
};


static void
ngx_http_msgr_mis_sync(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_mis_ctx_t  *mctx;

    mctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_mis_ctx_t));
    if (mctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_msgr_read_body(r, 0, &mctx->body) != NGX_OK) {
        return;
    }

    mctx->request = r;
    ctx->data = mctx;

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_mis_sync_run);
}


static void
ngx_http_msgr_mis_sync_run(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    const char                *country;
    ngx_pool_cleanup_t        *cln;
    ngx_http_msgr_mis_ctx_t   *mctx;
    ngx_http_msgr_mis_work_t  *work;

    mctx = ctx->data;

    country = msgr_settings_string(settings, "school", "phone_country");

    work = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_mis_work_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (work == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_msgr_mis_work_cleanup;
    cln->data = work;

    work->body = mctx->body;

    if (country) {
        ngx_cpystrn((u_char *) work->country, (u_char *) country,
                    sizeof(work->country));
    }

    mctx->work = work;

    ngx_http_msgr_offload(r, ctx, work, ngx_http_msgr_mis_prepare,
                          ngx_http_msgr_mis_prepared);
}


/*
 * Parses, checks and normalises the snapshot.  It may run in a thread of
 * nginx's pool: it touches nothing of nginx's and allocates with malloc.
 */

static void
ngx_http_msgr_mis_prepare(void *data)
{
    ngx_http_msgr_mis_work_t *work = data;

    json_t  *snapshot, *normalised;

    snapshot = json_loadb((char *) work->body.data, work->body.len,
                          JSON_REJECT_DUPLICATES, &work->err);

    if (snapshot == NULL) {
        work->rc = -2;
        return;
    }

    if (json_is_object(snapshot) && work->country[0]
        && json_object_get(snapshot, "default_country") == NULL)
    {
        json_object_set_new(snapshot, "default_country",
                            json_string(work->country));
    }

    normalised = NULL;

    work->rc = msgr_mis_normalise(snapshot, &normalised, &work->warnings,
                                  &work->errors);
    json_decref(snapshot);

    if (work->rc == 0) {
        work->normalised = json_dumps(normalised, JSON_COMPACT);

        if (work->normalised == NULL) {
            work->rc = -1;
        }
    }

    json_decref(normalised);
}


static void
ngx_http_msgr_mis_prepared(ngx_http_request_t *r, void *data)
{
    ngx_uint_t                 contacts;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;
    ngx_http_msgr_mis_work_t  *work;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    work = data;

    switch (work->rc) {

    case 0:
        break;

    case -2:
        ngx_http_msgr_bad_json(r, &work->err);
        return;

    case 1:
        ngx_http_msgr_problem(r, 422, NULL,
                              "the snapshot has invalid records; "
                              "nothing was changed",
                              json_incref(work->errors));
        return;

    default:
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    contacts = msgr_settings_bool(ctx->settings, "contacts",
                                  "auto_sync_contacts");

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_mis_sync,
                            ngx_http_msgr_mis_sync_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) work->normalised,
                                        ngx_strlen(work->normalised))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 2,
                                        (u_char *) (contacts ? "t" : "f"), 1)
                 != NGX_OK))
    {
        q = NULL;
    }

    /* the parameter is a copy: the text can go now */
    free(work->normalised);
    work->normalised = NULL;

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

    json_object_set(counts, "warnings", mctx->work->warnings);

    /* contacts may have been retired or restored: their app tokens too */

    if (ctx->conf->cache) {
        ngx_http_msgr_cache_app_flush(ctx->conf->cache, ctx->school_id);
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK, counts);
}


static void
ngx_http_msgr_mis_work_cleanup(void *data)
{
    ngx_http_msgr_mis_work_t *work = data;

    json_decref(work->warnings);
    json_decref(work->errors);
    free(work->normalised);
}

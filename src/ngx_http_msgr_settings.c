/*
 * msgr: the Account Settings resource.
 *
 *   GET   /v1/settings            every tab, with an ETag
 *   GET   /v1/settings/{tab}      one tab
 *   PATCH /v1/settings[/{tab}]    JSON merge patch, admin keys only
 *   GET   /v1/settings/audit      the change log, newest first
 *
 * What the settings are, their defaults and their rules come from
 * src/msgr_settings.c.  Reads are served from the shared cache when it can
 * be trusted; a write is one SQL statement that checks the version it read
 * (optimistic concurrency), writes the new overrides, bumps the version and
 * logs every changed field, and its result goes into the cache before the
 * client is answered.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "msgr_settings.h"
#include "ngx_http_msgr_settings.h"


static void ngx_http_msgr_settings_get(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_settings_patch(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_settings_audit(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_settings_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/settings", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_settings_get },

    { NGX_HTTP_PATCH, "v1/settings", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_settings_patch },

    { NGX_HTTP_MSGR_READ, "v1/settings/audit", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_settings_audit },

    { NGX_HTTP_MSGR_READ, "v1/settings/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_settings_get },

    { NGX_HTTP_PATCH, "v1/settings/{}", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_settings_patch },

    { 0, NULL, 0, NULL }
};


#define NGX_HTTP_MSGR_SETTINGS_ATTEMPTS  12


typedef struct {
    ngx_str_t                        tab;       /* empty: every tab */
    char                            *tab_name;  /* NUL-terminated, or NULL */
    json_t                          *patch;
    json_t                          *resolved;
    ngx_str_t                        if_match;
    ngx_uint_t                       attempts;
    ngx_event_t                      backoff;
    ngx_http_request_t              *request;
    ngx_http_msgr_cache_settings_t   cs;
} ngx_http_msgr_settings_ctx_t;


static ngx_http_msgr_settings_ctx_t *ngx_http_msgr_settings_ctx(
    ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_settings_read(ngx_http_request_t *r,
    ngx_http_msgr_pg_handler_pt handler);
static void ngx_http_msgr_settings_read_done(ngx_http_msgr_pg_query_t *q);
static ngx_int_t ngx_http_msgr_settings_row(ngx_http_request_t *r,
    PGresult *res, json_t **stored, int64_t *version, ngx_uint_t *enhanced);
static void ngx_http_msgr_settings_respond(ngx_http_request_t *r,
    ngx_http_msgr_settings_ctx_t *sctx, ngx_uint_t write);
static void ngx_http_msgr_settings_loaded(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_str_t *body);
static void ngx_http_msgr_settings_patch_read(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_settings_patch_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_settings_audit_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_settings_wait(ngx_http_request_t *r,
    ngx_http_msgr_settings_ctx_t *sctx);
static void ngx_http_msgr_settings_retry(ngx_event_t *ev);
static void ngx_http_msgr_settings_backoff_cleanup(void *data);


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_settings = {
    "msgr_settings",
    "SELECT s.doc::text, s.version, c.name, c.enhanced"
    " FROM msgr_settings s JOIN msgr_schools c USING (school_id)"
    " WHERE s.school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * $1 school, $2 the version read, $3 the new overrides, $4 the school's
 * name, $5 the key id, $6 the changes [{"tab","field","old","new"}]: the
 * write msgrctl school set makes too (sql/0012_settings_write.sql).
 * No row back: someone else wrote first.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_settings_write = {
    "msgr_settings_write",
    "SELECT v FROM msgr_settings_write($1, $2, $3::jsonb, $4, NULL, $5,"
    " $6::jsonb) AS v",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_settings_audit = {
    "msgr_settings_audit",
    "SELECT audit_id,"
    " " NGX_HTTP_MSGR_TIME_US("at") ","
    " actor, tab, field, old_value::text, new_value::text"
    " FROM msgr_settings_audit"
    " WHERE school_id = $1 AND ($2::bigint IS NULL OR audit_id < $2)"
    " ORDER BY audit_id DESC LIMIT $3",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_settings_stmts[] = {
    &ngx_http_msgr_stmt_settings,
    &ngx_http_msgr_stmt_settings_write,
    &ngx_http_msgr_stmt_settings_audit,
    NULL
};


static ngx_http_msgr_settings_ctx_t *
ngx_http_msgr_settings_ctx(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_settings_ctx_t  *sctx;

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_settings_ctx_t));
    if (sctx == NULL) {
        return NULL;
    }

    if (ctx->nargs) {
        sctx->tab = ctx->args[0];

        if (!msgr_settings_tab_known((const char *) sctx->tab.data,
                                     sctx->tab.len))
        {
            ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                                  "no such settings tab; the tabs are "
                                  "sending, contacts, security, school, "
                                  "xpressions and mis", NULL);
            return NULL;
        }

        sctx->tab_name = ngx_pnalloc(r->pool, sctx->tab.len + 1);
        if (sctx->tab_name == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NULL;
        }

        *ngx_cpymem(sctx->tab_name, sctx->tab.data, sctx->tab.len) = '\0';
    }

    ctx->settings_ctx = sctx;

    return sctx;
}


/* GET /v1/settings and /v1/settings/{tab} */

static void
ngx_http_msgr_settings_get(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_settings_ctx_t  *sctx;

    sctx = ngx_http_msgr_settings_ctx(r, ctx);
    if (sctx == NULL) {
        return;
    }

    if (ngx_http_msgr_cache_usable(ctx)
        && ngx_http_msgr_cache_settings_get(ctx->conf->cache, ctx->school_id,
                                            r->pool, &sctx->cs)
           == NGX_OK)
    {
        ngx_http_msgr_settings_respond(r, sctx, 0);
        return;
    }

    ngx_http_msgr_settings_read(r, ngx_http_msgr_settings_read_done);
}


static void
ngx_http_msgr_settings_read(ngx_http_request_t *r,
    ngx_http_msgr_pg_handler_pt handler)
{
    ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_settings, handler);
}


/* the settings row: stored overrides (kept with r), version, flag */

static ngx_int_t
ngx_http_msgr_settings_row(ngx_http_request_t *r, PGresult *res,
    json_t **stored, int64_t *version, ngx_uint_t *enhanced)
{
    json_t        *doc;
    json_error_t   err;

    if (PQntuples(res) != 1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: the school has no settings row");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    doc = json_loads(PQgetvalue(res, 0, 0), 0, &err);

    if (ngx_http_msgr_json_keep(r, doc) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    *stored = doc;
    *version = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    *enhanced = (PQgetvalue(res, 0, 3)[0] == 't');

    return NGX_OK;
}


static void
ngx_http_msgr_settings_read_done(ngx_http_msgr_pg_query_t *q)
{
    json_t                        *stored;
    ngx_http_request_t            *r;
    ngx_http_msgr_ctx_t           *ctx;
    ngx_http_msgr_settings_ctx_t  *sctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    sctx = ctx->settings_ctx;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (ngx_http_msgr_settings_row(r, q->result, &stored, &sctx->cs.version,
                                   &sctx->cs.enhanced)
        != NGX_OK)
    {
        return;
    }

    if (ngx_http_msgr_json_dump(r,
            msgr_settings_resolve(stored, PQgetvalue(q->result, 0, 2)),
            &sctx->cs.body)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_msgr_cache_usable(ctx)) {
        ngx_http_msgr_cache_settings_put(ctx->conf->cache, ctx->school_id,
                                         &sctx->cs, ctx->cache_generation);
    }

    if (ctx->on_settings) {
        ngx_http_msgr_settings_loaded(r, ctx, &sctx->cs.body);
        return;
    }

    ngx_http_msgr_settings_respond(r, sctx, 0);
}


/*
 * For other routes: the school's resolved settings, from the cache when it
 * can be trusted, else from PostgreSQL; then handler(r, ctx, settings).
 */

void
ngx_http_msgr_settings_load(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_http_msgr_settings_pt handler)
{
    ngx_http_msgr_settings_ctx_t  *sctx;

    ctx->on_settings = handler;

    sctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_settings_ctx_t));
    if (sctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->settings_ctx = sctx;

    if (ngx_http_msgr_cache_usable(ctx)
        && ngx_http_msgr_cache_settings_get(ctx->conf->cache, ctx->school_id,
                                            r->pool, &sctx->cs)
           == NGX_OK)
    {
        ngx_http_msgr_settings_loaded(r, ctx, &sctx->cs.body);
        return;
    }

    ngx_http_msgr_settings_read(r, ngx_http_msgr_settings_read_done);
}


static void
ngx_http_msgr_settings_loaded(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_str_t *body)
{
    json_t        *settings;
    json_error_t   err;

    settings = json_loadb((char *) body->data, body->len, 0, &err);

    if (ngx_http_msgr_json_keep(r, settings) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->settings = settings;
    ctx->on_settings(r, ctx, settings);
}


/*
 * Answers with every tab, or with one taken out of the whole body, and the
 * version as a strong ETag.  A GET leaves If-None-Match and If-Match to
 * nginx's not_modified filter (304, 412); a PATCH has checked If-Match.
 */

static void
ngx_http_msgr_settings_respond(ngx_http_request_t *r,
    ngx_http_msgr_settings_ctx_t *sctx, ngx_uint_t write)
{
    json_t           *all, *tab;
    ngx_str_t         body, etag;
    json_error_t      err;

    etag.data = ngx_pnalloc(r->pool, NGX_INT64_LEN + 2);
    if (etag.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    etag.len = ngx_sprintf(etag.data, "\"%L\"", sctx->cs.version)
               - etag.data;

    if (ngx_http_msgr_etag(r, &etag) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (write) {
        r->disable_not_modified = 1;
    }

    body = sctx->cs.body;

    if (sctx->tab_name) {
        all = json_loadb((char *) body.data, body.len, 0, &err);
        tab = all ? json_incref(json_object_get(all, sctx->tab_name)) : NULL;
        json_decref(all);

        if (ngx_http_msgr_json_dump(r, tab, &body) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_OK, &ngx_http_msgr_json_type,
                           body.data, body.len);
}


/* PATCH /v1/settings and /v1/settings/{tab} */

static void
ngx_http_msgr_settings_patch(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_settings_ctx_t  *sctx;

    sctx = ngx_http_msgr_settings_ctx(r, ctx);
    if (sctx == NULL) {
        return;
    }

    sctx->patch = ngx_http_msgr_read_json_as(r, 1);
    if (sctx->patch == NULL) {
        return;
    }

    if (r->headers_in.if_match) {
        sctx->if_match = r->headers_in.if_match->value;
    }

    ngx_http_msgr_settings_read(r, ngx_http_msgr_settings_patch_read);
}


static ngx_uint_t
ngx_http_msgr_etag_matches(ngx_str_t *header, int64_t version)
{
    u_char     *p, *last, *start;
    int64_t     v;
    ngx_uint_t  digits;

    p = header->data;
    last = p + header->len;

    /* a list of entity tags, or "*" */

    while (p < last) {
        while (p < last && (*p == ' ' || *p == ',' || *p == '\t')) {
            p++;
        }

        if (p == last) {
            break;
        }

        if (*p == '*') {
            return 1;
        }

        if (last - p > 2 && p[0] == 'W' && p[1] == '/') {
            /* a weak tag never matches for If-Match */
            p += 2;
            while (p < last && *p != ',') {
                p++;
            }
            continue;
        }

        if (*p++ != '"') {
            return 0;
        }

        start = p;
        v = 0;
        digits = 0;

        while (p < last && *p >= '0' && *p <= '9' && digits < 18) {
            v = v * 10 + (*p++ - '0');
            digits++;
        }

        if (p < last && *p == '"' && p > start && v == version) {
            return 1;
        }

        while (p < last && *p != ',') {
            p++;
        }
    }

    return 0;
}


static void
ngx_http_msgr_settings_patch_read(ngx_http_msgr_pg_query_t *q)
{
    int                            rc;
    char                          *name;
    json_t                        *stored, *new_stored, *changes, *errors;
    int64_t                        version;
    ngx_uint_t                     enhanced;
    ngx_http_request_t            *r;
    ngx_http_msgr_ctx_t           *ctx;
    msgr_settings_caps_t           caps;
    ngx_http_msgr_pg_query_t      *w;
    ngx_http_msgr_settings_ctx_t  *sctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    sctx = ctx->settings_ctx;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (ngx_http_msgr_settings_row(r, q->result, &stored, &version,
                                   &enhanced)
        != NGX_OK)
    {
        return;
    }

    if (sctx->if_match.len
        && !ngx_http_msgr_etag_matches(&sctx->if_match, version))
    {
        ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                              "the settings have changed since the version "
                              "named in If-Match; read them again", NULL);
        return;
    }

    ngx_memzero(&caps, sizeof(msgr_settings_caps_t));
    caps.enhanced = enhanced ? 1 : 0;

    new_stored = NULL;
    changes = NULL;
    errors = NULL;

    /* each attempt's result is released with the request */
    sctx->resolved = NULL;

    rc = msgr_settings_patch(stored, PQgetvalue(q->result, 0, 2),
                             sctx->tab_name, sctx->patch, caps,
                             &new_stored, &changes, &sctx->resolved, &errors);

    switch (rc) {

    case MSGR_SETTINGS_OK:
        break;

    case MSGR_SETTINGS_INVALID:
        ngx_http_msgr_problem(r, 422, NULL,
                              "the patch has invalid fields; "
                              "nothing was changed", errors);
        return;

    case MSGR_SETTINGS_FORBIDDEN:
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, NULL,
                              "the patch changes settings this school "
                              "may not change; nothing was changed", errors);
        return;

    default:
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_msgr_json_keep(r, new_stored) != NGX_OK
        || ngx_http_msgr_json_keep(r, changes) != NGX_OK
        || ngx_http_msgr_json_keep(r, sctx->resolved) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sctx->cs.version = version;
    sctx->cs.enhanced = enhanced;

    if (json_array_size(changes) == 0) {
        /* nothing changes: no write, no new version */
        if (ngx_http_msgr_json_dump(r, json_incref(sctx->resolved),
                                    &sctx->cs.body)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_msgr_settings_respond(r, sctx, 1);
        return;
    }

    name = (char *) json_string_value(
               json_object_get(json_object_get(sctx->resolved, "school"),
                               "name"));

    w = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_settings_write,
                            ngx_http_msgr_settings_patch_done);
    if (w == NULL || name == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ngx_http_msgr_pg_param_int(w, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(w, 1, version) != NGX_OK
        || ngx_http_msgr_param_json(w, 2, new_stored) != NGX_OK
        || ngx_http_msgr_pg_param(w, 3, (u_char *) name, ngx_strlen(name))
           != NGX_OK
        || ngx_http_msgr_pg_param(w, 4, (u_char *) ctx->key.id,
                                  MSGR_KEY_ID_LEN) != NGX_OK
        || ngx_http_msgr_param_json(w, 5, changes) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, w);
}


static void
ngx_http_msgr_settings_patch_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t            *r;
    ngx_http_msgr_ctx_t           *ctx;
    ngx_http_msgr_settings_ctx_t  *sctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    sctx = ctx->settings_ctx;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1) {
        /* another writer came first */

        if (sctx->if_match.len) {
            ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                                  "the settings have changed since the "
                                  "version named in If-Match; read them "
                                  "again", NULL);
            return;
        }

        if (++sctx->attempts < NGX_HTTP_MSGR_SETTINGS_ATTEMPTS) {
            ngx_http_msgr_settings_wait(r, sctx);
            return;
        }

        ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, NULL,
                              "the settings are being changed by others "
                              "at the same time; try again", NULL);
        return;
    }

    sctx->cs.version = strtoll(PQgetvalue(q->result, 0, 0), NULL, 10);

    if (ngx_http_msgr_json_dump(r, json_incref(sctx->resolved),
                                &sctx->cs.body)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* committed: this host's workers see it from now on */
    if (ctx->conf->cache) {
        ngx_http_msgr_cache_settings_put(ctx->conf->cache, ctx->school_id,
                                         &sctx->cs, ctx->cache_generation);
    }

    ngx_http_msgr_settings_respond(r, sctx, 1);
}


/*
 * Writers that collide try again after a random pause that grows with each
 * attempt (1 ms, then up to 2, 4 ... 64 ms), so that they fall out of step.
 */

static void
ngx_http_msgr_settings_wait(ngx_http_request_t *r,
    ngx_http_msgr_settings_ctx_t *sctx)
{
    ngx_msec_t           delay;
    ngx_pool_cleanup_t  *cln;

    if (sctx->request == NULL) {
        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        cln->handler = ngx_http_msgr_settings_backoff_cleanup;
        cln->data = sctx;

        sctx->request = r;
        sctx->backoff.handler = ngx_http_msgr_settings_retry;
        sctx->backoff.data = sctx;
        sctx->backoff.log = r->connection->log;
    }

    delay = 1 + (ngx_msec_t) ngx_random()
                % ((ngx_msec_t) 1 << ngx_min(sctx->attempts, 6));

    ngx_add_timer(&sctx->backoff, delay);
}


/* a timer's event: the posted requests are ours to run (subrequests) */

static void
ngx_http_msgr_settings_retry(ngx_event_t *ev)
{
    ngx_connection_t              *c;
    ngx_http_request_t            *r;
    ngx_http_msgr_settings_ctx_t  *sctx;

    sctx = ev->data;
    r = sctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    ngx_http_msgr_settings_read(r, ngx_http_msgr_settings_patch_read);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_msgr_settings_backoff_cleanup(void *data)
{
    ngx_http_msgr_settings_ctx_t  *sctx = data;

    if (sctx->backoff.timer_set) {
        ngx_del_timer(&sctx->backoff);
    }
}


/* GET /v1/settings/audit?limit=&before= */

static void
ngx_http_msgr_settings_audit(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_settings_audit, 0,
                             ngx_http_msgr_settings_audit_done);
}


static json_t *
ngx_http_msgr_json_text(PGresult *res, int row, int col)
{
    json_t        *v;
    json_error_t   err;

    if (PQgetisnull(res, row, col)) {
        return json_null();
    }

    v = json_loads(PQgetvalue(res, row, col), JSON_DECODE_ANY, &err);

    return v ? v : json_null();
}


static void
ngx_http_msgr_settings_audit_done(ngx_http_msgr_pg_query_t *q)
{
    int                  i, n;
    json_t              *items, *item;
    PGresult            *res;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    res = q->result;
    n = PQntuples(res);

    items = json_array();
    if (items == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < n; i++) {
        item = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o}",
                         "id", (json_int_t) strtoll(PQgetvalue(res, i, 0),
                                                    NULL, 10),
                         "at", PQgetvalue(res, i, 1),
                         "actor", PQgetvalue(res, i, 2),
                         "tab", PQgetvalue(res, i, 3),
                         "field", PQgetvalue(res, i, 4),
                         "old", ngx_http_msgr_json_text(res, i, 5),
                         "new", ngx_http_msgr_json_text(res, i, 6));

        if (item == NULL || json_array_append_new(items, item) != 0) {
            json_decref(items);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ngx_http_msgr_page_send(r, items, "next_before", NULL);
}

/*
 * msgr: the REST API: the router, which walks the resources' route tables,
 * authentication, and the routes of its own: health and the school.
 *
 * Routes are relative to the location that holds msgr_api, so
 * "location /msgr/ { msgr_api; }" serves "/msgr/v1/health".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_settings.h"
#include "ngx_http_msgr_mis.h"
#include "ngx_http_msgr_contacts.h"
#include "ngx_http_msgr_attributes.h"
#include "ngx_http_msgr_xpressions.h"
#include "ngx_http_msgr_messages.h"
#include "ngx_http_msgr_inbox.h"
#include "ngx_http_msgr_providers.h"


static void ngx_http_msgr_body_handler(ngx_http_request_t *r);
static void ngx_http_msgr_dispatch(ngx_http_request_t *r);
static void ngx_http_msgr_auth_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_authorised(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_uint_t role);
static void ngx_http_msgr_unknown_key(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static ngx_int_t ngx_http_msgr_match(const char *pattern, ngx_str_t *path,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_route(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);

static void ngx_http_msgr_health(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_health_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_school(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_school_by_id(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_school_done(ngx_http_msgr_pg_query_t *q);


static const ngx_http_msgr_route_t  ngx_http_msgr_api_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/health", 0,
      ngx_http_msgr_health },

    { NGX_HTTP_MSGR_READ, "v1/school", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_school },

    { NGX_HTTP_MSGR_READ, "v1/schools/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_school_by_id },

    { 0, NULL, 0, NULL }
};


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_health = {
    "msgr_health",
    "SELECT 1", 0, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_auth = {
    "msgr_auth",
    "SELECT role, secret_hash FROM msgr_api_keys"
    " WHERE school_id = $1 AND key_id = $2 AND revoked_at IS NULL",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_auth_app = {
    "msgr_auth_app",
    "SELECT t.contact_id, t.secret_hash FROM msgr_app_tokens t"
    " JOIN msgr_contacts c"
    "   ON c.school_id = t.school_id AND c.contact_id = t.contact_id"
    " WHERE t.school_id = $1 AND t.token_id = $2 AND t.revoked_at IS NULL"
    "   AND c.retired_at IS NULL",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_school = {
    "msgr_school",
    "SELECT school_id, name,"
    " " NGX_HTTP_MSGR_TIME("created_at") ", enhanced"
    " FROM msgr_schools WHERE school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};


/* the resource's statements: ids are given when the module starts */
static ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_api_stmts[] = {
    &ngx_http_msgr_stmt_health,
    &ngx_http_msgr_stmt_auth,
    &ngx_http_msgr_stmt_auth_app,
    &ngx_http_msgr_stmt_school,
    NULL
};


/*
 * The resources: their routes are walked in this order, their statements
 * get their ids from ngx_http_msgr_api_init().  A new resource is one line.
 */
static const ngx_http_msgr_resource_t  ngx_http_msgr_resources[] = {
    { ngx_http_msgr_api_routes, ngx_http_msgr_api_stmts },
    { ngx_http_msgr_settings_routes, ngx_http_msgr_settings_stmts },
    { ngx_http_msgr_mis_routes, ngx_http_msgr_mis_stmts },
    { ngx_http_msgr_contacts_routes, ngx_http_msgr_contacts_stmts },
    { ngx_http_msgr_attributes_routes, ngx_http_msgr_attributes_stmts },
    { ngx_http_msgr_xpressions_routes, ngx_http_msgr_xpressions_stmts },
    { ngx_http_msgr_messages_routes, ngx_http_msgr_messages_stmts },
    { ngx_http_msgr_inbox_routes, ngx_http_msgr_inbox_stmts },
    { ngx_http_msgr_providers_routes, ngx_http_msgr_providers_stmts },
    { NULL, NULL }
};


/*
 * Every statement gets an id once, in the order of the resources and of
 * their lists: ids are 1 to NGX_HTTP_MSGR_PG_MAX_STMTS, one bit each in
 * a connection's cache of prepared statements.  The ids of a previous
 * configuration are forgotten first, so a statement listed twice is
 * noticed on a reload as well.
 */

ngx_int_t
ngx_http_msgr_api_init(ngx_conf_t *cf)
{
    ngx_uint_t                       n;
    ngx_http_msgr_pg_stmt_t *const  *st;
    const ngx_http_msgr_resource_t  *res;

    for (res = ngx_http_msgr_resources; res->routes; res++) {
        for (st = res->stmts; *st; st++) {
            (*st)->id = 0;
        }
    }

    n = 0;

    for (res = ngx_http_msgr_resources; res->routes; res++) {
        for (st = res->stmts; *st; st++) {

            if ((*st)->id != 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "msgr: the statement \"%s\" is listed "
                                   "twice", (*st)->name);
                return NGX_ERROR;
            }

            if (++n > NGX_HTTP_MSGR_PG_MAX_STMTS) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "msgr: more than %d prepared statements "
                                   "(\"%s\" is one too many): raise "
                                   "NGX_HTTP_MSGR_PG_MAX_STMTS and the "
                                   "width of a connection's cache",
                                   NGX_HTTP_MSGR_PG_MAX_STMTS,
                                   (*st)->name);
                return NGX_ERROR;
            }

            (*st)->id = n;
        }
    }

    return NGX_OK;
}




ngx_int_t
ngx_http_msgr_api_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        path;
    ngx_uint_t                       allowed, found;
    ngx_http_msgr_ctx_t             *ctx;
    ngx_http_core_loc_conf_t        *clcf;
    const ngx_http_msgr_route_t     *rt;
    const ngx_http_msgr_resource_t  *res;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->conf = ngx_http_get_module_loc_conf(r, ngx_http_msgr_module);
    ngx_http_set_ctx(r, ctx, ngx_http_msgr_module);

    /*
     * What this request reads may fill the cache only if no LISTEN
     * connection (re)starts meanwhile (docs/architecture.md).
     */

    if (ctx->conf->cache) {
        ctx->cache_generation =
                              ngx_http_msgr_cache_generation(ctx->conf->cache);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    path = r->uri;

    if (path.len >= clcf->name.len
        && ngx_strncmp(path.data, clcf->name.data, clcf->name.len) == 0)
    {
        path.data += clcf->name.len;
        path.len -= clcf->name.len;
    }

    if (path.len && path.data[0] == '/') {
        path.data++;
        path.len--;
    }

    ctx->path = path;

    /* from here on every answer is sent by us and finalizes the request */
    r->main->count++;

    allowed = 0;
    found = 0;

    for (res = ngx_http_msgr_resources; res->routes && !found; res++) {
        for (rt = res->routes; rt->pattern; rt++) {
            if (ngx_http_msgr_match(rt->pattern, &path, ctx) != NGX_OK) {
                continue;
            }

            allowed |= rt->methods;

            if (rt->methods & r->method) {
                ctx->route = rt;
                found = 1;
                break;
            }
        }
    }

    if (!found) {
        ngx_http_discard_request_body(r);

        if (allowed) {
            ngx_http_msgr_method_not_allowed(r, allowed);

        } else {
            ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, "not-found",
                                  "no such resource", NULL);
        }

        return NGX_DONE;
    }

    /* query parameters and headers are text: checked once, here */

    rc = ngx_http_msgr_check_input(r);

    if (rc != NGX_OK) {
        ngx_http_discard_request_body(r);

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        }

        return NGX_DONE;
    }

    if (r->method & (NGX_HTTP_POST|NGX_HTTP_PUT|NGX_HTTP_PATCH)) {
        /* the body reader holds its own reference */
        r->main->count--;

        r->request_body_in_single_buf = 1;

        rc = ngx_http_read_client_request_body(r, ngx_http_msgr_body_handler);
        if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
            return rc;
        }

        return NGX_DONE;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        r->main->count--;
        return rc;
    }

    ngx_http_msgr_dispatch(r);

    return NGX_DONE;
}


static void
ngx_http_msgr_body_handler(ngx_http_request_t *r)
{
    ngx_http_msgr_dispatch(r);
}


/*
 * Matches "v1/schools/{}" against a path; every "{}" takes one non-empty
 * segment into ctx->args.
 */

static ngx_int_t
ngx_http_msgr_match(const char *pattern, ngx_str_t *path,
    ngx_http_msgr_ctx_t *ctx)
{
    u_char      *p, *end, *seg;
    ngx_uint_t   n;

    p = path->data;
    end = p + path->len;
    n = 0;

    while (*pattern) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            seg = p;

            while (p < end && *p != '/') {
                p++;
            }

            if (p == seg || n == NGX_HTTP_MSGR_MAX_ARGS) {
                return NGX_DECLINED;
            }

            ctx->args[n].data = seg;
            ctx->args[n].len = p - seg;
            n++;
            pattern += 2;
            continue;
        }

        if (p == end || *p != (u_char) *pattern) {
            return NGX_DECLINED;
        }

        p++;
        pattern++;
    }

    if (p != end) {
        return NGX_DECLINED;
    }

    ctx->nargs = n;

    return NGX_OK;
}


static void
ngx_http_msgr_dispatch(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_str_t                   v;
    ngx_http_msgr_ctx_t        *ctx;
    ngx_http_msgr_pg_query_t   *q;
    ngx_http_msgr_cache_key_t   ck;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (ctx->route->roles == 0) {
        ngx_http_msgr_route(r, ctx);
        return;
    }

    if (r->headers_in.authorization == NULL) {
        ngx_http_msgr_unauthorized(r, "an API key is needed: "
                                   "\"Authorization: Bearer KEY\"");
        return;
    }

    v = r->headers_in.authorization->value;

    if (v.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(v.data, (u_char *) "Bearer ",
                           sizeof("Bearer ") - 1) != 0)
    {
        ngx_http_msgr_unauthorized(r, "the Authorization header must use "
                                   "the Bearer scheme");
        return;
    }

    v.data += sizeof("Bearer ") - 1;
    v.len -= sizeof("Bearer ") - 1;

    while (v.len && v.data[0] == ' ') {
        v.data++;
        v.len--;
    }

    while (v.len && v.data[v.len - 1] == ' ') {
        v.len--;
    }

    /* an API key, or a parents' app token */

    ctx->app = (v.len > sizeof(MSGR_APP_PREFIX) - 1
                && ngx_strncmp(v.data, MSGR_APP_PREFIX,
                               sizeof(MSGR_APP_PREFIX) - 1) == 0);

    if ((ctx->app ? msgr_app_token_parse((const char *) v.data, v.len,
                                         &ctx->key)
                  : msgr_key_parse((const char *) v.data, v.len, &ctx->key))
        != 0)
    {
        ngx_http_msgr_unauthorized(r, ctx->app ? "the app token is not valid"
                                               : "the API key is not valid");
        return;
    }

    if (ngx_http_msgr_cache_usable(ctx)) {
        ck.app = ctx->app;

        rc = ngx_http_msgr_cache_key_get(ctx->conf->cache,
                                         ctx->key.school_id, ctx->key.id,
                                         &ck);

        if (rc == NGX_OK) {
            if (!msgr_key_verify(&ctx->key, ck.hash, MSGR_KEY_HASH_LEN)) {
                ngx_http_msgr_unknown_key(r, ctx);
                return;
            }

            ctx->contact_id = ck.contact_id;
            ngx_http_msgr_authorised(r, ctx, ck.role);
            return;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_msgr_unknown_key(r, ctx);
            return;
        }
    }

    q = ngx_http_msgr_query(r, ctx->app ? &ngx_http_msgr_stmt_auth_app
                                        : &ngx_http_msgr_stmt_auth,
                            ngx_http_msgr_auth_done);
    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->key.school_id) != NGX_OK
        || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                  MSGR_KEY_ID_LEN) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_unknown_key(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_unauthorized(r, ctx->app
                                  ? "the app token is unknown or revoked"
                                  : "the API key is unknown or revoked");
}


static ngx_uint_t
ngx_http_msgr_role(const char *s)
{
    if (ngx_strcmp(s, "admin") == 0) {
        return NGX_HTTP_MSGR_ROLE_ADMIN;
    }

    if (ngx_strcmp(s, "staff") == 0) {
        return NGX_HTTP_MSGR_ROLE_STAFF;
    }

    if (ngx_strcmp(s, "integrator") == 0) {
        return NGX_HTTP_MSGR_ROLE_INTEGRATOR;
    }

    return NGX_HTTP_MSGR_ROLE_NONE;
}


/* a key's row: its role and hash; an app token's: its contact and hash */

static void
ngx_http_msgr_auth_done(ngx_http_msgr_pg_query_t *q)
{
    size_t                      hlen;
    const char                 *hex;
    unsigned char               hash[MSGR_KEY_HASH_LEN];
    ngx_http_request_t         *r;
    ngx_http_msgr_ctx_t        *ctx;
    ngx_http_msgr_cache_key_t   ck;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1) {
        ngx_http_msgr_unknown_key(r, ctx);
        return;
    }

    /* bytea in text form: "\x" and 64 hex digits */
    hex = PQgetvalue(q->result, 0, 1);

    if (ngx_strlen(hex) != 2 + 2 * MSGR_KEY_HASH_LEN
        || sodium_hex2bin(hash, sizeof(hash), hex + 2,
                          2 * MSGR_KEY_HASH_LEN, NULL, &hlen, NULL) != 0
        || !msgr_key_verify(&ctx->key, hash, hlen))
    {
        ngx_http_msgr_unknown_key(r, ctx);
        return;
    }

    ngx_memzero(&ck, sizeof(ngx_http_msgr_cache_key_t));
    ck.app = ctx->app;

    if (ctx->app) {
        ck.role = NGX_HTTP_MSGR_ROLE_APP;
        ck.contact_id = strtoll(PQgetvalue(q->result, 0, 0), NULL, 10);

    } else {
        ck.role = ngx_http_msgr_role(PQgetvalue(q->result, 0, 0));
    }

    if (ngx_http_msgr_cache_usable(ctx)) {
        ngx_memcpy(ck.hash, hash, MSGR_KEY_HASH_LEN);
        ngx_http_msgr_cache_key_put(ctx->conf->cache, ctx->key.school_id,
                                    ctx->key.id, &ck, ctx->cache_generation);
    }

    ctx->contact_id = ck.contact_id;
    ngx_http_msgr_authorised(r, ctx, ck.role);
}


static void
ngx_http_msgr_authorised(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_uint_t role)
{
    const char  *detail;

    ctx->school_id = ctx->key.school_id;
    ctx->role = role;

    if (ctx->role & ctx->route->roles) {
        ngx_http_msgr_route(r, ctx);
        return;
    }

    if (ctx->role == NGX_HTTP_MSGR_ROLE_APP) {
        detail = "an app token may only be used by the parents' app";

    } else if (ctx->route->roles == NGX_HTTP_MSGR_ROLE_APP) {
        detail = "this is a route of the parents' app: it takes an app "
                 "token, not an API key";

    } else if (ctx->route->roles == NGX_HTTP_MSGR_ROLE_ADMIN) {
        detail = "this needs an admin key";

    } else {
        detail = "this key's role may not do that";
    }

    ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, NULL, detail, NULL);
}


/* the route's handler, once the credential (if any) allows it */

static void
ngx_http_msgr_route(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
#if (NGX_DEBUG)
    const char  *role;

    switch (ctx->role) {
    case NGX_HTTP_MSGR_ROLE_ADMIN:      role = "admin"; break;
    case NGX_HTTP_MSGR_ROLE_STAFF:      role = "staff"; break;
    case NGX_HTTP_MSGR_ROLE_INTEGRATOR: role = "integrator"; break;
    case NGX_HTTP_MSGR_ROLE_APP:        role = "app"; break;
    default:                            role = "none";
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgr route: %V %V matches \"%s\", school %L, role %s",
                   &r->method_name, &ctx->path, ctx->route->pattern,
                   ctx->school_id, role);
#endif

    ctx->route->handler(r, ctx);
}


/* GET /v1/health: no credential; says whether PostgreSQL answers */

static void
ngx_http_msgr_health(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_pg_query_t  *q;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_health,
                            ngx_http_msgr_health_done);
    if (q == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_health_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t  *r;

    static u_char  ok[] = "{\"status\":\"ok\",\"database\":\"ok\"}\n";
    static u_char  down[] =
        "{\"status\":\"unavailable\",\"database\":\"unavailable\"}\n";

    r = q->data;

    if (q->status == NGX_OK && q->result
        && PQresultStatus(q->result) == PGRES_TUPLES_OK)
    {
        ngx_http_msgr_send_raw(r, NGX_HTTP_OK, &ngx_http_msgr_json_type,
                               ok, sizeof(ok) - 1);
        return;
    }

    if (ngx_http_msgr_retry_after(r) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                           &ngx_http_msgr_json_type, down, sizeof(down) - 1);
}


/* GET /v1/school: the credential's own school */

static void
ngx_http_msgr_school(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_school,
                               ngx_http_msgr_school_done);
}


/* GET /v1/schools/{id}: another school's id is not found, never shown */

static void
ngx_http_msgr_school_by_id(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_int_t  id;

    id = ngx_atoi(ctx->args[0].data, ctx->args[0].len);

    if (id == NGX_ERROR || (int64_t) id != ctx->school_id) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, "not-found",
                              "no such school", NULL);
        return;
    }

    ngx_http_msgr_school(r, ctx);
}


static void
ngx_http_msgr_school_done(ngx_http_msgr_pg_query_t *q)
{
    PGresult            *res;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    res = q->result;

    if (PQntuples(res) != 1) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, "not-found",
                              "no such school", NULL);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
        json_pack("{s:I, s:s, s:s, s:b}",
                  "id", (json_int_t) strtoll(PQgetvalue(res, 0, 0), NULL, 10),
                  "name", PQgetvalue(res, 0, 1),
                  "created_at", PQgetvalue(res, 0, 2),
                  "enhanced_messenger", PQgetvalue(res, 0, 3)[0] == 't'));
}

/*
 * msgr: a request's queries: made, given their parameters, run on the
 * location's pool, their result judged once (SQL errors logged here, the
 * database unavailable a 503, an unknown outcome a 504) and the common
 * answers (the JSON of one row or a 404, a 204 or a 404).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"


static void ngx_http_msgr_query_done(ngx_http_msgr_pg_query_t *q);


/* the connection whose request is starting a query, if any */
static ngx_connection_t  *ngx_http_msgr_query_caller;


/* the query's error has this SQLSTATE ("23505": a unique violation) */

ngx_uint_t
ngx_http_msgr_sqlstate_is(ngx_http_msgr_pg_query_t *q, const char *state)
{
    const char  *s;

    s = q->result ? PQresultErrorField(q->result, PG_DIAG_SQLSTATE) : NULL;

    return s && ngx_strcmp(s, state) == 0;
}


/*
 * The cache is trusted only while this worker LISTENs for the changes
 * other processes make (docs/architecture.md).
 */

ngx_uint_t
ngx_http_msgr_cache_usable(ngx_http_msgr_ctx_t *ctx)
{
    return ctx->conf->cache != NULL && ctx->conf->pool->listening;
}


/*
 * A request runs one query at a time: its handler waits in the request's
 * context, and every completion goes through ngx_http_msgr_query_done.
 */

ngx_http_msgr_pg_query_t *
ngx_http_msgr_query(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h)
{
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    q = ngx_http_msgr_pg_query_create(r->pool, r->connection->log, stmt);
    if (q == NULL) {
        return NULL;
    }

    ctx->query_handler = h;

    q->handler = ngx_http_msgr_query_done;
    q->data = r;

    return q;
}


void
ngx_http_msgr_query_run(ngx_http_request_t *r, ngx_http_msgr_pg_query_t *q)
{
    ngx_connection_t     *prev;
    ngx_http_msgr_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    /* the request may be gone when ngx_http_msgr_pg_run returns */

    prev = ngx_http_msgr_query_caller;
    ngx_http_msgr_query_caller = r->connection;

    ngx_http_msgr_pg_run(ctx->conf->pool, q);

    ngx_http_msgr_query_caller = prev;
}


/*
 * A query completes from a PostgreSQL socket's event or a timer, where
 * nothing of nginx's HTTP core runs the posted requests afterwards: a
 * subrequest's parent (auth_request, SSI, mirror) would wait for ever.
 * Like nginx's own event handlers, run them once the handler is done; the
 * handler may have freed the request, not its connection.  A query that
 * completes while it is being started is already inside an event of that
 * connection, whose handler runs them.
 */

static void
ngx_http_msgr_query_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_connection_t             *c;
    ngx_http_request_t           *r;
    ngx_http_msgr_ctx_t          *ctx;
    ngx_http_msgr_pg_handler_pt   handler;

    r = q->data;
    c = r->connection;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    handler = ctx->query_handler;

    if (c == ngx_http_msgr_query_caller) {
        handler(q);
        return;
    }

    ngx_http_set_log_request(c->log, r);

    handler(q);

    ngx_http_run_posted_requests(c);
}


/*
 * Checks a finished query: answers 503 when the database could not be
 * reached and 500 on an SQL error; returns 1 when the result can be used.
 */

ngx_uint_t
ngx_http_msgr_result_ok(ngx_http_request_t *r, ngx_http_msgr_pg_query_t *q)
{
    size_t          len;
    const char     *msg;
    ExecStatusType  st;

    if (q->status != NGX_OK || q->result == NULL) {
        if (q->outcome_unknown) {
            ngx_http_msgr_outcome_unknown(r);
            return 0;
        }

        ngx_http_msgr_unavailable(r);
        return 0;
    }

    st = PQresultStatus(q->result);

    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        /*
         * statement_timeout (57014), lock_timeout (55P03), a deadlock
         * (40P01): PostgreSQL stopped the statement, nothing of it stays
         */
        if (ngx_http_msgr_sqlstate_is(q, "57014")
            || ngx_http_msgr_sqlstate_is(q, "55P03")
            || ngx_http_msgr_sqlstate_is(q, "40P01"))
        {
            msg = PQresultErrorField(q->result, PG_DIAG_MESSAGE_PRIMARY);

            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "msgr: PostgreSQL stopped statement %s: %s",
                          q->stmt->name, msg ? msg
                              : PQresultErrorField(q->result,
                                                   PG_DIAG_SQLSTATE));

            ngx_http_msgr_unavailable(r);
            return 0;
        }

        msg = PQresultErrorMessage(q->result);
        len = ngx_strlen(msg);

        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) {
            len--;
        }

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: PostgreSQL: %*s (statement %s)", len, msg,
                      q->stmt->name);

        ngx_http_msgr_problem(r, NGX_HTTP_INTERNAL_SERVER_ERROR, "internal",
                              "the request could not be completed", NULL);
        return 0;
    }

    return 1;
}


ngx_int_t
ngx_http_msgr_param_json(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    json_t *json)
{
    char       *s;
    ngx_int_t   rc;

    s = json_dumps(json, JSON_COMPACT);
    if (s == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_msgr_pg_param(q, i, (u_char *) s, ngx_strlen(s));
    free(s);

    return rc;
}


/* a text[] parameter from a JSON array of strings: {"a","b"} */

ngx_int_t
ngx_http_msgr_param_text_array(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    json_t *strings)
{
    u_char      *buf, *p;
    size_t       len, k;
    json_t      *v;
    const char  *s;

    len = 2;

    json_array_foreach(strings, k, v) {
        len += 3 + 2 * json_string_length(v);
    }

    buf = ngx_pnalloc(q->pool, len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;
    *p++ = '{';

    json_array_foreach(strings, k, v) {
        if (k) {
            *p++ = ',';
        }

        *p++ = '"';

        for (s = json_string_value(v); s && *s; s++) {
            if (*s == '"' || *s == '\\') {
                *p++ = '\\';
            }

            *p++ = *s;
        }

        *p++ = '"';
    }

    *p++ = '}';

    return ngx_http_msgr_pg_param(q, i, buf, p - buf);
}


/* runs a query made for the request; NULL (out of memory) is a 500 */

ngx_int_t
ngx_http_msgr_run(ngx_http_request_t *r, ngx_http_msgr_pg_query_t *q)
{
    if (q == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_http_msgr_query_run(r, q);

    return NGX_OK;
}


/* runs a query whose one parameter is the school; a 500 if out of memory */

void
ngx_http_msgr_query_school(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h)
{
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    q = ngx_http_msgr_query(r, stmt, h);

    if (q && ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK) {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* a query of the school's about the id in the path: $1 school, $2 id */

void
ngx_http_msgr_query_school_id(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h)
{
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    q = ngx_http_msgr_query(r, stmt, h);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1,
                                            ngx_http_msgr_id(&ctx->args[0]))
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/*
 * A page of the school's items (before= and limit= read here, a 400
 * answered here): $1 the school, then the owner when it is not 0 (a
 * parent's contact id), then before and limit.
 */

void
ngx_http_msgr_query_page(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, int64_t owner,
    ngx_http_msgr_pg_handler_pt h)
{
    int64_t                    before;
    ngx_uint_t                 i;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (ngx_http_msgr_page_args(r, ctx, &before) != NGX_OK) {
        return;
    }

    q = ngx_http_msgr_query(r, stmt, h);
    i = owner ? 2 : 1;

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || (owner && ngx_http_msgr_pg_param_int(q, 1, owner) != NGX_OK)
              || (before
                  && ngx_http_msgr_pg_param_int(q, i, before) != NGX_OK)
              || ngx_http_msgr_pg_param_int(q, i + 1, ctx->limit) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/*
 * The JSON of a result's first column, tied to the request; NULL when the
 * request is already answered: the query failed, no row (a 404 whose
 * detail is ctx->not_found) or not JSON (a 500).
 */

json_t *
ngx_http_msgr_result_json(ngx_http_request_t *r, ngx_http_msgr_pg_query_t *q)
{
    json_t               *json;
    json_error_t          err;
    ngx_http_msgr_ctx_t  *ctx;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return NULL;
    }

    if (PQntuples(q->result) == 0 || PQgetisnull(q->result, 0, 0)) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              ctx->not_found ? ctx->not_found : "not found",
                              NULL);
        return NULL;
    }

    json = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    if (ngx_http_msgr_json_keep(r, json) != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: statement %s answered no JSON: %s",
                      q->stmt->name, err.text);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    return json;
}


/*
 * A query whose one column is the JSON to answer with; no row (or NULL) is
 * a 404 whose detail is ctx->not_found.
 */

void
ngx_http_msgr_json_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *body;
    json_error_t         err;
    ngx_http_request_t  *r;
    ngx_http_msgr_ctx_t *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0 || PQgetisnull(q->result, 0, 0)) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              ctx->not_found ? ctx->not_found : "not found",
                              NULL);
        return;
    }

    body = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    ngx_http_msgr_send_json(r, NGX_HTTP_OK, body);
}


/* one item, with its ETag (ngx_http_msgr_query.h) */

void
ngx_http_msgr_item_done(ngx_http_msgr_pg_query_t *q)
{
    json_t               *item;
    ngx_str_t             etag;
    json_error_t          err;
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (q->status == NGX_OK
        && ngx_http_msgr_sqlstate_is(q, "23505"))
    {
        goto taken;
    }

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0 || PQgetvalue(q->result, 0, 0)[0] == '0') {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              ctx->not_found ? ctx->not_found : "not found",
                              NULL);
        return;
    }

    if (PQgetisnull(q->result, 0, 1)) {
        if (r->method == NGX_HTTP_POST) {
            goto taken;
        }

        ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                              "it has changed since the version named in "
                              "If-Match; read it again", NULL);
        return;
    }

    item = json_loads(PQgetvalue(q->result, 0, 1), 0, &err);

    etag.data = (u_char *) PQgetvalue(q->result, 0, 2);
    etag.len = PQgetlength(q->result, 0, 2);

    if (item == NULL || ngx_http_msgr_etag(r, &etag) != NGX_OK) {
        json_decref(item);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (r->method != NGX_HTTP_GET && r->method != NGX_HTTP_HEAD) {
        /* If-Match has been judged against the row itself */
        r->disable_not_modified = 1;
    }

    ngx_http_msgr_send_json(r, r->method == NGX_HTTP_POST
                               ? NGX_HTTP_CREATED : NGX_HTTP_OK, item);
    return;

taken:

    ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, "conflict",
                          ctx->taken ? ctx->taken : "the name is taken",
                          json_pack("[{s:s, s:s}]", "field", "name",
                                    "message", "is taken"));
}


/* 204 when a row came back, 404 otherwise */

void
ngx_http_msgr_no_content_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              ctx->not_found ? ctx->not_found : "not found",
                              NULL);
        return;
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT, &ngx_http_msgr_json_type,
                           NULL, 0);
}


/*
 * A page: {"items": [...], "<key>": cursor}.  The cursor, when the page is
 * full (ctx->limit items), is what cursor() reads from the last item, or
 * its "id"; null otherwise.  Takes the reference to items.
 */

void
ngx_http_msgr_page_send(ngx_http_request_t *r, json_t *items,
    const char *key, ngx_http_msgr_cursor_pt cursor)
{
    size_t                n;
    json_t               *last, *next;
    ngx_http_msgr_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    n = json_array_size(items);
    next = NULL;

    if (n > 0 && n == (size_t) ctx->limit) {
        last = json_array_get(items, n - 1);
        next = cursor ? cursor(last) : json_incref(json_object_get(last, "id"));
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
                            json_pack("{s:o, s:o}", "items", items,
                                      key, next ? next : json_null()));
}


/* one row, a JSON array of items, sorted newest first: a next_before page */

void
ngx_http_msgr_page_done(ngx_http_msgr_pg_query_t *q)
{
    json_t               *items;
    json_error_t          err;
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    /* no row: the page's parent (a message's deliveries) is not found */

    if (PQntuples(q->result) == 0 || PQgetisnull(q->result, 0, 0)) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              ctx->not_found ? ctx->not_found : "not found",
                              NULL);
        return;
    }

    items = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);
    if (items == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_page_send(r, items, "next_before", NULL);
}


ngx_int_t
ngx_http_msgr_param_ids(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    ngx_array_t *ids)
{
    u_char      *buf, *p;
    int64_t     *id;
    ngx_uint_t   k;

    buf = ngx_pnalloc(q->pool, 2 + ids->nelts * (NGX_INT64_LEN + 1));
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;
    *p++ = '{';
    id = ids->elts;

    for (k = 0; k < ids->nelts; k++) {
        p = ngx_sprintf(p, "%s%L", k ? "," : "", id[k]);
    }

    *p++ = '}';

    return ngx_http_msgr_pg_param(q, i, buf, p - buf);
}

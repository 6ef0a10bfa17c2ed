/*
 * msgr: a request's queries (ngx_http_msgr_query.c).
 */

#ifndef _NGX_HTTP_MSGR_QUERY_H_INCLUDED_
#define _NGX_HTTP_MSGR_QUERY_H_INCLUDED_


#include "ngx_http_msgr.h"


/*
 * SQL: a timestamp column as ISO 8601 in UTC, "2026-01-31T12:00:00Z"; and
 * to the microsecond, "2026-01-31T12:00:00.000000Z"
 */
#define NGX_HTTP_MSGR_TIME(col)                                              \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define NGX_HTTP_MSGR_TIME_US(col)                                           \
    "to_char(" col " AT TIME ZONE 'UTC',"                                     \
    " 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


ngx_uint_t ngx_http_msgr_cache_usable(ngx_http_msgr_ctx_t *ctx);
ngx_http_msgr_pg_query_t *ngx_http_msgr_query(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h);
void ngx_http_msgr_query_run(ngx_http_request_t *r,
    ngx_http_msgr_pg_query_t *q);
ngx_int_t ngx_http_msgr_run(ngx_http_request_t *r,
    ngx_http_msgr_pg_query_t *q);
void ngx_http_msgr_query_school(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h);
void ngx_http_msgr_query_school_id(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, ngx_http_msgr_pg_handler_pt h);
void ngx_http_msgr_query_page(ngx_http_request_t *r,
    const ngx_http_msgr_pg_stmt_t *stmt, int64_t owner,
    ngx_http_msgr_pg_handler_pt h);
json_t *ngx_http_msgr_result_json(ngx_http_request_t *r,
    ngx_http_msgr_pg_query_t *q);
ngx_int_t ngx_http_msgr_param_json(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    json_t *json);
ngx_int_t ngx_http_msgr_param_text_array(ngx_http_msgr_pg_query_t *q,
    ngx_uint_t i, json_t *strings);
ngx_int_t ngx_http_msgr_param_ids(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    ngx_array_t *ids);
/* the query failed with this SQLSTATE ("23505") */
ngx_uint_t ngx_http_msgr_sqlstate_is(ngx_http_msgr_pg_query_t *q,
    const char *state);
ngx_uint_t ngx_http_msgr_result_ok(ngx_http_request_t *r,
    ngx_http_msgr_pg_query_t *q);
void ngx_http_msgr_json_done(ngx_http_msgr_pg_query_t *q);
void ngx_http_msgr_no_content_done(ngx_http_msgr_pg_query_t *q);
/*
 * A statement answering one row about one item: whether it is there ("0":
 * 404, ctx->not_found), its JSON and its ETag.  No JSON: a POST's name was
 * taken (409, ctx->taken, as for a unique violation), else If-Match named
 * another version (412).  201 for a POST, else 200, with the ETag.
 */
void ngx_http_msgr_item_done(ngx_http_msgr_pg_query_t *q);

/* a page's cursor, read from its last item (a new reference) */
typedef json_t *(*ngx_http_msgr_cursor_pt)(json_t *item);

void ngx_http_msgr_page_send(ngx_http_request_t *r, json_t *items,
    const char *key, ngx_http_msgr_cursor_pt cursor);
void ngx_http_msgr_page_done(ngx_http_msgr_pg_query_t *q);


#endif /* _NGX_HTTP_MSGR_QUERY_H_INCLUDED_ */

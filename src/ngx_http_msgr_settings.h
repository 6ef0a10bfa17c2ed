/*
 * msgr: the school's settings: GET, PATCH and their audit:
 * what ngx_http_msgr_settings.c exports.
 */

#ifndef _NGX_HTTP_MSGR_SETTINGS_H_INCLUDED_
#define _NGX_HTTP_MSGR_SETTINGS_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resource's routes, for the router of ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_settings_routes[];
/* its statements, NULL-terminated, for the ids the router gives them */
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_settings_stmts[];


typedef void (*ngx_http_msgr_settings_pt)(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);

void ngx_http_msgr_settings_load(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_settings_pt handler);


#endif /* _NGX_HTTP_MSGR_SETTINGS_H_INCLUDED_ */

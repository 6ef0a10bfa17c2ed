/*
 * msgr: providers' delivery receipts:
 * what ngx_http_msgr_providers.c exports.
 */

#ifndef _NGX_HTTP_MSGR_PROVIDERS_H_INCLUDED_
#define _NGX_HTTP_MSGR_PROVIDERS_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resource's routes, for the router of ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_providers_routes[];
/* its statements, NULL-terminated, for the ids the router gives them */
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_providers_stmts[];


#endif /* _NGX_HTTP_MSGR_PROVIDERS_H_INCLUDED_ */

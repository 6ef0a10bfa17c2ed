/*
 * msgr: Emergency & Voice pincodes and the dial-in webhooks:
 * what ngx_http_msgr_pincodes.c and ngx_http_msgr_dial_in.c export.
 */

#ifndef _NGX_HTTP_MSGR_PINCODES_H_INCLUDED_
#define _NGX_HTTP_MSGR_PINCODES_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resources' routes and statements, for ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_pincodes_routes[];
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_pincodes_stmts[];

extern const ngx_http_msgr_route_t  ngx_http_msgr_dial_in_routes[];
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_dial_in_stmts[];


#endif /* _NGX_HTTP_MSGR_PINCODES_H_INCLUDED_ */

/*
 * msgr: sending messages, the sending PIN:
 * what ngx_http_msgr_messages.c exports.
 */

#ifndef _NGX_HTTP_MSGR_MESSAGES_H_INCLUDED_
#define _NGX_HTTP_MSGR_MESSAGES_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resource's routes, for the router of ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_messages_routes[];
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_messages_stmts[];


#endif /* _NGX_HTTP_MSGR_MESSAGES_H_INCLUDED_ */

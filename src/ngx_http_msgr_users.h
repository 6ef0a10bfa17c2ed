/*
 * msgr: the school's users, their passwords, sessions and sign-ins:
 * what ngx_http_msgr_users.c exports.
 */

#ifndef _NGX_HTTP_MSGR_USERS_H_INCLUDED_
#define _NGX_HTTP_MSGR_USERS_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resource's routes, for the router of ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_users_routes[];
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_users_stmts[];


#endif /* _NGX_HTTP_MSGR_USERS_H_INCLUDED_ */

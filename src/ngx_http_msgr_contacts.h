/*
 * msgr: students, contacts, staff, groups and recipients:
 * what ngx_http_msgr_contacts.c exports.
 */

#ifndef _NGX_HTTP_MSGR_CONTACTS_H_INCLUDED_
#define _NGX_HTTP_MSGR_CONTACTS_H_INCLUDED_


#include "ngx_http_msgr.h"


/* the resource's routes, for the router of ngx_http_msgr_api.c */
extern const ngx_http_msgr_route_t  ngx_http_msgr_contacts_routes[];
/* its statements, NULL-terminated, for the ids the router gives them */
extern ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_contacts_stmts[];


/*
 * Whether this request sees staff details masked (the school hides them
 * and the key is not admin's); the settings must be loaded.
 */
ngx_uint_t ngx_http_msgr_staff_masked(ngx_http_msgr_ctx_t *ctx);


#endif /* _NGX_HTTP_MSGR_CONTACTS_H_INCLUDED_ */

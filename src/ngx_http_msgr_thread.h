/*
 * msgr: CPU-heavy work of a request off the event loop
 * (ngx_http_msgr_thread.c).
 */

#ifndef _NGX_HTTP_MSGR_THREAD_H_INCLUDED_
#define _NGX_HTTP_MSGR_THREAD_H_INCLUDED_


#include "ngx_http_msgr.h"


/*
 * The work: it may run in a thread of nginx's pool, so it touches nothing
 * of nginx's, allocates with malloc and reads only what the request gave
 * it (the request is held meanwhile).
 */
typedef void (*ngx_http_msgr_work_pt)(void *data);

/* back on the event loop, the client still there */
typedef void (*ngx_http_msgr_work_done_pt)(ngx_http_request_t *r,
    void *data);


/*
 * Runs work(data) in the location's thread pool and then done(r, data) on
 * the event loop.  Without a thread pool, or with its queue full, both run
 * here and now.  A client gone meanwhile ends the request instead of done.
 */
void ngx_http_msgr_offload(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    void *data, ngx_http_msgr_work_pt work, ngx_http_msgr_work_done_pt done);

/*
 * The same for work that must never run on the event loop (Argon2id):
 * without a thread pool, or with its queue full, the request gets 503
 * with Retry-After instead.
 */
void ngx_http_msgr_offload_only(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, void *data, ngx_http_msgr_work_pt work,
    ngx_http_msgr_work_done_pt done);


#endif /* _NGX_HTTP_MSGR_THREAD_H_INCLUDED_ */

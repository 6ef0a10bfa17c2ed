/*
 * msgr: CPU-heavy work of a request off the event loop.
 *
 * Parsing a big MIS snapshot, routing and rendering a big send and
 * Argon2id run in nginx's thread pool (msgr_thread_pool), with the request
 * held (r->main->blocked) so its memory stays the work's until it is done.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_thread.h"


typedef struct {
    ngx_http_request_t          *request;
    void                        *data;
    ngx_http_msgr_work_pt        work;
    ngx_http_msgr_work_done_pt   done;
} ngx_http_msgr_task_t;


#if (NGX_THREADS)
static void ngx_http_msgr_task_run(void *data, ngx_log_t *log);
static void ngx_http_msgr_task_done(ngx_event_t *ev);
#endif


void
ngx_http_msgr_offload(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    void *data, ngx_http_msgr_work_pt work, ngx_http_msgr_work_done_pt done)
{
#if (NGX_THREADS)
    ngx_thread_task_t     *task;
    ngx_http_msgr_task_t  *t;

    if (ctx->conf->thread_pool) {
        task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_msgr_task_t));
        if (task == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        t = task->ctx;
        t->request = r;
        t->data = data;
        t->work = work;
        t->done = done;

        task->handler = ngx_http_msgr_task_run;
        task->event.handler = ngx_http_msgr_task_done;
        task->event.data = t;

        if (ngx_thread_task_post(ctx->conf->thread_pool, task) == NGX_OK) {
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "msgr: work posted to the thread pool");

            /* the request's memory is the thread's until it is done */
            r->main->blocked++;
            return;
        }

        /* the pool's queue is full: do it here rather than fail */
    }
#endif

    work(data);
    done(r, data);
}


#if (NGX_THREADS)

static void
ngx_http_msgr_task_run(void *data, ngx_log_t *log)
{
    ngx_http_msgr_task_t *t = data;

    t->work(t->data);
}


static void
ngx_http_msgr_task_done(ngx_event_t *ev)
{
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_http_msgr_task_t  *t;

    t = ev->data;
    r = t->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;

    if (c->error) {
        /*
         * The client went away meanwhile.  Over HTTP/1 nginx may have
         * terminated the request and left a finalizer as its write
         * handler; an HTTP/2 stream reset (or its connection's loss) only
         * marks the stream's connection and leaves the request waiting for
         * us.  Finalizing ends both: with c->error nginx terminates it and
         * releases the request and the stream.
         */
        ngx_http_finalize_request(r, NGX_HTTP_CLIENT_CLOSED_REQUEST);

    } else {
        t->done(r, t->data);
    }

    ngx_http_run_posted_requests(c);
}

#endif

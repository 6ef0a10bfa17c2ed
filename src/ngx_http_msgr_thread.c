/*
 * msgr: CPU-heavy work of a request off the event loop.
 *
 * Parsing a big MIS snapshot, routing and rendering a big send and
 * Argon2id run in nginx's thread pool (msgr_thread_pool), with the request
 * held (r->main->blocked) so its memory stays the work's until it is done.
 *
 * The pool's threads run at a lower CPU priority than the event loops, so
 * that a burst of sign-ins (Argon2id is CPU-bound by design) slows other
 * requests as little as it can; and a timer stands for each work in
 * progress, so that a worker shutting down gracefully waits for it rather
 * than leaving its client's connection open.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if (NGX_THREADS && NGX_LINUX)
#include <sys/resource.h>
#include <sys/syscall.h>
#endif


/* the work's own niceness, added to the worker's */
#define NGX_HTTP_MSGR_WORK_NICE  10

#include "ngx_http_msgr_thread.h"


typedef struct {
    ngx_http_request_t          *request;
    void                        *data;
    ngx_http_msgr_work_pt        work;
    ngx_http_msgr_work_done_pt   done;
#if (NGX_THREADS)
    ngx_event_t                  keep;     /* the worker waits for it */
#endif
} ngx_http_msgr_task_t;


static ngx_int_t ngx_http_msgr_post(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, void *data, ngx_http_msgr_work_pt work,
    ngx_http_msgr_work_done_pt done);

#if (NGX_THREADS)
static void ngx_http_msgr_task_run(void *data, ngx_log_t *log);
static void ngx_http_msgr_task_done(ngx_event_t *ev);
static void ngx_http_msgr_task_keep(ngx_event_t *ev);
#endif


void
ngx_http_msgr_offload(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    void *data, ngx_http_msgr_work_pt work, ngx_http_msgr_work_done_pt done)
{
    if (ngx_http_msgr_post(r, ctx, data, work, done) != NGX_DECLINED) {
        return;
    }

    /* no thread pool, or its queue is full: do it here rather than fail */

    work(data);
    done(r, data);
}


void
ngx_http_msgr_offload_only(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    void *data, ngx_http_msgr_work_pt work, ngx_http_msgr_work_done_pt done)
{
    if (ngx_http_msgr_post(r, ctx, data, work, done) != NGX_DECLINED) {
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "msgr: no room in the thread pool for Argon2id: 503");

    ngx_http_msgr_unavailable(r);
}


/*
 * NGX_OK: posted to the thread pool; NGX_DECLINED: no pool, or its queue
 * is full; NGX_ERROR: the request has its 500.
 */

static ngx_int_t
ngx_http_msgr_post(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    void *data, ngx_http_msgr_work_pt work, ngx_http_msgr_work_done_pt done)
{
#if (NGX_THREADS)
    ngx_thread_task_t     *task;
    ngx_http_msgr_task_t  *t;

    if (ctx->conf->thread_pool == NULL) {
        return NGX_DECLINED;
    }

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_msgr_task_t));
    if (task == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    t = task->ctx;
    t->request = r;
    t->data = data;
    t->work = work;
    t->done = done;

    task->handler = ngx_http_msgr_task_run;
    task->event.handler = ngx_http_msgr_task_done;
    task->event.data = t;

    if (ngx_thread_task_post(ctx->conf->thread_pool, task) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "msgr: work posted to the thread pool");

    /* the request's memory is the thread's until it is done */
    r->main->blocked++;

    t->keep.handler = ngx_http_msgr_task_keep;
    t->keep.data = t;
    t->keep.log = r->connection->log;
    ngx_add_timer(&t->keep, 3600000);

    return NGX_OK;
#else
    return NGX_DECLINED;
#endif
}


#if (NGX_THREADS)

static void
ngx_http_msgr_task_run(void *data, ngx_log_t *log)
{
    ngx_http_msgr_task_t *t = data;

#if (NGX_LINUX)
    static __thread ngx_uint_t  reniced;

    /* on Linux a thread has a niceness of its own */

    if (!reniced) {
        reniced = 1;

        if (setpriority(PRIO_PROCESS, (id_t) syscall(SYS_gettid),
                        getpriority(PRIO_PROCESS, 0)
                        + NGX_HTTP_MSGR_WORK_NICE)
            == -1)
        {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "msgr: the thread pool's priority could not be "
                          "lowered");
        }
    }
#endif

    t->work(t->data);
}


/* a work running for an hour: the worker may exit without it */

static void
ngx_http_msgr_task_keep(ngx_event_t *ev)
{
    ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                  "msgr: a work in the thread pool has run for an hour");
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

    if (t->keep.timer_set) {
        ngx_del_timer(&t->keep);
    }

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

/*
 * msgr: non-blocking PostgreSQL connection pool for nginx workers.
 *
 * A connection is in one of four states: connecting, preparing (a
 * statement's first use on it), querying, or idle.  Idle connections keep a
 * read handler so that a PostgreSQL restart (EOF, an error message) closes
 * them at once.  Requests wait in a bounded queue while every connection is
 * busy; each query carries a timer covering its wait and its run.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <poll.h>

#include "ngx_http_msgr_pg.h"


typedef enum {
    NGX_HTTP_MSGR_PG_CONNECTING = 0,
    NGX_HTTP_MSGR_PG_PREPARING,
    NGX_HTTP_MSGR_PG_QUERYING,
    NGX_HTTP_MSGR_PG_IDLE
} ngx_http_msgr_pg_state_e;


struct ngx_http_msgr_pg_conn_s {
    PGconn                      *pgconn;
    ngx_connection_t            *c;
    ngx_http_msgr_pg_pool_t     *pool;
    ngx_http_msgr_pg_query_t    *query;
    PGresult                    *result;
    ngx_queue_t                  idle;
    ngx_queue_t                  all;
    ngx_event_t                  connect_timer;
    uint64_t                     prepared;
    ngx_uint_t                   stmt_id;
    ngx_http_msgr_pg_state_e     state;
    unsigned                     received:1;
    unsigned                     listener:1;
};


static ngx_int_t ngx_http_msgr_pg_connect(ngx_http_msgr_pg_pool_t *pool,
    ngx_uint_t listener);
static void ngx_http_msgr_pg_listen_start(ngx_event_t *ev);
static ngx_int_t ngx_http_msgr_pg_listen_result(ngx_http_msgr_pg_conn_t *pc,
    PGresult *res);
static ngx_int_t ngx_http_msgr_pg_attach(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_detach(ngx_http_msgr_pg_conn_t *pc,
    ngx_uint_t closed);
static void ngx_http_msgr_pg_connect_poll(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_connect_timeout(ngx_event_t *ev);
static void ngx_http_msgr_pg_read_handler(ngx_event_t *ev);
static void ngx_http_msgr_pg_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_msgr_pg_flush(ngx_http_msgr_pg_conn_t *pc);
static ngx_int_t ngx_http_msgr_pg_consume(ngx_http_msgr_pg_conn_t *pc);
static ngx_int_t ngx_http_msgr_pg_results(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_notifies(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_ready(ngx_http_msgr_pg_conn_t *pc);
static ngx_int_t ngx_http_msgr_pg_send(ngx_http_msgr_pg_conn_t *pc,
    ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pg_close(ngx_http_msgr_pg_conn_t *pc,
    ngx_uint_t connect_failed);
static void ngx_http_msgr_pg_fail_waiting(ngx_http_msgr_pg_pool_t *pool);
static void ngx_http_msgr_pg_enqueue(ngx_http_msgr_pg_pool_t *pool,
    ngx_http_msgr_pg_query_t *q, ngx_uint_t head);
static void ngx_http_msgr_pg_complete(ngx_http_msgr_pg_query_t *q,
    ngx_int_t status, PGresult *res);
static void ngx_http_msgr_pg_query_timeout(ngx_event_t *ev);
static void ngx_http_msgr_pg_query_cleanup(void *data);
static void ngx_http_msgr_pg_log(ngx_uint_t level, ngx_log_t *log,
    const char *what, const char *msg);
static void ngx_http_msgr_pg_notice(void *arg, const char *msg);


ngx_int_t
ngx_http_msgr_pg_init_worker(ngx_http_msgr_pg_pool_t *pool,
    ngx_cycle_t *cycle)
{
    pool->log = cycle->log;
    pool->nconns = 0;
    pool->nwaiting = 0;

    ngx_queue_init(&pool->idle);
    ngx_queue_init(&pool->waiting);
    ngx_queue_init(&pool->all);

    if (pool->listen_sql) {
        pool->listen_timer.handler = ngx_http_msgr_pg_listen_start;
        pool->listen_timer.data = pool;
        pool->listen_timer.log = pool->log;
        pool->listen_timer.cancelable = 1;

        ngx_http_msgr_pg_listen_start(&pool->listen_timer);
    }

    return NGX_OK;
}


/* (re)connects the LISTEN connection; failures retry every second */

static void
ngx_http_msgr_pg_listen_start(ngx_event_t *ev)
{
    ngx_http_msgr_pg_pool_t  *pool;

    pool = ev->data;

    if (pool->listener || pool->exiting || ngx_exiting || ngx_terminate) {
        return;
    }

    if (ngx_http_msgr_pg_connect(pool, 1) != NGX_OK) {
        ngx_add_timer(&pool->listen_timer, 1000);
    }
}


static ngx_int_t
ngx_http_msgr_pg_listen_result(ngx_http_msgr_pg_conn_t *pc, PGresult *res)
{
    ngx_http_msgr_pg_pool_t  *pool;

    pool = pc->pool;

    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK) {
        if (res) {
            ngx_http_msgr_pg_log(NGX_LOG_ERR, pool->log, "msgr: LISTEN failed",
                                 PQresultErrorMessage(res));
            PQclear(res);
        }

        return NGX_ERROR;
    }

    PQclear(res);

    pc->state = NGX_HTTP_MSGR_PG_IDLE;

    if (pool->listen_failures) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "msgr: listening to PostgreSQL again");
        pool->listen_failures = 0;
    }

    pool->listening = 1;

    if (pool->listen_up) {
        pool->listen_up(pool);
    }

    return NGX_OK;
}


void
ngx_http_msgr_pg_exit_worker(ngx_http_msgr_pg_pool_t *pool)
{
    ngx_queue_t              *qu;
    ngx_http_msgr_pg_conn_t  *pc;

    if (pool->log == NULL) {
        return;
    }

    pool->exiting = 1;

    if (pool->listen_timer.timer_set) {
        ngx_del_timer(&pool->listen_timer);
    }

    while (!ngx_queue_empty(&pool->all)) {
        qu = ngx_queue_head(&pool->all);
        pc = ngx_queue_data(qu, ngx_http_msgr_pg_conn_t, all);
        ngx_http_msgr_pg_close(pc, 0);
    }
}


ngx_http_msgr_pg_query_t *
ngx_http_msgr_pg_query_create(ngx_pool_t *pool, ngx_log_t *log,
    const ngx_http_msgr_pg_stmt_t *stmt)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_msgr_pg_query_t  *q;

    q = ngx_pcalloc(pool, sizeof(ngx_http_msgr_pg_query_t));
    if (q == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_msgr_pg_query_cleanup;
    cln->data = q;

    q->stmt = stmt;
    q->pool = pool;
    q->log = log;

    q->timer.handler = ngx_http_msgr_pg_query_timeout;
    q->timer.data = q;
    q->timer.log = log;

    return q;
}


ngx_int_t
ngx_http_msgr_pg_param(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    u_char *data, size_t len)
{
    u_char  *p;

    if (i >= NGX_HTTP_MSGR_PG_MAX_PARAMS) {
        return NGX_ERROR;
    }

    if (data == NULL) {
        q->values[i] = NULL;
        return NGX_OK;
    }

    p = ngx_pnalloc(q->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *ngx_cpymem(p, data, len) = '\0';
    q->values[i] = (const char *) p;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgr_pg_param_int(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    int64_t v)
{
    u_char  buf[NGX_INT64_LEN + 1];

    return ngx_http_msgr_pg_param(q, i, buf,
                                  ngx_sprintf(buf, "%L", v) - buf);
}


void
ngx_http_msgr_pg_run(ngx_http_msgr_pg_pool_t *pool,
    ngx_http_msgr_pg_query_t *q)
{
    ngx_queue_t              *qu;
    ngx_http_msgr_pg_conn_t  *pc;

    q->pg = pool;
    ngx_add_timer(&q->timer, pool->timeout);

    while (!ngx_queue_empty(&pool->idle)) {
        qu = ngx_queue_head(&pool->idle);
        ngx_queue_remove(qu);
        pc = ngx_queue_data(qu, ngx_http_msgr_pg_conn_t, idle);

        if (ngx_http_msgr_pg_send(pc, q) == NGX_OK) {
            return;
        }

        /* a dead idle connection: closed, try the next one */
        pc->query = NULL;
        ngx_http_msgr_pg_close(pc, 0);
    }

    if (pool->nconns >= pool->size && pool->nwaiting >= pool->queue_max) {
        ngx_log_error(NGX_LOG_WARN, q->log, 0,
                      "msgr: all %ui PostgreSQL connections busy and "
                      "%ui requests waiting", pool->nconns, pool->nwaiting);
        ngx_http_msgr_pg_complete(q, NGX_BUSY, NULL);
        return;
    }

    ngx_http_msgr_pg_enqueue(pool, q, 0);

    if (pool->nconns < pool->size
        && ngx_http_msgr_pg_connect(pool, 0) != NGX_OK
        && pool->nconns == 0)
    {
        ngx_http_msgr_pg_fail_waiting(pool);
    }
}


static void
ngx_http_msgr_pg_enqueue(ngx_http_msgr_pg_pool_t *pool,
    ngx_http_msgr_pg_query_t *q, ngx_uint_t head)
{
    if (head) {
        ngx_queue_insert_head(&pool->waiting, &q->queue);

    } else {
        ngx_queue_insert_tail(&pool->waiting, &q->queue);
    }

    q->queued = 1;
    pool->nwaiting++;
}


static ngx_http_msgr_pg_query_t *
ngx_http_msgr_pg_dequeue(ngx_http_msgr_pg_pool_t *pool)
{
    ngx_queue_t               *qu;
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_queue_empty(&pool->waiting)) {
        return NULL;
    }

    qu = ngx_queue_head(&pool->waiting);
    ngx_queue_remove(qu);
    pool->nwaiting--;

    q = ngx_queue_data(qu, ngx_http_msgr_pg_query_t, queue);
    q->queued = 0;

    return q;
}


static void
ngx_http_msgr_pg_fail_waiting(ngx_http_msgr_pg_pool_t *pool)
{
    ngx_http_msgr_pg_query_t  *q;

    while ((q = ngx_http_msgr_pg_dequeue(pool)) != NULL) {
        ngx_http_msgr_pg_complete(q, NGX_BUSY, NULL);
    }
}


static ngx_int_t
ngx_http_msgr_pg_connect(ngx_http_msgr_pg_pool_t *pool, ngx_uint_t listener)
{
    PGconn                   *conn;
    ngx_http_msgr_pg_conn_t  *pc;

    conn = PQconnectStart((const char *) pool->conninfo.data);
    if (conn == NULL) {
        ngx_log_error(NGX_LOG_ERR, pool->log, 0,
                      "msgr: PQconnectStart() failed: out of memory");
        return NGX_ERROR;
    }

    if (PQstatus(conn) == CONNECTION_BAD
        || PQsetnonblocking(conn, 1) == -1)
    {
        ngx_http_msgr_pg_log(NGX_LOG_ERR, pool->log,
                             "msgr: cannot connect to PostgreSQL",
                             PQerrorMessage(conn));
        PQfinish(conn);
        return NGX_ERROR;
    }

    pc = ngx_calloc(sizeof(ngx_http_msgr_pg_conn_t), pool->log);
    if (pc == NULL) {
        PQfinish(conn);
        return NGX_ERROR;
    }

    PQsetNoticeProcessor(conn, ngx_http_msgr_pg_notice, pool);

    pc->pgconn = conn;
    pc->pool = pool;
    pc->state = NGX_HTTP_MSGR_PG_CONNECTING;
    pc->listener = listener;

    if (ngx_http_msgr_pg_attach(pc) != NGX_OK) {
        PQfinish(conn);
        ngx_free(pc);
        return NGX_ERROR;
    }

    ngx_queue_insert_tail(&pool->all, &pc->all);

    if (listener) {
        pool->listener = pc;

    } else {
        pool->nconns++;
    }

    pc->connect_timer.handler = ngx_http_msgr_pg_connect_timeout;
    pc->connect_timer.data = pc;
    pc->connect_timer.log = pool->log;
    pc->connect_timer.cancelable = 1;
    ngx_add_timer(&pc->connect_timer, pool->timeout);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "msgr pg: connecting, %ui connections", pool->nconns);

    /*
     * Nothing more until the socket is writable: epoll reports the state
     * the socket is in when it is added, so the first event comes by itself.
     */

    return NGX_OK;
}


/* wraps libpq's current socket in an nginx connection */

static ngx_int_t
ngx_http_msgr_pg_attach(ngx_http_msgr_pg_conn_t *pc)
{
    int                sock;
    ngx_connection_t  *c;

    sock = PQsocket(pc->pgconn);
    if (sock == -1) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(sock, pc->pool->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->data = pc;
    c->read->handler = ngx_http_msgr_pg_read_handler;
    c->write->handler = ngx_http_msgr_pg_write_handler;
    c->read->log = pc->pool->log;
    c->write->log = pc->pool->log;
    c->log = pc->pool->log;

    if (ngx_add_conn) {
        if (ngx_add_conn(c) == NGX_ERROR) {
            c->fd = (ngx_socket_t) -1;
            ngx_free_connection(c);
            return NGX_ERROR;
        }

    } else if (ngx_add_event(c->read, NGX_READ_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT) != NGX_OK
               || ngx_add_event(c->write, NGX_WRITE_EVENT,
                                (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                                ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT) != NGX_OK)
    {
        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
        return NGX_ERROR;
    }

    pc->c = c;

    return NGX_OK;
}


/* releases the nginx connection; the socket itself belongs to libpq */

static void
ngx_http_msgr_pg_detach(ngx_http_msgr_pg_conn_t *pc, ngx_uint_t closed)
{
    ngx_connection_t  *c;

    c = pc->c;
    if (c == NULL) {
        return;
    }

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    /* a socket libpq already closed left the event set by itself */

    if (ngx_del_conn) {
        ngx_del_conn(c, closed ? NGX_CLOSE_EVENT : 0);

    } else {
        if (c->read->active) {
            ngx_del_event(c->read, NGX_READ_EVENT,
                          closed ? NGX_CLOSE_EVENT : 0);
        }

        if (c->write->active) {
            ngx_del_event(c->write, NGX_WRITE_EVENT,
                          closed ? NGX_CLOSE_EVENT : 0);
        }
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->fd = (ngx_socket_t) -1;
    ngx_free_connection(c);
    pc->c = NULL;
}


static ngx_int_t
ngx_http_msgr_pg_writable(int fd)
{
    struct pollfd  p;

    p.fd = fd;
    p.events = POLLOUT;
    p.revents = 0;

    /* a zero timeout: only asks, never waits */
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}


static void
ngx_http_msgr_pg_connect_poll(ngx_http_msgr_pg_conn_t *pc)
{
    PostgresPollingStatusType  st;

    for ( ;; ) {
        st = PQconnectPoll(pc->pgconn);

        if (st != PGRES_POLLING_FAILED
            && PQstatus(pc->pgconn) == CONNECTION_STARTED)
        {
            /*
             * libpq closed its socket and started over (another address,
             * or without SSL): a new socket, perhaps with the same number
             */
            ngx_http_msgr_pg_detach(pc, 1);

            if (ngx_http_msgr_pg_attach(pc) != NGX_OK) {
                ngx_http_msgr_pg_close(pc, 1);
            }

            return;
        }

        switch (st) {

        case PGRES_POLLING_OK:
            ngx_log_debug0(NGX_LOG_DEBUG_HTTP, pc->pool->log, 0,
                           "msgr pg: connected");

            if (pc->connect_timer.timer_set) {
                ngx_del_timer(&pc->connect_timer);
            }

            ngx_http_msgr_pg_ready(pc);
            return;

        case PGRES_POLLING_FAILED:
            ngx_http_msgr_pg_log(NGX_LOG_ERR, pc->pool->log,
                                 "msgr: cannot connect to PostgreSQL",
                                 PQerrorMessage(pc->pgconn));
            ngx_http_msgr_pg_close(pc, 1);
            return;

        case PGRES_POLLING_WRITING:
            /*
             * Edge-triggered events will not say again that a socket is
             * writable: when it already is, go on at once.
             */
            if (ngx_http_msgr_pg_writable(pc->c->fd)) {
                continue;
            }

            return;

        default: /* PGRES_POLLING_READING */
            return;
        }
    }
}


static void
ngx_http_msgr_pg_connect_timeout(ngx_event_t *ev)
{
    ngx_http_msgr_pg_conn_t  *pc;

    pc = ev->data;

    ngx_log_error(NGX_LOG_ERR, pc->pool->log, NGX_ETIMEDOUT,
                  "msgr: connecting to PostgreSQL timed out");

    ngx_http_msgr_pg_close(pc, 1);
}


static void
ngx_http_msgr_pg_write_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_msgr_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    switch (pc->state) {

    case NGX_HTTP_MSGR_PG_CONNECTING:
        ngx_http_msgr_pg_connect_poll(pc);
        return;

    case NGX_HTTP_MSGR_PG_IDLE:
        return;

    default:
        if (ngx_http_msgr_pg_flush(pc) == NGX_ERROR) {
            ngx_http_msgr_pg_close(pc, 0);
        }
    }
}


static void
ngx_http_msgr_pg_read_handler(ngx_event_t *ev)
{
    ngx_connection_t         *c;
    ngx_http_msgr_pg_conn_t  *pc;

    c = ev->data;
    pc = c->data;

    if (pc->state == NGX_HTTP_MSGR_PG_CONNECTING) {
        ngx_http_msgr_pg_connect_poll(pc);
        return;
    }

    if (pc->state == NGX_HTTP_MSGR_PG_IDLE) {
        /* an idle connection: EOF or an error message means it is gone */
        if (!PQconsumeInput(pc->pgconn)
            || PQstatus(pc->pgconn) == CONNECTION_BAD)
        {
            ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                                 "msgr: idle PostgreSQL connection lost",
                                 PQerrorMessage(pc->pgconn));
            ngx_http_msgr_pg_close(pc, 0);
            return;
        }

        ngx_http_msgr_pg_notifies(pc);
        return;
    }

    if (ngx_http_msgr_pg_flush(pc) == NGX_ERROR
        || ngx_http_msgr_pg_consume(pc) == NGX_ERROR)
    {
        ngx_http_msgr_pg_close(pc, 0);
    }
}


static ngx_int_t
ngx_http_msgr_pg_flush(ngx_http_msgr_pg_conn_t *pc)
{
    switch (PQflush(pc->pgconn)) {

    case 0:
        return NGX_OK;

    case 1:
        /* the rest goes on the next write event */
        return NGX_AGAIN;

    default:
        ngx_http_msgr_pg_log(NGX_LOG_ERR, pc->pool->log,
                             "msgr: sending to PostgreSQL failed",
                             PQerrorMessage(pc->pgconn));
        return NGX_ERROR;
    }
}


/*
 * Reads what the server sent and handles every complete result.  libpq may
 * stop reading before the socket is drained, and an edge-triggered event
 * would not come again for what is left: peek, and read on while there is.
 */

static ngx_int_t
ngx_http_msgr_pg_consume(ngx_http_msgr_pg_conn_t *pc)
{
    int        fd;
    char       b;
    ssize_t    n;
    ngx_int_t  rc;

    for ( ;; ) {
        if (!PQconsumeInput(pc->pgconn)) {
            ngx_http_msgr_pg_log(NGX_LOG_ERR, pc->pool->log,
                                 "msgr: reading from PostgreSQL failed",
                                 PQerrorMessage(pc->pgconn));
            return NGX_ERROR;
        }

        fd = PQsocket(pc->pgconn);

        rc = ngx_http_msgr_pg_results(pc);
        if (rc != NGX_AGAIN) {
            return rc;
        }

        n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

        if (n <= 0) {
            if (n == -1 && (ngx_socket_errno == NGX_EAGAIN
                            || ngx_socket_errno == NGX_EINTR))
            {
                return NGX_OK;
            }

            ngx_log_error(NGX_LOG_ERR, pc->pool->log, ngx_socket_errno,
                          "msgr: PostgreSQL closed the connection");
            return NGX_ERROR;
        }
    }
}


/*
 * Takes every result libpq has ready.  NGX_AGAIN: the command is not over.
 * NGX_OK: handled (the connection may have moved on to its next query).
 */

static ngx_int_t
ngx_http_msgr_pg_results(ngx_http_msgr_pg_conn_t *pc)
{
    PGresult                  *res;
    ExecStatusType             st;
    ngx_http_msgr_pg_query_t  *q;

    ngx_http_msgr_pg_notifies(pc);

    for ( ;; ) {
        if (PQisBusy(pc->pgconn)) {
            return NGX_AGAIN;
        }

        res = PQgetResult(pc->pgconn);

        if (res != NULL) {
            pc->received = 1;
            st = PQresultStatus(res);

            /* keep the first error, else the last result */
            if (pc->result == NULL
                || (PQresultStatus(pc->result) != PGRES_FATAL_ERROR
                    && st != PGRES_NONFATAL_ERROR))
            {
                if (pc->result) {
                    PQclear(pc->result);
                }

                pc->result = res;

            } else {
                PQclear(res);
            }

            continue;
        }

        /* NULL: the command is complete */

        res = pc->result;
        pc->result = NULL;
        q = pc->query;

        if (pc->listener) {
            return ngx_http_msgr_pg_listen_result(pc, res);
        }

        if (pc->state == NGX_HTTP_MSGR_PG_PREPARING
            && res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
        {
            PQclear(res);

            if (q == NULL) {
                /* the request went away: the statement stays prepared */
                pc->prepared |= (uint64_t) 1 << pc->stmt_id;
                ngx_http_msgr_pg_ready(pc);
                return NGX_OK;
            }

            pc->prepared |= (uint64_t) 1 << q->stmt->id;

            if (ngx_http_msgr_pg_send(pc, q) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        pc->query = NULL;

        /* an SQL error is the caller's to judge, and to log */

        ngx_http_msgr_pg_ready(pc);

        if (q) {
            ngx_http_msgr_pg_complete(q, NGX_OK, res);

        } else if (res) {
            PQclear(res);
        }

        return NGX_OK;
    }
}


static void
ngx_http_msgr_pg_notifies(ngx_http_msgr_pg_conn_t *pc)
{
    PGnotify                 *n;
    ngx_http_msgr_pg_pool_t  *pool;

    pool = pc->pool;

    while ((n = PQnotifies(pc->pgconn)) != NULL) {
        if (pool->notify) {
            pool->notify(pool, n);
        }

        PQfreemem(n);
    }
}


/* a connection with nothing to do: the next waiting query, or idle */

static void
ngx_http_msgr_pg_ready(ngx_http_msgr_pg_conn_t *pc)
{
    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_pg_query_t  *q;

    pool = pc->pool;

    if (pc->listener) {
        /* connected: LISTEN, and nothing else ever */
        pc->state = NGX_HTTP_MSGR_PG_QUERYING;

        if (!PQsendQuery(pc->pgconn, pool->listen_sql)
            || ngx_http_msgr_pg_flush(pc) == NGX_ERROR)
        {
            ngx_http_msgr_pg_close(pc, 0);
        }

        return;
    }

    while ((q = ngx_http_msgr_pg_dequeue(pool)) != NULL) {
        if (ngx_http_msgr_pg_send(pc, q) == NGX_OK) {
            return;
        }

        /* the connection cannot send: the query goes back first */
        pc->query = NULL;
        ngx_http_msgr_pg_enqueue(pool, q, 1);
        ngx_http_msgr_pg_close(pc, 0);
        return;
    }

    pc->state = NGX_HTTP_MSGR_PG_IDLE;
    ngx_queue_insert_tail(&pool->idle, &pc->idle);
}


static ngx_int_t
ngx_http_msgr_pg_send(ngx_http_msgr_pg_conn_t *pc,
    ngx_http_msgr_pg_query_t *q)
{
    int                             ok;
    const ngx_http_msgr_pg_stmt_t  *stmt;

    stmt = q->stmt;

    pc->query = q;
    pc->received = 0;
    q->conn = pc;

    if (!(pc->prepared & ((uint64_t) 1 << stmt->id))) {
        pc->state = NGX_HTTP_MSGR_PG_PREPARING;
        pc->stmt_id = stmt->id;
        ok = PQsendPrepare(pc->pgconn, stmt->name, stmt->sql, stmt->nparams,
                           NULL);

    } else {
        pc->state = NGX_HTTP_MSGR_PG_QUERYING;
        ok = PQsendQueryPrepared(pc->pgconn, stmt->name, stmt->nparams,
                                 q->values, NULL, NULL, 0);
        if (ok) {
            q->sent = 1;
        }
    }

    if (!ok) {
        ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                             "msgr: sending a query to PostgreSQL failed",
                             PQerrorMessage(pc->pgconn));
        q->conn = NULL;
        return NGX_ERROR;
    }

    if (ngx_http_msgr_pg_flush(pc) == NGX_ERROR) {
        q->conn = NULL;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Closes a connection.  Its query, if any, runs again once on a fresh
 * connection when that is safe (it never reached the server, or it is
 * idempotent and nothing came back yet); otherwise it fails.
 */

static void
ngx_http_msgr_pg_close(ngx_http_msgr_pg_conn_t *pc, ngx_uint_t connect_failed)
{
    ngx_uint_t                 retry;
    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_pg_query_t  *q;

    pool = pc->pool;
    q = pc->query;

    if (pc->state == NGX_HTTP_MSGR_PG_IDLE && !pc->listener) {
        ngx_queue_remove(&pc->idle);
    }

    ngx_queue_remove(&pc->all);

    if (pc->connect_timer.timer_set) {
        ngx_del_timer(&pc->connect_timer);
    }

    /* PQfinish() closes the socket, which leaves the event set too */
    ngx_http_msgr_pg_detach(pc, 1);

    if (pc->result) {
        PQclear(pc->result);
    }

    PQfinish(pc->pgconn);

    if (pc->listener) {
        ngx_free(pc);
        pool->listener = NULL;

        if (pool->listening) {
            pool->listening = 0;

            ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                          "msgr: LISTEN connection lost, caches bypassed "
                          "until it is back");

            if (pool->listen_down) {
                pool->listen_down(pool);
            }
        }

        pool->listen_failures++;

        if (!pool->exiting && !ngx_exiting && !ngx_terminate) {
            ngx_add_timer(&pool->listen_timer,
                          pool->listen_failures > 1 ? 1000 : 10);
        }

        return;
    }

    ngx_free(pc);
    pool->nconns--;

    if (q) {
        q->conn = NULL;
        retry = !q->retried && (!q->sent || q->stmt->idempotent);

        if (retry) {
            q->retried = 1;
            q->sent = 0;
            ngx_http_msgr_pg_enqueue(pool, q, 1);

        } else {
            ngx_http_msgr_pg_complete(q, NGX_BUSY, NULL);
        }
    }

    if (ngx_queue_empty(&pool->waiting) || ngx_exiting || ngx_terminate) {
        return;
    }

    if (connect_failed) {
        /* the database cannot be reached: nobody will serve the queue */
        if (pool->nconns == 0) {
            ngx_http_msgr_pg_fail_waiting(pool);
        }

        return;
    }

    if (pool->nconns < pool->size
        && ngx_http_msgr_pg_connect(pool, 0) != NGX_OK
        && pool->nconns == 0)
    {
        ngx_http_msgr_pg_fail_waiting(pool);
    }
}


static void
ngx_http_msgr_pg_complete(ngx_http_msgr_pg_query_t *q, ngx_int_t status,
    PGresult *res)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->done = 1;
    q->conn = NULL;
    q->status = status;
    q->result = res;

    /* the handler may finalize the request and free q: nothing after it */
    q->handler(q);
}


static void
ngx_http_msgr_pg_query_timeout(ngx_event_t *ev)
{
    ngx_http_msgr_pg_conn_t   *pc;
    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_pg_query_t  *q;

    q = ev->data;
    pool = q->pg;

    ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                  "msgr: PostgreSQL query timed out");

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->queued = 0;
        pool->nwaiting--;

    } else if (q->conn) {
        /* a cancel request would block: the connection is replaced */
        pc = q->conn;
        pc->query = NULL;
        q->conn = NULL;
        ngx_http_msgr_pg_close(pc, 0);
    }

    ngx_http_msgr_pg_complete(q, NGX_BUSY, NULL);
}


static void
ngx_http_msgr_pg_query_cleanup(void *data)
{
    ngx_http_msgr_pg_query_t  *q = data;

    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    if (q->queued) {
        ngx_queue_remove(&q->queue);
        q->queued = 0;
        q->pg->nwaiting--;
    }

    if (q->conn) {
        /* still running: the connection drops the result when it comes */
        q->conn->query = NULL;
        q->conn = NULL;
    }

    if (q->result) {
        PQclear(q->result);
        q->result = NULL;
    }
}


/* libpq's messages end in a newline, which the error log does not want */

static void
ngx_http_msgr_pg_log(ngx_uint_t level, ngx_log_t *log, const char *what,
    const char *msg)
{
    size_t  len;

    len = ngx_strlen(msg);

    while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) {
        len--;
    }

    ngx_log_error(level, log, 0, "%s: %*s", what, len, msg);
}


/* PostgreSQL's notices and warnings go to the error log, not to stderr */

static void
ngx_http_msgr_pg_notice(void *arg, const char *msg)
{
    ngx_http_msgr_pg_pool_t  *pool = arg;

    ngx_http_msgr_pg_log(NGX_LOG_NOTICE, pool->log, "msgr: PostgreSQL says",
                         msg);
}

/*
 * msgr: a small per-worker pool of non-blocking PostgreSQL connections.
 *
 * Everything is driven by nginx events: connections are made with
 * PQconnectStart/PQconnectPoll, queries are sent with PQsendPrepare and
 * PQsendQueryPrepared, flushed with PQflush on write events and read with
 * PQconsumeInput/PQgetResult on read events.  No call here blocks.
 */

#ifndef _NGX_HTTP_MSGR_PG_H_INCLUDED_
#define _NGX_HTTP_MSGR_PG_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <libpq-fe.h>


#define NGX_HTTP_MSGR_PG_MAX_PARAMS  16
#define NGX_HTTP_MSGR_PG_MAX_STMTS   256

/* ngx_http_msgr_pg_stmt_t.idempotent */
#define NGX_HTTP_MSGR_PG_IDEMPOTENT  1   /* a read: may run twice */
#define NGX_HTTP_MSGR_PG_WRITE       0   /* a change: runs at most once */


typedef struct ngx_http_msgr_pg_pool_s   ngx_http_msgr_pg_pool_t;
typedef struct ngx_http_msgr_pg_conn_s   ngx_http_msgr_pg_conn_t;
typedef struct ngx_http_msgr_pg_query_s  ngx_http_msgr_pg_query_t;

/*
 * Where a query is: created (or between two places), in the pool's wait
 * queue, on a connection that prepares its statement, on a connection that
 * sent it to the server, or completed (its handler called).
 */
typedef enum {
    NGX_HTTP_MSGR_PG_QUERY_NEW = 0,
    NGX_HTTP_MSGR_PG_QUERY_WAITING,
    NGX_HTTP_MSGR_PG_QUERY_PREPARING,
    NGX_HTTP_MSGR_PG_QUERY_SENT,
    NGX_HTTP_MSGR_PG_QUERY_DONE
} ngx_http_msgr_pg_query_state_e;

typedef void (*ngx_http_msgr_pg_handler_pt)(ngx_http_msgr_pg_query_t *q);
typedef void (*ngx_http_msgr_pg_notify_pt)(ngx_http_msgr_pg_pool_t *pool,
    PGnotify *n);
typedef void (*ngx_http_msgr_pg_listen_pt)(ngx_http_msgr_pg_pool_t *pool);


/*
 * A statement, prepared once per connection under its name.  Its id
 * (1 to NGX_HTTP_MSGR_PG_MAX_STMTS, its bit in a connection's cache of
 * prepared statements) is given when the module starts, by walking the
 * resources' lists of statements (ngx_http_msgr_api_init()); a
 * statement's initializer writes 0, never given, which the pool refuses.
 */
typedef struct {
    const char                   *name;
    const char                   *sql;
    int                           nparams;
    /*
     * NGX_HTTP_MSGR_PG_IDEMPOTENT: safe to run again on a fresh connection
     * after a failure; NGX_HTTP_MSGR_PG_WRITE: not
     */
    unsigned                      idempotent:1;
    ngx_uint_t                    id;
} ngx_http_msgr_pg_stmt_t;


struct ngx_http_msgr_pg_pool_s {
    ngx_str_t                     configured;    /* NUL-terminated */
    ngx_str_t                     conninfo;      /* what libpq gets */
    ngx_uint_t                    size;
    ngx_uint_t                    queue_max;
    ngx_msec_t                    timeout;
    ngx_msec_t                    heartbeat;

    /* per worker */
    ngx_log_t                    *log;
    ngx_queue_t                   idle;
    ngx_queue_t                   waiting;
    ngx_queue_t                   all;
    ngx_uint_t                    nconns;
    ngx_uint_t                    nwaiting;
    ngx_http_msgr_pg_notify_pt    notify;
    void                         *notify_data;

    /*
     * A connection of its own LISTENs (listen_sql); listen_up is called
     * each time the LISTEN is in place, listen_down when it is lost.
     */
    const char                   *listen_sql;
    ngx_http_msgr_pg_listen_pt    listen_up;
    ngx_http_msgr_pg_listen_pt    listen_down;
    ngx_http_msgr_pg_conn_t      *listener;
    ngx_event_t                   listen_timer;
    ngx_uint_t                    listen_failures;
    /* the LISTEN is in place: the listener is LISTENING or HEARTBEAT */
    unsigned                      listening:1;
    unsigned                      exiting:1;
};


struct ngx_http_msgr_pg_query_s {
    const ngx_http_msgr_pg_stmt_t  *stmt;
    const char                     *values[NGX_HTTP_MSGR_PG_MAX_PARAMS];

    /* set on completion */
    ngx_int_t                       status;  /* NGX_OK, NGX_BUSY, NGX_ERROR */
    PGresult                       *result;

    ngx_http_msgr_pg_handler_pt     handler;
    void                           *data;
    ngx_pool_t                     *pool;
    ngx_log_t                      *log;

    ngx_http_msgr_pg_pool_t        *pg;
    ngx_http_msgr_pg_query_state_e  state;
    ngx_http_msgr_pg_conn_t        *conn;    /* PREPARING and SENT */
    ngx_queue_t                     queue;   /* WAITING */
    ngx_event_t                     timer;

    /*
     * this attempt may have reached the server: set when the statement is
     * sent, and kept when the connection fails while sending it, until the
     * query is retried
     */
    unsigned                        sent:1;
    /* the second and last attempt, on a fresh connection */
    unsigned                        retried:1;
    /*
     * NGX_BUSY for a statement that is not idempotent, was sent, and whose
     * connection timed out or was lost before its result came: it may have
     * committed, or not
     */
    unsigned                        outcome_unknown:1;
};


ngx_int_t ngx_http_msgr_pg_init_worker(ngx_http_msgr_pg_pool_t *pool,
    ngx_cycle_t *cycle);
void ngx_http_msgr_pg_exit_worker(ngx_http_msgr_pg_pool_t *pool);

/*
 * At configuration time.  check: the configured string parses and names no
 * host that libpq would have to resolve in the worker (an [emerg] says what
 * to write instead).  build: pool->conninfo, the configured string with
 * msgr's defaults (TCP keepalives, gssencmode=disable, statement_timeout
 * and lock_timeout a little under pool->timeout).
 */
ngx_int_t ngx_http_msgr_pg_conninfo_check(ngx_conf_t *cf, ngx_str_t *value);
ngx_int_t ngx_http_msgr_pg_conninfo_build(ngx_conf_t *cf,
    ngx_http_msgr_pg_pool_t *pool);

/*
 * Creates a query whose memory and result live as long as the given pool
 * (normally the request's): a pool cleanup detaches it from the connection
 * pool and frees the PGresult, so an aborted request leaks nothing.
 */
ngx_http_msgr_pg_query_t *ngx_http_msgr_pg_query_create(ngx_pool_t *pool,
    ngx_log_t *log, const ngx_http_msgr_pg_stmt_t *stmt);

/* copies a text parameter (NULL data: SQL NULL) */
ngx_int_t ngx_http_msgr_pg_param(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    u_char *data, size_t len);
ngx_int_t ngx_http_msgr_pg_param_int(ngx_http_msgr_pg_query_t *q,
    ngx_uint_t i, int64_t v);

/*
 * Runs the query; q->handler is called exactly once, possibly before this
 * returns.  On completion q->status is NGX_OK with q->result set (which may
 * be an error result), or NGX_BUSY when the database is unavailable, the
 * wait queue is full or the query timed out (q->outcome_unknown: a write
 * that may have committed).
 */
void ngx_http_msgr_pg_run(ngx_http_msgr_pg_pool_t *pool,
    ngx_http_msgr_pg_query_t *q);


#endif /* _NGX_HTTP_MSGR_PG_H_INCLUDED_ */

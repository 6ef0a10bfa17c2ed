/*
 * msgr: non-blocking PostgreSQL connection pool for nginx workers.
 *
 * A connection is in one of the states below, and only
 * ngx_http_msgr_pg_set_state() moves it, keeping the idle queue, the list
 * of all connections, the counts and pool->listening in step.  Idle
 * connections keep a read handler so that a PostgreSQL restart (EOF, an
 * error message) closes them at once; every read path drains the socket.
 * Requests wait in a bounded queue while every connection is busy; each
 * query carries a timer covering its wait and its run.  PostgreSQL itself
 * stops a statement a little before that timer (statement_timeout,
 * lock_timeout), so a query whose client has given up keeps its connection
 * until the server says it is over, and the sessions stay bounded by the
 * pool.  Two policies are named functions: when a query runs again
 * (ngx_http_msgr_pg_may_retry) and when the pool grows
 * (ngx_http_msgr_pg_grow).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>
#include <poll.h>
#include <arpa/inet.h>

#include "ngx_http_msgr_pg.h"


/*
 * A pool connection:  CLOSED -> CONNECTING -> IDLE <-> PREPARING/QUERYING
 * (PREPARING: a statement's first use on it, then QUERYING); a connection
 * that finishes a query takes the next waiting one instead of going IDLE.
 * The LISTEN connection:  CLOSED -> CONNECTING -> SUBSCRIBING (LISTEN sent)
 * -> LISTENING <-> HEARTBEAT.  Any state may go to CLOSED.
 */

typedef enum {
    NGX_HTTP_MSGR_PG_CLOSED = 0,
    NGX_HTTP_MSGR_PG_CONNECTING,
    NGX_HTTP_MSGR_PG_IDLE,
    NGX_HTTP_MSGR_PG_PREPARING,
    NGX_HTTP_MSGR_PG_QUERYING,
    NGX_HTTP_MSGR_PG_SUBSCRIBING,
    NGX_HTTP_MSGR_PG_LISTENING,
    NGX_HTTP_MSGR_PG_HEARTBEAT
} ngx_http_msgr_pg_state_e;


#if (NGX_DEBUG)

static const char  *ngx_http_msgr_pg_state_names[] = {
    "closed",
    "connecting",
    "idle",
    "preparing",
    "querying",
    "subscribing",
    "listening",
    "heartbeat"
};

#endif


struct ngx_http_msgr_pg_conn_s {
    PGconn                      *pgconn;
    ngx_connection_t            *c;
    ngx_http_msgr_pg_pool_t     *pool;
    ngx_http_msgr_pg_query_t    *query;
    PGresult                    *result;
    ngx_queue_t                  idle;      /* IDLE */
    ngx_queue_t                  all;       /* all but CLOSED */
    /*
     * connecting: the connect timeout; a query whose client gave up: how
     * long PostgreSQL may take to end it; the LISTEN connection: the next
     * heartbeat, or the deadline of the one (or of the LISTEN) in flight
     */
    ngx_event_t                  timer;
    ngx_socket_t                 fd;        /* the socket wrapped in c */
    /* bit id - 1: prepared on this connection */
    uint64_t                     prepared[NGX_HTTP_MSGR_PG_MAX_STMTS / 64];
    ngx_uint_t                   stmt_id;
    ngx_http_msgr_pg_state_e     state;
    unsigned                     received:1;
    /* its role, for life: the LISTEN connection, outside pool->nconns */
    unsigned                     listener:1;
};


#if (NGX_HTTP_MSGR_PG_MAX_STMTS % 64)
#error "NGX_HTTP_MSGR_PG_MAX_STMTS is a multiple of 64"
#endif

#define ngx_http_msgr_pg_prepared(pc, id)                                   \
    ((pc)->prepared[((id) - 1) / 64] & ((uint64_t) 1 << (((id) - 1) % 64)))
#define ngx_http_msgr_pg_set_prepared(pc, id)                               \
    (pc)->prepared[((id) - 1) / 64] |= (uint64_t) 1 << (((id) - 1) % 64)


#define NGX_HTTP_MSGR_PG_HEARTBEAT_SQL  "SELECT 1 AS msgr_heartbeat"


static void ngx_http_msgr_pg_set_state(ngx_http_msgr_pg_conn_t *pc,
    ngx_http_msgr_pg_state_e state);
static ngx_int_t ngx_http_msgr_pg_connect(ngx_http_msgr_pg_pool_t *pool,
    ngx_uint_t listener);
static void ngx_http_msgr_pg_grow(ngx_http_msgr_pg_pool_t *pool);
static ngx_uint_t ngx_http_msgr_pg_may_retry(ngx_http_msgr_pg_query_t *q);
static ngx_uint_t ngx_http_msgr_pg_outcome_unknown(
    ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pg_lost(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pg_listen_start(ngx_event_t *ev);
static ngx_int_t ngx_http_msgr_pg_listen_result(ngx_http_msgr_pg_conn_t *pc,
    PGresult *res);
static ngx_int_t ngx_http_msgr_pg_heartbeat_result(
    ngx_http_msgr_pg_conn_t *pc, PGresult *res);
static ngx_int_t ngx_http_msgr_pg_attach(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_detach(ngx_http_msgr_pg_conn_t *pc,
    ngx_uint_t closed);
static void ngx_http_msgr_pg_connect_poll(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_timer(ngx_event_t *ev);
static void ngx_http_msgr_pg_heartbeat(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_abandon(ngx_http_msgr_pg_conn_t *pc);
static ngx_int_t ngx_http_msgr_pg_more(ngx_http_msgr_pg_conn_t *pc);
static void ngx_http_msgr_pg_idle_read(ngx_http_msgr_pg_conn_t *pc);
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
    if (pool->conninfo.data == NULL) {
        /* no server uses this pool */
        return NGX_OK;
    }

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

    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_LISTENING);

    /* the first heartbeat */
    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    ngx_add_timer(&pc->timer, pool->heartbeat);

    if (pool->listen_failures) {
        ngx_log_error(NGX_LOG_NOTICE, pool->log, 0,
                      "msgr: listening to PostgreSQL again");
        pool->listen_failures = 0;
    }

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


/*
 * Connection strings.  libpq resolves a host name with the system resolver,
 * which blocks: a host must be an IP address or a Unix socket directory,
 * unless hostaddr gives the address (host then only names the server for
 * TLS and Kerberos).
 */

static ngx_int_t
ngx_http_msgr_pg_host_ok(u_char *host, size_t len, ngx_uint_t hostaddr)
{
    u_char           buf[NGX_SOCKADDR_STRLEN + 1];
    struct in_addr   a4;
#if (NGX_HAVE_INET6)
    struct in6_addr  a6;
#endif

    if (len == 0 || hostaddr || host[0] == '/' || host[0] == '@') {
        return NGX_OK;
    }

    if (len >= sizeof(buf)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(buf, host, len);
    buf[len] = '\0';

    if (inet_pton(AF_INET, (char *) buf, &a4) == 1) {
        return NGX_OK;
    }

#if (NGX_HAVE_INET6)
    if (inet_pton(AF_INET6, (char *) buf, &a6) == 1) {
        return NGX_OK;
    }
#endif

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_msgr_pg_conninfo_check(ngx_conf_t *cf, ngx_str_t *value)
{
    char              *err;
    u_char            *host, *addr, *h, *a, *he, *ae;
    ngx_int_t          rc;
    PQconninfoOption  *opts, *o;

    err = NULL;
    opts = PQconninfoParse((const char *) value->data, &err);

    if (opts == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "msgr_pg: invalid connection string \"%V\": %s",
                           value, err ? err : "out of memory");
        if (err) {
            PQfreemem(err);
        }

        return NGX_ERROR;
    }

    host = (u_char *) "";
    addr = (u_char *) "";

    for (o = opts; o->keyword; o++) {
        if (o->val == NULL) {
            continue;
        }

        if (ngx_strcmp(o->keyword, "host") == 0) {
            host = (u_char *) o->val;

        } else if (ngx_strcmp(o->keyword, "hostaddr") == 0) {
            addr = (u_char *) o->val;
        }
    }

    /* comma-separated lists, hostaddr's entries paired with host's */

    rc = NGX_OK;
    h = host;
    a = addr;

    while (*h) {
        he = (u_char *) ngx_strchr(h, ',');
        if (he == NULL) {
            he = h + ngx_strlen(h);
        }

        ae = (u_char *) ngx_strchr(a, ',');
        if (ae == NULL) {
            ae = a + ngx_strlen(a);
        }

        if (ngx_http_msgr_pg_host_ok(h, he - h, ae > a) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "msgr_pg: \"host=%*s\" is a host name, which "
                               "libpq would resolve in the worker, blocking "
                               "it: give the server's IP address as "
                               "\"hostaddr=\" (host may stay, for TLS), or "
                               "a Unix socket directory as \"host=\"",
                               he - h, h);
            rc = NGX_ERROR;
            break;
        }

        h = *he ? he + 1 : he;
        a = *ae ? ae + 1 : ae;
    }

    PQconninfoFree(opts);

    return rc;
}


/* appends " keyword='value'", quoting as libpq reads it */

static u_char *
ngx_http_msgr_pg_conninfo_add(u_char *p, const char *keyword,
    const char *value)
{
    p = ngx_sprintf(p, " %s='", keyword);

    for ( /* void */ ; *value; value++) {
        if (*value == '\'' || *value == '\\') {
            *p++ = '\\';
        }

        *p++ = *value;
    }

    *p++ = '\'';

    return p;
}


ngx_int_t
ngx_http_msgr_pg_conninfo_build(ngx_conf_t *cf, ngx_http_msgr_pg_pool_t *pool)
{
    char              *err, opt[128];
    u_char            *p, *v, *start;
    size_t             len;
    ngx_msec_t         limit;
    ngx_uint_t         i, seen;
    PQconninfoOption  *opts, *o;

    static const char *const  defaults[][2] = {
        { "gssencmode", "disable" },
        { "keepalives", "1" },
        { "keepalives_idle", "30" },
        { "keepalives_interval", "10" },
        { "keepalives_count", "3" },
        { NULL, NULL }
    };

    if (pool->conninfo.data) {
        return NGX_OK;
    }

    err = NULL;
    opts = PQconninfoParse((const char *) pool->configured.data, &err);
    if (opts == NULL) {
        if (err) {
            PQfreemem(err);
        }

        return NGX_ERROR;
    }

    /*
     * PostgreSQL ends a statement a little before the pool's timer fires:
     * a 10th of it sooner, at least 50 ms and at most a second
     */

    limit = ngx_min(ngx_max(pool->timeout / 10, 50), 1000);
    limit = pool->timeout > limit ? pool->timeout - limit : 1;

    ngx_sprintf((u_char *) opt, "-c statement_timeout=%M -c lock_timeout=%M%Z",
                limit, limit);

    len = 0;
    for (o = opts; o->keyword; o++) {
        if (o->val) {
            len += ngx_strlen(o->keyword) + 2 * ngx_strlen(o->val) + 4;
        }
    }

    len += sizeof(" options=''") + 2 * sizeof(opt) + 256;

    start = ngx_pnalloc(cf->pool, len);
    if (start == NULL) {
        PQconninfoFree(opts);
        return NGX_ERROR;
    }

    p = start;
    seen = 0;

    for (o = opts; o->keyword; o++) {
        if (ngx_strcmp(o->keyword, "options") == 0) {
            /* msgr's first: the administrator's own -c settings win */
            v = ngx_pnalloc(cf->pool, sizeof(opt) + 1
                                      + (o->val ? ngx_strlen(o->val) : 0));
            if (v == NULL) {
                PQconninfoFree(opts);
                return NGX_ERROR;
            }

            ngx_sprintf(v, "%s%s%s%Z", opt, o->val ? " " : "",
                        o->val ? o->val : "");

            p = ngx_http_msgr_pg_conninfo_add(p, o->keyword, (char *) v);
            continue;
        }

        if (o->val == NULL) {
            continue;
        }

        for (i = 0; defaults[i][0]; i++) {
            if (ngx_strcmp(o->keyword, defaults[i][0]) == 0) {
                seen |= 1 << i;
            }
        }

        p = ngx_http_msgr_pg_conninfo_add(p, o->keyword, o->val);
    }

    for (i = 0; defaults[i][0]; i++) {
        if (!(seen & (1 << i))) {
            p = ngx_http_msgr_pg_conninfo_add(p, defaults[i][0],
                                              defaults[i][1]);
        }
    }

    *p = '\0';

    PQconninfoFree(opts);

    pool->conninfo.data = start + 1;
    pool->conninfo.len = p - start - 1;

    return NGX_OK;
}


ngx_http_msgr_pg_query_t *
ngx_http_msgr_pg_query_create(ngx_pool_t *pool, ngx_log_t *log,
    const ngx_http_msgr_pg_stmt_t *stmt)
{
    ngx_pool_cleanup_t        *cln;
    ngx_http_msgr_pg_query_t  *q;

    if (stmt->id == 0 || stmt->id > NGX_HTTP_MSGR_PG_MAX_STMTS) {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "msgr: statement \"%s\" is in no resource's list",
                      stmt->name);
        return NULL;
    }

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
        pc = ngx_queue_data(qu, ngx_http_msgr_pg_conn_t, idle);

        /* leaves the idle queue: PREPARING or QUERYING */
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
    ngx_http_msgr_pg_grow(pool);
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

    q->state = NGX_HTTP_MSGR_PG_QUERY_WAITING;
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
    q->state = NGX_HTTP_MSGR_PG_QUERY_NEW;

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


/*
 * Growth: a query that has to wait opens another connection while the pool
 * is below its size.  When none can be opened and no connection is left to
 * serve the queue, the waiting queries fail at once.
 */

static void
ngx_http_msgr_pg_grow(ngx_http_msgr_pg_pool_t *pool)
{
    if (pool->nconns >= pool->size) {
        return;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "msgr pg: growing: %ui of %ui connections, %ui waiting",
                   pool->nconns, pool->size, pool->nwaiting);

    if (ngx_http_msgr_pg_connect(pool, 0) != NGX_OK && pool->nconns == 0) {
        ngx_http_msgr_pg_fail_waiting(pool);
    }
}


/*
 * The one place a connection changes state.  It keeps in step: the idle
 * queue (the IDLE connections), pool->all (every connection not CLOSED),
 * pool->nconns (the pool's connections not CLOSED; the LISTEN connection is
 * pool->listener instead) and pool->listening (the LISTEN connection is
 * LISTENING or HEARTBEAT).
 */

static void
ngx_http_msgr_pg_set_state(ngx_http_msgr_pg_conn_t *pc,
    ngx_http_msgr_pg_state_e state)
{
    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_pg_state_e   old;

    pool = pc->pool;
    old = pc->state;

    if (old == state) {
        return;
    }

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, pool->log, 0,
                   "msgr pg: %s connection %p: %s -> %s",
                   pc->listener ? "LISTEN" : "pool", pc,
                   ngx_http_msgr_pg_state_names[old],
                   ngx_http_msgr_pg_state_names[state]);

    if (old == NGX_HTTP_MSGR_PG_IDLE) {
        ngx_queue_remove(&pc->idle);

    } else if (old == NGX_HTTP_MSGR_PG_CLOSED) {
        ngx_queue_insert_tail(&pool->all, &pc->all);

        if (pc->listener) {
            pool->listener = pc;

        } else {
            pool->nconns++;
        }
    }

    pc->state = state;

    switch (state) {

    case NGX_HTTP_MSGR_PG_IDLE:
        ngx_queue_insert_tail(&pool->idle, &pc->idle);
        break;

    case NGX_HTTP_MSGR_PG_LISTENING:
        pool->listening = 1;
        break;

    case NGX_HTTP_MSGR_PG_CLOSED:
        ngx_queue_remove(&pc->all);

        if (pc->listener) {
            pool->listener = NULL;
            pool->listening = 0;

        } else {
            pool->nconns--;
        }

        break;

    default:
        break;
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
    pc->state = NGX_HTTP_MSGR_PG_CLOSED;
    pc->listener = listener;

    if (ngx_http_msgr_pg_attach(pc) != NGX_OK) {
        PQfinish(conn);
        ngx_free(pc);
        return NGX_ERROR;
    }

    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_CONNECTING);

    pc->timer.handler = ngx_http_msgr_pg_timer;
    pc->timer.data = pc;
    pc->timer.log = pool->log;
    pc->timer.cancelable = 1;
    ngx_add_timer(&pc->timer, pool->timeout);

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

    /*
     * As ngx_close_connection() does: c->fd is the socket's number until
     * ngx_free_connection() has cleared ngx_cycle->files[c->fd] (poll),
     * and -1 only after it
     */

    if (ngx_add_conn) {
        if (ngx_add_conn(c) == NGX_ERROR) {
            ngx_free_connection(c);
            c->fd = (ngx_socket_t) -1;
            return NGX_ERROR;
        }

    } else if (ngx_add_event(c->read, NGX_READ_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT) != NGX_OK
               || ngx_add_event(c->write, NGX_WRITE_EVENT,
                                (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                                ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT) != NGX_OK)
    {
        ngx_free_connection(c);
        c->fd = (ngx_socket_t) -1;
        return NGX_ERROR;
    }

    pc->c = c;
    pc->fd = sock;

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

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;

    pc->c = NULL;
    pc->fd = (ngx_socket_t) -1;
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
            && (PQsocket(pc->pgconn) != pc->fd
                || PQstatus(pc->pgconn) == CONNECTION_STARTED))
        {
            /*
             * libpq closed its socket and opened another (the next address,
             * or again without SSL): a new number, or the same number for a
             * new socket, which is back to CONNECTION_STARTED
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

            if (pc->timer.timer_set) {
                ngx_del_timer(&pc->timer);
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
ngx_http_msgr_pg_timer(ngx_event_t *ev)
{
    ngx_http_msgr_pg_conn_t  *pc;

    pc = ev->data;

    if (pc->state == NGX_HTTP_MSGR_PG_CONNECTING) {
        ngx_log_error(NGX_LOG_ERR, pc->pool->log, NGX_ETIMEDOUT,
                      "msgr: connecting to PostgreSQL timed out");
        ngx_http_msgr_pg_close(pc, 1);
        return;
    }

    if (pc->state == NGX_HTTP_MSGR_PG_LISTENING) {
        ngx_http_msgr_pg_heartbeat(pc);
        return;
    }

    if (pc->state == NGX_HTTP_MSGR_PG_SUBSCRIBING
        || pc->state == NGX_HTTP_MSGR_PG_HEARTBEAT)
    {
        /* a half-open connection, or a server that hangs */
        ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                      "msgr: the LISTEN connection did not answer %s in "
                      "%M ms, closing it",
                      pc->state == NGX_HTTP_MSGR_PG_HEARTBEAT
                      ? "a heartbeat" : "LISTEN",
                      pc->pool->heartbeat);
        ngx_http_msgr_pg_close(pc, 0);
        return;
    }

    /* PostgreSQL should have stopped the statement by now */
    ngx_log_error(NGX_LOG_WARN, pc->pool->log, 0,
                  "msgr: PostgreSQL did not end a timed-out query in %M ms, "
                  "closing its connection", pc->pool->timeout);
    ngx_http_msgr_pg_close(pc, 0);
}


/*
 * The LISTEN connection is asked a trivial question now and then; no answer
 * before the next heartbeat is due and it is closed, so a half-open
 * connection (a dropped NAT entry, a host that died) cannot keep the caches
 * in use while notifications are lost.
 */

static void
ngx_http_msgr_pg_heartbeat(ngx_http_msgr_pg_conn_t *pc)
{
    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_HEARTBEAT);

    if (!PQsendQuery(pc->pgconn, NGX_HTTP_MSGR_PG_HEARTBEAT_SQL)
        || ngx_http_msgr_pg_flush(pc) == NGX_ERROR)
    {
        ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                             "msgr: LISTEN connection heartbeat failed",
                             PQerrorMessage(pc->pgconn));
        ngx_http_msgr_pg_close(pc, 0);
        return;
    }

    ngx_add_timer(&pc->timer, pc->pool->heartbeat);
}


/*
 * The query on this connection is no longer wanted (timed out, or its
 * request went away).  Closing the socket would not stop PostgreSQL, so the
 * connection stays busy until the server answers, which statement_timeout
 * makes soon; it is dropped only if even that does not come.
 */

static void
ngx_http_msgr_pg_abandon(ngx_http_msgr_pg_conn_t *pc)
{
    pc->query = NULL;

    if (!pc->timer.timer_set) {
        ngx_add_timer(&pc->timer, pc->pool->timeout);
    }
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
    case NGX_HTTP_MSGR_PG_LISTENING:
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

    if (pc->state == NGX_HTTP_MSGR_PG_IDLE
        || pc->state == NGX_HTTP_MSGR_PG_LISTENING)
    {
        ngx_http_msgr_pg_idle_read(pc);
        return;
    }

    if (ngx_http_msgr_pg_flush(pc) == NGX_ERROR
        || ngx_http_msgr_pg_consume(pc) == NGX_ERROR)
    {
        ngx_http_msgr_pg_close(pc, 0);
    }
}


/*
 * An idle connection (the LISTEN one too) reads until the socket is empty:
 * an edge-triggered event comes once however much is waiting, and libpq
 * reads a buffer at a time.  Notifications are handled as they are parsed;
 * EOF or an error means the connection is gone.
 */

static void
ngx_http_msgr_pg_idle_read(ngx_http_msgr_pg_conn_t *pc)
{
    ngx_int_t  rc;

    for ( ;; ) {
        if (!PQconsumeInput(pc->pgconn)
            || PQstatus(pc->pgconn) == CONNECTION_BAD)
        {
            ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                                 pc->state == NGX_HTTP_MSGR_PG_LISTENING
                                 ? "msgr: LISTEN connection to PostgreSQL lost"
                                 : "msgr: idle PostgreSQL connection lost",
                                 PQerrorMessage(pc->pgconn));
            ngx_http_msgr_pg_close(pc, 0);
            return;
        }

        ngx_http_msgr_pg_notifies(pc);

        rc = ngx_http_msgr_pg_more(pc);

        if (rc == NGX_AGAIN) {
            return;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_WARN, pc->pool->log, ngx_socket_errno,
                          "msgr: %s PostgreSQL connection closed",
                          pc->state == NGX_HTTP_MSGR_PG_LISTENING
                          ? "LISTEN" : "idle");
            ngx_http_msgr_pg_close(pc, 0);
            return;
        }
    }
}


/*
 * NGX_OK: more to read; NGX_AGAIN: the socket is empty; NGX_ERROR: EOF or
 * an error (ngx_socket_errno says which; 0 for EOF), for the caller to log
 */

static ngx_int_t
ngx_http_msgr_pg_more(ngx_http_msgr_pg_conn_t *pc)
{
    char     b;
    ssize_t  n;

    n = recv(PQsocket(pc->pgconn), &b, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0) {
        return NGX_OK;
    }

    if (n == -1 && (ngx_socket_errno == NGX_EAGAIN
                    || ngx_socket_errno == NGX_EINTR))
    {
        return NGX_AGAIN;
    }

    if (n == 0) {
        ngx_set_socket_errno(0);
    }

    return NGX_ERROR;
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
    ngx_int_t  rc;

    for ( ;; ) {
        if (!PQconsumeInput(pc->pgconn)) {
            ngx_http_msgr_pg_log(NGX_LOG_ERR, pc->pool->log,
                                 "msgr: reading from PostgreSQL failed",
                                 PQerrorMessage(pc->pgconn));
            return NGX_ERROR;
        }

        rc = ngx_http_msgr_pg_results(pc);

        if (rc == NGX_ERROR || rc == NGX_DONE) {
            return rc;
        }

        if (pc->state == NGX_HTTP_MSGR_PG_IDLE
            || pc->state == NGX_HTTP_MSGR_PG_LISTENING)
        {
            /* nothing is in flight any more: the rest is idle reading */
            ngx_http_msgr_pg_idle_read(pc);
            return NGX_DONE;
        }

        rc = ngx_http_msgr_pg_more(pc);

        if (rc == NGX_AGAIN) {
            return NGX_OK;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, pc->pool->log, ngx_socket_errno,
                          "msgr: PostgreSQL closed the connection");
            return NGX_ERROR;
        }
    }
}


/*
 * Takes every result libpq has ready.  NGX_AGAIN: the command is not over.
 * NGX_OK: handled (the connection may have moved on to its next query).
 * NGX_DONE: a query was completed, or a statement prepared for a query
 * that went away; either may have closed the connection: the caller must
 * not touch it any more.
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

        /* the server may send notifications between any two messages */
        ngx_http_msgr_pg_notifies(pc);

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

        if (pc->state == NGX_HTTP_MSGR_PG_HEARTBEAT) {
            return ngx_http_msgr_pg_heartbeat_result(pc, res);
        }

        if (pc->state == NGX_HTTP_MSGR_PG_SUBSCRIBING) {
            return ngx_http_msgr_pg_listen_result(pc, res);
        }

        if (pc->state == NGX_HTTP_MSGR_PG_PREPARING
            && res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK)
        {
            PQclear(res);

            if (q == NULL) {
                /*
                 * the request went away: the statement stays prepared,
                 * and the connection takes the next query or idles; it
                 * may be closed doing so, so it is not touched after
                 * (what follows is read by the posted event)
                 */
                ngx_http_msgr_pg_set_prepared(pc, pc->stmt_id);
                ngx_post_event(pc->c->read, &ngx_posted_events);
                ngx_http_msgr_pg_ready(pc);
                return NGX_DONE;
            }

            ngx_http_msgr_pg_set_prepared(pc, q->stmt->id);

            if (ngx_http_msgr_pg_send(pc, q) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        pc->query = NULL;

        /* an SQL error is the caller's to judge, and to log */

        /*
         * whatever came after the result (an error, EOF) is read later by
         * the idle reader: the handler may free pc.  If the connection
         * goes on to another query or is closed, the event is harmless or
         * deleted.
         */
        ngx_post_event(pc->c->read, &ngx_posted_events);

        ngx_http_msgr_pg_ready(pc);

        if (q) {
            ngx_http_msgr_pg_complete(q, NGX_OK, res);

        } else if (res) {
            PQclear(res);
        }

        return NGX_DONE;
    }
}


static ngx_int_t
ngx_http_msgr_pg_heartbeat_result(ngx_http_msgr_pg_conn_t *pc,
    PGresult *res)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        if (res) {
            ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                                 "msgr: LISTEN connection heartbeat failed",
                                 PQresultErrorMessage(res));
            PQclear(res);
        }

        return NGX_ERROR;
    }

    PQclear(res);

    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_LISTENING);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    ngx_add_timer(&pc->timer, pc->pool->heartbeat);

    return NGX_OK;
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
        /* connected: LISTEN, and then only heartbeats */
        ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_SUBSCRIBING);

        if (!PQsendQuery(pc->pgconn, pool->listen_sql)
            || ngx_http_msgr_pg_flush(pc) == NGX_ERROR)
        {
            ngx_http_msgr_pg_close(pc, 0);
            return;
        }

        ngx_add_timer(&pc->timer, pool->heartbeat);
        return;
    }

    /* an abandoned query is over */
    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
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

    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_IDLE);
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

    if (!ngx_http_msgr_pg_prepared(pc, stmt->id)) {
        ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_PREPARING);
        q->state = NGX_HTTP_MSGR_PG_QUERY_PREPARING;
        pc->stmt_id = stmt->id;
        ok = PQsendPrepare(pc->pgconn, stmt->name, stmt->sql, stmt->nparams,
                           NULL);

    } else {
        ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_QUERYING);
        q->state = NGX_HTTP_MSGR_PG_QUERY_SENT;
        ok = PQsendQueryPrepared(pc->pgconn, stmt->name, stmt->nparams,
                                 q->values, NULL, NULL, 0);
        if (ok) {
            q->sent = 1;

            /*
             * A write, once sent, gets the whole timeout: PostgreSQL ends
             * it before (statement_timeout), so its outcome is known even
             * when it waited for a connection first.
             */
            if (stmt->idempotent == NGX_HTTP_MSGR_PG_WRITE) {
                ngx_add_timer(&q->timer, pc->pool->timeout);
            }
        }
    }

    if (!ok) {
        ngx_http_msgr_pg_log(NGX_LOG_WARN, pc->pool->log,
                             "msgr: sending a query to PostgreSQL failed",
                             PQerrorMessage(pc->pgconn));
        goto failed;
    }

    if (ngx_http_msgr_pg_flush(pc) == NGX_ERROR) {
        goto failed;
    }

    return NGX_OK;

failed:

    /* the caller closes the connection and places the query */
    q->state = NGX_HTTP_MSGR_PG_QUERY_NEW;
    q->conn = NULL;

    return NGX_ERROR;
}


/*
 * Closes a connection.  Its query, if any, is placed by the retry policy;
 * the LISTEN connection is made again soon.
 */

static void
ngx_http_msgr_pg_close(ngx_http_msgr_pg_conn_t *pc, ngx_uint_t connect_failed)
{
    ngx_uint_t                 listener, listening;
    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_pg_query_t  *q;

    pool = pc->pool;
    q = pc->query;
    listener = pc->listener;
    listening = pool->listening;

    ngx_http_msgr_pg_set_state(pc, NGX_HTTP_MSGR_PG_CLOSED);

    if (pc->timer.timer_set) {
        ngx_del_timer(&pc->timer);
    }

    /* PQfinish() closes the socket, which leaves the event set too */
    ngx_http_msgr_pg_detach(pc, 1);

    if (pc->result) {
        PQclear(pc->result);
    }

    PQfinish(pc->pgconn);
    ngx_free(pc);

    if (listener) {
        if (listening) {
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

    if (q) {
        ngx_http_msgr_pg_lost(q);
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

    ngx_http_msgr_pg_grow(pool);
}


/*
 * The retry policy: a query whose connection was lost runs again, once, on
 * a fresh connection when that is safe: it never reached the server, or it
 * is idempotent.
 */

static ngx_uint_t
ngx_http_msgr_pg_may_retry(ngx_http_msgr_pg_query_t *q)
{
    return !q->retried
           && (!q->sent
               || q->stmt->idempotent == NGX_HTTP_MSGR_PG_IDEMPOTENT);
}


/* a write that may have reached the server: it may have committed */

static ngx_uint_t
ngx_http_msgr_pg_outcome_unknown(ngx_http_msgr_pg_query_t *q)
{
    return q->sent && q->stmt->idempotent == NGX_HTTP_MSGR_PG_WRITE;
}


/* the query's connection was lost: it waits again first, or fails */

static void
ngx_http_msgr_pg_lost(ngx_http_msgr_pg_query_t *q)
{
    q->conn = NULL;
    q->state = NGX_HTTP_MSGR_PG_QUERY_NEW;

    if (ngx_http_msgr_pg_may_retry(q)) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, q->log, 0,
                       "msgr pg: retrying %s on a fresh connection%s",
                       q->stmt->name, q->sent ? " (it was sent)" : "");

        q->retried = 1;
        q->sent = 0;
        ngx_http_msgr_pg_enqueue(q->pg, q, 1);
        return;
    }

    if (ngx_http_msgr_pg_outcome_unknown(q)) {
        ngx_log_error(NGX_LOG_ERR, q->log, 0,
                      "msgr: PostgreSQL connection lost while running %s: "
                      "its outcome is unknown", q->stmt->name);
        q->outcome_unknown = 1;
    }

    ngx_http_msgr_pg_complete(q, NGX_BUSY, NULL);
}


static void
ngx_http_msgr_pg_complete(ngx_http_msgr_pg_query_t *q, ngx_int_t status,
    PGresult *res)
{
    if (q->timer.timer_set) {
        ngx_del_timer(&q->timer);
    }

    q->state = NGX_HTTP_MSGR_PG_QUERY_DONE;
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

    if (ngx_http_msgr_pg_outcome_unknown(q)) {
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "msgr: PostgreSQL query %s timed out: its outcome "
                      "is unknown", q->stmt->name);
        q->outcome_unknown = 1;

    } else {
        ngx_log_error(NGX_LOG_ERR, q->log, NGX_ETIMEDOUT,
                      "msgr: PostgreSQL query %s timed out", q->stmt->name);
    }

    if (q->state == NGX_HTTP_MSGR_PG_QUERY_WAITING) {
        ngx_queue_remove(&q->queue);
        pool->nwaiting--;

    } else if (q->state == NGX_HTTP_MSGR_PG_QUERY_PREPARING
               || q->state == NGX_HTTP_MSGR_PG_QUERY_SENT)
    {
        /*
         * a cancel request would block, and closing would not stop the
         * server: the connection waits for statement_timeout's answer
         */
        pc = q->conn;
        q->conn = NULL;
        ngx_http_msgr_pg_abandon(pc);
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

    if (q->state == NGX_HTTP_MSGR_PG_QUERY_WAITING) {
        ngx_queue_remove(&q->queue);
        q->pg->nwaiting--;

    } else if (q->state == NGX_HTTP_MSGR_PG_QUERY_PREPARING
               || q->state == NGX_HTTP_MSGR_PG_QUERY_SENT)
    {
        /* still running: the connection drops the result when it comes */
        ngx_http_msgr_pg_abandon(q->conn);
        q->conn = NULL;
    }

    q->state = NGX_HTTP_MSGR_PG_QUERY_DONE;

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

/*
 * msgr-sender: the daemon.
 *
 *   msgr-sender [--pg CONNINFO] --config FILE [--exit-when-idle] [--verbose]
 *
 * One event loop (epoll) drives two libpq connections without blocking,
 * one for claims and completions and one listening on msgr_outbox, and
 * libcurl's multi socket interface for every provider request.  A claim
 * takes a batch of due deliveries with FOR UPDATE SKIP LOCKED and leases
 * them; each goes to a provider of its channel (by weight and health);
 * outcomes are completed in batches, one statement each.  Signals: TERM
 * and INT finish what is in flight and release the rest; HUP reloads the
 * configuration.  docs/sender.md.
 */

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <math.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "msgr_sender.h"


#define MSGR_SENDER_RECONNECT  1.0     /* seconds between attempts */
#define MSGR_SENDER_DRAIN_MAX  60.0    /* seconds TERM waits for requests */


typedef enum {
    MSGR_SENDER_IO_CLOSED = 0,   /* a curl socket gone, freed after a batch */
    MSGR_SENDER_IO_PG,
    MSGR_SENDER_IO_CURL,
    MSGR_SENDER_IO_SIGNAL
} msgr_sender_io_e;


typedef struct {
    msgr_sender_io_e              kind;
    int                           fd;
    unsigned                      events;
    void                         *data;
} msgr_sender_io_t;


typedef enum {
    MSGR_SENDER_PG_CLOSED = 0,
    MSGR_SENDER_PG_CONNECTING,
    MSGR_SENDER_PG_IDLE,
    MSGR_SENDER_PG_BUSY
} msgr_sender_pg_state_e;


typedef enum {
    MSGR_SENDER_OP_NONE = 0,
    MSGR_SENDER_OP_LISTEN,
    MSGR_SENDER_OP_CLAIM,
    MSGR_SENDER_OP_COMPLETE,
    MSGR_SENDER_OP_RECLAIM,
    MSGR_SENDER_OP_RELEASE
} msgr_sender_op_e;


typedef struct {
    const char                   *name;
    PGconn                       *conn;
    msgr_sender_pg_state_e        state;
    msgr_sender_op_e              op;
    msgr_sender_io_t              io;
    double                        retry_at;
    unsigned                      listen:1;
    /* the jobs a completion or release statement carries */
    msgr_sender_job_t            *jobs;
} msgr_sender_pg_t;


typedef struct {
    msgr_sender_conf_t           *conf;
    const char                   *conninfo;
    int                           ep;
    CURLM                        *multi;
    double                        curl_at;    /* 0: no curl timer */
    msgr_sender_pg_t              work;       /* claims, releases */
    msgr_sender_pg_t              flush;      /* completions */
    msgr_sender_pg_t              listen;
    msgr_sender_io_t              signals;
    msgr_sender_io_t             *closed;     /* their data: the next */

    int                           in_flight;  /* claimed, not completed */
    msgr_sender_job_t            *done;       /* to complete */
    int                           ndone;
    double                        done_at;    /* when the oldest was done */
    msgr_sender_job_t            *waiting;    /* for a rate token */
    msgr_sender_job_t            *queued;     /* for a free connection */
    msgr_sender_job_t            *queued_tail;
    int                           active;     /* requests inside libcurl */

    int                           claim_limit;
    unsigned                      idle:1;     /* the last claim found none */
    double                        next_poll;
    double                        next_reclaim;
    unsigned                      wake:1;
    unsigned                      stopping:1;
    unsigned                      reload:1;
    unsigned                      exit_when_idle:1;
    unsigned                      verbose:1;
    double                        stop_at;

    /* what this run did, logged at exit */
    long                          claimed;
    long                          completed;
} msgr_sender_t;


static msgr_sender_t  msgr_sender;

/* its PostgreSQL connections, for what is done to each alike */
static msgr_sender_pg_t *const  msgr_sender_pgs[] = {
    &msgr_sender.work, &msgr_sender.flush, &msgr_sender.listen
};


static const char  msgr_sender_claim_sql[] =
    "WITH c AS ("
    "  SELECT delivery_id FROM msgr_deliveries"
    "   WHERE state IN ('scheduled', 'queued') AND run_at <= now()"
    "   ORDER BY priority, run_at, delivery_id"
    "   LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " UPDATE msgr_deliveries d"
    "    SET state = 'sending', attempt = d.attempt + 1, locked_by = $2,"
    "        locked_until = now() + make_interval(secs => $3::float8)"
    "   FROM c WHERE d.delivery_id = c.delivery_id"
    " RETURNING d.delivery_id, d.school_id, d.message_id, d.recipient_type,"
    "  d.recipient_id, d.channel, d.address, d.purpose, d.language,"
    "  d.subject, d.body, d.attempt, d.max_attempts,"
    "  (SELECT s.name FROM msgr_schools s WHERE s.school_id = d.school_id),"
    "  (SELECT nullif(g.doc #>> '{school,email}', '') FROM msgr_settings g"
    "    WHERE g.school_id = d.school_id),"
    "  (SELECT nullif(g.doc #>> '{school,phone}', '') FROM msgr_settings g"
    "    WHERE g.school_id = d.school_id),"
    "  CASE WHEN d.channel = 'xpressions' THEN"
    "   (SELECT coalesce(json_agg(json_build_object("
    "      'token_id', v.token_id, 'platform', v.platform,"
    "      'push_token', v.push_token) ORDER BY v.token_id), '[]')"
    "      FROM msgr_app_devices v"
    "      JOIN msgr_app_tokens t"
    "        ON t.school_id = v.school_id AND t.token_id = v.token_id"
    "     WHERE v.school_id = d.school_id AND v.contact_id = d.recipient_id"
    "       AND t.revoked_at IS NULL)::text END,"
    "  (SELECT m.voice_recording FROM msgr_messages m"
    "    WHERE m.message_id = d.message_id)";

/*
 * Outcomes, a batch in one statement; only rows this sender still holds
 * (a receipt or another sender may have moved them on).  A push that
 * failed for good sends its backup SMS now.
 */
static const char  msgr_sender_complete_sql[] =
    "WITH f AS ("
    "  DELETE FROM msgr_app_devices WHERE token_id = ANY ($8::text[])"
    "  RETURNING token_id),"
    " u AS ("
    "  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[],"
    "                       $4::text[], $5::text[], $6::float8[])"
    "    AS u(id, state, provider, provider_id, error, delay)),"
    " d AS ("
    "  UPDATE msgr_deliveries d"
    "     SET state = u.state, provider = u.provider,"
    "         provider_id = coalesce(nullif(u.provider_id, ''),"
    "                                d.provider_id),"
    "         error = nullif(u.error, ''),"
    "         run_at = CASE WHEN u.state = 'queued'"
    "                       THEN now() + make_interval(secs => u.delay)"
    "                       ELSE d.run_at END,"
    "         sent_at = CASE WHEN u.state IN ('sent', 'delivered')"
    "                        THEN now() ELSE d.sent_at END,"
    "         delivered_at = CASE WHEN u.state = 'delivered'"
    "                             THEN now() ELSE d.delivered_at END,"
    "         locked_by = NULL, locked_until = NULL"
    "    FROM u"
    "   WHERE d.delivery_id = u.id AND d.state = 'sending'"
    "     AND d.locked_by = $7"
    "  RETURNING d.school_id, d.message_id, d.recipient_type,"
    "            d.recipient_id, d.channel, d.purpose, d.state)"
    " UPDATE msgr_deliveries b SET run_at = now()"
    "   FROM d"
    "  WHERE d.channel = 'xpressions' AND d.purpose = 'primary'"
    "    AND d.state = 'permanent-failure'"
    "    AND b.school_id = d.school_id AND b.message_id = d.message_id"
    "    AND b.recipient_type = d.recipient_type"
    "    AND b.recipient_id = d.recipient_id"
    "    AND b.purpose = 'backup' AND b.state = 'scheduled'";

/* a sender that stopped without completing: its leases come back */
static const char  msgr_sender_reclaim_sql[] =
    "UPDATE msgr_deliveries"
    "   SET state = 'queued', locked_by = NULL, locked_until = NULL,"
    "       error = 'its sender stopped before it finished; sent again'"
    " WHERE state = 'sending' AND locked_until < now()";

/* claimed and never started (TERM): back as they were */
static const char  msgr_sender_release_sql[] =
    "UPDATE msgr_deliveries"
    "   SET state = 'queued', attempt = attempt - 1,"
    "       locked_by = NULL, locked_until = NULL"
    " WHERE delivery_id = ANY ($1::bigint[]) AND state = 'sending'"
    "   AND locked_by = $2";


static void msgr_sender_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void msgr_sender_pg_step(msgr_sender_pg_t *pg);
static void msgr_sender_next(void);
static void msgr_sender_dispatch(msgr_sender_job_t *job);
static void msgr_sender_done(msgr_sender_job_t *job);
static void msgr_sender_fan_out(msgr_sender_job_t *job);
static void msgr_sender_start(msgr_sender_job_t *job);
static double msgr_sender_due(double now);
static char *msgr_sender_text_array(json_t *strings);


/* helpers */

double
msgr_sender_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static void
msgr_sender_log(const char *fmt, ...)
{
    char             at[32];
    va_list          args;
    struct tm        tm;
    struct timespec  ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%S", &tm);

    fprintf(stderr, "%s.%03ldZ msgr-sender: ", at, ts.tv_nsec / 1000000);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


int
msgr_sender_buf_add(msgr_sender_buf_t *buf, const void *data, size_t len)
{
    return msgr_buf_add(buf, data, len);
}


int
msgr_sender_form_add(msgr_sender_buf_t *buf, CURL *easy, const char *name,
    const char *value)
{
    int    rc;
    char  *v;

    v = curl_easy_escape(easy, value ? value : "", 0);
    if (v == NULL) {
        return -1;
    }

    rc = (buf->len && msgr_sender_buf_add(buf, "&", 1) != 0)
         || msgr_sender_buf_add(buf, name, strlen(name)) != 0
         || msgr_sender_buf_add(buf, "=", 1) != 0
         || msgr_sender_buf_add(buf, v, strlen(v)) != 0;

    curl_free(v);

    return rc ? -1 : 0;
}


void
msgr_sender_job_error(msgr_sender_job_t *job, msgr_sender_outcome_e outcome,
    const char *fmt, ...)
{
    va_list  args;

    job->outcome = outcome;

    va_start(args, fmt);
    vsnprintf(job->error, sizeof(job->error), fmt, args);
    va_end(args);
}


static void
msgr_sender_job_free(msgr_sender_job_t *job)
{
    if (job->easy != NULL) {
        /* prepared, never started (given back on TERM) */
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
    }

    if (job->parent != NULL) {
        /* a device's request: the strings are its parent's */
        curl_slist_free_all(job->headers);
        free(job->request);
        free(job->response.data);
        free(job);
        return;
    }

    json_decref(job->forgotten);
    free(job->recipient_type);
    free(job->channel);
    free(job->address);
    free(job->purpose);
    free(job->language);
    free(job->subject);
    free(job->body);
    free(job->school_name);
    free(job->school_email);
    free(job->school_phone);
    json_decref(job->devices);
    curl_slist_free_all(job->headers);
    free(job->request);
    free(job->response.data);
    free(job);
}


/* a job as it was claimed: for a request prepared again */

static void
msgr_sender_job_reset(msgr_sender_job_t *job)
{
    if (job->easy) {
        curl_multi_remove_handle(msgr_sender.multi, job->easy);
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
    }

    curl_slist_free_all(job->headers);
    job->headers = NULL;
    free(job->request);
    job->request = NULL;
    free(job->response.data);
    memset(&job->response, 0, sizeof(msgr_sender_buf_t));

    job->again = 0;
    job->retry_after = 0;
    job->outcome = MSGR_SENDER_SENT;
    job->error[0] = '\0';
    job->provider_id[0] = '\0';
}


/* the event loop's registrations */

static int
msgr_sender_watch(msgr_sender_io_t *io, unsigned events)
{
    int                 op;
    struct epoll_event  ev;

    if (io->events == events) {
        return 0;
    }

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = io;

    op = (io->events == 0) ? EPOLL_CTL_ADD
         : (events == 0) ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;

    if (epoll_ctl(msgr_sender.ep, op, io->fd, &ev) != 0 && op != EPOLL_CTL_DEL)
    {
        msgr_sender_log("epoll_ctl(%d): %s", io->fd, strerror(errno));
        return -1;
    }

    io->events = events;

    return 0;
}


/* PostgreSQL, driven without blocking */

/*
 * A completion that did not commit is sent again with the next batch; a
 * release that did not, its leases end instead.
 */

static void
msgr_sender_pg_unsent(msgr_sender_pg_t *pg)
{
    msgr_sender_job_t  *job, *next;

    for (job = pg->jobs; job; job = next) {
        next = job->next;

        if (pg->op == MSGR_SENDER_OP_COMPLETE) {
            if (msgr_sender.done == NULL) {
                msgr_sender.done_at = msgr_sender_now();
            }

            job->next = msgr_sender.done;
            msgr_sender.done = job;
            msgr_sender.ndone++;

        } else {
            msgr_sender.in_flight--;
            msgr_sender_job_free(job);
        }
    }

    pg->jobs = NULL;
}


static void
msgr_sender_pg_close(msgr_sender_pg_t *pg, const char *why)
{
    if (pg->conn != NULL) {
        if (why != NULL) {
            msgr_sender_log("PostgreSQL (%s): %s; connecting again",
                            pg->name, why);
        }

        if (pg->io.events) {
            msgr_sender_watch(&pg->io, 0);
        }

        PQfinish(pg->conn);
        pg->conn = NULL;
    }

    /* what a lost statement carried is tried again on the next one */

    msgr_sender_pg_unsent(pg);
    pg->state = MSGR_SENDER_PG_CLOSED;
    pg->op = MSGR_SENDER_OP_NONE;
    pg->retry_at = msgr_sender_now() + MSGR_SENDER_RECONNECT;
}


static void
msgr_sender_pg_connect(msgr_sender_pg_t *pg)
{
    pg->conn = PQconnectStart(msgr_sender.conninfo);

    if (pg->conn == NULL || PQstatus(pg->conn) == CONNECTION_BAD) {
        msgr_sender_pg_close(pg, pg->conn ? PQerrorMessage(pg->conn)
                                          : "out of memory");
        return;
    }

    PQsetnonblocking(pg->conn, 1);

    pg->state = MSGR_SENDER_PG_CONNECTING;
    pg->io.kind = MSGR_SENDER_IO_PG;
    pg->io.fd = PQsocket(pg->conn);
    pg->io.events = 0;
    pg->io.data = pg;

    msgr_sender_watch(&pg->io, EPOLLIN | EPOLLOUT);
}


/* sends a statement on an idle connection */

static int
msgr_sender_pg_send(msgr_sender_pg_t *pg, msgr_sender_op_e op,
    const char *sql, int n, const char *const *values)
{
    if (!PQsendQueryParams(pg->conn, sql, n, NULL, values, NULL, NULL, 0)) {
        msgr_sender_pg_close(pg, PQerrorMessage(pg->conn));
        return -1;
    }

    pg->state = MSGR_SENDER_PG_BUSY;
    pg->op = op;

    /* the rest of a long statement goes on write events */
    msgr_sender_watch(&pg->io, PQflush(pg->conn) == 1 ? EPOLLIN | EPOLLOUT
                                                       : EPOLLIN);

    return 0;
}


static char *
msgr_sender_value(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col)
           ? NULL : msgr_sender_strdup(PQgetvalue(res, row, col));
}


static void
msgr_sender_claimed(PGresult *res)
{
    int                 i, n;
    const char         *devices;
    msgr_sender_job_t  *job;

    n = PQntuples(res);

    /* a full batch: more may be due now; none: nothing is */
    msgr_sender.wake = (n > 0 && n == msgr_sender.claim_limit);
    msgr_sender.idle = (n == 0);

    if (n && msgr_sender.verbose) {
        msgr_sender_log("claimed %d deliveries", n);
    }

    msgr_sender.claimed += n;

    for (i = 0; i < n; i++) {
        job = calloc(1, sizeof(msgr_sender_job_t));
        if (job == NULL) {
            msgr_sender_log("out of memory: a claimed delivery waits for its"
                            " lease to end");
            continue;
        }

        job->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        job->school_id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        job->message_id = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        job->recipient_type = msgr_sender_value(res, i, 3);
        job->recipient_id = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        job->channel = msgr_sender_value(res, i, 5);
        job->address = msgr_sender_value(res, i, 6);
        job->purpose = msgr_sender_value(res, i, 7);
        job->language = msgr_sender_value(res, i, 8);
        job->subject = msgr_sender_value(res, i, 9);
        job->body = msgr_sender_value(res, i, 10);
        job->attempt = atoi(PQgetvalue(res, i, 11));
        job->max_attempts = atoi(PQgetvalue(res, i, 12));
        job->school_name = msgr_sender_value(res, i, 13);
        job->school_email = msgr_sender_value(res, i, 14);
        job->school_phone = msgr_sender_value(res, i, 15);

        devices = PQgetisnull(res, i, 16) ? NULL : PQgetvalue(res, i, 16);
        job->recording = (PQgetvalue(res, i, 17)[0] == 't');
        job->devices = devices ? json_loads(devices, 0, NULL) : NULL;

        msgr_sender.in_flight++;

        if (job->channel == NULL || job->body == NULL || job->purpose == NULL
            || job->recipient_type == NULL)
        {
            msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                                  "out of memory");
            msgr_sender_done(job);
            continue;
        }

        msgr_sender_dispatch(job);
    }
}


static void
msgr_sender_pg_result(msgr_sender_pg_t *pg, PGresult *res)
{
    ExecStatusType      st;
    msgr_sender_job_t  *job, *next;

    st = PQresultStatus(res);

    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        msgr_sender_log("PostgreSQL (%s): %s", pg->name,
                        PQresultErrorMessage(res));
        msgr_sender_pg_unsent(pg);
        return;
    }

    switch (pg->op) {

    case MSGR_SENDER_OP_CLAIM:
        msgr_sender_claimed(res);
        break;

    case MSGR_SENDER_OP_COMPLETE:
    case MSGR_SENDER_OP_RELEASE:
        if (msgr_sender.verbose) {
            msgr_sender_log("%s %s deliveries",
                            pg->op == MSGR_SENDER_OP_COMPLETE ? "completed"
                                                              : "released",
                            PQcmdTuples(res));
        }

        for (job = pg->jobs; job; job = next) {
            next = job->next;
            msgr_sender.completed += (pg->op == MSGR_SENDER_OP_COMPLETE);
            msgr_sender.in_flight--;
            msgr_sender_job_free(job);
        }

        pg->jobs = NULL;
        break;

    case MSGR_SENDER_OP_RECLAIM:
        if (atoi(PQcmdTuples(res)) > 0) {
            msgr_sender_log("%s deliveries whose sender stopped are queued"
                            " again", PQcmdTuples(res));
            msgr_sender.wake = 1;
        }
        break;

    default:
        break;
    }
}


static void
msgr_sender_pg_notified(msgr_sender_pg_t *pg)
{
    PGnotify  *n;

    while ((n = PQnotifies(pg->conn)) != NULL) {
        msgr_sender.wake = 1;
        PQfreemem(n);
    }
}


static void
msgr_sender_pg_step(msgr_sender_pg_t *pg)
{
    PGresult                *res;
    PostgresPollingStatusType  ps;

    if (pg->state == MSGR_SENDER_PG_CONNECTING) {
        ps = PQconnectPoll(pg->conn);

        if (PQsocket(pg->conn) != pg->io.fd) {
            /* libpq moved on to another address: another socket */
            msgr_sender_watch(&pg->io, 0);
            pg->io.fd = PQsocket(pg->conn);
        }

        switch (ps) {

        case PGRES_POLLING_READING:
            msgr_sender_watch(&pg->io, EPOLLIN);
            return;

        case PGRES_POLLING_WRITING:
            msgr_sender_watch(&pg->io, EPOLLOUT);
            return;

        case PGRES_POLLING_OK:
            pg->state = MSGR_SENDER_PG_IDLE;
            msgr_sender_watch(&pg->io, EPOLLIN);

            if (pg->listen) {
                msgr_sender_pg_send(pg, MSGR_SENDER_OP_LISTEN,
                                    "LISTEN msgr_outbox", 0, NULL);
            }

            /* what was missed while away: look now */
            msgr_sender.wake = 1;
            return;

        default:
            msgr_sender_pg_close(pg, PQerrorMessage(pg->conn));
            return;
        }
    }

    if (pg->conn == NULL) {
        return;
    }

    if (pg->state == MSGR_SENDER_PG_BUSY && PQflush(pg->conn) == 0) {
        msgr_sender_watch(&pg->io, EPOLLIN);
    }

    /* read until the socket is empty */

    if (!PQconsumeInput(pg->conn)) {
        msgr_sender_pg_close(pg, PQerrorMessage(pg->conn));
        return;
    }

    while (pg->state == MSGR_SENDER_PG_BUSY && !PQisBusy(pg->conn)) {
        res = PQgetResult(pg->conn);

        if (res == NULL) {
            pg->state = MSGR_SENDER_PG_IDLE;
            pg->op = MSGR_SENDER_OP_NONE;
            break;
        }

        msgr_sender_pg_result(pg, res);
        PQclear(res);
    }

    msgr_sender_pg_notified(pg);

    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        msgr_sender_pg_close(pg, PQerrorMessage(pg->conn));
    }
}


/* providers */

static msgr_sender_provider_t *
msgr_sender_provider(const char *channel)
{
    int                      i;
    double                   total, pick, now, dt;
    msgr_channel_e           ch;
    msgr_sender_provider_t  *p, *chosen;

    if (msgr_channel_parse(channel, &ch) != 0) {
        return NULL;
    }

    total = 0;
    now = msgr_sender_now();

    for (i = 0; i < msgr_sender.conf->nproviders; i++) {
        p = msgr_sender.conf->providers[i];

        if (p->channels & MSGR_CHANNEL_BIT(ch)) {
            /* health drifts back: a tenth of the way a window */
            dt = now - p->errors_at;
            if (p->health < 1 && dt > 0) {
                p->health = fmin(1, p->health + (1 - p->health)
                                 * fmin(1, dt / msgr_sender.conf->burst_window
                                           * 0.1));
            }

            total += p->weight * p->health;
        }
    }

    if (total <= 0) {
        for (i = 0; i < msgr_sender.conf->nproviders; i++) {
            p = msgr_sender.conf->providers[i];

            if (p->channels & MSGR_CHANNEL_BIT(ch)) {
                return p;
            }
        }

        return NULL;
    }

    pick = total * (randombytes_uniform(1000000) / 1000000.0);
    chosen = NULL;

    for (i = 0; i < msgr_sender.conf->nproviders; i++) {
        p = msgr_sender.conf->providers[i];

        if (!(p->channels & MSGR_CHANNEL_BIT(ch))) {
            continue;
        }

        chosen = p;
        pick -= p->weight * p->health;

        if (pick < 0) {
            break;
        }
    }

    return chosen;
}


/* an error burst shifts weight away from a provider */

static void
msgr_sender_provider_judge(msgr_sender_provider_t *p, int failed)
{
    double  now, window;

    now = msgr_sender_now();
    window = msgr_sender.conf->burst_window;

    p->errors *= exp(-(now - p->errors_at) / window);
    p->errors_at = now;

    if (!failed) {
        return;
    }

    p->errors += 1;

    if (p->errors >= msgr_sender.conf->burst_errors) {
        p->health = fmax(0.05, p->health * 0.25);
        p->errors = 0;
        msgr_sender_log("provider %s: %.0f errors within %.0f s: its share "
                        "drops to %.0f%%", p->name,
                        msgr_sender.conf->burst_errors, window,
                        p->health * 100);
    }
}


static int
msgr_sender_token(msgr_sender_provider_t *p)
{
    double  now;

    if (p->rate <= 0) {
        return 1;
    }

    now = msgr_sender_now();

    p->tokens = fmin(fmax(1, p->rate), p->tokens + (now - p->tokens_at)
                                                   * p->rate);
    p->tokens_at = now;

    if (p->tokens < 1) {
        return 0;
    }

    p->tokens -= 1;

    return 1;
}


static size_t
msgr_sender_curl_write(char *data, size_t size, size_t n, void *arg)
{
    msgr_sender_job_t *job = arg;

    /* what a provider answers is small; more than 1 MiB is not read */

    if (job->response.len + size * n > 1024 * 1024
        || msgr_sender_buf_add(&job->response, data, size * n) != 0)
    {
        return 0;
    }

    return size * n;
}


static size_t
msgr_sender_curl_header(char *data, size_t size, size_t n, void *arg)
{
    msgr_sender_job_t *job = arg;

    if (size * n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) {
        job->retry_after = strtol(data + 12, NULL, 10);
    }

    return size * n;
}


static void
msgr_sender_dispatch(msgr_sender_job_t *job)
{
    int                      rc;
    msgr_sender_provider_t  *p;

    p = job->provider ? job->provider : msgr_sender_provider(job->channel);

    if (p == NULL) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "no provider is configured for %s",
                              job->channel);
        job->delay = msgr_sender.conf->backoff_cap;
        msgr_sender_done(job);
        return;
    }

    job->provider = p;

    if (!msgr_sender_token(p)) {
        job->next = msgr_sender.waiting;
        msgr_sender.waiting = job;
        return;
    }

    if (p->adapter->send != NULL) {
        p->adapter->send(p, job);
        msgr_sender_done(job);
        return;
    }

    if (p->adapter->per_device && job->parent == NULL
        && json_array_size(job->devices) > 1)
    {
        msgr_sender_fan_out(job);
        return;
    }

    job->easy = curl_easy_init();

    if (job->easy == NULL) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        msgr_sender_done(job);
        return;
    }

    curl_easy_setopt(job->easy, CURLOPT_PRIVATE, job);
    curl_easy_setopt(job->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(job->easy, CURLOPT_TIMEOUT_MS,
                     (long) (p->timeout * 1000));
    curl_easy_setopt(job->easy, CURLOPT_WRITEFUNCTION,
                     msgr_sender_curl_write);
    curl_easy_setopt(job->easy, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(job->easy, CURLOPT_HEADERFUNCTION,
                     msgr_sender_curl_header);
    curl_easy_setopt(job->easy, CURLOPT_HEADERDATA, job);
    curl_easy_setopt(job->easy, CURLOPT_USERAGENT, "msgr-sender/1");

    rc = p->adapter->prepare(p, job);

    if (rc == 1) {
        /* not yet (an access token on its way): prepared again shortly */
        msgr_sender_job_reset(job);
        job->next = msgr_sender.waiting;
        msgr_sender.waiting = job;
        return;
    }

    if (rc != 0) {
        msgr_sender_done(job);
        return;
    }

    /*
     * libcurl's multi walks its handles to remove one: past a few per
     * connection the requests wait here, in order, not inside libcurl
     */

    if (msgr_sender.active >= msgr_sender.conf->connections * 4) {
        job->next = NULL;

        if (msgr_sender.queued_tail) {
            msgr_sender.queued_tail->next = job;
        } else {
            msgr_sender.queued = job;
        }

        msgr_sender.queued_tail = job;
        return;
    }

    msgr_sender_start(job);
}


static void
msgr_sender_start(msgr_sender_job_t *job)
{
    if (curl_multi_add_handle(msgr_sender.multi, job->easy) != CURLM_OK) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "the request could not start");
        curl_easy_cleanup(job->easy);
        job->easy = NULL;
        msgr_sender_done(job);
        return;
    }

    job->started = 1;
    msgr_sender.active++;
}


/* one request per device, each a child job borrowing the parent's */

static void
msgr_sender_fan_out(msgr_sender_job_t *job)
{
    size_t              i, n;
    msgr_sender_job_t  *child;

    n = json_array_size(job->devices);
    job->children = (int) n;
    job->outcome = MSGR_SENDER_PERMANENT;

    for (i = 0; i < n; i++) {
        child = malloc(sizeof(msgr_sender_job_t));

        if (child == NULL) {
            job->children -= (int) (n - i);
            msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                                  "out of memory");
            break;
        }

        *child = *job;
        child->parent = job;
        child->children = 0;
        child->device = (int) i;
        child->headers = NULL;
        child->request = NULL;
        child->data = NULL;
        child->easy = NULL;
        child->forgotten = NULL;
        memset(&child->response, 0, sizeof(msgr_sender_buf_t));
        child->error[0] = '\0';
        child->provider_id[0] = '\0';
        child->next = NULL;

        msgr_sender_dispatch(child);
    }

    if (job->children == 0) {
        msgr_sender_done(job);
    }
}


/*
 * A device's outcome into its parent's: sent to one device is sent;
 * failed for good only when every device did; otherwise tried again.
 */

static void
msgr_sender_merge(msgr_sender_job_t *child)
{
    json_t             *token;
    msgr_sender_job_t  *job;

    job = child->parent;

    if (child->forget) {
        token = json_object_get(json_array_get(job->devices, child->device),
                                "token_id");

        if (job->forgotten == NULL) {
            job->forgotten = json_array();
        }

        if (token != NULL && job->forgotten != NULL) {
            json_array_append(job->forgotten, token);
        }
    }

    if (child->outcome == MSGR_SENDER_SENT
        || child->outcome == MSGR_SENDER_DELIVERED)
    {
        if (job->outcome != MSGR_SENDER_SENT) {
            job->outcome = child->outcome;
            memcpy(job->provider_id, child->provider_id,
                   sizeof(job->provider_id));
            job->error[0] = '\0';
        }

    } else if (child->outcome == MSGR_SENDER_TEMPORARY
               && job->outcome == MSGR_SENDER_PERMANENT)
    {
        job->outcome = MSGR_SENDER_TEMPORARY;
        job->retry_after = child->retry_after;
        memcpy(job->error, child->error, sizeof(job->error));

    } else if (child->outcome == MSGR_SENDER_PERMANENT
               && job->error[0] == '\0')
    {
        memcpy(job->error, child->error, sizeof(job->error));
    }

    if (--job->children == 0) {
        msgr_sender_done(job);
    }
}


/* an outcome, to be completed with the next batch */

static void
msgr_sender_done(msgr_sender_job_t *job)
{
    double              base;
    msgr_channel_e      ch;
    msgr_sender_job_t  *next;

    if (job->easy) {
        if (job->started) {
            curl_multi_remove_handle(msgr_sender.multi, job->easy);
        }

        curl_easy_cleanup(job->easy);
        job->easy = NULL;
    }

    if (job->started) {
        job->started = 0;
        msgr_sender.active--;

        /* the next request waiting for a connection */

        if (msgr_sender.queued != NULL) {
            next = msgr_sender.queued;
            msgr_sender.queued = next->next;

            if (msgr_sender.queued == NULL) {
                msgr_sender.queued_tail = NULL;
            }

            next->next = NULL;
            msgr_sender_start(next);
        }
    }

    if (job->parent != NULL) {
        if (job->provider) {
            msgr_sender_provider_judge(job->provider,
                                       job->outcome == MSGR_SENDER_TEMPORARY);
        }

        msgr_sender_merge(job);
        msgr_sender_job_free(job);
        return;
    }

    if (job->forget && job->devices) {
        /* one device, gone for good */
        job->forgotten = json_array();
        if (job->forgotten) {
            json_array_append(job->forgotten,
                              json_object_get(json_array_get(job->devices, 0),
                                              "token_id"));
        }
    }

    if (job->provider && job->children == 0
        && !(job->provider->adapter->per_device
             && json_array_size(job->devices) > 1))
    {
        msgr_sender_provider_judge(job->provider,
                                   job->outcome == MSGR_SENDER_TEMPORARY);
    }

    if (job->outcome == MSGR_SENDER_TEMPORARY) {
        ch = MSGR_CHANNEL_SMS;
        (void) msgr_channel_parse(job->channel, &ch);

        if (job->attempt >= msgr_sender.conf->max_attempts[ch]) {
            job->outcome = MSGR_SENDER_PERMANENT;
            job->technical = 1;

        } else if (job->delay <= 0) {
            /* attempt^4 seconds and up to a tenth more; Retry-After wins */
            base = pow(job->attempt, 4);
            job->delay = fmin(msgr_sender.conf->backoff_cap,
                              base + base * 0.1
                                     * (randombytes_uniform(1000) / 1000.0));

            if (job->retry_after > job->delay) {
                job->delay = fmin(msgr_sender.conf->backoff_cap,
                                  job->retry_after);
            }
        }
    }

    if (msgr_sender.verbose) {
        msgr_sender_log("delivery %lld (%s): %s%s%s", (long long) job->id,
                        job->channel,
                        job->outcome == MSGR_SENDER_SENT ? "sent"
                        : job->outcome == MSGR_SENDER_DELIVERED ? "delivered"
                        : job->outcome == MSGR_SENDER_TEMPORARY ? "retry"
                        : "failed",
                        job->error[0] ? ": " : "", job->error);
    }

    if (msgr_sender.done == NULL) {
        msgr_sender.done_at = msgr_sender_now();
    }

    job->next = msgr_sender.done;
    msgr_sender.done = job;
    msgr_sender.ndone++;
}


static void
msgr_sender_curl_check(void)
{
    int                 left;
    long                status;
    CURLMsg            *msg;
    msgr_sender_job_t  *job;

    while ((msg = curl_multi_info_read(msgr_sender.multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        job = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &job);

        status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);

        job->provider->adapter->finish(job->provider, job, msg->data.result,
                                       status);

        if (job->again) {
            /* a step of the adapter's own: the request itself follows */
            msgr_sender_job_reset(job);
            msgr_sender_dispatch(job);
            continue;
        }

        msgr_sender_done(job);
    }
}


static int
msgr_sender_curl_socket(CURL *easy, curl_socket_t s, int what, void *arg,
    void *sockp)
{
    msgr_sender_io_t  *io;

    (void) easy;
    (void) arg;

    io = sockp;

    if (what == CURL_POLL_REMOVE) {
        if (io != NULL) {
            /*
             * Not freed yet: an event of this epoll batch may still point
             * to it (a connection closed while another socket's event was
             * handled); the loop skips it and frees it after the batch.
             */
            msgr_sender_watch(io, 0);
            io->kind = MSGR_SENDER_IO_CLOSED;
            io->data = msgr_sender.closed;
            msgr_sender.closed = io;
            curl_multi_assign(msgr_sender.multi, s, NULL);
        }

        return 0;
    }

    if (io == NULL) {
        io = calloc(1, sizeof(msgr_sender_io_t));
        if (io == NULL) {
            return -1;
        }

        io->kind = MSGR_SENDER_IO_CURL;
        io->fd = s;
        curl_multi_assign(msgr_sender.multi, s, io);
    }

    msgr_sender_watch(io, (what & CURL_POLL_IN ? EPOLLIN : 0)
                          | (what & CURL_POLL_OUT ? EPOLLOUT : 0));

    return 0;
}


static int
msgr_sender_curl_timer(CURLM *multi, long ms, void *arg)
{
    (void) multi;
    (void) arg;

    msgr_sender.curl_at = (ms < 0) ? 0 : msgr_sender_now() + ms / 1000.0;

    return 0;
}


/* what the work connection does next */

static void
msgr_sender_complete(msgr_sender_pg_t *pg)
{
    int                 n, i;
    char               *arrays[6], *p[6], delay[32], *forget;
    size_t              size, k;
    json_t             *tokens, *t;
    const char         *values[8], *state;
    msgr_sender_job_t  *job;

    static const char  *const  empty = "";

    /* the batch: every outcome waiting, as arrays */

    n = 0;
    size = 64;

    for (job = msgr_sender.done; job; job = job->next) {
        n++;
        size += 64 + 2 * (strlen(job->provider_id) + strlen(job->error))
                + (job->provider ? 2 * strlen(job->provider->name) : 0);
    }

    for (i = 0; i < 6; i++) {
        arrays[i] = malloc(size);
        if (arrays[i] == NULL) {
            while (i--) {
                free(arrays[i]);
            }
            return;
        }

        p[i] = arrays[i];
        *p[i]++ = '{';
    }

    for (job = msgr_sender.done; job; job = job->next) {
        state = (job->outcome == MSGR_SENDER_SENT) ? "sent"
                : (job->outcome == MSGR_SENDER_DELIVERED) ? "delivered"
                : (job->outcome == MSGR_SENDER_TEMPORARY) ? "queued"
                : job->technical ? "technical-failure"
                : "permanent-failure";

        snprintf(delay, sizeof(delay), "%.3f", job->delay);

        p[0] += sprintf(p[0], "%s%lld", job == msgr_sender.done ? "" : ",",
                        (long long) job->id);
        p[1] += sprintf(p[1], "%s%s", job == msgr_sender.done ? "" : ",",
                        state);

        for (i = 2; i < 5; i++) {
            const char  *s = (i == 2) ? (job->provider ? job->provider->name
                                                       : empty)
                             : (i == 3) ? job->provider_id : job->error;

            if (job != msgr_sender.done) {
                *p[i]++ = ',';
            }

            *p[i]++ = '"';

            for (; *s; s++) {
                if (*s == '"' || *s == '\\') {
                    *p[i]++ = '\\';
                }
                *p[i]++ = *s;
            }

            *p[i]++ = '"';
        }

        p[5] += sprintf(p[5], "%s%s", job == msgr_sender.done ? "" : ",",
                        delay);
    }

    for (i = 0; i < 6; i++) {
        *p[i]++ = '}';
        *p[i] = '\0';
        values[i] = arrays[i];
    }

    values[6] = msgr_sender.conf->sender_id;

    /* devices a push provider said are gone for good */

    tokens = json_array();

    for (job = msgr_sender.done; job && tokens; job = job->next) {
        json_array_foreach(job->forgotten, k, t) {
            if (json_is_string(t)) {
                json_array_append(tokens, t);
            }
        }
    }

    forget = msgr_sender_text_array(tokens);
    json_decref(tokens);
    values[7] = forget ? forget : "{}";

    pg->jobs = msgr_sender.done;
    msgr_sender.done = NULL;
    msgr_sender.ndone = 0;

    (void) msgr_sender_pg_send(pg, MSGR_SENDER_OP_COMPLETE,
                               msgr_sender_complete_sql, 8, values);

    for (i = 0; i < 6; i++) {
        free(arrays[i]);
    }

    free(forget);
}


/* a PostgreSQL text[] literal of JSON strings (token ids: hex) */

static char *
msgr_sender_text_array(json_t *strings)
{
    char              *s, *p;
    size_t             i, size;
    json_t            *v;

    size = 3;

    json_array_foreach(strings, i, v) {
        size += json_string_length(v) + 3;
    }

    s = malloc(size);
    if (s == NULL) {
        return NULL;
    }

    p = s;
    *p++ = '{';

    json_array_foreach(strings, i, v) {
        p += sprintf(p, "%s\"%s\"", i ? "," : "", json_string_value(v));
    }

    *p++ = '}';
    *p = '\0';

    return s;
}


static void
msgr_sender_release(msgr_sender_pg_t *pg)
{
    char               *ids, *q;
    size_t              n;
    const char         *values[2];
    msgr_sender_job_t  *job, **jp;

    /* a device's request waiting is not a claim: its parent's outcome */

    for (jp = &msgr_sender.waiting; *jp; /* void */) {
        job = *jp;

        if (job->parent == NULL) {
            jp = &job->next;
            continue;
        }

        *jp = job->next;
        job->next = NULL;
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "the sender stopped before it was sent");
        msgr_sender_done(job);
    }

    if (msgr_sender.waiting == NULL) {
        return;
    }

    n = 0;

    for (job = msgr_sender.waiting; job; job = job->next) {
        n++;
    }

    ids = malloc(2 + n * 21);
    if (ids == NULL) {
        return;
    }

    q = ids;
    *q++ = '{';

    for (job = msgr_sender.waiting; job; job = job->next) {
        q += sprintf(q, "%s%lld", job == msgr_sender.waiting ? "" : ",",
                     (long long) job->id);
    }

    *q++ = '}';
    *q = '\0';

    values[0] = ids;
    values[1] = msgr_sender.conf->sender_id;

    pg->jobs = msgr_sender.waiting;
    msgr_sender.waiting = NULL;

    (void) msgr_sender_pg_send(pg, MSGR_SENDER_OP_RELEASE,
                               msgr_sender_release_sql, 2, values);
    free(ids);
}


static void
msgr_sender_next(void)
{
    int                room;
    char               limit[16], lease[32];
    double             now;
    const char        *values[3];
    msgr_sender_pg_t  *pg;

    pg = &msgr_sender.work;

    if (pg->state != MSGR_SENDER_PG_IDLE) {
        return;
    }

    now = msgr_sender_now();

    if (msgr_sender.stopping) {
        if (msgr_sender.waiting != NULL) {
            msgr_sender_release(pg);
        }
        return;
    }

    if (now >= msgr_sender.next_reclaim) {
        msgr_sender.next_reclaim = now + msgr_sender.conf->poll * 5;
        (void) msgr_sender_pg_send(pg, MSGR_SENDER_OP_RECLAIM,
                                   msgr_sender_reclaim_sql, 0, NULL);
        return;
    }

    room = msgr_sender.conf->max_in_flight - msgr_sender.in_flight;

    if (room <= 0 || (!msgr_sender.wake && now < msgr_sender.next_poll)) {
        return;
    }

    msgr_sender.wake = 0;
    msgr_sender.next_poll = now + msgr_sender.conf->poll;

    msgr_sender.claim_limit = room < msgr_sender.conf->batch
                              ? room : msgr_sender.conf->batch;
    snprintf(limit, sizeof(limit), "%d", msgr_sender.claim_limit);
    snprintf(lease, sizeof(lease), "%.0f", msgr_sender.conf->lease);

    values[0] = limit;
    values[1] = msgr_sender.conf->sender_id;
    values[2] = lease;

    (void) msgr_sender_pg_send(pg, MSGR_SENDER_OP_CLAIM,
                               msgr_sender_claim_sql, 3, values);
}


/*
 * Outcomes go to PostgreSQL on their own connection, in batches: a tenth
 * of a claim's worth, or what has waited 20 ms, or everything when
 * nothing else is in flight.
 */

static void
msgr_sender_flush(void)
{
    int                min;
    msgr_sender_pg_t  *pg;

    pg = &msgr_sender.flush;

    if (pg->state != MSGR_SENDER_PG_IDLE || msgr_sender.done == NULL) {
        return;
    }

    min = msgr_sender.conf->batch / 10;

    if (msgr_sender.ndone >= (min > 0 ? min : 1)
        || msgr_sender.ndone >= msgr_sender.in_flight
        || msgr_sender.stopping
        || msgr_sender_now() - msgr_sender.done_at >= 0.02)
    {
        msgr_sender_complete(pg);
    }
}


/* signals: TERM and INT stop, HUP reloads */

static void
msgr_sender_signalled(void)
{
    char                     err[512];
    msgr_sender_conf_t      *conf;
    struct signalfd_siginfo  si;

    while (read(msgr_sender.signals.fd, &si, sizeof(si)) == sizeof(si)) {

        if (si.ssi_signo == SIGHUP) {
            conf = msgr_sender_conf_load(msgr_sender.conf->path, err,
                                         sizeof(err));
            if (conf == NULL) {
                msgr_sender_log("the configuration is not reloaded: %s", err);
                continue;
            }

            /* requests in flight may still use the older providers */
            conf->older = msgr_sender.conf;
            msgr_sender.conf = conf;

            if (msgr_sender.in_flight == 0) {
                msgr_sender_conf_free(conf->older);
                conf->older = NULL;
            }

            msgr_sender_log("the configuration is reloaded from %s",
                            conf->path);
            continue;
        }

        if (!msgr_sender.stopping) {
            msgr_sender_log("stopping: finishing %d requests in flight",
                            msgr_sender.active);
            msgr_sender.stopping = 1;

            /* what waits for a connection is given back, not started */

            if (msgr_sender.queued_tail != NULL) {
                msgr_sender.queued_tail->next = msgr_sender.waiting;
                msgr_sender.waiting = msgr_sender.queued;
                msgr_sender.queued = NULL;
                msgr_sender.queued_tail = NULL;
            }

            msgr_sender.stop_at = msgr_sender_now() + MSGR_SENDER_DRAIN_MAX;
        }
    }
}


static int
msgr_sender_setup(void)
{
    sigset_t  mask;

    msgr_sender.ep = epoll_create1(EPOLL_CLOEXEC);
    if (msgr_sender.ep == -1) {
        msgr_sender_log("epoll_create1: %s", strerror(errno));
        return -1;
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);

    msgr_sender.signals.kind = MSGR_SENDER_IO_SIGNAL;
    msgr_sender.signals.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    if (msgr_sender.signals.fd == -1
        || msgr_sender_watch(&msgr_sender.signals, EPOLLIN) != 0)
    {
        msgr_sender_log("signalfd: %s", strerror(errno));
        return -1;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        msgr_sender_log("curl_global_init failed");
        return -1;
    }

    msgr_sender.multi = curl_multi_init();
    if (msgr_sender.multi == NULL) {
        return -1;
    }

    curl_multi_setopt(msgr_sender.multi, CURLMOPT_SOCKETFUNCTION,
                      msgr_sender_curl_socket);
    curl_multi_setopt(msgr_sender.multi, CURLMOPT_TIMERFUNCTION,
                      msgr_sender_curl_timer);

    curl_multi_setopt(msgr_sender.multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long) msgr_sender.conf->connections);
    curl_multi_setopt(msgr_sender.multi, CURLMOPT_MAXCONNECTS,
                      (long) msgr_sender.conf->connections
                      * MSGR_SENDER_PROVIDERS_MAX);

    msgr_sender.work.name = "claims";
    msgr_sender.flush.name = "completions";
    msgr_sender.listen.name = "listen";
    msgr_sender.listen.listen = 1;

    msgr_sender_pg_connect(&msgr_sender.work);
    msgr_sender_pg_connect(&msgr_sender.flush);
    msgr_sender_pg_connect(&msgr_sender.listen);

    msgr_sender.wake = 1;

    return 0;
}


/*
 * How long to sleep: until what is due next that no event will announce.
 * Sockets (PostgreSQL's, the providers') wake us themselves.
 */

static double
msgr_sender_due(double now)
{
    int     i;
    double  at;

    at = now + 1;

    if (msgr_sender.work.state == MSGR_SENDER_PG_IDLE
        && !msgr_sender.stopping)
    {
        if (msgr_sender.in_flight < msgr_sender.conf->max_in_flight) {
            at = fmin(at, msgr_sender.wake ? now
                                           : msgr_sender.next_poll);
        }

        at = fmin(at, msgr_sender.next_reclaim);
    }

    if (msgr_sender.curl_at > 0) {
        at = fmin(at, msgr_sender.curl_at);
    }

    if (msgr_sender.waiting != NULL) {
        /* the next rate token */
        at = fmin(at, now + fmin(0.1, 1 / fmax(1,
                                    msgr_sender.waiting->provider->rate)));
    }

    if (msgr_sender.done != NULL
        && msgr_sender.flush.state == MSGR_SENDER_PG_IDLE)
    {
        at = fmin(at, msgr_sender.done_at + 0.02);
    }

    for (i = 0; i < 3; i++) {
        if (msgr_sender_pgs[i]->state == MSGR_SENDER_PG_CLOSED) {
            at = fmin(at, msgr_sender_pgs[i]->retry_at);
        }
    }

    return at;
}


/* the loop; returns when stopped, or idle with --exit-when-idle */

static void
msgr_sender_loop(void)
{
    int                  i, n, running, timeout, flags;
    double               now, at;
    msgr_sender_io_t    *io;
    msgr_sender_job_t   *job, *waiting;
    struct epoll_event   evs[64];

    for ( ;; ) {
        now = msgr_sender_now();

        /* reconnect what was lost */

        for (i = 0; i < 3; i++) {
            if (msgr_sender_pgs[i]->state == MSGR_SENDER_PG_CLOSED
                && now >= msgr_sender_pgs[i]->retry_at)
            {
                msgr_sender_pg_connect(msgr_sender_pgs[i]);
            }
        }

        /* jobs that waited for a rate token */

        waiting = msgr_sender.waiting;

        if (!msgr_sender.stopping && waiting != NULL) {
            msgr_sender.waiting = NULL;

            while (waiting) {
                job = waiting;
                waiting = job->next;
                job->next = NULL;
                msgr_sender_dispatch(job);
            }
        }

        msgr_sender_next();
        msgr_sender_flush();

        if (msgr_sender.stopping && msgr_sender.in_flight == 0
            && msgr_sender.done == NULL
            && msgr_sender.work.state != MSGR_SENDER_PG_BUSY
            && msgr_sender.flush.state != MSGR_SENDER_PG_BUSY)
        {
            return;
        }

        if (msgr_sender.stopping && now > msgr_sender.stop_at) {
            msgr_sender_log("stopping: %d requests did not finish in time; "
                            "their leases will end", msgr_sender.in_flight);
            return;
        }

        if (msgr_sender.exit_when_idle && msgr_sender.idle
            && msgr_sender.in_flight == 0 && msgr_sender.done == NULL
            && msgr_sender.waiting == NULL && !msgr_sender.wake
            && msgr_sender.work.state == MSGR_SENDER_PG_IDLE
            && msgr_sender.flush.state == MSGR_SENDER_PG_IDLE)
        {
            return;
        }

        at = msgr_sender_due(now);

        timeout = (at <= now) ? 0 : (int) ((at - now) * 1000) + 1;

        if (timeout > 1000) {
            timeout = 1000;
        }

        n = epoll_wait(msgr_sender.ep, evs, 64, timeout);

        if (n == -1 && errno != EINTR) {
            msgr_sender_log("epoll_wait: %s", strerror(errno));
            return;
        }

        for (i = 0; i < n; i++) {
            io = evs[i].data.ptr;

            switch (io->kind) {

            case MSGR_SENDER_IO_PG:
                msgr_sender_pg_step(io->data);
                break;

            case MSGR_SENDER_IO_CURL:
                flags = ((evs[i].events & EPOLLIN) ? CURL_CSELECT_IN : 0)
                        | ((evs[i].events & EPOLLOUT) ? CURL_CSELECT_OUT : 0)
                        | ((evs[i].events & (EPOLLERR | EPOLLHUP))
                           ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(msgr_sender.multi, io->fd, flags,
                                         &running);
                break;

            case MSGR_SENDER_IO_SIGNAL:
                msgr_sender_signalled();
                break;

            case MSGR_SENDER_IO_CLOSED:
                break;
            }
        }

        while (msgr_sender.closed != NULL) {
            io = msgr_sender.closed;
            msgr_sender.closed = io->data;
            free(io);
        }

        if (msgr_sender.curl_at > 0 && msgr_sender_now() >= msgr_sender.curl_at)
        {
            msgr_sender.curl_at = 0;
            curl_multi_socket_action(msgr_sender.multi, CURL_SOCKET_TIMEOUT, 0,
                                     &running);
        }

        msgr_sender_curl_check();
    }
}


static void
msgr_sender_usage(FILE *f)
{
    fputs("usage: msgr-sender [--pg CONNINFO] --config FILE"
          " [--exit-when-idle] [--verbose]\n"
          "  --pg CONNINFO     the database (else MSGR_PG)\n"
          "  --config FILE     providers and limits (conf/msgr-sender.conf)\n"
          "  --exit-when-idle  stop once nothing is due (tests, one-shot "
          "drains)\n"
          "  --verbose         log every claim and outcome\n", f);
}


int
main(int argc, char **argv)
{
    int          i;
    char         err[512];
    const char  *config;

    config = NULL;
    msgr_sender.conninfo = getenv("MSGR_PG");

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc) {
            msgr_sender.conninfo = argv[++i];

        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];

        } else if (strcmp(argv[i], "--exit-when-idle") == 0) {
            msgr_sender.exit_when_idle = 1;

        } else if (strcmp(argv[i], "--verbose") == 0) {
            msgr_sender.verbose = 1;

        } else if (strcmp(argv[i], "--help") == 0) {
            msgr_sender_usage(stdout);
            return 0;

        } else {
            msgr_sender_usage(stderr);
            return 2;
        }
    }

    if (config == NULL || msgr_sender.conninfo == NULL) {
        fprintf(stderr, "msgr-sender: %s is required\n",
                config ? "--pg CONNINFO (or MSGR_PG)" : "--config FILE");
        msgr_sender_usage(stderr);
        return 2;
    }

    if (sodium_init() < 0) {
        fprintf(stderr, "msgr-sender: libsodium cannot start\n");
        return 1;
    }

    msgr_sender.conf = msgr_sender_conf_load(config, err, sizeof(err));

    if (msgr_sender.conf == NULL) {
        fprintf(stderr, "msgr-sender: %s\n", err);
        return 1;
    }

    if (msgr_sender_setup() != 0) {
        return 1;
    }

    msgr_sender_log("started as %s, %d providers",
                    msgr_sender.conf->sender_id, msgr_sender.conf->nproviders);

    msgr_sender_loop();

    msgr_sender_log("stopped: %ld claimed, %ld completed",
                    msgr_sender.claimed, msgr_sender.completed);

    if (msgr_sender.work.conn) {
        PQfinish(msgr_sender.work.conn);
    }

    if (msgr_sender.flush.conn) {
        PQfinish(msgr_sender.flush.conn);
    }

    if (msgr_sender.listen.conn) {
        PQfinish(msgr_sender.listen.conn);
    }

    curl_multi_cleanup(msgr_sender.multi);
    curl_global_cleanup();
    msgr_sender_conf_free(msgr_sender.conf);

    return 0;
}

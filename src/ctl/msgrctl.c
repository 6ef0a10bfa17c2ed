/*
 * msgrctl: the operator CLI of msgr (migrations, schools, settings, API
 * keys).
 *
 * Blocking libpq is fine here.  Every value an operator typed reaches the
 * server as a $n parameter; only migration files, which ship with msgr, are
 * sent as SQL text.
 *
 * Exit status: 0 on success, 1 on an error (a message on stderr names what
 * was wrong), 2 on a usage error (unknown command, missing argument).
 */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include <sodium.h>

#include "msgr_key.h"
#include "msgr_routing.h"
#include "msgr_settings.h"


#ifndef MSGR_SQL_DIR
#define MSGR_SQL_DIR  "sql"
#endif

#define MSGRCTL_OK             0
#define MSGRCTL_ERROR          1
#define MSGRCTL_USAGE          2

#define MSGRCTL_NAME_MAX       200
#define MSGRCTL_KEY_ATTEMPTS   3
#define MSGRCTL_ID_BUF         24
#define MSGRCTL_SET_MAX        64

#define MSGRCTL_SQLSTATE_FK      "23503"
#define MSGRCTL_SQLSTATE_UNIQUE  "23505"


typedef struct msgrctl_cmd_s  msgrctl_cmd_t;

typedef struct {
    const char           *conninfo;
    PGconn               *conn;
    const msgrctl_cmd_t  *cmd;
} msgrctl_ctx_t;

typedef int (*msgrctl_handler_pt)(msgrctl_ctx_t *ctx, int argc, char **argv);

struct msgrctl_cmd_s {
    const char          *group;
    const char          *name;       /* NULL for a one-word command */
    const char          *args;
    const char          *help;
    msgrctl_handler_pt   handler;
};

typedef struct {
    const char          *name;
    const char         **value;
} msgrctl_opt_t;

/* one msgrctl school set */

typedef struct {
    char                 id[MSGRCTL_ID_BUF];
    char                *version;     /* as read, then as written */
    int                  enhanced;    /* -1: not given */
    int                  was;         /* enhanced as read */
    json_t              *patch;
    json_t              *stored;
    json_t              *next;
    json_t              *changes;
    json_t              *resolved;
    json_t              *errors;
} msgrctl_set_t;


static int msgrctl_migrate(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_school_create(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_school_list(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_school_set(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_school_prices(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_key_create(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_key_list(msgrctl_ctx_t *ctx, int argc, char **argv);
static int msgrctl_key_revoke(msgrctl_ctx_t *ctx, int argc, char **argv);


static const msgrctl_cmd_t  msgrctl_cmds[] = {

    { "migrate", NULL, "[--sql DIR]",
      "apply the new NNNN_name.sql files of DIR in name order",
      msgrctl_migrate },

    { "school", "create", "NAME",
      "create a school (name of 1 to 200 characters), print its id",
      msgrctl_school_create },

    { "school", "list", "",
      "list schools: id, name, created_at",
      msgrctl_school_list },

    { "school", "set", "ID TAB.FIELD=VALUE... | enhanced_messenger=BOOL",
      "change settings as the operator, the read-only mis tab included\n"
      "      (VALUE is JSON: true, 90, \"text\"; a bare word is a string)",
      msgrctl_school_set },

    { "school", "prices", "ID [NAME=N...]",
      "show or change the price list routing costs deliveries by\n"
      "      (NAME: push, email, sms_segment, voice_call; N: an integer\n"
      "      from 0 to 1000000 in the school's billing unit; NAME=default\n"
      "      goes back to msgr's default)",
      msgrctl_school_prices },

    { "key", "create", "--school ID --role ROLE",
      "make an API key and print it once (ROLE: admin, staff, integrator)",
      msgrctl_key_create },

    { "key", "list", "--school ID",
      "list a school's keys: key_id, role, created_at, revoked_at",
      msgrctl_key_list },

    { "key", "revoke", "KEY_ID",
      "revoke a key by its id (the 16 hex digits after msgr_<school>_)",
      msgrctl_key_revoke },

    { NULL, NULL, NULL, NULL, NULL }
};


static const char  *msgrctl_roles[] = { "admin", "staff", "integrator", NULL };


static void msgrctl_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static int msgrctl_usage_error(msgrctl_ctx_t *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


static void
msgrctl_error(const char *fmt, ...)
{
    va_list  args;

    fputs("msgrctl: ", stderr);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);
}


static void
msgrctl_cmd_usage(FILE *f, const msgrctl_cmd_t *cmd)
{
    fprintf(f, "usage: msgrctl [--pg CONNINFO] %s%s%s%s%s\n",
            cmd->group, cmd->name ? " " : "", cmd->name ? cmd->name : "",
            cmd->args[0] ? " " : "", cmd->args);
    fprintf(f, "    %s\n", cmd->help);
}


static void
msgrctl_usage(FILE *f)
{
    const msgrctl_cmd_t  *cmd;

    fputs("usage: msgrctl [--pg CONNINFO] COMMAND [ARGS]\n\n"
          "commands:\n", f);

    for (cmd = msgrctl_cmds; cmd->group; cmd++) {
        fprintf(f, "  %s%s%s%s%s\n      %s\n", cmd->group,
                cmd->name ? " " : "", cmd->name ? cmd->name : "",
                cmd->args[0] ? " " : "", cmd->args, cmd->help);
    }

    fputs("\n"
          "The database is --pg CONNINFO or the environment variable MSGR_PG,\n"
          "a libpq connection string such as\n"
          "  \"host=127.0.0.1 port=5433 dbname=msgr user=msgr\".\n"
          "migrate reads --sql DIR, else $MSGR_SQL_DIR, else "
          MSGR_SQL_DIR ".\n"
          "\"msgrctl COMMAND --help\" describes one command.\n", f);
}


/*
 * Prints the commands of a group ("school", "key") to f, unless f is NULL;
 * returns how many there are: 0 when there is no such group.
 */

static int
msgrctl_group_usage(FILE *f, const char *group)
{
    int                   n;
    const msgrctl_cmd_t  *cmd;

    n = 0;

    for (cmd = msgrctl_cmds; cmd->group; cmd++) {

        if (cmd->name == NULL || strcmp(cmd->group, group) != 0) {
            continue;
        }

        if (f == NULL) {
            n++;
            continue;
        }

        if (n++ == 0) {
            fprintf(f, "usage: msgrctl [--pg CONNINFO] %s SUBCOMMAND [ARGS]"
                    "\n\n%s subcommands:\n", group, group);
        }

        fprintf(f, "  %s %s%s%s\n      %s\n", cmd->group, cmd->name,
                cmd->args[0] ? " " : "", cmd->args, cmd->help);
    }

    if (n && f) {
        fprintf(f, "\n\"msgrctl %s SUBCOMMAND --help\" describes one.\n",
                group);
    }

    return n;
}


static int
msgrctl_usage_error(msgrctl_ctx_t *ctx, const char *fmt, ...)
{
    va_list  args;

    fputs("msgrctl: ", stderr);

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fputc('\n', stderr);

    if (ctx->cmd) {
        msgrctl_cmd_usage(stderr, ctx->cmd);

    } else {
        msgrctl_usage(stderr);
    }

    return MSGRCTL_USAGE;
}


/*
 * Splits a command's arguments into "--name VALUE" (or "--name=VALUE")
 * options and from min to max positional arguments (the ones not given are
 * left alone); "--" ends the options.
 */

static int
msgrctl_args(msgrctl_ctx_t *ctx, int argc, char **argv, msgrctl_opt_t *opts,
    const char **pos, int min, int max)
{
    int             i, n, options;
    size_t          len;
    const char     *arg, *eq;
    msgrctl_opt_t  *opt;

    n = 0;
    options = 1;

    for (i = 0; i < argc; i++) {
        arg = argv[i];

        if (options && arg[0] == '-' && arg[1] != '\0') {

            if (strcmp(arg, "--") == 0) {
                options = 0;
                continue;
            }

            eq = strchr(arg, '=');
            len = eq ? (size_t) (eq - arg) : strlen(arg);

            for (opt = opts; opt && opt->name; opt++) {
                if (strlen(opt->name) == len
                    && strncmp(arg, opt->name, len) == 0)
                {
                    break;
                }
            }

            if (opt == NULL || opt->name == NULL) {
                return msgrctl_usage_error(ctx, "unknown option \"%s\"", arg);
            }

            if (eq) {
                *opt->value = eq + 1;

            } else if (i + 1 < argc) {
                *opt->value = argv[++i];

            } else {
                return msgrctl_usage_error(ctx, "option %s needs a value",
                                           opt->name);
            }

            continue;
        }

        if (n == max) {
            return msgrctl_usage_error(ctx, "unexpected argument \"%s\"", arg);
        }

        pos[n++] = arg;
    }

    if (n < min) {
        return msgrctl_usage_error(ctx, "missing argument");
    }

    return MSGRCTL_OK;
}


/* A positive bigint in plain decimal, written back normalised into buf */

static int
msgrctl_parse_id(const char *s, char buf[MSGRCTL_ID_BUF])
{
    long long  id;
    size_t     i;

    if (s[0] == '\0') {
        return -1;
    }

    id = 0;

    for (i = 0; s[i]; i++) {
        if (s[i] < '0' || s[i] > '9' || id > (LLONG_MAX - 9) / 10) {
            return -1;
        }

        id = id * 10 + (s[i] - '0');
    }

    if (id == 0) {
        return -1;
    }

    snprintf(buf, MSGRCTL_ID_BUF, "%lld", id);

    return 0;
}


static int
msgrctl_role_valid(const char *role)
{
    const char  **r;

    for (r = msgrctl_roles; *r; r++) {
        if (strcmp(*r, role) == 0) {
            return 1;
        }
    }

    return 0;
}


static void
msgrctl_role_error(const char *role)
{
    const char  **r;

    fprintf(stderr, "msgrctl: invalid role \"%s\": allowed roles are ", role);

    for (r = msgrctl_roles; *r; r++) {
        fprintf(stderr, "%s%s", r == msgrctl_roles ? "" : ", ", *r);
    }

    fputc('\n', stderr);
}


/* Prints a field as tab-separated output: \t, \n, \r and \\ escaped */

static void
msgrctl_print_field(const char *s)
{
    for ( /* void */ ; *s; s++) {
        switch (*s) {
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        default:
            fputc(*s, stdout);
        }
    }
}


static void
msgrctl_print_rows(PGresult *res)
{
    int  row, col, rows, cols;

    rows = PQntuples(res);
    cols = PQnfields(res);

    for (row = 0; row < rows; row++) {
        for (col = 0; col < cols; col++) {
            if (col) {
                fputc('\t', stdout);
            }

            msgrctl_print_field(PQgetvalue(res, row, col));
        }

        fputc('\n', stdout);
    }
}


static int
msgrctl_flush(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        msgrctl_error("cannot write to stdout: %s", strerror(errno));
        return MSGRCTL_ERROR;
    }

    return MSGRCTL_OK;
}


static PGconn *
msgrctl_connect(msgrctl_ctx_t *ctx)
{
    size_t       len;
    PGconn      *conn;
    PGresult    *res;
    const char  *conninfo, *msg;
    const char  *keys[] = { "dbname", "fallback_application_name", NULL };
    const char  *values[] = { NULL, "msgrctl", NULL };

    conninfo = ctx->conninfo ? ctx->conninfo : getenv("MSGR_PG");

    if (conninfo == NULL || conninfo[0] == '\0') {
        msgrctl_error("no database given: use --pg CONNINFO or set MSGR_PG "
                      "(e.g. \"host=127.0.0.1 port=5433 dbname=msgr "
                      "user=msgr\")");
        return NULL;
    }

    values[0] = conninfo;

    conn = PQconnectdbParams(keys, values, 1);

    if (conn == NULL) {
        msgrctl_error("cannot connect to PostgreSQL: out of memory");
        return NULL;
    }

    if (PQstatus(conn) != CONNECTION_OK) {
        msg = PQerrorMessage(conn);
        len = strlen(msg);

        while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' ')) {
            len--;
        }

        /* not the conninfo itself: it may hold a password */

        msgrctl_error("cannot connect to PostgreSQL (from %s): %.*s",
                      ctx->conninfo ? "--pg" : "MSGR_PG", (int) len, msg);
        PQfinish(conn);
        return NULL;
    }

    /* "already exists, skipping" and the like are not worth a line */

    res = PQexec(conn, "SET client_min_messages TO warning");
    PQclear(res);

    ctx->conn = conn;

    return conn;
}


static void
msgrctl_pg_error(msgrctl_ctx_t *ctx, const char *what, const PGresult *res)
{
    const char  *primary, *detail;

    primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;

    if (primary == NULL) {
        primary = PQerrorMessage(ctx->conn);
    }

    if (detail) {
        msgrctl_error("%s: %s (%s)", what, primary, detail);

    } else {
        msgrctl_error("%s: %s", what, primary);
    }
}


static int
msgrctl_sqlstate_is(const PGresult *res, const char *state)
{
    const char  *s;

    s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s && strcmp(s, state) == 0;
}


/*
 * Runs a statement with text parameters; returns its result when its status
 * is the one expected, else prints "what: error" and returns NULL.
 */

static PGresult *
msgrctl_query(msgrctl_ctx_t *ctx, const char *what, const char *sql,
    int n, const char *const *values, ExecStatusType expect)
{
    PGresult  *res;

    res = PQexecParams(ctx->conn, sql, n, NULL, values, NULL, NULL, 0);

    if (PQresultStatus(res) == expect) {
        return res;
    }

    msgrctl_pg_error(ctx, what, res);
    PQclear(res);

    return NULL;
}


static int
msgrctl_command(msgrctl_ctx_t *ctx, const char *what, const char *sql)
{
    PGresult  *res;

    res = msgrctl_query(ctx, what, sql, 0, NULL, PGRES_COMMAND_OK);

    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    PQclear(res);

    return MSGRCTL_OK;
}


/* runs a query and prints its rows, tab-separated, one a line */

static int
msgrctl_list(msgrctl_ctx_t *ctx, const char *what, const char *sql, int n,
    const char *const *values)
{
    PGresult  *res;

    res = msgrctl_query(ctx, what, sql, n, values, PGRES_TUPLES_OK);
    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    msgrctl_print_rows(res);
    PQclear(res);

    return msgrctl_flush();
}


static void
msgrctl_rollback(msgrctl_ctx_t *ctx)
{
    PQclear(PQexec(ctx->conn, "ROLLBACK"));
}


/* 1 when the school exists, 0 when it does not, -1 on an error */

static int
msgrctl_school_exists(msgrctl_ctx_t *ctx, const char *school)
{
    int          found;
    PGresult    *res;
    const char  *values[1];

    values[0] = school;

    res = msgrctl_query(ctx, "cannot look up the school",
                        "SELECT 1 FROM msgr_schools WHERE school_id = $1",
                        1, values, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }

    found = PQntuples(res) > 0;
    PQclear(res);

    if (!found) {
        msgrctl_error("school %s does not exist (see \"msgrctl school list\")",
                      school);
    }

    return found;
}


/* migrate */

static int
msgrctl_migration_name(const char *name)
{
    size_t  i, len;

    len = strlen(name);

    if (len < sizeof("0000_x.sql") - 1
        || strcmp(name + len - 4, ".sql") != 0
        || name[4] != '_')
    {
        return 0;
    }

    for (i = 0; i < 4; i++) {
        if (name[i] < '0' || name[i] > '9') {
            return 0;
        }
    }

    for (i = 5; i < len - 4; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z')
              || (name[i] >= 'A' && name[i] <= 'Z')
              || (name[i] >= '0' && name[i] <= '9')
              || name[i] == '_' || name[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


static int
msgrctl_migration_filter(const struct dirent *d)
{
    size_t  len;

    len = strlen(d->d_name);

    if (len < 4 || strcmp(d->d_name + len - 4, ".sql") != 0) {
        return 0;
    }

    if (!msgrctl_migration_name(d->d_name)) {
        msgrctl_error("warning: ignoring %s: migrations are named "
                      "NNNN_name.sql", d->d_name);
        return 0;
    }

    return 1;
}


static int
msgrctl_migration_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}


static char *
msgrctl_read_file(const char *path)
{
    FILE    *f;
    char    *buf, *p;
    size_t   len, size, n;

    f = fopen(path, "r");
    if (f == NULL) {
        msgrctl_error("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }

    len = 0;
    size = 8192;
    buf = malloc(size);

    while (buf) {
        n = fread(buf + len, 1, size - len - 1, f);
        len += n;

        if (len < size - 1) {
            break;
        }

        size *= 2;
        p = realloc(buf, size);

        if (p == NULL) {
            free(buf);
        }

        buf = p;
    }

    if (buf == NULL) {
        msgrctl_error("cannot read %s: out of memory", path);
        fclose(f);
        return NULL;
    }

    if (ferror(f)) {
        msgrctl_error("cannot read %s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return NULL;
    }

    fclose(f);
    buf[len] = '\0';

    if (strlen(buf) != len) {
        msgrctl_error("cannot apply %s: it contains a NUL byte", path);
        free(buf);
        return NULL;
    }

    return buf;
}


/*
 * Applies one file in its own transaction together with its row in
 * msgr_schema_migrations, unless that row is there already.
 */

static int
msgrctl_migrate_file(msgrctl_ctx_t *ctx, const char *dir, const char *file,
    int *applied)
{
    int             rc;
    char           *sql, *version, path[PATH_MAX];
    PGresult       *res;
    ExecStatusType  status;
    const char     *values[1];

    if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, file)
        >= sizeof(path))
    {
        msgrctl_error("path too long: %s/%s", dir, file);
        return MSGRCTL_ERROR;
    }

    version = strndup(file, strlen(file) - 4);
    if (version == NULL) {
        msgrctl_error("out of memory");
        return MSGRCTL_ERROR;
    }

    values[0] = version;
    sql = NULL;
    rc = MSGRCTL_ERROR;

    if (msgrctl_command(ctx, "cannot start a transaction", "BEGIN")
        != MSGRCTL_OK)
    {
        goto done;
    }

    res = msgrctl_query(ctx, "cannot read msgr_schema_migrations",
                        "SELECT 1 FROM msgr_schema_migrations"
                        " WHERE version = $1",
                        1, values, PGRES_TUPLES_OK);
    if (res == NULL) {
        goto rollback;
    }

    if (PQntuples(res) > 0) {
        PQclear(res);
        msgrctl_rollback(ctx);
        rc = MSGRCTL_OK;
        goto done;
    }

    PQclear(res);

    sql = msgrctl_read_file(path);
    if (sql == NULL) {
        goto rollback;
    }

    res = PQexec(ctx->conn, sql);
    status = PQresultStatus(res);

    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK
        && status != PGRES_EMPTY_QUERY)
    {
        fprintf(stderr, "msgrctl: %s failed, rolled back: %s", path,
                res ? PQresultErrorMessage(res) : PQerrorMessage(ctx->conn));
        PQclear(res);
        goto rollback;
    }

    PQclear(res);

    res = msgrctl_query(ctx, "cannot record the migration",
                        "INSERT INTO msgr_schema_migrations (version)"
                        " VALUES ($1)",
                        1, values, PGRES_COMMAND_OK);
    if (res == NULL) {
        goto rollback;
    }

    PQclear(res);

    if (msgrctl_command(ctx, "cannot commit the migration", "COMMIT")
        != MSGRCTL_OK)
    {
        msgrctl_error("%s was not applied", path);
        goto done;
    }

    printf("applied %s\n", file);
    (*applied)++;

    rc = msgrctl_flush();
    goto done;

rollback:

    msgrctl_rollback(ctx);

done:

    free(sql);
    free(version);

    return rc;
}


static int
msgrctl_migrate(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int              i, n, rc, applied;
    PGresult        *res;
    const char      *dir;
    struct dirent  **files;
    msgrctl_opt_t    opts[] = { { "--sql", &dir }, { NULL, NULL } };

    dir = getenv("MSGR_SQL_DIR");

    if (dir == NULL || dir[0] == '\0') {
        dir = MSGR_SQL_DIR;
    }

    rc = msgrctl_args(ctx, argc, argv, opts, NULL, 0, 0);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    n = scandir(dir, &files, msgrctl_migration_filter, msgrctl_migration_cmp);

    if (n < 0) {
        msgrctl_error("cannot read the migrations directory %s: %s", dir,
                      strerror(errno));
        return MSGRCTL_ERROR;
    }

    rc = MSGRCTL_ERROR;
    applied = 0;

    if (n == 0) {
        msgrctl_error("no migrations (NNNN_name.sql files) in %s", dir);
        goto done;
    }

    if (msgrctl_connect(ctx) == NULL) {
        goto done;
    }

    /*
     * One migrate at a time: the lock is the session's, so it goes away
     * with the connection however msgrctl ends.
     */

    res = msgrctl_query(ctx, "cannot take the migration lock",
                        "SELECT pg_advisory_lock(hashtext('msgrctl migrate'))",
                        0, NULL, PGRES_TUPLES_OK);
    if (res == NULL) {
        goto done;
    }

    PQclear(res);

    if (msgrctl_command(ctx, "cannot create msgr_schema_migrations",
            "CREATE TABLE IF NOT EXISTS msgr_schema_migrations ("
            " version text PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())")
        != MSGRCTL_OK)
    {
        goto done;
    }

    for (i = 0; i < n; i++) {
        rc = msgrctl_migrate_file(ctx, dir, files[i]->d_name, &applied);

        if (rc != MSGRCTL_OK) {
            goto done;
        }
    }

    if (applied == 0) {
        printf("nothing to apply: all %d migrations in %s are applied\n",
               n, dir);
    }

    rc = msgrctl_flush();

done:

    for (i = 0; i < n; i++) {
        free(files[i]);
    }

    free(files);

    return rc;
}


/* schools */

static int
msgrctl_school_name_valid(const char *name)
{
    size_t                chars, blank;
    const unsigned char  *p;

    chars = 0;
    blank = 0;

    for (p = (const unsigned char *) name; *p; p++) {

        if (*p < 0x20 || *p == 0x7f) {
            msgrctl_error("invalid school name: control characters "
                          "(tab, newline, ...) are not allowed");
            return 0;
        }

        /* count UTF-8 characters, not continuation bytes */

        if ((*p & 0xc0) != 0x80) {
            chars++;
            blank += (*p == ' ');
        }
    }

    if (chars == 0 || chars > MSGRCTL_NAME_MAX || blank == chars) {
        msgrctl_error("invalid school name: it must be 1 to %d characters, "
                      "not all blank (got %zu)", MSGRCTL_NAME_MAX, chars);
        return 0;
    }

    return 1;
}


static int
msgrctl_school_create(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int          rc;
    PGresult    *res;
    const char  *name[1];

    rc = msgrctl_args(ctx, argc, argv, NULL, name, 1, 1);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (!msgrctl_school_name_valid(name[0])) {
        return MSGRCTL_ERROR;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    res = msgrctl_query(ctx, "cannot create the school",
                        "INSERT INTO msgr_schools (name) VALUES ($1)"
                        " RETURNING school_id",
                        1, name, PGRES_TUPLES_OK);
    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    printf("%s\n", PQgetvalue(res, 0, 0));
    PQclear(res);

    return msgrctl_flush();
}


static int
msgrctl_school_list(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int  rc;

    rc = msgrctl_args(ctx, argc, argv, NULL, NULL, 0, 0);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    return msgrctl_list(ctx, "cannot list schools",
                        "SELECT school_id, name, created_at"
                        " FROM msgr_schools ORDER BY school_id",
                        0, NULL);
}


/*
 * school prices ID [NAME=N...]: the price list least_cost routing and the
 * costs of a preview use (src/msgr_routing.c has the defaults).  Without
 * changes it prints the list; with them it checks them all, writes them in
 * one statement and prints the new list.
 */

static int
msgrctl_school_prices(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int             i, rc, found;
    char            id[MSGRCTL_ID_BUF], *text, *end;
    long long       n;
    json_t         *stored, *shown;
    PGresult       *res;
    const char     *why, *eq, *values[2];
    msgr_prices_t   prices;

    if (argc < 1 || argv[0][0] == '-') {
        return msgrctl_usage_error(ctx, "missing argument");
    }

    if (msgrctl_parse_id(argv[0], id) != 0) {
        msgrctl_error("invalid school id \"%s\": expected a positive integer",
                      argv[0]);
        return MSGRCTL_ERROR;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    values[0] = id;

    res = msgrctl_query(ctx, "cannot read the price list",
                        "SELECT prices::text FROM msgr_schools"
                        " WHERE school_id = $1",
                        1, values, PGRES_TUPLES_OK);
    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    found = PQntuples(res) == 1;
    stored = found ? json_loads(PQgetvalue(res, 0, 0), 0, NULL) : NULL;
    PQclear(res);

    if (!found) {
        msgrctl_error("school %s does not exist (see \"msgrctl school list\")",
                      id);
        return MSGRCTL_ERROR;
    }

    if (stored == NULL) {
        msgrctl_error("cannot read the price list: out of memory");
        return MSGRCTL_ERROR;
    }

    rc = MSGRCTL_OK;

    for (i = 1; i < argc && rc == MSGRCTL_OK; i++) {
        eq = strchr(argv[i], '=');

        if (eq == NULL || eq == argv[i]) {
            rc = msgrctl_usage_error(ctx, "\"%s\" is not NAME=N", argv[i]);
            break;
        }

        text = strndup(argv[i], eq - argv[i]);
        if (text == NULL) {
            rc = MSGRCTL_ERROR;
            break;
        }

        if (strcmp(eq + 1, "default") == 0) {
            json_object_del(stored, text);

        } else {
            errno = 0;
            n = strtoll(eq + 1, &end, 10);

            if (eq[1] == '\0' || *end != '\0' || errno != 0) {
                msgrctl_error("%s: must be an integer from 0 to %d, or "
                              "default", text, MSGR_PRICE_MAX);
                rc = MSGRCTL_ERROR;

            } else {
                json_object_set_new(stored, text, json_integer(n));
            }
        }

        free(text);
    }

    why = NULL;

    if (rc == MSGRCTL_OK && msgr_prices_from_json(stored, &prices, &why) != 0)
    {
        msgrctl_error("%s", why);
        rc = MSGRCTL_ERROR;
    }

    if (rc == MSGRCTL_OK && argc > 1) {
        text = json_dumps(stored, JSON_COMPACT);
        values[1] = text;

        res = text ? msgrctl_query(ctx, "cannot write the price list",
                                   "UPDATE msgr_schools SET prices = $2"
                                   " WHERE school_id = $1",
                                   2, values, PGRES_COMMAND_OK)
                   : NULL;
        free(text);

        if (res == NULL) {
            rc = MSGRCTL_ERROR;
        }

        PQclear(res);
    }

    json_decref(stored);

    if (rc != MSGRCTL_OK) {
        return rc;
    }

    shown = msgr_prices_to_json(&prices);
    text = shown ? json_dumps(shown, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(shown);

    if (text == NULL) {
        msgrctl_error("cannot print the price list: out of memory");
        return MSGRCTL_ERROR;
    }

    printf("%s\n", text);
    free(text);

    return msgrctl_flush();
}


/*
 * school set ID TAB.FIELD=VALUE...: the operator's changes, the read-only
 * mis tab and the Enhanced Messenger flag included.  The same table and
 * rules as the API; one transaction; the version bump NOTIFYs nginx.
 */

static int
msgrctl_school_set_parse(json_t *patch, const char *arg, int *enhanced)
{
    char          tab[64];
    size_t        len;
    json_t       *value, *obj;
    const char   *eq, *dot;
    json_error_t  err;

    eq = strchr(arg, '=');
    if (eq == NULL || eq == arg) {
        msgrctl_error("\"%s\": expected TAB.FIELD=VALUE", arg);
        return -1;
    }

    value = json_loads(eq + 1, JSON_DECODE_ANY, &err);
    if (value == NULL) {
        value = json_string(eq + 1);
        if (value == NULL) {
            msgrctl_error("\"%s\": the value is not valid UTF-8", arg);
            return -1;
        }
    }

    len = eq - arg;

    if (len == sizeof("enhanced_messenger") - 1
        && strncmp(arg, "enhanced_messenger", len) == 0)
    {
        if (!json_is_boolean(value)) {
            json_decref(value);
            msgrctl_error("enhanced_messenger: must be true or false");
            return -1;
        }

        *enhanced = json_is_true(value);
        json_decref(value);
        return 0;
    }

    dot = memchr(arg, '.', len);
    if (dot == NULL || dot == arg || (size_t) (dot - arg) >= sizeof(tab)) {
        json_decref(value);
        msgrctl_error("\"%s\": expected TAB.FIELD=VALUE, e.g. "
                      "mis.leavers_included=true", arg);
        return -1;
    }

    memcpy(tab, arg, dot - arg);
    tab[dot - arg] = '\0';

    obj = json_object_get(patch, tab);
    if (obj == NULL) {
        obj = json_object();
        if (obj == NULL || json_object_set_new(patch, tab, obj) != 0) {
            json_decref(value);
            return -1;
        }
    }

    if (json_object_setn_new(obj, dot + 1, eq - dot - 1, value) != 0) {
        return -1;
    }

    return 0;
}


static void
msgrctl_print_errors(json_t *errors)
{
    size_t   i;
    json_t  *e;

    json_array_foreach(errors, i, e) {
        msgrctl_error("%s: %s",
                      json_string_value(json_object_get(e, "field")),
                      json_string_value(json_object_get(e, "message")));
    }
}


/*
 * Reads the school's settings, locked until the end of the transaction,
 * and applies the patch to them: set->next, changes and resolved.
 */

static int
msgrctl_school_set_apply(msgrctl_ctx_t *ctx, msgrctl_set_t *set)
{
    int                    rc;
    json_t                *c;
    PGresult              *res;
    const char            *values[1];
    json_error_t           err;
    msgr_settings_caps_t   caps;

    values[0] = set->id;

    res = msgrctl_query(ctx, "cannot read the settings",
                        "SELECT s.doc::text, c.name, c.enhanced, s.version"
                        " FROM msgr_settings s JOIN msgr_schools c"
                        " USING (school_id) WHERE s.school_id = $1"
                        " FOR UPDATE",
                        1, values, PGRES_TUPLES_OK);
    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        msgrctl_error("school %s does not exist (see \"msgrctl school list\")",
                      set->id);
        return -1;
    }

    set->stored = json_loads(PQgetvalue(res, 0, 0), 0, &err);
    set->was = PQgetvalue(res, 0, 2)[0] == 't';
    set->version = strdup(PQgetvalue(res, 0, 3));

    if (set->enhanced == -1) {
        set->enhanced = set->was;
    }

    memset(&caps, 0, sizeof(caps));
    caps.operator = 1;
    caps.enhanced = set->enhanced ? 1 : 0;

    rc = msgr_settings_patch(set->stored, PQgetvalue(res, 0, 1), NULL,
                             set->patch, caps, &set->next, &set->changes,
                             &set->resolved, &set->errors);
    PQclear(res);

    if (rc != MSGR_SETTINGS_OK) {
        if (set->errors) {
            msgrctl_print_errors(set->errors);
        }

        return -1;
    }

    if (set->version == NULL) {
        return -1;
    }

    if (set->enhanced != set->was) {
        c = json_pack("{s:s, s:s, s:b, s:b}", "tab", "sending",
                      "field", "enhanced_messenger", "old", set->was,
                      "new", set->enhanced);
        if (c == NULL || json_array_append_new(set->changes, c) != 0) {
            return -1;
        }
    }

    return 0;
}


/*
 * Writes the settings as the API does (sql/0012_settings_write.sql), with
 * Enhanced Messenger and 'operator' in the audit trail; set->version
 * becomes the new version.
 */

static int
msgrctl_school_set_write(msgrctl_ctx_t *ctx, msgrctl_set_t *set)
{
    char        *doc, *ch;
    PGresult    *res;
    const char  *values[6];

    doc = json_dumps(set->next, JSON_COMPACT);
    ch = json_dumps(set->changes, JSON_COMPACT);

    values[0] = set->id;
    values[1] = set->version;
    values[2] = doc;
    values[3] = msgr_settings_string(set->resolved, "school", "name");
    values[4] = set->enhanced ? "true" : "false";
    values[5] = ch;

    res = (doc && ch && values[3])
          ? msgrctl_query(ctx, "cannot change the settings",
                          "SELECT v FROM msgr_settings_write($1, $2,"
                          " $3::jsonb, $4, $5, 'operator', $6::jsonb) AS v",
                          6, values, PGRES_TUPLES_OK)
          : NULL;

    free(doc);
    free(ch);

    if (res == NULL) {
        return -1;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        msgrctl_error("cannot change the settings: they changed meanwhile");
        return -1;
    }

    free(set->version);
    set->version = strdup(PQgetvalue(res, 0, 0));
    PQclear(res);

    return set->version != NULL ? 0 : -1;
}


static void
msgrctl_school_set_print(msgrctl_set_t *set)
{
    char    *o, *n;
    size_t   k;
    json_t  *c;

    json_array_foreach(set->changes, k, c) {
        o = json_dumps(json_object_get(c, "old"), JSON_ENCODE_ANY);
        n = json_dumps(json_object_get(c, "new"), JSON_ENCODE_ANY);

        printf("%s.%s: %s -> %s\n",
               json_string_value(json_object_get(c, "tab")),
               json_string_value(json_object_get(c, "field")),
               o ? o : "?", n ? n : "?");

        free(o);
        free(n);
    }

    printf("settings version %s\n", set->version);
}


static int
msgrctl_school_set(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int             i, rc;
    const char     *pos[MSGRCTL_SET_MAX];
    msgrctl_set_t   set;

    for (i = 0; i < MSGRCTL_SET_MAX; i++) {
        pos[i] = NULL;
    }

    rc = msgrctl_args(ctx, argc, argv, NULL, pos, 2, MSGRCTL_SET_MAX);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    memset(&set, 0, sizeof(msgrctl_set_t));
    set.enhanced = -1;

    if (msgrctl_parse_id(pos[0], set.id) != 0) {
        msgrctl_error("invalid school id \"%s\": expected a positive integer",
                      pos[0]);
        return MSGRCTL_ERROR;
    }

    set.patch = json_object();
    if (set.patch == NULL) {
        return MSGRCTL_ERROR;
    }

    rc = MSGRCTL_ERROR;

    for (i = 1; i < MSGRCTL_SET_MAX && pos[i]; i++) {
        if (msgrctl_school_set_parse(set.patch, pos[i], &set.enhanced) != 0) {
            goto done;
        }
    }

    if (msgrctl_connect(ctx) == NULL
        || msgrctl_command(ctx, "cannot begin", "BEGIN") != MSGRCTL_OK)
    {
        goto done;
    }

    if (msgrctl_school_set_apply(ctx, &set) != 0) {
        goto rollback;
    }

    if (json_array_size(set.changes) == 0) {
        printf("nothing to change\n");
        msgrctl_rollback(ctx);
        rc = msgrctl_flush();
        goto done;
    }

    if (msgrctl_school_set_write(ctx, &set) != 0) {
        goto rollback;
    }

    if (msgrctl_command(ctx, "cannot commit", "COMMIT") != MSGRCTL_OK) {
        goto done;
    }

    msgrctl_school_set_print(&set);

    rc = msgrctl_flush();
    goto done;

rollback:

    msgrctl_rollback(ctx);

done:

    json_decref(set.patch);
    json_decref(set.stored);
    json_decref(set.next);
    json_decref(set.changes);
    json_decref(set.resolved);
    json_decref(set.errors);
    free(set.version);

    return rc;
}


/* keys */

static int
msgrctl_key_school(msgrctl_ctx_t *ctx, const char *arg,
    char school[MSGRCTL_ID_BUF])
{
    if (arg == NULL) {
        return msgrctl_usage_error(ctx, "--school ID is required");
    }

    if (msgrctl_parse_id(arg, school) != 0) {
        msgrctl_error("invalid school id \"%s\": expected a positive integer",
                      arg);
        return MSGRCTL_ERROR;
    }

    return MSGRCTL_OK;
}


/*
 * Inserts the key's row inside a transaction, prints the key and commits
 * only once it is written out: a key nobody saw is never stored.
 */

static int
msgrctl_key_store(msgrctl_ctx_t *ctx, const char *school, const char *role,
    int *retry)
{
    int             rc;
    int             lengths[4] = { 0, 0, 0, MSGR_KEY_HASH_LEN };
    int             formats[4] = { 0, 0, 0, 1 };
    char            buf[MSGR_KEY_MAX_LEN + 1];
    PGresult       *res;
    msgr_key_t      key;
    const char     *values[4];
    unsigned char   hash[MSGR_KEY_HASH_LEN];

    *retry = 0;
    rc = MSGRCTL_ERROR;

    if (msgr_key_generate(strtoll(school, NULL, 10), buf, sizeof(buf), &key,
                          hash)
        != 0)
    {
        msgrctl_error("cannot generate a key for school %s", school);
        goto done;
    }

    if (msgrctl_command(ctx, "cannot start a transaction", "BEGIN")
        != MSGRCTL_OK)
    {
        goto done;
    }

    values[0] = school;
    values[1] = key.id;
    values[2] = role;
    values[3] = (const char *) hash;

    res = PQexecParams(ctx->conn,
                       "INSERT INTO msgr_api_keys"
                       " (school_id, key_id, role, secret_hash)"
                       " VALUES ($1, $2, $3, $4)",
                       4, NULL, values, lengths, formats, 0);

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {

        if (msgrctl_sqlstate_is(res, MSGRCTL_SQLSTATE_UNIQUE)) {
            *retry = 1;

        } else if (msgrctl_sqlstate_is(res, MSGRCTL_SQLSTATE_FK)) {
            msgrctl_error("school %s does not exist", school);

        } else {
            msgrctl_pg_error(ctx, "cannot store the key", res);
        }

        PQclear(res);
        msgrctl_rollback(ctx);
        goto done;
    }

    PQclear(res);

    printf("%s\n", buf);

    if (msgrctl_flush() != MSGRCTL_OK) {
        msgrctl_error("the key was not stored");
        msgrctl_rollback(ctx);
        goto done;
    }

    rc = msgrctl_command(ctx, "cannot store the key", "COMMIT");

    if (rc != MSGRCTL_OK) {
        msgrctl_error("the key printed above was NOT stored and will not "
                      "work");
    }

done:

    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(hash, sizeof(hash));

    return rc;
}


static int
msgrctl_key_create(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int             i, rc, retry;
    char            school[MSGRCTL_ID_BUF];
    const char     *school_arg, *role, *pos[2];
    msgrctl_opt_t   opts[] = {
        { "--school", &school_arg }, { "--role", &role }, { NULL, NULL }
    };

    school_arg = NULL;
    role = NULL;
    pos[0] = NULL;
    pos[1] = NULL;

    /* "--school ID --role ROLE", or just "ID ROLE" */

    rc = msgrctl_args(ctx, argc, argv, opts, pos, 0, 2);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (school_arg == NULL) {
        school_arg = pos[0];

    } else if (pos[0]) {
        return msgrctl_usage_error(ctx, "unexpected argument \"%s\"", pos[0]);
    }

    if (role == NULL) {
        role = pos[1];

    } else if (pos[1]) {
        return msgrctl_usage_error(ctx, "unexpected argument \"%s\"", pos[1]);
    }

    rc = msgrctl_key_school(ctx, school_arg, school);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (role == NULL) {
        return msgrctl_usage_error(ctx, "--role ROLE is required");
    }

    if (!msgrctl_role_valid(role)) {
        msgrctl_role_error(role);
        return MSGRCTL_ERROR;
    }

    if (msgr_key_init() != 0) {
        msgrctl_error("cannot initialise libsodium");
        return MSGRCTL_ERROR;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    if (msgrctl_school_exists(ctx, school) != 1) {
        return MSGRCTL_ERROR;
    }

    /* a key id is 64 random bits: a clash is rare, but harmless to retry */

    for (i = 0; i < MSGRCTL_KEY_ATTEMPTS; i++) {
        rc = msgrctl_key_store(ctx, school, role, &retry);

        if (!retry) {
            return rc;
        }
    }

    msgrctl_error("cannot store the key: %d key id clashes in a row",
                  MSGRCTL_KEY_ATTEMPTS);

    return MSGRCTL_ERROR;
}


static int
msgrctl_key_list(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int             rc;
    char            school[MSGRCTL_ID_BUF];
    const char     *school_arg, *pos[1], *values[1];
    msgrctl_opt_t   opts[] = { { "--school", &school_arg }, { NULL, NULL } };

    school_arg = NULL;
    pos[0] = NULL;

    rc = msgrctl_args(ctx, argc, argv, opts, pos, 0, 1);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (school_arg == NULL) {
        school_arg = pos[0];

    } else if (pos[0]) {
        return msgrctl_usage_error(ctx, "unexpected argument \"%s\"", pos[0]);
    }

    rc = msgrctl_key_school(ctx, school_arg, school);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    if (msgrctl_school_exists(ctx, school) != 1) {
        return MSGRCTL_ERROR;
    }

    values[0] = school;

    return msgrctl_list(ctx, "cannot list keys",
                        "SELECT key_id, role, created_at,"
                        " coalesce(revoked_at::text, 'active')"
                        " FROM msgr_api_keys WHERE school_id = $1"
                        " ORDER BY created_at, key_id",
                        1, values);
}


static int
msgrctl_key_id_valid(const char *id)
{
    size_t  i;

    for (i = 0; id[i]; i++) {
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'))
            || i == MSGR_KEY_ID_LEN)
        {
            return 0;
        }
    }

    return i == MSGR_KEY_ID_LEN;
}


static int
msgrctl_key_revoke(msgrctl_ctx_t *ctx, int argc, char **argv)
{
    int          rc;
    PGresult    *res;
    const char  *id[1];

    rc = msgrctl_args(ctx, argc, argv, NULL, id, 1, 1);
    if (rc != MSGRCTL_OK) {
        return rc;
    }

    if (!msgrctl_key_id_valid(id[0])) {
        msgrctl_error("invalid key id \"%s\": expected %d lowercase hex "
                      "digits (the part after msgr_<school>_ in the key)",
                      id[0], MSGR_KEY_ID_LEN);
        return MSGRCTL_ERROR;
    }

    if (msgrctl_connect(ctx) == NULL) {
        return MSGRCTL_ERROR;
    }

    res = msgrctl_query(ctx, "cannot revoke the key",
                        "UPDATE msgr_api_keys SET revoked_at = now()"
                        " WHERE key_id = $1 AND revoked_at IS NULL"
                        " RETURNING school_id",
                        1, id, PGRES_TUPLES_OK);
    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    if (PQntuples(res) == 1) {
        printf("revoked key %s of school %s\n", id[0], PQgetvalue(res, 0, 0));
        PQclear(res);
        return msgrctl_flush();
    }

    PQclear(res);

    res = msgrctl_query(ctx, "cannot look up the key",
                        "SELECT revoked_at FROM msgr_api_keys"
                        " WHERE key_id = $1",
                        1, id, PGRES_TUPLES_OK);
    if (res == NULL) {
        return MSGRCTL_ERROR;
    }

    if (PQntuples(res) == 1) {
        msgrctl_error("key %s was already revoked at %s", id[0],
                      PQgetvalue(res, 0, 0));

    } else {
        msgrctl_error("no key with id %s", id[0]);
    }

    PQclear(res);

    return MSGRCTL_ERROR;
}


/* main */

static const msgrctl_cmd_t *
msgrctl_find(int argc, char **argv, int *used)
{
    const msgrctl_cmd_t  *cmd;

    for (cmd = msgrctl_cmds; cmd->group; cmd++) {

        if (strcmp(cmd->group, argv[0]) != 0) {
            continue;
        }

        if (cmd->name == NULL) {
            *used = 1;
            return cmd;
        }

        if (argc > 1 && strcmp(cmd->name, argv[1]) == 0) {
            *used = 2;
            return cmd;
        }
    }

    return NULL;
}


static int
msgrctl_wants_help(int argc, char **argv)
{
    int  i;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            return 0;
        }

        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            return 1;
        }
    }

    return 0;
}


int
main(int argc, char **argv)
{
    int                   i, n, rc, used, group;
    char                **args;
    msgrctl_ctx_t         ctx;
    const msgrctl_cmd_t  *cmd;

    memset(&ctx, 0, sizeof(ctx));

    args = calloc(argc + 1, sizeof(char *));
    if (args == NULL) {
        msgrctl_error("out of memory");
        return MSGRCTL_ERROR;
    }

    /* --pg is global: take it out wherever it is, up to "--" */

    n = 0;

    for (i = 1; i < argc; i++) {

        if (strcmp(argv[i], "--") == 0) {
            while (i < argc) {
                args[n++] = argv[i++];
            }
            break;
        }

        if (strcmp(argv[i], "--pg") == 0) {
            if (i + 1 == argc) {
                free(args);
                return msgrctl_usage_error(&ctx, "option --pg needs a value");
            }

            ctx.conninfo = argv[++i];
            continue;
        }

        if (strncmp(argv[i], "--pg=", 5) == 0) {
            ctx.conninfo = argv[i] + 5;
            continue;
        }

        args[n++] = argv[i];
    }

    if (n == 0) {
        free(args);
        msgrctl_usage(stderr);
        return MSGRCTL_USAGE;
    }

    if (strcmp(args[0], "--help") == 0 || strcmp(args[0], "-h") == 0
        || strcmp(args[0], "help") == 0)
    {
        free(args);
        msgrctl_usage(stdout);
        return msgrctl_flush();
    }

    cmd = msgrctl_find(n, args, &used);

    if (cmd == NULL && n > 1 && msgrctl_wants_help(1, args + 1)) {

        /* "msgrctl school --help": the group's subcommands */

        if (msgrctl_group_usage(stdout, args[0])) {
            free(args);
            return msgrctl_flush();
        }
    }

    if (cmd == NULL) {
        group = msgrctl_group_usage(NULL, args[0]);

        if (group && n == 1) {
            msgrctl_error("\"%s\" needs a subcommand", args[0]);

        } else {
            msgrctl_error("unknown command \"%s%s%s\"", args[0],
                          n > 1 ? " " : "", n > 1 ? args[1] : "");
        }

        if (group) {
            msgrctl_group_usage(stderr, args[0]);

        } else {
            msgrctl_usage(stderr);
        }

        free(args);
        return MSGRCTL_USAGE;
    }

    ctx.cmd = cmd;

    if (msgrctl_wants_help(n - used, args + used)) {
        msgrctl_cmd_usage(stdout, cmd);
        rc = msgrctl_flush();

    } else {
        rc = cmd->handler(&ctx, n - used, args + used);
    }

    if (ctx.conn) {
        PQfinish(ctx.conn);
    }

    free(args);

    return rc;
}

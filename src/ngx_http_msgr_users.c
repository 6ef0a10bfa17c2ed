/*
 * msgr: the school's users, their passwords, sessions and sign-ins.
 *
 *   GET  /v1/users?before=&limit=, POST /v1/users          (admin)
 *   GET, PATCH, DELETE /v1/users/{id}    ETag, If-Match    (admin)
 *   POST /v1/users/{id}/password-reset   a one-time token  (admin)
 *   GET  /v1/users/{id}/sign-ins?before=&limit=            (admin)
 *   POST /v1/password-tokens/{token} {"password"}  an invitation or reset
 *   POST /v1/sessions {"school", "email", "password"}      signing in
 *   DELETE /v1/sessions/current                            signing out
 *   GET  /v1/me, PUT /v1/me/password {"current", "new"}    a signed-in user
 *
 * Argon2id (crypto_pwhash_str, interactive limits) runs in nginx's thread
 * pool.  A password is judged against the school's Security tab at the
 * moment of the change (src/msgr_password.c).  An unknown email is
 * answered as a wrong password, after verifying a dummy hash, and counts
 * towards the same lockout (sql/0014_users.sql).  docs/security.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_thread.h"
#include "ngx_http_msgr_settings.h"
#include "ngx_http_msgr_users.h"
#include "msgr_settings.h"
#include "msgr_password.h"
#include "msgr_text.h"


#define NGX_HTTP_MSGR_ME  (NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_STAFF \
                           |NGX_HTTP_MSGR_ROLE_EXPIRED)

/* a session's idle timeout, in seconds (sql/0014_users.sql's 30 minutes) */
#define NGX_HTTP_MSGR_SESSION_IDLE  1800


/* a password change: the token flow's, or a signed-in user's */
typedef struct {
    msgr_key_t                token;
    unsigned                  by_token:1;
    json_t                   *context;
    int64_t                   user_id;
    const char               *history;

    /* the thread's work: what it reads */
    char                     *password;
    size_t                    len;
    char                     *current;
    size_t                    current_len;
    const char               *current_hash;
    const char               *hashes[5];
    ngx_uint_t                nhashes;
    const char               *name;
    const char               *email;
    int                       strength;

    /* ... and what it answers */
    const char               *broken[8];
    ngx_uint_t                nbroken;
    int                       rc;
    unsigned                  current_wrong:1;
    unsigned                  reused:1;
    char                      hash[crypto_pwhash_STRBYTES];
} ngx_http_msgr_pw_t;


/* a sign-in; or a new password token, shown once (token) */
typedef struct {
    json_t                   *email;
    char                     *password;
    size_t                    len;
    int64_t                   user_id;
    char                     *hash;
    unsigned                  enabled:1;
    unsigned                  ok:1;
    char                      token[MSGR_KEY_MAX_LEN + 1];
    msgr_key_t                key;
    json_t                   *answer;
} ngx_http_msgr_sign_in_t;


static void ngx_http_msgr_users(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_user_created(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_user(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_user_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_user_changed(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_user_reset(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_user_reset_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_user_sign_ins(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_check_user(json_t *body, json_t *errors,
    ngx_uint_t required);

static void ngx_http_msgr_token_password(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_me_password(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_pw_context(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_pw_t *pw);
static void ngx_http_msgr_pw_context_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pw_settings(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_pw_work(void *data);
static void ngx_http_msgr_pw_broken(void *data, const char *message);
static void ngx_http_msgr_pw_judged(ngx_http_request_t *r, void *data);
static void ngx_http_msgr_pw_set_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_token_unusable(ngx_http_request_t *r);

static void ngx_http_msgr_sign_in(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_sign_in_found(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_sign_in_work(void *data);
static void ngx_http_msgr_sign_in_checked(ngx_http_request_t *r,
    void *data);
static void ngx_http_msgr_sign_in_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_sign_in_answer(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_sign_out(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_me(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static ngx_uint_t ngx_http_msgr_no_session(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static char *ngx_http_msgr_copy(ngx_http_request_t *r, json_t *s,
    size_t *len);
static void ngx_http_msgr_email_taken(ngx_http_request_t *r);
static ngx_http_msgr_sign_in_t *ngx_http_msgr_new_token(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, msgr_key_t *key, char *hex);
static json_t *ngx_http_msgr_status_json(ngx_http_request_t *r,
    ngx_http_msgr_pg_query_t *q, const char **status);
static ngx_int_t ngx_http_msgr_send_etag(ngx_http_request_t *r,
    json_t *answer, ngx_uint_t status, json_t *body);


const ngx_http_msgr_route_t  ngx_http_msgr_users_routes[] = {

    { NGX_HTTP_MSGR_READ|NGX_HTTP_POST, "v1/users",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_users },

    { NGX_HTTP_MSGR_READ|NGX_HTTP_PATCH|NGX_HTTP_DELETE, "v1/users/{}",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_user },

    { NGX_HTTP_POST, "v1/users/{}/password-reset",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_user_reset },

    { NGX_HTTP_MSGR_READ, "v1/users/{}/sign-ins",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_user_sign_ins },

    { NGX_HTTP_POST, "v1/password-tokens/{}", 0,
      ngx_http_msgr_token_password },

    { NGX_HTTP_POST, "v1/sessions", 0,
      ngx_http_msgr_sign_in },

    { NGX_HTTP_DELETE, "v1/sessions/current", NGX_HTTP_MSGR_ME,
      ngx_http_msgr_sign_out },

    { NGX_HTTP_MSGR_READ, "v1/me", NGX_HTTP_MSGR_ME,
      ngx_http_msgr_me },

    { NGX_HTTP_PUT, "v1/me/password", NGX_HTTP_MSGR_ME,
      ngx_http_msgr_me_password },

    { 0, NULL, 0, NULL }
};


/*
 * An Argon2id hash of a random password nobody knows, made with the same
 * limits: verified for an unknown email, so that it takes as long as a
 * wrong password.
 */
static const char  ngx_http_msgr_dummy_hash[] =
    "$argon2id$v=19$m=65536,t=2,p=1$mILBmNnhab2z1ZqBPr3qJA"
    "$doCV99sXkWFVXrmRjJKib0A4TAioPeJm8ztv1JvTS6c";


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_users = {
    "msgr_users",
    "SELECT coalesce(jsonb_agg(msgr_user_json(u) ORDER BY u.user_id DESC),"
    " '[]')::text"
    " FROM (SELECT * FROM msgr_users WHERE school_id = $1"
    "         AND ($2::bigint IS NULL OR user_id < $2)"
    "       ORDER BY user_id DESC LIMIT $3) u",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* one row: 1, the user, the ETag */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_user = {
    "msgr_user",
    "SELECT 1, msgr_user_json(u)::text, '\"' || u.xmin || '\"'"
    " FROM msgr_users u WHERE u.school_id = $1 AND u.user_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $5 the invitation's id, $6 its secret's hash in hex */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_user_create = {
    "msgr_user_create",
    "SELECT msgr_user_create($1, $2, $3, $4, $5, decode($6, 'hex'))::text",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* $3 the patch, $4 If-Match, $5 whether to delete */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_user_change = {
    "msgr_user_change",
    "SELECT msgr_user_change($1, $2, $3::jsonb, $4, $5::boolean)::text",
    5, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_user_reset = {
    "msgr_user_reset",
    "SELECT msgr_user_reset($1, $2, $3, decode($4, 'hex'))",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* NULL (404) when the user is not the school's */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_sign_ins = {
    "msgr_sign_ins",
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM msgr_users"
    "                          WHERE school_id = $1 AND user_id = $2)"
    " THEN (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "         'id', s.sign_in_id, 'at', msgr_utc(s.at),"
    "         'outcome', s.outcome) ORDER BY s.sign_in_id DESC), '[]')"
    "         FROM (SELECT * FROM msgr_sign_ins"
    "                WHERE school_id = $1 AND user_id = $2"
    "                  AND ($3::bigint IS NULL OR sign_in_id < $3)"
    "                ORDER BY sign_in_id DESC LIMIT $4) s)::text END",
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $2 the user or $3 the token */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pw_context = {
    "msgr_password_context",
    "SELECT msgr_password_context($1, $2, $3)::text",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $3 the new hash, $4 the current one, $5 the token, $6 its hash (hex) */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pw_set = {
    "msgr_password_set",
    "SELECT msgr_password_set($1, $2, $3, $4, $5, decode($6, 'hex'))::text",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_sign_in_user = {
    "msgr_sign_in_user",
    "SELECT user_id, password_hash, disabled_at IS NULL FROM msgr_users"
    " WHERE school_id = $1 AND lower(email) = lower($2)",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $3 the user (NULL: unknown), $4 the password is theirs, $5, $6 session */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_sign_in = {
    "msgr_sign_in",
    "SELECT msgr_sign_in($1, $2, $3, $4, $5, decode($6, 'hex'))::text",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_sign_out = {
    "msgr_sign_out",
    "UPDATE msgr_sessions SET ended_at = now()"
    " WHERE school_id = $1 AND session_id = $2 AND ended_at IS NULL"
    " RETURNING 1",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_users_stmts[] = {
    &ngx_http_msgr_stmt_users,
    &ngx_http_msgr_stmt_user,
    &ngx_http_msgr_stmt_user_create,
    &ngx_http_msgr_stmt_user_change,
    &ngx_http_msgr_stmt_user_reset,
    &ngx_http_msgr_stmt_sign_ins,
    &ngx_http_msgr_stmt_pw_context,
    &ngx_http_msgr_stmt_pw_set,
    &ngx_http_msgr_stmt_sign_in_user,
    &ngx_http_msgr_stmt_sign_in,
    &ngx_http_msgr_stmt_sign_out,
    NULL
};


/* GET /v1/users: a page, newest first; POST /v1/users: a new user */

static void
ngx_http_msgr_users(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    char                       hex[2 * MSGR_KEY_HASH_LEN + 1];
    json_t                    *body, *errors, *role;
    msgr_key_t                 key;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "email", "name", "role", NULL };

    if (r->method != NGX_HTTP_POST) {
        ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_users, 0,
                                 ngx_http_msgr_page_done);
        return;
    }

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    ngx_http_msgr_check_user(body, errors, 1);

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    /* the invitation: the token is shown once, in the answer */

    if (ngx_http_msgr_new_token(r, ctx, &key, hex) == NULL) {
        return;
    }

    role = json_object_get(body, "role");

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_user_create,
                            ngx_http_msgr_user_created);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1,
                     (u_char *) json_string_value(json_object_get(body,
                                                                  "email")),
                     json_string_length(json_object_get(body, "email")))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 2,
                     (u_char *) json_string_value(json_object_get(body,
                                                                  "name")),
                     json_string_length(json_object_get(body, "name")))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 3,
                     (u_char *) json_string_value(role),
                     json_string_length(role)) != NGX_OK
              || ngx_http_msgr_pg_param(q, 4, (u_char *) key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK
              || ngx_http_msgr_pg_param(q, 5, (u_char *) hex,
                                        2 * MSGR_KEY_HASH_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* email, name and role: all required in a POST, any of them in a PATCH */

static void
ngx_http_msgr_check_user(json_t *body, json_t *errors, ngx_uint_t required)
{
    json_t      *v;
    const char  *s;

    v = json_object_get(body, "email");

    if (v || required) {
        if (v == NULL || json_is_null(v)) {
            ngx_http_msgr_field_error(errors, "email", "is required");

        } else if (ngx_http_msgr_text_field(v, "email", 254,
                                            MSGR_TEXT_REQUIRED, errors)
                   == NGX_OK
                   && !msgr_email_valid(json_string_value(v),
                                        json_string_length(v)))
        {
            ngx_http_msgr_field_error(errors, "email",
                                      "must be an email address");
        }
    }

    v = json_object_get(body, "name");

    if (v || required) {
        if (v == NULL || json_is_null(v)) {
            ngx_http_msgr_field_error(errors, "name", "is required");

        } else {
            (void) ngx_http_msgr_text_field(v, "name", 200,
                                            MSGR_TEXT_REQUIRED, errors);
        }
    }

    v = json_object_get(body, "role");
    s = json_string_value(v);

    if ((v || required)
        && (s == NULL || (ngx_strcmp(s, "admin") != 0
                          && ngx_strcmp(s, "staff") != 0)))
    {
        ngx_http_msgr_field_error(errors, "role",
                                  "must be \"admin\" or \"staff\"");
    }

    v = json_object_get(body, "disabled");

    if (v && !json_is_boolean(v)) {
        ngx_http_msgr_field_error(errors, "disabled",
                                  "must be true or false");
    }
}


static void
ngx_http_msgr_user_created(ngx_http_msgr_pg_query_t *q)
{
    json_t                   *answer, *user;
    const char               *status;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_sign_in_t  *st;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    st = ctx->data;

    answer = ngx_http_msgr_status_json(r, q, &status);
    if (answer == NULL) {
        return;
    }

    if (ngx_strcmp(status, "taken") == 0) {
        ngx_http_msgr_email_taken(r);
        return;
    }

    user = json_deep_copy(json_object_get(answer, "user"));

    if (user == NULL
        || json_object_set_new(user, "invitation_token",
                               json_string(st->token)) != 0
        || json_object_set(user, "invitation_expires_at",
                           json_object_get(answer, "invitation_expires_at"))
           != 0)
    {
        json_decref(user);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sodium_memzero(st->token, sizeof(st->token));

    (void) ngx_http_msgr_send_etag(r, answer, NGX_HTTP_CREATED, user);
}


/* GET, PATCH (a merge patch), DELETE /v1/users/{id} */

static void
ngx_http_msgr_user(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    id;
    json_t                    *body, *errors;
    ngx_table_elt_t           *im;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = {
        "email", "name", "role", "disabled", NULL
    };

    id = ngx_http_msgr_id(&ctx->args[0]);
    ctx->not_found = "no such user";

    if (id == 0) {
        ngx_http_discard_request_body(r);
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    if (r->method & NGX_HTTP_MSGR_READ) {
        ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_user,
                                      ngx_http_msgr_user_done);
        return;
    }

    body = NULL;

    if (r->method == NGX_HTTP_PATCH) {
        body = ngx_http_msgr_read_fields_as(r, 1, allowed, &errors);
        if (body == NULL) {
            return;
        }

        ngx_http_msgr_check_user(body, errors, 0);

        if (json_array_size(errors) == 0 && json_object_size(body) == 0) {
            ngx_http_msgr_field_error(errors, "email",
                                      "give email, name, role or disabled");
        }

        if (json_array_size(errors)) {
            ngx_http_msgr_invalid(r, errors);
            return;
        }

    } else {
        ngx_http_discard_request_body(r);
    }

    im = r->headers_in.if_match;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_user_change,
                            ngx_http_msgr_user_changed);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK
              || (body ? ngx_http_msgr_param_json(q, 2, body)
                       : ngx_http_msgr_pg_param(q, 2, (u_char *) "{}", 2))
                 != NGX_OK
              || (im && ngx_http_msgr_pg_param(q, 3, im->value.data,
                                               im->value.len) != NGX_OK)
              || ngx_http_msgr_pg_param(q, 4,
                     (u_char *) (body ? "f" : "t"), 1) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* one row: 1, the user, the ETag */

static void
ngx_http_msgr_user_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *user;
    ngx_str_t            etag;
    json_error_t         err;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    user = json_loads(PQgetvalue(q->result, 0, 1), 0, &err);

    etag.len = PQgetlength(q->result, 0, 2);
    etag.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                etag.len,
                                (u_char *) PQgetvalue(q->result, 0, 2) });

    if (user == NULL || etag.data == NULL
        || ngx_http_msgr_etag(r, &etag) != NGX_OK)
    {
        json_decref(user);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK, user);
}


static void
ngx_http_msgr_user_changed(ngx_http_msgr_pg_query_t *q)
{
    json_t              *answer;
    const char          *status;
    ngx_http_request_t  *r;

    r = q->data;

    answer = ngx_http_msgr_status_json(r, q, &status);
    if (answer == NULL) {
        return;
    }

    if (ngx_strcmp(status, "deleted") == 0) {
        ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT,
                               &ngx_http_msgr_json_type, NULL, 0);
        return;
    }

    if (ngx_strcmp(status, "not_found") == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    if (ngx_strcmp(status, "precondition") == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                              "the user has changed since the version "
                              "named in If-Match; read it again", NULL);
        return;
    }

    if (ngx_strcmp(status, "last_admin") == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, "last-admin",
                              "this is the school's last enabled admin: "
                              "make another user an admin first", NULL);
        return;
    }

    if (ngx_strcmp(status, "taken") == 0) {
        ngx_http_msgr_email_taken(r);
        return;
    }

    /* If-Match has been judged against the row itself */
    r->disable_not_modified = 1;

    (void) ngx_http_msgr_send_etag(r, answer, NGX_HTTP_OK,
                     json_incref(json_object_get(answer, "user")));
}


/* POST /v1/users/{id}/password-reset: a token for an hour, shown once */

static void
ngx_http_msgr_user_reset(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    char                       hex[2 * MSGR_KEY_HASH_LEN + 1];
    int64_t                    id;
    msgr_key_t                 key;
    ngx_http_msgr_pg_query_t  *q;

    ngx_http_discard_request_body(r);

    id = ngx_http_msgr_id(&ctx->args[0]);

    if (ngx_http_msgr_new_token(r, ctx, &key, hex) == NULL) {
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_user_reset,
                            ngx_http_msgr_user_reset_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, (u_char *) hex,
                                        2 * MSGR_KEY_HASH_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_user_reset_done(ngx_http_msgr_pg_query_t *q)
{
    json_t                   *answer;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_sign_in_t  *st;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    st = ctx->data;
    ctx->not_found = "no such user";

    answer = ngx_http_msgr_result_json(r, q);
    if (answer == NULL) {
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_CREATED,
        json_pack("{s:s, s:O}", "reset_token", st->token,
                  "expires_at", json_object_get(answer, "expires_at")));

    sodium_memzero(st->token, sizeof(st->token));
}


/* GET /v1/users/{id}/sign-ins: newest first */

static void
ngx_http_msgr_user_sign_ins(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t  id;

    id = ngx_http_msgr_id(&ctx->args[0]);
    ctx->not_found = "no such user";

    if (id == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_sign_ins, id,
                             ngx_http_msgr_page_done);
}


/*
 * POST /v1/password-tokens/{token} {"password"}: an invitation's or a
 * reset's token sets the password, once, within its lifetime.  Every
 * token that cannot be used gets the same 404.
 */

static void
ngx_http_msgr_token_password(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t              *body, *errors, *v;
    ngx_http_msgr_pw_t  *pw;

    static const char *const  allowed[] = { "password", NULL };

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    v = json_object_get(body, "password");

    if (!json_is_string(v)) {
        ngx_http_msgr_field_error(errors, "password", "must be a string");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    pw = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_pw_t));
    if (pw == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (msgr_pwtoken_parse((const char *) ctx->args[0].data,
                           ctx->args[0].len, &pw->token) != 0)
    {
        ngx_http_msgr_token_unusable(r);
        return;
    }

    pw->by_token = 1;
    ctx->school_id = pw->token.school_id;

    pw->password = ngx_http_msgr_copy(r, v, &pw->len);
    if (pw->password == NULL) {
        return;
    }

    ngx_http_msgr_pw_context(r, ctx, pw);
}


static void
ngx_http_msgr_token_unusable(ngx_http_request_t *r)
{
    ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, "token-unusable",
                          "the token is unknown, used or expired: ask an "
                          "admin for a new one", NULL);
}


/* PUT /v1/me/password {"current", "new"} */

static void
ngx_http_msgr_me_password(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t              *body, *errors, *cur, *new;
    ngx_http_msgr_pw_t  *pw;

    static const char *const  allowed[] = { "current", "new", NULL };

    if (ngx_http_msgr_no_session(r, ctx)) {
        return;
    }

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    cur = json_object_get(body, "current");
    new = json_object_get(body, "new");

    if (!json_is_string(cur)) {
        ngx_http_msgr_field_error(errors, "current", "must be a string");
    }

    if (!json_is_string(new)) {
        ngx_http_msgr_field_error(errors, "new", "must be a string");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    pw = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_pw_t));
    if (pw == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    pw->user_id = ctx->user_id;

    pw->password = ngx_http_msgr_copy(r, new, &pw->len);
    if (pw->password == NULL) {
        return;
    }

    pw->current = ngx_http_msgr_copy(r, cur, &pw->current_len);
    if (pw->current == NULL) {
        return;
    }

    ngx_http_msgr_pw_context(r, ctx, pw);
}


/* what the change is judged against: by the user, or by the token */

static void
ngx_http_msgr_pw_context(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_http_msgr_pw_t *pw)
{
    ngx_http_msgr_pg_query_t  *q;

    ctx->data = pw;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pw_context,
                            ngx_http_msgr_pw_context_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || (!pw->by_token
                  && ngx_http_msgr_pg_param_int(q, 1, pw->user_id) != NGX_OK)
              || (pw->by_token
                  && ngx_http_msgr_pg_param(q, 2, (u_char *) pw->token.id,
                                            MSGR_KEY_ID_LEN) != NGX_OK)))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_pw_context_done(ngx_http_msgr_pg_query_t *q)
{
    size_t               hlen;
    json_t              *c;
    const char          *hex;
    unsigned char        hash[MSGR_KEY_HASH_LEN];
    ngx_http_request_t  *r;
    ngx_http_msgr_pw_t  *pw;
    ngx_http_msgr_ctx_t *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    pw = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1 || PQgetisnull(q->result, 0, 0)) {
        if (pw->by_token) {
            ngx_http_msgr_token_unusable(r);
            return;
        }

        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    c = ngx_http_msgr_result_json(r, q);
    if (c == NULL) {
        return;
    }

    pw->context = c;

    if (pw->by_token) {
        hex = json_string_value(json_object_get(c, "token_hash"));

        if (!json_is_true(json_object_get(c, "token_usable"))
            || hex == NULL
            || sodium_hex2bin(hash, sizeof(hash), hex, ngx_strlen(hex),
                              NULL, &hlen, NULL) != 0
            || !msgr_key_verify(&pw->token, hash, hlen))
        {
            ngx_http_msgr_token_unusable(r);
            return;
        }

        pw->user_id = json_integer_value(json_object_get(c, "user_id"));
    }

    pw->name = json_string_value(json_object_get(c, "name"));
    pw->email = json_string_value(json_object_get(c, "email"));
    pw->current_hash = json_string_value(json_object_get(c, "current"));

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_pw_settings);
}


/* the school's policy now: then the work, off the event loop */

static void
ngx_http_msgr_pw_settings(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    size_t               i, depth;
    json_t              *hashes;
    ngx_http_msgr_pw_t  *pw;

    pw = ctx->data;

    pw->strength = msgr_password_strength(
                     msgr_settings_string(settings, "security",
                                          "password_strength"));
    if (pw->strength < 0) {
        pw->strength = MSGR_PASSWORD_ANY;
    }

    pw->history = msgr_settings_string(settings, "security",
                                       "password_history");
    depth = msgr_password_history_depth(pw->history);

    hashes = json_object_get(pw->context, "hashes");

    for (i = 0; i < json_array_size(hashes) && i < depth && i < 5; i++) {
        pw->hashes[pw->nhashes++] = json_string_value(json_array_get(hashes,
                                                                     i));
    }

    ngx_http_msgr_offload_only(r, ctx, pw, ngx_http_msgr_pw_work,
                               ngx_http_msgr_pw_judged);
}


/*
 * In a thread: the current password, the policy, the passwords it must
 * differ from, and the new hash.
 */

static void
ngx_http_msgr_pw_work(void *data)
{
    ngx_http_msgr_pw_t *pw = data;

    int         n;
    ngx_uint_t  i;

    if (pw->current) {
        if (pw->current_hash == NULL
            || crypto_pwhash_str_verify(pw->current_hash, pw->current,
                                        pw->current_len) != 0)
        {
            pw->current_wrong = 1;
            return;
        }
    }

    n = msgr_password_check(pw->password, pw->len, pw->strength, pw->name,
                            pw->email, ngx_http_msgr_pw_broken, pw);
    if (n != 0) {
        pw->rc = (n < 0) ? -1 : 0;
        return;
    }

    for (i = 0; i < pw->nhashes; i++) {
        if (pw->hashes[i]
            && crypto_pwhash_str_verify(pw->hashes[i], pw->password,
                                        pw->len) == 0)
        {
            pw->reused = 1;
            return;
        }
    }

    pw->rc = crypto_pwhash_str_alg(pw->hash, pw->password, pw->len,
                                   crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                   crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                   crypto_pwhash_ALG_ARGON2ID13);
}


static void
ngx_http_msgr_pw_broken(void *data, const char *message)
{
    ngx_http_msgr_pw_t *pw = data;

    if (pw->nbroken < sizeof(pw->broken) / sizeof(pw->broken[0])) {
        pw->broken[pw->nbroken++] = message;
    }
}


static void
ngx_http_msgr_pw_judged(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_pw_t *pw = data;

    u_char                     detail[128];
    json_t                    *errors;
    ngx_uint_t                 i;
    const char                *field;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    field = pw->by_token ? "password" : "new";

    sodium_memzero(pw->password, pw->len);

    if (pw->current) {
        sodium_memzero(pw->current, pw->current_len);
    }

    if (pw->current_wrong) {
        ngx_http_msgr_problem(r, 422, "invalid",
                              "the current password is not right",
                              json_pack("[{s:s, s:s}]", "field", "current",
                                        "message",
                                        "is not the current password"));
        return;
    }

    if (pw->nbroken) {
        errors = json_array();

        for (i = 0; i < pw->nbroken; i++) {
            ngx_http_msgr_field_error(errors, field, pw->broken[i]);
        }

        ngx_snprintf(detail, sizeof(detail) - 1,
                     "the password breaks the school's password policy "
                     "(password_strength \"%s\")%Z",
                     pw->strength == MSGR_PASSWORD_VERY_STRONG
                     ? "very_strong"
                     : pw->strength == MSGR_PASSWORD_STRONG ? "strong"
                     : pw->strength == MSGR_PASSWORD_MEDIUM ? "medium"
                     : "any");

        ngx_http_msgr_problem(r, 422, "password-policy", (char *) detail,
                              errors);
        return;
    }

    if (pw->reused) {
        ngx_http_msgr_problem(r, 422, "password-policy",
                              "the password was used before",
                              json_pack("[{s:s, s:s}]", "field", field,
                                        "message",
                                        msgr_password_history_depth(
                                            pw->history) > 1
                                        ? "must differ from each of the "
                                          "last 5 passwords "
                                          "(password_history last_5)"
                                        : "must differ from the current "
                                          "password "
                                          "(password_history previous)"));
        return;
    }

    if (pw->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: a password could not be judged or hashed "
                      "(out of memory)");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pw_set,
                            ngx_http_msgr_pw_set_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, pw->user_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) pw->hash,
                                        ngx_strlen(pw->hash)) != NGX_OK
              || (pw->current_hash
                  && ngx_http_msgr_pg_param(q, 3,
                         (u_char *) pw->current_hash,
                         ngx_strlen(pw->current_hash)) != NGX_OK)
              || (pw->by_token
                  && (ngx_http_msgr_pg_param(q, 4, (u_char *) pw->token.id,
                                             MSGR_KEY_ID_LEN) != NGX_OK
                      || ngx_http_msgr_pg_param(q, 5,
                             (u_char *) json_string_value(
                                 json_object_get(pw->context, "token_hash")),
                             2 * MSGR_KEY_HASH_LEN) != NGX_OK))))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_pw_set_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *answer;
    const char          *status;
    ngx_http_request_t  *r;

    r = q->data;

    answer = ngx_http_msgr_status_json(r, q, &status);
    if (answer == NULL) {
        return;
    }

    if (ngx_strcmp(status, "token_unusable") == 0) {
        ngx_http_msgr_token_unusable(r);
        return;
    }

    if (ngx_strcmp(status, "changed") == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, "conflict",
                              "the password was changed meanwhile", NULL);
        return;
    }

    if (ngx_strcmp(status, "ok") != 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such user",
                              NULL);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
        json_pack("{s:O}", "password_changed_at",
                  json_object_get(answer, "password_changed_at")));
}


/*
 * POST /v1/sessions {"school", "email", "password"}: a wrong email and a
 * wrong password get the same answer, after the same Argon2id work.
 */

static void
ngx_http_msgr_sign_in(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                    *body, *errors, *school, *email, *pw;
    ngx_http_msgr_sign_in_t   *st;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = {
        "school", "email", "password", NULL
    };

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    school = json_object_get(body, "school");
    email = json_object_get(body, "email");
    pw = json_object_get(body, "password");

    if (!json_is_integer(school) || json_integer_value(school) <= 0) {
        ngx_http_msgr_field_error(errors, "school",
                                  "must be the school's id, a positive "
                                  "integer");
    }

    if (!json_is_string(email) || json_string_length(email) == 0
        || json_string_length(email) > 1024)
    {
        ngx_http_msgr_field_error(errors, "email",
                                  "must be an email address");
    }

    if (!json_is_string(pw)) {
        ngx_http_msgr_field_error(errors, "password", "must be a string");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_sign_in_t));
    if (st == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = st;
    ctx->school_id = json_integer_value(school);
    st->email = email;

    st->password = ngx_http_msgr_copy(r, pw, &st->len);
    if (st->password == NULL) {
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_sign_in_user,
                            ngx_http_msgr_sign_in_found);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1,
                                        (u_char *) json_string_value(email),
                                        json_string_length(email))
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_sign_in_found(ngx_http_msgr_pg_query_t *q)
{
    ngx_str_t                 hash;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_sign_in_t  *st;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    st = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 1) {
        st->user_id = strtoll(PQgetvalue(q->result, 0, 0), NULL, 10);
        st->enabled = PQgetvalue(q->result, 0, 2)[0] == 't';

        if (!PQgetisnull(q->result, 0, 1)) {
            hash.len = PQgetlength(q->result, 0, 1);
            hash.data = (u_char *) PQgetvalue(q->result, 0, 1);

            st->hash = (char *) ngx_pnalloc(r->pool, hash.len + 1);
            if (st->hash == NULL) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }

            *ngx_cpymem(st->hash, hash.data, hash.len) = '\0';
        }
    }

    ngx_http_msgr_offload_only(r, ctx, st, ngx_http_msgr_sign_in_work,
                               ngx_http_msgr_sign_in_checked);
}


/* in a thread: the user's hash, or the dummy one when there is none */

static void
ngx_http_msgr_sign_in_work(void *data)
{
    ngx_http_msgr_sign_in_t *st = data;

    int  ok;

    ok = crypto_pwhash_str_verify(st->hash ? st->hash
                                           : ngx_http_msgr_dummy_hash,
                                  st->password, st->len) == 0;

    st->ok = ok && st->hash != NULL && st->enabled;

    sodium_memzero(st->password, st->len);
}


static void
ngx_http_msgr_sign_in_checked(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_sign_in_t *st = data;

    char                       hex[2 * MSGR_KEY_HASH_LEN + 1];
    unsigned char              hash[MSGR_KEY_HASH_LEN];
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (msgr_session_generate(ctx->school_id, st->token, sizeof(st->token),
                              &st->key, hash) != 0)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_sign_in,
                            ngx_http_msgr_sign_in_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1,
                     (u_char *) json_string_value(st->email),
                     json_string_length(st->email)) != NGX_OK
              || (st->user_id
                  && ngx_http_msgr_pg_param_int(q, 2, st->user_id) != NGX_OK)
              || ngx_http_msgr_pg_param(q, 3, (u_char *) (st->ok ? "t" : "f"),
                                        1) != NGX_OK
              || ngx_http_msgr_pg_param(q, 4, (u_char *) st->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK
              || ngx_http_msgr_pg_param(q, 5, (u_char *) hex,
                                        2 * MSGR_KEY_HASH_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_sign_in_done(ngx_http_msgr_pg_query_t *q)
{
    u_char                    buf[NGX_INT_T_LEN];
    json_t                   *answer;
    ngx_str_t                 value;
    ngx_int_t                 retry;
    const char               *status;
    ngx_http_request_t       *r;
    ngx_http_msgr_ctx_t      *ctx;
    ngx_http_msgr_sign_in_t  *st;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    st = ctx->data;

    answer = ngx_http_msgr_status_json(r, q, &status);
    if (answer == NULL) {
        return;
    }

    if (ngx_strcmp(status, "locked") == 0) {
        retry = json_integer_value(json_object_get(answer, "retry_after"));

        value.data = buf;
        value.len = ngx_sprintf(buf, "%i", retry < 1 ? 1 : retry) - buf;

        if (ngx_http_msgr_header(r, "Retry-After", &value) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_msgr_problem(r, NGX_HTTP_TOO_MANY_REQUESTS,
                              "account-locked",
                              "too many failed sign-ins: signing in with "
                              "this email is locked for 15 minutes", NULL);
        return;
    }

    if (ngx_strcmp(status, "ok") != 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_UNAUTHORIZED, "sign-in-failed",
                              "the email address or the password is not "
                              "right", NULL);
        return;
    }

    st->answer = answer;

    if (!json_is_true(json_object_get(answer, "password_old"))) {
        ngx_http_msgr_sign_in_answer(r, ctx, NULL);
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_sign_in_answer);
}


/* 201: the session's token, shown once */

static void
ngx_http_msgr_sign_in_answer(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_sign_in_t  *st;

    st = ctx->data;

    ngx_http_msgr_send_json(r, NGX_HTTP_CREATED,
        json_pack("{s:s, s:O, s:i, s:O, s:b}",
                  "token", st->token,
                  "expires_at", json_object_get(st->answer, "expires_at"),
                  "idle_timeout", NGX_HTTP_MSGR_SESSION_IDLE,
                  "user", json_object_get(st->answer, "user"),
                  "password_expired",
                  settings != NULL
                  && msgr_settings_bool(settings, "security",
                                        "enforce_password_change")));

    sodium_memzero(st->token, sizeof(st->token));
}


/* DELETE /v1/sessions/current */

static void
ngx_http_msgr_sign_out(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_http_msgr_no_session(r, ctx)) {
        return;
    }

    ctx->not_found = "the session has ended";

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_sign_out,
                            ngx_http_msgr_no_content_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* GET /v1/me: the signed-in user */

static void
ngx_http_msgr_me(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_http_msgr_no_session(r, ctx)) {
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_user,
                            ngx_http_msgr_user_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, ctx->user_id) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* the routes of a signed-in user refuse API keys */

static ngx_uint_t
ngx_http_msgr_no_session(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    if (ctx->session) {
        return 0;
    }

    ngx_http_discard_request_body(r);
    ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, NULL,
                          "this is a signed-in user's route: it takes a "
                          "session token (POST /v1/sessions), not an API "
                          "key", NULL);
    return 1;
}


/* a JSON string's bytes, copied into the request's pool and NUL-ended */

static char *
ngx_http_msgr_copy(ngx_http_request_t *r, json_t *s, size_t *len)
{
    char  *p;

    *len = json_string_length(s);

    p = ngx_pnalloc(r->pool, *len + 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ngx_memcpy(p, json_string_value(s), *len);
    p[*len] = '\0';

    return p;
}


static void
ngx_http_msgr_email_taken(ngx_http_request_t *r)
{
    ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, "conflict",
                          "the school has a user with that email already "
                          "(emails are compared without case)",
                          json_pack("[{s:s, s:s}]", "field", "email",
                                    "message", "is taken"));
}


/*
 * A new password token (an invitation or a reset) in the state ctx->data
 * of the request, its id in key and its secret's hash in hex (65 bytes);
 * NULL when the request is answered (out of memory).
 */

static ngx_http_msgr_sign_in_t *
ngx_http_msgr_new_token(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    msgr_key_t *key, char *hex)
{
    unsigned char             hash[MSGR_KEY_HASH_LEN];
    ngx_http_msgr_sign_in_t  *st;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_sign_in_t));

    if (st == NULL
        || msgr_pwtoken_generate(ctx->school_id, st->token,
                                 sizeof(st->token), key, hash) != 0)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    ctx->data = st;
    sodium_bin2hex(hex, 2 * MSGR_KEY_HASH_LEN + 1, hash, sizeof(hash));

    return st;
}


/* a function's {"status": ...} answer; NULL when already answered */

static json_t *
ngx_http_msgr_status_json(ngx_http_request_t *r, ngx_http_msgr_pg_query_t *q,
    const char **status)
{
    json_t  *answer;

    answer = ngx_http_msgr_result_json(r, q);
    if (answer == NULL) {
        return NULL;
    }

    *status = json_string_value(json_object_get(answer, "status"));

    if (*status == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    return answer;
}


/* a user with the ETag of the function's answer; takes body's reference */

static ngx_int_t
ngx_http_msgr_send_etag(ngx_http_request_t *r, json_t *answer,
    ngx_uint_t status, json_t *body)
{
    ngx_str_t    etag;
    const char  *e;

    e = json_string_value(json_object_get(answer, "etag"));

    etag.data = (u_char *) e;
    etag.len = e ? ngx_strlen(e) : 0;

    if (body == NULL || e == NULL || ngx_http_msgr_etag(r, &etag) != NGX_OK) {
        json_decref(body);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    ngx_http_msgr_send_json(r, status, body);

    return NGX_OK;
}

/*
 * msgr: Xpressions, the parents' app.
 *
 * School side (API keys):
 *   POST   /v1/contacts/{id}/app-tokens         issue one, shown once
 *   GET    /v1/contacts/{id}/app-tokens         list, no secrets
 *   DELETE /v1/contacts/{id}/app-tokens/{token} revoke, at once everywhere
 *   GET    /v1/xpressions/topics                (app tokens too)
 *   PUT    /v1/xpressions/topics                admin; audited
 *   GET    /v1/incoming?topic=&unread=&before=  the school's inbox
 *   PATCH  /v1/incoming/{id}                    {"read": true|false}
 *
 * Parents' app side (app tokens only):
 *   PUT    /v1/app/device                       {"platform", "push_token"}
 *   DELETE /v1/app/device                       signing out
 *   POST   /v1/app/messages                     {"topic", "body", "student_id"}
 *   GET    /v1/app/messages                     the parent's own
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "msgr_settings.h"
#include "msgr_text.h"
#include "ngx_http_msgr_xpressions.h"
#include "ngx_http_msgr_settings.h"


static void ngx_http_msgr_app_token_add(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_tokens(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_token_revoke(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_topics(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_topics_put(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_incoming(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_incoming_mark(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_device(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_message(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_messages(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_xpressions_routes[] = {

    { NGX_HTTP_POST, "v1/contacts/{}/app-tokens",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_INTEGRATOR,
      ngx_http_msgr_app_token_add },

    { NGX_HTTP_MSGR_READ, "v1/contacts/{}/app-tokens",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_INTEGRATOR,
      ngx_http_msgr_app_tokens },

    { NGX_HTTP_DELETE, "v1/contacts/{}/app-tokens/{}",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_INTEGRATOR,
      ngx_http_msgr_app_token_revoke },

    { NGX_HTTP_MSGR_READ, "v1/xpressions/topics",
      NGX_HTTP_MSGR_ROLE_ANY|NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_topics },

    { NGX_HTTP_PUT, "v1/xpressions/topics", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_topics_put },

    { NGX_HTTP_MSGR_READ, "v1/incoming", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_incoming },

    { NGX_HTTP_PATCH, "v1/incoming/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_incoming_mark },

    { NGX_HTTP_PUT|NGX_HTTP_DELETE, "v1/app/device", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_app_device },

    { NGX_HTTP_POST, "v1/app/messages", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_app_message },

    { NGX_HTTP_MSGR_READ, "v1/app/messages", NGX_HTTP_MSGR_ROLE_APP,
      ngx_http_msgr_app_messages },

    { 0, NULL, 0, NULL }
};


#define NGX_HTTP_MSGR_TOPICS_MAX      50
#define NGX_HTTP_MSGR_TOPIC_LEN       100
#define NGX_HTTP_MSGR_BODY_LEN        2000
#define NGX_HTTP_MSGR_LABEL_LEN       100
#define NGX_HTTP_MSGR_PUSH_TOKEN_LEN  4096


static void ngx_http_msgr_app_token_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_app_revoke_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_app_post(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_app_insert(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_app_post_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_app_refused(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_device_done(ngx_http_msgr_pg_query_t *q);


/* $3 contact, $4 token id, $5 hash (hex), $6 label, $7 the key that asks */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_app_token_add = {
    "msgr_app_token_add",
    "INSERT INTO msgr_app_tokens AS t"
    " (school_id, token_id, contact_id, secret_hash, label, created_by)"
    " SELECT $1, $2, c.contact_id, decode($4, 'hex'), $5, $6"
    "   FROM msgr_contacts c"
    "  WHERE c.school_id = $1 AND c.contact_id = $3 AND c.retired_at IS NULL"
    " RETURNING jsonb_build_object('id', t.token_id,"
    "  'contact_id', t.contact_id, 'label', t.label,"
    "  'created_at', " NGX_HTTP_MSGR_TIME("t.created_at") ")::text",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* NULL: no such contact */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_app_tokens = {
    "msgr_app_tokens",
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM msgr_contacts"
    "   WHERE school_id = $1 AND contact_id = $2 AND retired_at IS NULL)"
    " THEN jsonb_build_object('items', (SELECT coalesce(jsonb_agg("
    "  jsonb_build_object('id', t.token_id, 'label', t.label,"
    "   'created_at', " NGX_HTTP_MSGR_TIME("t.created_at") ","
    "   'revoked_at', " NGX_HTTP_MSGR_TIME("t.revoked_at") ","
    "   'device', (SELECT jsonb_build_object('platform', d.platform,"
    "      'updated_at', " NGX_HTTP_MSGR_TIME("d.updated_at") ")"
    "      FROM msgr_app_devices d"
    "     WHERE d.school_id = t.school_id AND d.token_id = t.token_id))"
    "  ORDER BY t.created_at, t.token_id), '[]')"
    "  FROM msgr_app_tokens t"
    "  WHERE t.school_id = $1 AND t.contact_id = $2))::text END",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * Revoked, and its device gone with it (the trigger of
 * sql/0008_app_limits.sql); no row: no such live token
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_app_token_revoke = {
    "msgr_app_token_revoke",
    "UPDATE msgr_app_tokens SET revoked_at = now()"
    " WHERE school_id = $1 AND contact_id = $2 AND token_id = $3"
    "   AND revoked_at IS NULL RETURNING token_id",
    3, NGX_HTTP_MSGR_PG_WRITE, 0
};

/*
 * Only for a live token, locked (FOR SHARE) so that a revocation under way
 * is waited for and then seen; no row: the token is revoked
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_device_put = {
    "msgr_device_put",
    "INSERT INTO msgr_app_devices AS d"
    " (school_id, token_id, contact_id, platform, push_token)"
    " SELECT t.school_id, t.token_id, t.contact_id, $3, $4"
    "   FROM msgr_app_tokens t"
    "  WHERE t.school_id = $1 AND t.token_id = $2 AND t.revoked_at IS NULL"
    "    FOR SHARE"
    " ON CONFLICT (school_id, token_id) DO UPDATE"
    "   SET platform = excluded.platform, push_token = excluded.push_token,"
    "       updated_at = now()"
    " RETURNING jsonb_build_object('platform', d.platform,"
    "  'push_token', d.push_token,"
    "  'updated_at', " NGX_HTTP_MSGR_TIME("d.updated_at") ")::text",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_device_delete = {
    "msgr_device_delete",
    "DELETE FROM msgr_app_devices WHERE school_id = $1 AND token_id = $2"
    " RETURNING 1",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_topics = {
    "msgr_topics",
    "SELECT jsonb_build_object('topics', coalesce((SELECT topics"
    " FROM msgr_xpressions_topics WHERE school_id = $1), '[]'))::text",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $2 the topics, $3 who; the change, if any, goes to the audit trail */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_topics_put = {
    "msgr_topics_put",
    "WITH old AS ("
    "  SELECT coalesce((SELECT topics FROM msgr_xpressions_topics"
    "   WHERE school_id = $1), '[]') AS topics),"
    " up AS ("
    "  INSERT INTO msgr_xpressions_topics (school_id, topics)"
    "  VALUES ($1, $2::jsonb)"
    "  ON CONFLICT (school_id) DO UPDATE"
    "    SET topics = excluded.topics, updated_at = now()"
    "  RETURNING topics),"
    " aud AS ("
    "  INSERT INTO msgr_settings_audit"
    "         (school_id, actor, tab, field, old_value, new_value)"
    "  SELECT $1, $3, 'xpressions', 'topics', old.topics, $2::jsonb"
    "    FROM old WHERE old.topics IS DISTINCT FROM $2::jsonb)"
    " SELECT jsonb_build_object('topics', topics)::text FROM up",
    3, NGX_HTTP_MSGR_PG_WRITE, 0
};

/*
 * A parent's message: one row of four columns, whether the topic is one
 * of the school's, whether the student is the contact's, the message when
 * both are and the rest of the fields were good ($7), and the school's
 * topics when the topic is not one of them as written (it may be in
 * another case).
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_incoming_add = {
    "msgr_incoming_add",
    "WITH tp AS ("
    "  SELECT EXISTS (SELECT 1 FROM msgr_xpressions_topics x,"
    "   jsonb_array_elements_text(x.topics) AS t(name)"
    "   WHERE x.school_id = $1 AND t.name = $5) AS ok),"
    " st AS ("
    "  SELECT EXISTS (SELECT 1 FROM msgr_student_contacts l"
    "   JOIN msgr_students s"
    "     ON s.school_id = l.school_id AND s.student_id = l.student_id"
    "   WHERE l.school_id = $1 AND l.contact_id = $2 AND l.student_id = $4"
    "     AND l.retired_at IS NULL AND s.retired_at IS NULL) AS ok),"
    " ins AS ("
    "  INSERT INTO msgr_incoming AS m"
    "         (school_id, contact_id, student_id, token_id, topic, body)"
    "  SELECT $1, $2, $4, $3, $5, $6 FROM tp, st"
    "   WHERE tp.ok AND st.ok AND $7"
    "  RETURNING jsonb_build_object('id', m.message_id, 'topic', m.topic,"
    "   'body', m.body, 'student_id', m.student_id, 'status', 'unread',"
    "   'created_at', " NGX_HTTP_MSGR_TIME("m.created_at") ") AS j)"
    " SELECT tp.ok, st.ok, (SELECT jsonb_agg(ins.j) FROM ins)::text,"
    "  CASE WHEN NOT tp.ok THEN (SELECT x.topics FROM msgr_xpressions_topics x"
    "   WHERE x.school_id = $1)::text END"
    "   FROM tp, st",
    7, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* the parent's own: $2 contact, $3 before, $4 limit */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_app_messages = {
    "msgr_app_messages",
    "SELECT coalesce(jsonb_agg(j ORDER BY k DESC), '[]')::text FROM ("
    " SELECT m.message_id AS k, jsonb_build_object('id', m.message_id,"
    "  'topic', m.topic, 'body', m.body,"
    "  'student', jsonb_build_object('id', s.student_id,"
    "     'first_name', s.first_name, 'last_name', s.last_name),"
    "  'status', CASE WHEN m.read_at IS NULL THEN 'unread' ELSE 'read' END,"
    "  'created_at', " NGX_HTTP_MSGR_TIME("m.created_at") ","
    "  'read_at', " NGX_HTTP_MSGR_TIME("m.read_at") ") AS j"
    "  FROM msgr_incoming m JOIN msgr_students s"
    "    ON s.school_id = m.school_id AND s.student_id = m.student_id"
    " WHERE m.school_id = $1 AND m.contact_id = $2"
    "   AND ($3::bigint IS NULL OR m.message_id < $3)"
    " ORDER BY m.message_id DESC LIMIT $4) x",
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

#define NGX_HTTP_MSGR_INCOMING_JSON                                          \
    "jsonb_build_object('id', m.message_id, 'topic', m.topic,"               \
    " 'body', m.body,"                                                       \
    " 'contact', jsonb_build_object('id', c.contact_id, 'title', c.title,"   \
    "   'first_name', c.first_name, 'last_name', c.last_name),"              \
    " 'student', jsonb_build_object('id', s.student_id,"                     \
    "   'first_name', s.first_name, 'last_name', s.last_name,"               \
    "   'reg_group', s.reg_group),"                                          \
    " 'created_at', " NGX_HTTP_MSGR_TIME("m.created_at") ","                 \
    " 'read', m.read_at IS NOT NULL,"                                        \
    " 'read_at', " NGX_HTTP_MSGR_TIME("m.read_at") ","                       \
    " 'read_by', m.read_by)"

#define NGX_HTTP_MSGR_INCOMING_JOIN                                          \
    " FROM msgr_incoming m"                                                  \
    " JOIN msgr_contacts c"                                                  \
    "   ON c.school_id = m.school_id AND c.contact_id = m.contact_id"        \
    " JOIN msgr_students s"                                                  \
    "   ON s.school_id = m.school_id AND s.student_id = m.student_id"

/* the inbox: $2 topic, $3 unread only, $4 before, $5 limit */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_incoming = {
    "msgr_incoming",
    "SELECT coalesce(jsonb_agg(j ORDER BY k DESC), '[]')::text FROM ("
    " SELECT m.message_id AS k, " NGX_HTTP_MSGR_INCOMING_JSON " AS j"
    NGX_HTTP_MSGR_INCOMING_JOIN
    " WHERE m.school_id = $1"
    "   AND ($2::text IS NULL OR m.topic = $2)"
    "   AND ($3::boolean IS NULL OR (m.read_at IS NULL) = $3)"
    "   AND ($4::bigint IS NULL OR m.message_id < $4)"
    " ORDER BY m.message_id DESC LIMIT $5) x",
    5, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $3: read or not, $4: who */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_incoming_mark = {
    "msgr_incoming_mark",
    "WITH u AS ("
    "  UPDATE msgr_incoming"
    "     SET read_at = CASE WHEN $3 THEN coalesce(read_at, now()) END,"
    "         read_by = CASE WHEN $3 THEN coalesce(read_by, $4) END"
    "   WHERE school_id = $1 AND message_id = $2"
    "  RETURNING *)"
    " SELECT " NGX_HTTP_MSGR_INCOMING_JSON "::text"
    " FROM u AS m"
    " JOIN msgr_contacts c"
    "   ON c.school_id = m.school_id AND c.contact_id = m.contact_id"
    " JOIN msgr_students s"
    "   ON s.school_id = m.school_id AND s.student_id = m.student_id",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_xpressions_stmts[] = {
    &ngx_http_msgr_stmt_app_token_add,
    &ngx_http_msgr_stmt_app_tokens,
    &ngx_http_msgr_stmt_app_token_revoke,
    &ngx_http_msgr_stmt_device_put,
    &ngx_http_msgr_stmt_device_delete,
    &ngx_http_msgr_stmt_topics,
    &ngx_http_msgr_stmt_topics_put,
    &ngx_http_msgr_stmt_incoming_add,
    &ngx_http_msgr_stmt_app_messages,
    &ngx_http_msgr_stmt_incoming,
    &ngx_http_msgr_stmt_incoming_mark,
    NULL
};


/*
 * A string field by the one text rule (src/msgr_text.c): the trimmed text,
 * released with the request, or NULL with the field's error added.
 */

static json_t *
ngx_http_msgr_app_text(ngx_http_request_t *r, json_t *v, const char *field,
    size_t max, unsigned flags, json_t *errors)
{
    char         buf[64];
    size_t       len;
    json_t      *t;
    const char  *s, *why;

    if (!json_is_string(v)) {
        ngx_http_msgr_field_error(errors, field,
                                  v ? "must be a string" : "is required");
        return NULL;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    why = msgr_text_check(&s, &len, max, flags, buf, sizeof(buf));

    if (why != NULL) {
        ngx_http_msgr_field_error(errors, field, why);
        return NULL;
    }

    t = json_stringn_nocheck(s, len);

    if (ngx_http_msgr_json_keep(r, t) != NGX_OK) {
        ngx_http_msgr_field_error(errors, field, "could not be read");
        return NULL;
    }

    return t;
}


/* POST /v1/contacts/{id}/app-tokens; its own state (ctx->data) */

typedef struct {
    u_char                        *token;   /* shown once, kept nowhere */
} ngx_http_msgr_token_add_t;


static void
ngx_http_msgr_app_token_add(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    char                        buf[MSGR_KEY_MAX_LEN + 1];
    char                        hex[2 * MSGR_KEY_HASH_LEN + 1];
    u_char                     *token;
    json_t                     *body, *errors, *label;
    int64_t                     contact;
    msgr_key_t                  key;
    unsigned char               hash[MSGR_KEY_HASH_LEN];
    ngx_http_msgr_pg_query_t   *q;
    ngx_http_msgr_token_add_t  *add;

    static const char *const  allowed[] = { "label", NULL };

    contact = ngx_http_msgr_id(&ctx->args[0]);

    if (contact == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    label = NULL;

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        body = ngx_http_msgr_read_fields(r, allowed, &errors);
        if (body == NULL) {
            return;
        }

        label = json_object_get(body, "label");

        if (label) {
            label = ngx_http_msgr_app_text(r, label, "label",
                                           NGX_HTTP_MSGR_LABEL_LEN, 0,
                                           errors);
        }

        if (json_array_size(errors)) {
            ngx_http_msgr_invalid(r, errors);
            return;
        }
    }

    if (msgr_app_token_generate(ctx->school_id, buf, sizeof(buf), &key,
                                hash) != 0)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));

    /* the token goes out once, in the response, and is kept nowhere */
    token = ngx_pnalloc(r->pool, ngx_strlen(buf) + 1);
    if (token == NULL) {
        sodium_memzero(buf, sizeof(buf));
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn(token, (u_char *) buf, ngx_strlen(buf) + 1);
    sodium_memzero(buf, sizeof(buf));

    add = ngx_palloc(r->pool, sizeof(ngx_http_msgr_token_add_t));
    if (add == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    add->token = token;
    ctx->data = add;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_app_token_add,
                            ngx_http_msgr_app_token_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param(q, 1, (u_char *) key.id, MSGR_KEY_ID_LEN)
           != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 2, contact) != NGX_OK
        || ngx_http_msgr_pg_param(q, 3, (u_char *) hex, ngx_strlen(hex))
           != NGX_OK
        || ngx_http_msgr_pg_param(q, 4,
               (u_char *) (label ? json_string_value(label) : ""),
               label ? json_string_length(label) : 0) != NGX_OK
        || ngx_http_msgr_pg_param(q, 5, (u_char *) ctx->key.id,
                                  MSGR_KEY_ID_LEN) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_app_token_done(ngx_http_msgr_pg_query_t *q)
{
    json_t               *body;
    const char           *c;
    json_error_t          err;
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    /* at most so many live tokens a contact (sql/0008_app_limits.sql) */

    if (q->status == NGX_OK && q->result
        && PQresultStatus(q->result) == PGRES_FATAL_ERROR
        && (c = PQresultErrorField(q->result, PG_DIAG_CONSTRAINT_NAME))
           != NULL
        && ngx_strcmp(c, "msgr_app_tokens_per_contact") == 0)
    {
        ngx_http_msgr_problem(r, NGX_HTTP_CONFLICT, "app-token-limit",
                              PQresultErrorField(q->result,
                                                 PG_DIAG_MESSAGE_PRIMARY),
                              NULL);
        return;
    }

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    body = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    if (body) {
        json_object_set_new(body, "token",
                            json_string((char *)
                                ((ngx_http_msgr_token_add_t *) ctx->data)
                                ->token));
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_CREATED, body);
}


/* GET /v1/contacts/{id}/app-tokens */

static void
ngx_http_msgr_app_tokens(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ctx->not_found = "no such contact";

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_app_tokens,
                                  ngx_http_msgr_json_done);
}


/* DELETE /v1/contacts/{id}/app-tokens/{token} */

static void
ngx_http_msgr_app_token_revoke(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_str_t                 *id;
    ngx_http_msgr_pg_query_t  *q;

    id = &ctx->args[1];

    for (i = 0; i < id->len; i++) {
        if (!((id->data[i] >= '0' && id->data[i] <= '9')
              || (id->data[i] >= 'a' && id->data[i] <= 'f')))
        {
            break;
        }
    }

    if (id->len != MSGR_KEY_ID_LEN || i != id->len
        || ngx_http_msgr_id(&ctx->args[0]) == 0)
    {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "no such app token", NULL);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_app_token_revoke,
                            ngx_http_msgr_app_revoke_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1,
                                            ngx_http_msgr_id(&ctx->args[0]))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, id->data, id->len) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_app_revoke_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "no such app token, or revoked already", NULL);
        return;
    }

    /* this host forgets it now; the others when the NOTIFY arrives */
    if (ctx->conf->cache) {
        ngx_http_msgr_cache_key_revoke(ctx->conf->cache, 1, ctx->school_id,
                                       PQgetvalue(q->result, 0, 0));
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT, &ngx_http_msgr_json_type,
                           NULL, 0);
}


/* PUT and DELETE /v1/app/device */

static void
ngx_http_msgr_app_device(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                    *body, *errors, *platform, *push;
    const char                *p;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "platform", "push_token", NULL };

    ctx->not_found = "this app has no device registered";

    if (r->method == NGX_HTTP_DELETE) {
        q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_device_delete,
                                ngx_http_msgr_no_content_done);

        if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
                  || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                            MSGR_KEY_ID_LEN) != NGX_OK))
        {
            q = NULL;
        }

        (void) ngx_http_msgr_run(r, q);
        return;
    }

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    platform = json_object_get(body, "platform");
    p = json_string_value(platform);

    if (p == NULL
        || (ngx_strcmp(p, "android") != 0 && ngx_strcmp(p, "ios") != 0
            && ngx_strcmp(p, "web") != 0))
    {
        ngx_http_msgr_field_error(errors, "platform",
                                  "must be one of: android, ios, web");
    }

    push = ngx_http_msgr_app_text(r, json_object_get(body, "push_token"),
                                  "push_token", NGX_HTTP_MSGR_PUSH_TOKEN_LEN,
                                  MSGR_TEXT_REQUIRED, errors);

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_device_put,
                            ngx_http_msgr_device_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) ctx->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) p, ngx_strlen(p))
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 3,
                                        (u_char *) json_string_value(push),
                                        json_string_length(push))
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* no row: the token was revoked since it was looked up */

static void
ngx_http_msgr_device_done(ngx_http_msgr_pg_query_t *q)
{
    ngx_http_request_t  *r;

    r = q->data;

    if (q->status == NGX_OK && q->result
        && PQresultStatus(q->result) == PGRES_TUPLES_OK
        && PQntuples(q->result) == 0)
    {
        ngx_http_msgr_unauthorized(r, "the app token is unknown or revoked");
        return;
    }

    ngx_http_msgr_json_done(q);
}


/* GET /v1/xpressions/topics */

static void
ngx_http_msgr_topics(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_pg_query_t  *q;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_topics,
                            ngx_http_msgr_json_done);

    if (q && ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK) {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* PUT /v1/xpressions/topics {"topics": [...]} */

static void
ngx_http_msgr_topics_put(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    u_char                     field[32];
    size_t                     i, k;
    json_t                    *body, *errors, *list, *topics, *v, *t, *u;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "topics", NULL };

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    list = json_object_get(body, "topics");
    topics = json_array();

    if (ngx_http_msgr_json_keep(r, topics) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!json_is_array(list)) {
        ngx_http_msgr_field_error(errors, "topics",
                                  "must be a list of topics");

    } else if (json_array_size(list) > NGX_HTTP_MSGR_TOPICS_MAX) {
        ngx_http_msgr_field_error(errors, "topics",
                                  "must have at most 50 topics");

    } else {
        json_array_foreach(list, i, v) {
            ngx_sprintf(field, "topics[%uz]%Z", i);

            t = ngx_http_msgr_app_text(r, v, (char *) field,
                                       NGX_HTTP_MSGR_TOPIC_LEN,
                                       MSGR_TEXT_REQUIRED, errors);
            if (t == NULL) {
                continue;
            }

            for (k = 0; k < json_array_size(topics); k++) {
                u = json_array_get(topics, k);

                if (msgr_utf8_casecmp(json_string_value(t),
                                      json_string_length(t),
                                      json_string_value(u),
                                      json_string_length(u))
                    == 0)
                {
                    break;
                }
            }

            if (k < json_array_size(topics)) {
                ngx_http_msgr_field_error(errors, (char *) field,
                                          "is there already (topics are "
                                          "compared without case)");
                continue;
            }

            json_array_append(topics, t);
        }
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_topics_put,
                            ngx_http_msgr_json_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_param_json(q, 1, topics) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) ctx->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/*
 * POST /v1/app/messages.  Every bad field is named: those a look at the
 * body finds, and then, for the fields that passed, those only the
 * database can judge (the topic, the child).
 */

typedef struct {
    json_t       *errors;
    json_t       *topic;
    json_t       *text;
    int64_t       student;
    unsigned      counted:1;    /* against the accepted posts */
    unsigned      again:1;      /* the topic as the school spells it */
} ngx_http_msgr_post_t;


/* 429 with Retry-After */

static void
ngx_http_msgr_app_flood(ngx_http_request_t *r, time_t retry,
    const char *detail)
{
    u_char     after[NGX_TIME_T_LEN];
    ngx_str_t  value;

    value.data = after;
    value.len = ngx_sprintf(after, "%T", retry) - after;

    if (ngx_http_msgr_header(r, "Retry-After", &value) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_problem(r, 429, NULL, detail, NULL);
}


/*
 * Flood control, shared by the host's workers: accepted posts count
 * against msgr_app_rate, refused ones (400, 403, 415, 422) against the
 * higher msgr_app_refused_rate, so that a broken app is held back before
 * it reaches the database without costing a working one its posts.
 */

static void
ngx_http_msgr_app_message(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    time_t                  retry;
    json_t                 *body, *v;
    ngx_http_msgr_post_t   *post;

    static const char *const  allowed[] = { "topic", "body", "student_id",
                                            NULL };

    if (ctx->conf->cache
        && ngx_http_msgr_cache_rate(ctx->conf->cache, ctx->school_id,
                                    ctx->key.id, 1,
                                    ctx->conf->app_refused_rate,
                                    NGX_HTTP_MSGR_RATE_PEEK, &retry)
           == NGX_BUSY)
    {
        ngx_http_msgr_app_flood(r, retry, "too many refused messages from "
                                "this app; try again later");
        return;
    }

    post = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_post_t));
    if (post == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = post;

    body = ngx_http_msgr_read_fields(r, allowed, &post->errors);
    if (body == NULL) {
        /* answered: 400, 415 or 422 */
        ngx_http_msgr_app_refused(r, ctx);
        return;
    }

    v = json_object_get(body, "topic");

    post->topic = ngx_http_msgr_app_text(r, v, "topic",
                                         NGX_HTTP_MSGR_TOPIC_LEN,
                                         MSGR_TEXT_REQUIRED, post->errors);

    v = json_object_get(body, "body");

    post->text = ngx_http_msgr_app_text(r, v, "body", NGX_HTTP_MSGR_BODY_LEN,
                                        MSGR_TEXT_REQUIRED
                                        |MSGR_TEXT_MULTILINE,
                                        post->errors);

    v = json_object_get(body, "student_id");

    if (json_is_integer(v) && json_integer_value(v) > 0) {
        post->student = json_integer_value(v);

    } else {
        ngx_http_msgr_field_error(post->errors, "student_id",
                                  "must be the id of one of your children");
    }

    /* a good post counts now, and is given back if refused after all */

    if (json_array_size(post->errors) == 0 && ctx->conf->cache) {
        if (ngx_http_msgr_cache_rate(ctx->conf->cache, ctx->school_id,
                                     ctx->key.id, 0, ctx->conf->app_rate,
                                     NGX_HTTP_MSGR_RATE_TAKE, &retry)
            == NGX_BUSY)
        {
            ngx_http_msgr_app_flood(r, retry, "too many messages from this "
                                    "app; try again later");
            return;
        }

        post->counted = 1;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_app_post);
}


/* a refused post: counted as one, and not as an accepted one */

static void
ngx_http_msgr_app_refused(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    time_t                 retry;
    ngx_http_msgr_post_t  *post;

    post = ctx->data;

    if (ctx->conf->cache == NULL) {
        return;
    }

    if (post->counted) {
        post->counted = 0;
        (void) ngx_http_msgr_cache_rate(ctx->conf->cache, ctx->school_id,
                                        ctx->key.id, 0, ctx->conf->app_rate,
                                        NGX_HTTP_MSGR_RATE_GIVE_BACK,
                                        &retry);
    }

    (void) ngx_http_msgr_cache_rate(ctx->conf->cache, ctx->school_id,
                                    ctx->key.id, 1,
                                    ctx->conf->app_refused_rate,
                                    NGX_HTTP_MSGR_RATE_TAKE, &retry);
}


static void
ngx_http_msgr_app_post(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    if (!msgr_settings_bool(settings, "xpressions", "incoming_enabled")) {
        ngx_http_msgr_app_refused(r, ctx);
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, NULL,
                              "the school does not take messages from the "
                              "app: the setting xpressions.incoming_enabled "
                              "is off", NULL);
        return;
    }

    ngx_http_msgr_app_insert(r, ctx);
}


/* stored only when every field is good */

static void
ngx_http_msgr_app_insert(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_post_t      *post;
    ngx_http_msgr_pg_query_t  *q;

    post = ctx->data;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_incoming_add,
                            ngx_http_msgr_app_post_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, ctx->contact_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2, (u_char *) ctx->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK
              || (post->student
                  && ngx_http_msgr_pg_param_int(q, 3, post->student)
                     != NGX_OK)
              || (post->topic
                  && ngx_http_msgr_pg_param(q, 4,
                         (u_char *) json_string_value(post->topic),
                         json_string_length(post->topic)) != NGX_OK)
              || (post->text
                  && ngx_http_msgr_pg_param(q, 5,
                         (u_char *) json_string_value(post->text),
                         json_string_length(post->text)) != NGX_OK)
              || ngx_http_msgr_pg_param(q, 6,
                     (u_char *) (json_array_size(post->errors) ? "f" : "t"),
                     1) != NGX_OK))
    {
        q = NULL;
    }

    if (ngx_http_msgr_run(r, q) != NGX_OK) {
        ngx_http_msgr_app_refused(r, ctx);
    }
}


/* the school's topic the given one is, but for case; NULL: none */

static json_t *
ngx_http_msgr_app_topic(ngx_http_request_t *r, json_t *topic,
    const char *list)
{
    size_t        i;
    json_t       *topics, *t;
    json_error_t  err;

    topics = list ? json_loads(list, 0, &err) : NULL;

    if (topics == NULL || ngx_http_msgr_json_keep(r, topics) != NGX_OK) {
        json_decref(topics);
        return NULL;
    }

    json_array_foreach(topics, i, t) {
        if (json_is_string(t)
            && msgr_utf8_casecmp(json_string_value(t), json_string_length(t),
                                 json_string_value(topic),
                                 json_string_length(topic))
               == 0)
        {
            return t;
        }
    }

    return NULL;
}


static void
ngx_http_msgr_app_post_done(ngx_http_msgr_pg_query_t *q)
{
    json_t                *list, *topic;
    json_error_t           err;
    ngx_http_request_t    *r;
    ngx_http_msgr_ctx_t   *ctx;
    ngx_http_msgr_post_t  *post;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    post = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        ngx_http_msgr_app_refused(r, ctx);
        return;
    }

    topic = NULL;

    if (post->topic && PQgetvalue(q->result, 0, 0)[0] != 't') {
        topic = post->again
                ? NULL
                : ngx_http_msgr_app_topic(r, post->topic,
                      PQgetisnull(q->result, 0, 3)
                      ? NULL : PQgetvalue(q->result, 0, 3));

        if (topic == NULL) {
            ngx_http_msgr_field_error(post->errors, "topic",
                                      "must be one of the school's topics "
                                      "(GET /v1/xpressions/topics)");
        }
    }

    if (post->student && PQgetvalue(q->result, 0, 1)[0] != 't') {
        ngx_http_msgr_field_error(post->errors, "student_id",
                                  "is not one of your children");
    }

    if (json_array_size(post->errors)) {
        ngx_http_msgr_app_refused(r, ctx);
        ngx_http_msgr_problem(r, 422, NULL, "the message has invalid "
                              "fields; it was not sent",
                              json_incref(post->errors));
        return;
    }

    if (topic) {
        /* once more, under the school's spelling of the topic */
        post->topic = topic;
        post->again = 1;
        ngx_http_msgr_app_insert(r, ctx);
        return;
    }

    list = json_loads(PQgetvalue(q->result, 0, 2), 0, &err);

    ngx_http_msgr_send_json(r, NGX_HTTP_CREATED,
                            json_incref(json_array_get(list, 0)));
    json_decref(list);
}


/* GET /v1/app/messages */

static void
ngx_http_msgr_app_messages(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_page(r, &ngx_http_msgr_stmt_app_messages,
                             ctx->contact_id, ngx_http_msgr_page_done);
}


/* GET /v1/incoming?topic=&unread=&before=&limit= */

static void
ngx_http_msgr_incoming(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    before;
    ngx_str_t                  topic, unread;
    const char                *flag;
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_http_msgr_page_args(r, ctx, &before) != NGX_OK) {
        return;
    }

    flag = NULL;

    if (ngx_http_msgr_arg(r, "unread", &unread) == NGX_OK) {
        if (unread.len == 4 && ngx_strncmp(unread.data, "true", 4) == 0) {
            flag = "t";

        } else if (unread.len == 5
                   && ngx_strncmp(unread.data, "false", 5) == 0)
        {
            flag = "f";

        } else {
            ngx_http_msgr_bad_arg(r, "unread", "must be true or false");
            return;
        }
    }

    if (ngx_http_msgr_arg(r, "topic", &topic) != NGX_OK) {
        topic.len = 0;
        topic.data = NULL;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_incoming,
                            ngx_http_msgr_page_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, topic.data, topic.len)
                 != NGX_OK
              || (flag && ngx_http_msgr_pg_param(q, 2, (u_char *) flag, 1)
                          != NGX_OK)
              || (before
                  && ngx_http_msgr_pg_param_int(q, 3, before) != NGX_OK)
              || ngx_http_msgr_pg_param_int(q, 4, ctx->limit) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* PATCH /v1/incoming/{id} {"read": true|false} */

static void
ngx_http_msgr_incoming_mark(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                    *body, *errors, *read;
    int64_t                    id;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "read", NULL };

    id = ngx_http_msgr_id(&ctx->args[0]);

    if (id == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "no such message", NULL);
        return;
    }

    /* a merge patch of one field: application/merge-patch+json too */

    body = ngx_http_msgr_read_fields_as(r, 1, allowed, &errors);
    if (body == NULL) {
        return;
    }

    read = json_object_get(body, "read");

    if (!json_is_boolean(read)) {
        ngx_http_msgr_field_error(errors, "read", "must be true or false");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    ctx->not_found = "no such message";

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_incoming_mark,
                            ngx_http_msgr_json_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 2,
                     (u_char *) (json_is_true(read) ? "t" : "f"), 1)
                 != NGX_OK
              || ngx_http_msgr_pg_param(q, 3, (u_char *) ctx->key.id,
                                        MSGR_KEY_ID_LEN) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}

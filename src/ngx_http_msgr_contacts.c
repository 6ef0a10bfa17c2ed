/*
 * msgr: the people of a school's MIS as the API shows them.
 *
 *   GET   /v1/students, /v1/contacts, /v1/staff, /v1/groups
 *   GET   /v1/groups/{id}/members
 *   GET   /v1/contacts/{id}, PATCH /v1/contacts/{id}
 *   GET   /v1/recipients?group=&student=&send_to=
 *
 * Lists take q (a piece of the name), after (the cursor of the previous
 * page's next_after) and limit.  The records' JSON is built by SQL functions
 * (sql/0004_mis.sql); the contact rules of the settings are applied here:
 * registration groups in student names, staff details masked for every key
 * but admin, local edits only when the school allows them.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "msgr_phone.h"
#include "msgr_recipients.h"
#include "msgr_settings.h"
#include "msgr_text.h"
#include "ngx_http_msgr_contacts.h"
#include "ngx_http_msgr_settings.h"


static void ngx_http_msgr_students(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_contacts(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_contact(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_contact_patch(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_staff(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_groups(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_group_members(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_recipients(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_contacts_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/students", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_students },

    { NGX_HTTP_MSGR_READ, "v1/contacts", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_contacts },

    { NGX_HTTP_MSGR_READ, "v1/contacts/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_contact },

    { NGX_HTTP_PATCH, "v1/contacts/{}",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_STAFF,
      ngx_http_msgr_contact_patch },

    { NGX_HTTP_MSGR_READ, "v1/staff", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_staff },

    { NGX_HTTP_MSGR_READ, "v1/groups", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_groups },

    { NGX_HTTP_MSGR_READ, "v1/groups/{}/members", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_group_members },

    { NGX_HTTP_MSGR_READ, "v1/recipients", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_recipients },

    { 0, NULL, 0, NULL }
};


typedef void (*ngx_http_msgr_decorate_pt)(ngx_http_msgr_ctx_t *ctx,
    json_t *item);


typedef struct {
    const ngx_http_msgr_pg_stmt_t  *stmt;
    ngx_http_msgr_decorate_pt       decorate;
    const char                     *missing;   /* 404 when the SQL says so */
} ngx_http_msgr_list_t;


typedef struct {
    const ngx_http_msgr_list_t     *list;
    ngx_str_t                       q;
    int64_t                         after;
    int64_t                         id;
} ngx_http_msgr_list_ctx_t;


typedef struct {
    ngx_array_t                     groups;     /* int64_t */
    ngx_array_t                     students;   /* int64_t */
    msgr_send_to_e                  send_to;
    ngx_uint_t                      send_to_given;
} ngx_http_msgr_recipients_ctx_t;


static void ngx_http_msgr_list(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, const ngx_http_msgr_list_t *list);
static void ngx_http_msgr_list_query(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_list_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_decorate_student(ngx_http_msgr_ctx_t *ctx,
    json_t *item);
static void ngx_http_msgr_decorate_contact(ngx_http_msgr_ctx_t *ctx,
    json_t *item);
static void ngx_http_msgr_decorate_staff(ngx_http_msgr_ctx_t *ctx,
    json_t *item);
static void ngx_http_msgr_decorate_member(ngx_http_msgr_ctx_t *ctx,
    json_t *item);
static void ngx_http_msgr_contact_read(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_contact_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_contact_edit(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_recipients_query(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_recipients_done(ngx_http_msgr_pg_query_t *q);
static json_t *ngx_http_msgr_member_key(json_t *item);


/* $1 school, $2 q, $3 after, $4 limit; one row: a JSON array */

#define NGX_HTTP_MSGR_LIST_SQL(json, table, key)                             \
    "SELECT coalesce(jsonb_agg(j ORDER BY k), '[]')::text"                   \
    " FROM (SELECT " json "(t) AS j, t." key " AS k FROM " table " t"        \
    "  WHERE t.school_id = $1 AND t.retired_at IS NULL"                      \
    "    AND ($2::text IS NULL OR strpos(lower(t.first_name || ' '"          \
    "         || t.last_name), lower($2)) > 0)"                              \
    "    AND ($3::bigint IS NULL OR t." key " > $3)"                         \
    "  ORDER BY t." key " LIMIT $4) x"


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_students = {
    "msgr_students",
    NGX_HTTP_MSGR_LIST_SQL("msgr_student_json", "msgr_students",
                           "student_id"),
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_contacts = {
    "msgr_contacts",
    NGX_HTTP_MSGR_LIST_SQL("msgr_contact_json", "msgr_contacts",
                           "contact_id"),
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_staff = {
    "msgr_staff",
    NGX_HTTP_MSGR_LIST_SQL("msgr_staff_json", "msgr_staff", "staff_id"),
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_groups = {
    "msgr_groups",
    "SELECT coalesce(jsonb_agg(j ORDER BY k), '[]')::text"
    " FROM (SELECT msgr_group_json(t) AS j, t.group_id AS k"
    "  FROM msgr_groups t"
    "  WHERE t.school_id = $1 AND t.retired_at IS NULL"
    "    AND ($2::text IS NULL OR strpos(lower(t.name), lower($2)) > 0)"
    "    AND ($3::bigint IS NULL OR t.group_id > $3)"
    "  ORDER BY t.group_id LIMIT $4) x",
    4, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * Members: students first, then staff and teachers; the cursor is the
 * kind in the high bits and the id in the low ones.  NULL: no such group.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_members = {
    "msgr_members",
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM msgr_groups"
    "   WHERE school_id = $1 AND group_id = $5 AND retired_at IS NULL)"
    " THEN (SELECT coalesce(jsonb_agg(j ORDER BY k), '[]')::text FROM ("
    "  SELECT k, j FROM ("
    "   SELECT s.student_id AS k, msgr_student_json(s)"
    "          || '{\"type\":\"student\"}' AS j,"
    "          s.first_name, s.last_name"
    "     FROM msgr_group_students m JOIN msgr_students s"
    "       ON s.school_id = m.school_id AND s.student_id = m.student_id"
    "    WHERE m.school_id = $1 AND m.group_id = $5"
    "      AND m.retired_at IS NULL AND s.retired_at IS NULL"
    "   UNION ALL"
    "   SELECT (1::bigint << 48) + (m.teacher::int::bigint << 47)"
    "          + t.staff_id, msgr_staff_json(t)"
    "          || jsonb_build_object('type', CASE WHEN m.teacher"
    "             THEN 'teacher' ELSE 'staff' END),"
    "          t.first_name, t.last_name"
    "     FROM msgr_group_staff m JOIN msgr_staff t"
    "       ON t.school_id = m.school_id AND t.staff_id = m.staff_id"
    "    WHERE m.school_id = $1 AND m.group_id = $5"
    "      AND m.retired_at IS NULL AND t.retired_at IS NULL) u"
    "  WHERE ($2::text IS NULL OR strpos(lower(u.first_name || ' '"
    "         || u.last_name), lower($2)) > 0)"
    "    AND ($3::bigint IS NULL OR u.k > $3)"
    "  ORDER BY k LIMIT $4) v) END",
    5, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * A contact and its ETag (sql/0007_contact_json.sql), a digest of its row
 * version, its body and $3, the view: what of the settings changes how it
 * is shown.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_contact = {
    "msgr_contact",
    "SELECT 1, x.j::text, msgr_contact_etag(c.xmin::text, x.j, $3)"
    " FROM msgr_contacts c, LATERAL (SELECT msgr_contact_json(c) AS j) x"
    " WHERE c.school_id = $1 AND c.contact_id = $2 AND c.retired_at IS NULL",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * $3: the edits to keep, $4: the fields going back to the MIS's value,
 * $5: If-Match, $6: the view.  One row: whether the contact is there, then
 * the contact and its new ETag, both NULL when If-Match names another
 * version.  If-Match is compared in the UPDATE's own WHERE: when the row
 * lock had to be waited for, that is against the row as the other writer
 * left it, never against an older snapshot.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_contact_edit = {
    "msgr_contact_edit",
    "WITH cur AS ("
    "  SELECT 1 FROM msgr_contacts c"
    "   WHERE c.school_id = $1 AND c.contact_id = $2"
    "     AND c.retired_at IS NULL),"
    " upd AS ("
    "  UPDATE msgr_contacts c"
    "     SET overrides = (c.overrides || $3::jsonb) - $4::text[],"
    "         updated_at = now()"
    "   WHERE c.school_id = $1 AND c.contact_id = $2"
    "     AND c.retired_at IS NULL"
    "     AND ($5::text IS NULL OR $5 = '*'"
    "          OR $5 = msgr_contact_etag(c.xmin::text,"
    "                                    msgr_contact_json(c), $6))"
    "  RETURNING msgr_contact_json(c) AS j, c.xmin::text AS x)"
    " SELECT (SELECT count(*) FROM cur), upd.j::text,"
    "        msgr_contact_etag(upd.x, upd.j, $6)"
    "   FROM (SELECT 1) AS one LEFT JOIN upd ON true",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

/*
 * Everything recipient resolution needs for a send, as one JSON document
 * (src/msgr_recipients.h): $2 group ids, $3 student ids; the query is
 * msgr_send_records() (sql/0013_messages.sql), which sending shares.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_recipients = {
    "msgr_recipients",
    "SELECT msgr_send_records($1, $2::bigint[], $3::bigint[])::text",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_contacts_stmts[] = {
    &ngx_http_msgr_stmt_students,
    &ngx_http_msgr_stmt_contacts,
    &ngx_http_msgr_stmt_staff,
    &ngx_http_msgr_stmt_groups,
    &ngx_http_msgr_stmt_members,
    &ngx_http_msgr_stmt_contact,
    &ngx_http_msgr_stmt_contact_edit,
    &ngx_http_msgr_stmt_recipients,
    NULL
};


static const ngx_http_msgr_list_t  ngx_http_msgr_list_students = {
    &ngx_http_msgr_stmt_students, ngx_http_msgr_decorate_student, NULL
};

static const ngx_http_msgr_list_t  ngx_http_msgr_list_contacts = {
    &ngx_http_msgr_stmt_contacts, ngx_http_msgr_decorate_contact, NULL
};

static const ngx_http_msgr_list_t  ngx_http_msgr_list_staff = {
    &ngx_http_msgr_stmt_staff, ngx_http_msgr_decorate_staff, NULL
};

static const ngx_http_msgr_list_t  ngx_http_msgr_list_groups = {
    &ngx_http_msgr_stmt_groups, NULL, NULL
};

static const ngx_http_msgr_list_t  ngx_http_msgr_list_members = {
    &ngx_http_msgr_stmt_members, ngx_http_msgr_decorate_member,
    "no such group"
};


static void
ngx_http_msgr_students(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_list(r, ctx, &ngx_http_msgr_list_students);
}


static void
ngx_http_msgr_contacts(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_list(r, ctx, &ngx_http_msgr_list_contacts);
}


static void
ngx_http_msgr_staff(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_list(r, ctx, &ngx_http_msgr_list_staff);
}


static void
ngx_http_msgr_groups(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_list(r, ctx, &ngx_http_msgr_list_groups);
}


static void
ngx_http_msgr_group_members(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_list(r, ctx, &ngx_http_msgr_list_members);
}


static void
ngx_http_msgr_list(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    const ngx_http_msgr_list_t *list)
{
    ngx_str_t                  v;
    const char                *why;
    ngx_http_msgr_list_ctx_t  *lctx;

    lctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_list_ctx_t));
    if (lctx == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    lctx->list = list;
    ctx->data = lctx;

    if (ctx->nargs) {
        lctx->id = ngx_http_msgr_id(&ctx->args[0]);

        if (lctx->id == 0) {
            ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                                  list->missing, NULL);
            return;
        }
    }

    if (ngx_http_msgr_arg(r, "q", &lctx->q) == NGX_OK
        && (lctx->q.len == 0 || lctx->q.len > 100))
    {
        ngx_http_msgr_bad_arg(r, "q", "must be 1 to 100 characters of a name");
        return;
    }

    if (ngx_http_msgr_arg(r, "after", &v) == NGX_OK) {
        lctx->after = ngx_http_msgr_id(&v);

        if (lctx->after == 0) {
            ngx_http_msgr_bad_arg(r, "after",
                                  "must be the next_after of the previous "
                                  "page");
            return;
        }
    }

    why = ngx_http_msgr_limit_arg(r, ctx);

    if (why) {
        ngx_http_msgr_bad_arg(r, "limit", why);
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_list_query);
}


static void
ngx_http_msgr_list_query(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_pg_query_t  *q;
    ngx_http_msgr_list_ctx_t  *lctx;

    lctx = ctx->data;

    q = ngx_http_msgr_query(r, lctx->list->stmt, ngx_http_msgr_list_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || (lctx->q.len
            && ngx_http_msgr_pg_param(q, 1, lctx->q.data, lctx->q.len)
               != NGX_OK)
        || (lctx->after
            && ngx_http_msgr_pg_param_int(q, 2, lctx->after) != NGX_OK)
        || ngx_http_msgr_pg_param_int(q, 3, ctx->limit) != NGX_OK
        || (lctx->id
            && ngx_http_msgr_pg_param_int(q, 4, lctx->id) != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_list_done(ngx_http_msgr_pg_query_t *q)
{
    size_t                     i;
    json_t                    *items, *item;
    json_error_t               err;
    ngx_http_request_t        *r;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_list_ctx_t  *lctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    lctx = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQgetisnull(q->result, 0, 0)) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              lctx->list->missing, NULL);
        return;
    }

    items = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);
    if (items == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (lctx->list->decorate) {
        json_array_foreach(items, i, item) {
            lctx->list->decorate(ctx, item);
        }
    }

    /* the cursor of a members page is the row's sort key */
    ngx_http_msgr_page_send(r, items, "next_after",
                            lctx->list == &ngx_http_msgr_list_members
                            ? ngx_http_msgr_member_key : NULL);
}


/* a member's place in the list: students, then teachers, then the rest */

static json_t *
ngx_http_msgr_member_key(json_t *item)
{
    const char  *type;
    json_int_t   id;

    type = json_string_value(json_object_get(item, "type"));
    id = json_integer_value(json_object_get(item, "id"));

    if (type == NULL || ngx_strcmp(type, "student") == 0) {
        return json_integer(id);
    }

    return json_integer(((json_int_t) 1 << 48)
                        + (ngx_strcmp(type, "teacher") == 0
                           ? (json_int_t) 1 << 47 : 0)
                        + id);
}


static const char *
ngx_http_msgr_str(json_t *item, const char *key)
{
    const char  *s;

    s = json_string_value(json_object_get(item, key));

    return s ? s : "";
}


/* "Mrs Jane Jones", without empty parts, of any length */

static void
ngx_http_msgr_person_name(json_t *item)
{
    char  *name;

    name = msgr_person_display_name(ngx_http_msgr_str(item, "title"),
                                    ngx_http_msgr_str(item, "first_name"),
                                    ngx_http_msgr_str(item, "last_name"));
    if (name) {
        json_object_set_new(item, "name", json_string(name));
        free(name);
    }
}


static void
ngx_http_msgr_student_name(ngx_http_msgr_ctx_t *ctx, json_t *item)
{
    int    with_reg;
    char  *name;

    with_reg = msgr_settings_bool(ctx->settings, "contacts",
                                  "show_registration_in_names");

    name = msgr_student_display_name(ngx_http_msgr_str(item, "first_name"),
                                     ngx_http_msgr_str(item, "last_name"),
                                     ngx_http_msgr_str(item, "reg_group"),
                                     with_reg);
    if (name) {
        json_object_set_new(item, "name", json_string(name));
        free(name);
    }
}


static void
ngx_http_msgr_decorate_student(ngx_http_msgr_ctx_t *ctx, json_t *item)
{
    ngx_http_msgr_student_name(ctx, item);
}


static void
ngx_http_msgr_decorate_contact(ngx_http_msgr_ctx_t *ctx, json_t *item)
{
    size_t   i;
    json_t  *student;

    ngx_http_msgr_person_name(item);

    json_array_foreach(json_object_get(item, "students"), i, student) {
        ngx_http_msgr_student_name(ctx, student);
    }
}


/*
 * Whether this request sees staff details masked: the school hides them
 * (contacts.hide_staff_contact_details) and the key is not admin's.  Every
 * route showing staff asks here, and masks with msgr_staff_mask().
 */

ngx_uint_t
ngx_http_msgr_staff_masked(ngx_http_msgr_ctx_t *ctx)
{
    return ctx->role != NGX_HTTP_MSGR_ROLE_ADMIN
           && msgr_settings_bool(ctx->settings, "contacts",
                                 "hide_staff_contact_details");
}


static void
ngx_http_msgr_decorate_staff(ngx_http_msgr_ctx_t *ctx, json_t *item)
{
    ngx_http_msgr_person_name(item);

    if (ngx_http_msgr_staff_masked(ctx)) {
        /* on out of memory the details are null: never shown in clear */
        (void) msgr_staff_mask(item);
    }
}


static void
ngx_http_msgr_decorate_member(ngx_http_msgr_ctx_t *ctx, json_t *item)
{
    if (ngx_strcmp(ngx_http_msgr_str(item, "type"), "student") == 0) {
        ngx_http_msgr_decorate_student(ctx, item);

    } else {
        ngx_http_msgr_decorate_staff(ctx, item);
    }
}


/* GET /v1/contacts/{id} */

static void
ngx_http_msgr_contact(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    if (ngx_http_msgr_id(&ctx->args[0]) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_contact_read);
}


/*
 * The settings that change how a contact is shown, as a part of its ETag:
 * registration groups in its students' names.
 */

static ngx_int_t
ngx_http_msgr_contact_view(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    json_t *settings)
{
    ngx_str_t  *view;

    static ngx_str_t  reg = ngx_string("reg");
    static ngx_str_t  plain = ngx_string("plain");

    view = msgr_settings_bool(settings, "contacts",
                              "show_registration_in_names")
           ? &reg : &plain;

    return ngx_http_msgr_pg_param(q, i, view->data, view->len);
}


static void
ngx_http_msgr_contact_read(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_pg_query_t  *q;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_contact,
                            ngx_http_msgr_contact_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 1, ngx_http_msgr_id(&ctx->args[0]))
           != NGX_OK
        || ngx_http_msgr_contact_view(q, 2, settings) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_contact_done(ngx_http_msgr_pg_query_t *q)
{
    json_t               *contact;
    ngx_str_t             etag;
    json_error_t          err;
    ngx_http_request_t   *r;
    ngx_http_msgr_ctx_t  *ctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1
        || PQgetvalue(q->result, 0, 0)[0] == '0')
    {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    if (PQgetisnull(q->result, 0, 1)) {
        ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                              "the contact has changed since the version "
                              "named in If-Match; read it again", NULL);
        return;
    }

    contact = json_loads(PQgetvalue(q->result, 0, 1), 0, &err);
    if (contact == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    etag.data = (u_char *) PQgetvalue(q->result, 0, 2);
    etag.len = PQgetlength(q->result, 0, 2);

    if (ngx_http_msgr_etag(r, &etag) != NGX_OK) {
        json_decref(contact);
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (r->method == NGX_HTTP_PATCH) {
        /* If-Match has been judged above, against the row itself */
        r->disable_not_modified = 1;
    }

    ngx_http_msgr_decorate_contact(ctx, contact);
    ngx_http_msgr_send_json(r, NGX_HTTP_OK, contact);
}


/* PATCH /v1/contacts/{id}: local edits, when the school allows them */

static void
ngx_http_msgr_contact_patch(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t  *body;

    if (ngx_http_msgr_id(&ctx->args[0]) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    /* a merge patch: "" clears a field locally, null drops the edit */
    body = ngx_http_msgr_read_json_as(r, 1);
    if (body == NULL) {
        return;
    }

    ctx->body = body;

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_contact_edit);
}


typedef enum {
    NGX_HTTP_MSGR_EDIT_NAME,
    NGX_HTTP_MSGR_EDIT_TEXT,
    NGX_HTTP_MSGR_EDIT_PHONE,
    NGX_HTTP_MSGR_EDIT_EMAIL,
    NGX_HTTP_MSGR_EDIT_LANGUAGE
} ngx_http_msgr_edit_e;


typedef struct {
    const char             *name;
    ngx_http_msgr_edit_e    type;
} ngx_http_msgr_edit_field_t;


static const ngx_http_msgr_edit_field_t  ngx_http_msgr_edit_fields[] = {
    { "title", NGX_HTTP_MSGR_EDIT_TEXT },
    { "first_name", NGX_HTTP_MSGR_EDIT_NAME },
    { "last_name", NGX_HTTP_MSGR_EDIT_NAME },
    { "home_phone", NGX_HTTP_MSGR_EDIT_PHONE },
    { "work_phone", NGX_HTTP_MSGR_EDIT_PHONE },
    { "mobile_phone", NGX_HTTP_MSGR_EDIT_PHONE },
    { "email", NGX_HTTP_MSGR_EDIT_EMAIL },
    { "language", NGX_HTTP_MSGR_EDIT_LANGUAGE },
    { NULL, 0 }
};


/*
 * Checks one edit; returns the value to keep (new reference) or NULL with
 * *message set.
 */

static json_t *
ngx_http_msgr_edit_value(const ngx_http_msgr_edit_field_t *f, json_t *v,
    const char *country, const char **message)
{
    char         e164[32], buf[64];
    size_t       len;
    const char  *s, *why;

    if (!json_is_string(v)) {
        *message = "must be a string, or null to go back to the MIS value";
        return NULL;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    /* the one text rule (src/msgr_text.c), as the MIS sync applies it */

    switch (f->type) {

    case NGX_HTTP_MSGR_EDIT_NAME:
        *message = msgr_text_check(&s, &len, 100, MSGR_TEXT_REQUIRED, buf,
                                   sizeof(buf));
        break;

    case NGX_HTTP_MSGR_EDIT_TEXT:
        *message = msgr_text_check(&s, &len, 50, 0, buf, sizeof(buf));
        break;

    default:
        *message = msgr_text_check(&s, &len, 254, 0, buf, sizeof(buf));
        break;
    }

    if (*message != NULL) {
        if (*message == buf) {
            /* "must be at most N characters" outlives buf */
            *message = (f->type == NGX_HTTP_MSGR_EDIT_NAME)
                       ? "must be at most 100 characters"
                       : (f->type == NGX_HTTP_MSGR_EDIT_TEXT)
                       ? "must be at most 50 characters"
                       : "must be at most 254 characters";
        }

        return NULL;
    }

    switch (f->type) {

    case NGX_HTTP_MSGR_EDIT_NAME:
    case NGX_HTTP_MSGR_EDIT_TEXT:
        break;

    case NGX_HTTP_MSGR_EDIT_PHONE:
        if (len == 0) {
            /* no number here, whatever the MIS says */
            break;
        }

        /* the whole string: no NUL in it, and the parser skips spaces */
        if (msgr_phone_e164(json_string_value(v), country, e164,
                            sizeof(e164), &why)
            != 0)
        {
            *message = "must be a phone number (written nationally for the "
                       "country of school.phone_country, else with "
                       "+country code), or \"\"";
            return NULL;
        }

        return json_string(e164);

    case NGX_HTTP_MSGR_EDIT_EMAIL:
        if (len && !msgr_email_valid(s, len)) {
            *message = "must be an email address, or \"\"";
            return NULL;
        }

        break;

    case NGX_HTTP_MSGR_EDIT_LANGUAGE:
        if (!msgr_text_language(s, len)) {
            *message = MSGR_TEXT_LANGUAGE;
            return NULL;
        }

        break;
    }

    return json_stringn(s, len);
}


static void
ngx_http_msgr_contact_edit(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    json_t                            *body, *value, *keep, *drop, *errors;
    json_t                            *good;
    const char                        *key, *message, *country;
    ngx_http_msgr_pg_query_t          *q;
    const ngx_http_msgr_edit_field_t  *f;

    if (!msgr_settings_bool(settings, "contacts",
                            "can_edit_imported_contacts"))
    {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, NULL,
                              "imported contacts cannot be edited: the "
                              "setting contacts.can_edit_imported_contacts "
                              "is off", NULL);
        return;
    }

    body = ctx->body;

    country = msgr_settings_string(settings, "school", "phone_country");
    if (country == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (!json_is_object(body) || json_object_size(body) == 0) {
        ngx_http_msgr_problem(r, 422, NULL, "the body must be an object of "
                              "the fields to edit", NULL);
        return;
    }

    keep = json_object();
    drop = json_array();
    errors = json_array();

    if (ngx_http_msgr_json_keep(r, keep) != NGX_OK
        || ngx_http_msgr_json_keep(r, drop) != NGX_OK
        || ngx_http_msgr_json_keep(r, errors) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_object_foreach(body, key, value) {

        for (f = ngx_http_msgr_edit_fields; f->name; f++) {
            if (ngx_strcmp(f->name, key) == 0) {
                break;
            }
        }

        if (f->name == NULL) {
            ngx_http_msgr_field_error(errors, key,
                                      "unknown field; the fields are "
                                      "title, first_name, last_name, "
                                      "home_phone, work_phone, "
                                      "mobile_phone, email, language");
            continue;
        }

        if (json_is_null(value)) {
            json_array_append_new(drop, json_string(key));
            continue;
        }

        message = NULL;
        good = ngx_http_msgr_edit_value(f, value, country, &message);

        if (good == NULL) {
            ngx_http_msgr_field_error(errors, key, message);
            continue;
        }

        json_object_set_new(keep, key, good);
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_problem(r, 422, NULL, "the edit has invalid fields; "
                              "nothing was changed", json_incref(errors));
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_contact_edit,
                            ngx_http_msgr_contact_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 1, ngx_http_msgr_id(&ctx->args[0]))
           != NGX_OK
        || ngx_http_msgr_param_json(q, 2, keep) != NGX_OK
        || ngx_http_msgr_param_text_array(q, 3, drop) != NGX_OK
        || (r->headers_in.if_match
            && ngx_http_msgr_pg_param(q, 4,
                                      r->headers_in.if_match->value.data,
                                      r->headers_in.if_match->value.len)
               != NGX_OK)
        || ngx_http_msgr_contact_view(q, 5, settings) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


/* GET /v1/recipients?group=1&group=2&student=3&send_to=primary_contact */

static void
ngx_http_msgr_recipients(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                          *errors;
    ngx_str_t                        v;
    ngx_http_msgr_recipients_ctx_t  *rctx;

    static ngx_str_t  group = ngx_string("group");
    static ngx_str_t  student = ngx_string("student");

    rctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_recipients_ctx_t));
    errors = json_array();

    if (rctx == NULL
        || ngx_http_msgr_json_keep(r, errors) != NGX_OK
        || ngx_array_init(&rctx->groups, r->pool, 4, sizeof(int64_t))
           != NGX_OK
        || ngx_array_init(&rctx->students, r->pool, 4, sizeof(int64_t))
           != NGX_OK
        || ngx_http_msgr_ids_arg(r, &group, &rctx->groups, errors) != NGX_OK
        || ngx_http_msgr_ids_arg(r, &student, &rctx->students, errors)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = rctx;

    if (ngx_http_msgr_arg(r, "send_to", &v) == NGX_OK) {
        rctx->send_to_given = 1;

        if (msgr_send_to_parse((char *) v.data, &rctx->send_to) != 0) {
            ngx_http_msgr_field_error(errors, "send_to",
                                      "must be one of: primary_contact, "
                                      "all_contacts, staff");
        }
    }

    if (rctx->groups.nelts == 0 && rctx->students.nelts == 0
        && json_array_size(errors) == 0)
    {
        ngx_http_msgr_field_error(errors, "group",
                                  "name at least one group or student");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_bad_args(r, errors);
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_recipients_query);
}


static void
ngx_http_msgr_recipients_query(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings)
{
    ngx_http_msgr_pg_query_t        *q;
    ngx_http_msgr_recipients_ctx_t  *rctx;

    rctx = ctx->data;

    if (!rctx->send_to_given) {
        /*
         * sending.default_send_to is primary_contact or last_chosen, and
         * an API call has made no earlier choice: the primary contact
         */
        rctx->send_to = MSGR_SEND_PRIMARY_CONTACT;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_recipients,
                            ngx_http_msgr_recipients_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_param_ids(q, 1, &rctx->groups) != NGX_OK
        || ngx_http_msgr_param_ids(q, 2, &rctx->students) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_recipients_done(ngx_http_msgr_pg_query_t *q)
{
    u_char                           today[NGX_HTTP_MSGR_TODAY_LEN];
    u_char                           detail[128];
    json_t                          *data, *result, *missing;
    const char                      *why;
    json_error_t                     err;
    ngx_http_request_t              *r;
    ngx_http_msgr_ctx_t             *ctx;
    msgr_recipient_rules_t           rules;
    ngx_http_msgr_recipients_ctx_t  *rctx;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    rctx = ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    data = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    if (ngx_http_msgr_json_keep(r, data) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* another school's ids, or retired ones, are not found */

    missing = json_object_get(data, "missing_groups");

    if (json_array_size(missing)) {
        ngx_snprintf(detail, sizeof(detail) - 1, "no group %L%Z",
                     (int64_t) json_integer_value(json_array_get(missing, 0)));
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, (char *) detail,
                              NULL);
        return;
    }

    missing = json_object_get(data, "missing_students");

    if (json_array_size(missing)) {
        ngx_snprintf(detail, sizeof(detail) - 1, "no student %L%Z",
                     (int64_t) json_integer_value(json_array_get(missing, 0)));
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, (char *) detail,
                              NULL);
        return;
    }

    ngx_http_msgr_today(today);

    msgr_recipient_rules_from_settings(ctx->settings, &rules);

    rules.mask_staff_details = ngx_http_msgr_staff_masked(ctx);

    why = NULL;
    result = msgr_recipients_resolve(data, rctx->send_to, &rules,
                                     (char *) today, &why);

    if (result == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: recipient resolution failed: %s",
                      why ? why : "out of memory");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK, result);
}

/*
 * msgr: templates, a school's saved messages and letter templates, and
 * msgr's standard library of them (msgr_library, share/library/).
 *
 *   GET    /v1/templates                     {"items": [...]}
 *   POST   /v1/templates                     {"kind", "name", ...}
 *   GET    /v1/templates/library             the library, each with its state
 *   POST   /v1/templates/library/copy        (admin) ?dry_run=true
 *   GET    /v1/templates/{id}                with its ETag
 *   PATCH  /v1/templates/{id}                If-Match honoured
 *   DELETE /v1/templates/{id}
 *   GET    /v1/templates/{id}/versions       every version, newest first
 *
 * Names are unique per school without case.  Merge tokens are checked as
 * a message's are.  Letters are edited by administrators, and by other
 * keys when sending.allow_template_edit_on_compose is on; saved messages
 * by any key.  Every change is a new version (sql/0015); docs/templates.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_settings.h"
#include "msgr_routing.h"
#include "msgr_settings.h"
#include "msgr_template.h"
#include "msgr_text.h"
#include "ngx_http_msgr_templates.h"


static void ngx_http_msgr_templates(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_template_change(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_template(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_template_versions(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_library(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_templates_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/templates", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_templates },

    { NGX_HTTP_POST, "v1/templates", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_template_change },

    /* before v1/templates/{}: "library" is not an id */
    { NGX_HTTP_MSGR_READ, "v1/templates/library", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_library },

    { NGX_HTTP_POST, "v1/templates/library/copy", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_library },

    { NGX_HTTP_MSGR_READ, "v1/templates/{}", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_template },

    { NGX_HTTP_PATCH|NGX_HTTP_DELETE, "v1/templates/{}",
      NGX_HTTP_MSGR_ROLE_ANY, ngx_http_msgr_template_change },

    { NGX_HTTP_MSGR_READ, "v1/templates/{}/versions",
      NGX_HTTP_MSGR_ROLE_ANY, ngx_http_msgr_template_versions },

    { 0, NULL, 0, NULL }
};


/* the same bounds as a message's texts (ngx_http_msgr_messages.c) */
#define NGX_HTTP_MSGR_TPL_NAME_MAX      100
#define NGX_HTTP_MSGR_TPL_CATEGORY_MAX  100
#define NGX_HTTP_MSGR_TPL_SUBJECT_MAX   200
#define NGX_HTTP_MSGR_TPL_BODY_MAX      10000
#define NGX_HTTP_MSGR_TPL_SMS_MAX       1600
#define NGX_HTTP_MSGR_TPL_VOICE_MAX     2000

#define NGX_HTTP_MSGR_NO_TEMPLATE       "no such template"


/* a change (POST, PATCH, DELETE) from its body to its write */

typedef struct {
    json_t                   *body;        /* NULL: DELETE */
    json_t                   *errors;
    int64_t                   id;          /* 0: POST */
} ngx_http_msgr_tpl_change_t;


static void ngx_http_msgr_template_check(json_t *body, ngx_uint_t post,
    json_t *errors);
static void ngx_http_msgr_template_load(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_template_loaded(ngx_http_msgr_pg_query_t *q);
static ngx_int_t ngx_http_msgr_template_may(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *current, json_t *body);
static void ngx_http_msgr_template_tokens(ngx_http_msgr_ctx_t *ctx,
    json_t *attributes, json_t *body, json_t *errors);
static void ngx_http_msgr_template_write(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, ngx_http_msgr_tpl_change_t *tc);
static void ngx_http_msgr_items_done(ngx_http_msgr_pg_query_t *q);


#define NGX_HTTP_MSGR_TPL_ETAG  "'\"' || t.version || '\"'"

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_templates = {
    "msgr_templates",
    "SELECT coalesce(jsonb_agg(msgr_template_json(t)"
    " ORDER BY lower(t.name)), '[]')::text"
    " FROM msgr_templates t WHERE t.school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* one row: whether it is there, its JSON, its ETag */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template = {
    "msgr_template",
    "SELECT 1, msgr_template_json(t)::text, " NGX_HTTP_MSGR_TPL_ETAG
    " FROM msgr_templates t"
    " WHERE t.school_id = $1 AND t.template_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* what a change is judged by: the school's attributes, the template */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template_load = {
    "msgr_template_load",
    "SELECT jsonb_build_object("
    "  'attributes', (SELECT coalesce(jsonb_object_agg(a.name,"
    "     a.default_value), '{}') FROM msgr_contact_attributes a"
    "     WHERE a.school_id = $1),"
    "  'template', (SELECT msgr_template_json(t) FROM msgr_templates t"
    "     WHERE t.school_id = $1 AND t.template_id = $2))::text",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* JSON NULL: the name is taken */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template_add = {
    "msgr_template_add",
    "WITH ins AS ("
    "  INSERT INTO msgr_templates AS t"
    "         (school_id, kind, name, category, channels, subject, body,"
    "          sms_body, voice_body, changed_by)"
    "  VALUES ($1, $2, $3, coalesce($4, ''), coalesce($5::text[], '{}'),"
    "          $6, $7, $8, $9, $10)"
    "  ON CONFLICT (school_id, lower(name)) DO NOTHING"
    "  RETURNING msgr_template_json(t)::text AS j,"
    "            " NGX_HTTP_MSGR_TPL_ETAG " AS e)"
    " SELECT 1, (SELECT j FROM ins), (SELECT e FROM ins)",
    10, NGX_HTTP_MSGR_PG_WRITE, 0
};

/*
 * $3 to $7: kind, name, category, channels, body, NULL to keep; $8 to
 * $10: subject, sms_body, voice_body, set when named in $11; $12
 * If-Match, compared in the UPDATE's own WHERE.  JSON NULL: If-Match names
 * another version.  The trigger keeps the version replaced (sql/0015).
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template_edit = {
    "msgr_template_edit",
    "WITH cur AS ("
    "  SELECT 1 FROM msgr_templates t"
    "   WHERE t.school_id = $1 AND t.template_id = $2),"
    " upd AS ("
    "  UPDATE msgr_templates AS t"
    "     SET kind = coalesce($3, t.kind), name = coalesce($4, t.name),"
    "         category = coalesce($5, t.category),"
    "         channels = coalesce($6::text[], t.channels),"
    "         body = coalesce($7, t.body),"
    "         subject = CASE WHEN 'subject' = ANY ($11::text[])"
    "                   THEN $8 ELSE t.subject END,"
    "         sms_body = CASE WHEN 'sms_body' = ANY ($11::text[])"
    "                    THEN $9 ELSE t.sms_body END,"
    "         voice_body = CASE WHEN 'voice_body' = ANY ($11::text[])"
    "                      THEN $10 ELSE t.voice_body END,"
    "         change = 'edited', changed_by = $13"
    "   WHERE t.school_id = $1 AND t.template_id = $2"
    "     AND ($12::text IS NULL OR $12 = '*'"
    "          OR $12 = " NGX_HTTP_MSGR_TPL_ETAG ")"
    "  RETURNING msgr_template_json(t)::text AS j,"
    "            " NGX_HTTP_MSGR_TPL_ETAG " AS e)"
    " SELECT (SELECT count(*) FROM cur), upd.j, upd.e"
    "   FROM (SELECT 1) AS one LEFT JOIN upd ON true",
    13, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template_del = {
    "msgr_template_del",
    "DELETE FROM msgr_templates"
    " WHERE school_id = $1 AND template_id = $2 RETURNING 1",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_template_versions = {
    "msgr_template_versions",
    "SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object("
    "   'version', v.version, 'kind', v.kind, 'name', v.name,"
    "   'category', v.category, 'channels', to_jsonb(v.channels),"
    "   'subject', v.subject, 'body', v.body, 'sms_body', v.sms_body,"
    "   'voice_body', v.voice_body, 'library_version', v.library_version,"
    "   'change', v.change, 'changed_by', v.changed_by,"
    "   'changed_at', " NGX_HTTP_MSGR_TIME("v.changed_at") ")"
    "   ORDER BY v.version DESC), '[]')"
    "   FROM msgr_template_versions v"
    "  WHERE v.school_id = t.school_id"
    "    AND v.template_id = t.template_id)::text"
    " FROM msgr_templates t"
    " WHERE t.school_id = $1 AND t.template_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $2: the library (msgr_library) */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_library = {
    "msgr_library",
    "SELECT msgr_library_json($1, $2::jsonb)::text",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $3: only say what it would do */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_library_copy = {
    "msgr_library_copy",
    "SELECT msgr_library_copy($1, $2::jsonb, $3::boolean, $4)::text",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_templates_stmts[] = {
    &ngx_http_msgr_stmt_templates,
    &ngx_http_msgr_stmt_template,
    &ngx_http_msgr_stmt_template_load,
    &ngx_http_msgr_stmt_template_add,
    &ngx_http_msgr_stmt_template_edit,
    &ngx_http_msgr_stmt_template_del,
    &ngx_http_msgr_stmt_template_versions,
    &ngx_http_msgr_stmt_library,
    &ngx_http_msgr_stmt_library_copy,
    NULL
};




/* GET /v1/templates */

static void
ngx_http_msgr_templates(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_templates,
                               ngx_http_msgr_items_done);
}


/* {"items": the array of column 0} */

static void
ngx_http_msgr_items_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *items;
    ngx_http_request_t  *r;

    r = q->data;

    items = ngx_http_msgr_result_json(r, q);
    if (items == NULL) {
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
                            json_pack("{s:O}", "items", items));
}


/* GET /v1/templates/{id} */

static void
ngx_http_msgr_template(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ctx->not_found = NGX_HTTP_MSGR_NO_TEMPLATE;

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_template,
                                  ngx_http_msgr_item_done);
}


/* GET /v1/templates/{id}/versions */

static void
ngx_http_msgr_template_versions(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    ctx->not_found = NGX_HTTP_MSGR_NO_TEMPLATE;

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_template_versions,
                                  ngx_http_msgr_items_done);
}


/* POST /v1/templates, PATCH and DELETE /v1/templates/{id} */

static void
ngx_http_msgr_template_change(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    json_t                      *body, *errors;
    ngx_http_msgr_tpl_change_t  *tc;

    static const char *const  allowed[] = {
        "kind", "name", "category", "channels", "subject", "body",
        "sms_body", "voice_body", NULL
    };

    tc = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_tpl_change_t));
    if (tc == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = tc;
    ctx->not_found = NGX_HTTP_MSGR_NO_TEMPLATE;
    ctx->taken = "the school has a template of that name already (names "
                 "are compared without case)";

    if (r->method != NGX_HTTP_POST) {
        tc->id = ngx_http_msgr_id(&ctx->args[0]);

        if (tc->id == 0) {
            ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                                  NGX_HTTP_MSGR_NO_TEMPLATE, NULL);
            return;
        }
    }

    if (r->method != NGX_HTTP_DELETE) {
        /* a PATCH is a merge patch: a member left out keeps its value */
        body = ngx_http_msgr_read_fields_as(r, r->method == NGX_HTTP_PATCH,
                                            allowed, &errors);
        if (body == NULL) {
            return;
        }

        ngx_http_msgr_template_check(body, r->method == NGX_HTTP_POST,
                                     errors);

        if (r->method == NGX_HTTP_PATCH && json_object_size(body) == 0) {
            ngx_http_msgr_field_error(errors, "body",
                                      "give at least one field to change");
        }

        tc->body = body;
        tc->errors = errors;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_template_load);
}


/* the fields given, by the one text rule; null clears an optional text */

static void
ngx_http_msgr_template_check(json_t *body, ngx_uint_t post, json_t *errors)
{
    size_t          i;
    json_t         *v, *c;
    ngx_uint_t      seen;
    const char     *s;
    msgr_channel_e  ch;

    typedef struct {
        const char  *field;
        size_t       max;
        unsigned     flags;
        unsigned     required:1;   /* on POST; never null */
    } text_t;

    static const text_t  texts[] = {
        { "name", NGX_HTTP_MSGR_TPL_NAME_MAX, MSGR_TEXT_REQUIRED, 1 },
        { "category", NGX_HTTP_MSGR_TPL_CATEGORY_MAX, 0, 0 },
        { "subject", NGX_HTTP_MSGR_TPL_SUBJECT_MAX, MSGR_TEXT_REQUIRED, 0 },
        { "body", NGX_HTTP_MSGR_TPL_BODY_MAX,
          MSGR_TEXT_REQUIRED|MSGR_TEXT_MULTILINE, 1 },
        { "sms_body", NGX_HTTP_MSGR_TPL_SMS_MAX,
          MSGR_TEXT_REQUIRED|MSGR_TEXT_MULTILINE, 0 },
        { "voice_body", NGX_HTTP_MSGR_TPL_VOICE_MAX,
          MSGR_TEXT_REQUIRED|MSGR_TEXT_MULTILINE, 0 },
        { NULL, 0, 0, 0 }
    };
    const text_t  *t;

    v = json_object_get(body, "kind");
    s = json_string_value(v);

    if (v == NULL ? post
        : (s == NULL || (ngx_strcmp(s, "saved_message") != 0
                         && ngx_strcmp(s, "letter") != 0)))
    {
        ngx_http_msgr_field_error(errors, "kind",
                                  "must be saved_message or letter");
    }

    for (t = texts; t->field; t++) {
        v = json_object_get(body, t->field);

        if (v == NULL) {
            if (post && t->required) {
                ngx_http_msgr_field_error(errors, t->field, "is required");
            }

            continue;
        }

        if (json_is_null(v) && !t->required) {
            continue;
        }

        (void) ngx_http_msgr_text_field(v, t->field, t->max, t->flags,
                                        errors);
    }

    v = json_object_get(body, "channels");
    seen = 0;

    if (v != NULL && !json_is_null(v) && !json_is_array(v)) {
        ngx_http_msgr_field_error(errors, "channels",
                                  "must be a list of: xpressions, sms, "
                                  "voice, email");
    }

    json_array_foreach(v, i, c) {
        s = json_string_value(c);

        if (s == NULL || msgr_channel_parse(s, &ch) != 0
            || (seen & (1u << ch)))
        {
            ngx_http_msgr_field_error(errors, "channels",
                                      "must be a list of: xpressions, sms, "
                                      "voice, email, each once");
            break;
        }

        seen |= 1u << ch;
    }
}


static void
ngx_http_msgr_template_load(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *settings)
{
    ngx_http_msgr_pg_query_t    *q;
    ngx_http_msgr_tpl_change_t  *tc;

    tc = ctx->data;

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_template_load,
                            ngx_http_msgr_template_loaded);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || (tc->id && ngx_http_msgr_pg_param_int(q, 1, tc->id)
                            != NGX_OK)))
    {
        q = NULL;
    }

    (void) settings;
    (void) ngx_http_msgr_run(r, q);
}


static void
ngx_http_msgr_template_loaded(ngx_http_msgr_pg_query_t *q)
{
    json_t                      *doc, *current;
    ngx_http_request_t          *r;
    ngx_http_msgr_ctx_t         *ctx;
    ngx_http_msgr_tpl_change_t  *tc;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    tc = ctx->data;

    doc = ngx_http_msgr_result_json(r, q);
    if (doc == NULL) {
        return;
    }

    current = json_object_get(doc, "template");

    if (tc->id && !json_is_object(current)) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              NGX_HTTP_MSGR_NO_TEMPLATE, NULL);
        return;
    }

    if (ngx_http_msgr_template_may(r, ctx, current, tc->body) != NGX_OK) {
        return;
    }

    if (tc->body != NULL) {
        ngx_http_msgr_template_tokens(ctx, json_object_get(doc, "attributes"),
                                      tc->body, tc->errors);

        if (json_array_size(tc->errors)) {
            ngx_http_msgr_invalid(r, tc->errors);
            return;
        }
    }

    ngx_http_msgr_template_write(r, ctx, tc);
}


/*
 * Who edits: administrators always; a letter (before or after the change)
 * other keys too when sending.allow_template_edit_on_compose is on; a
 * saved message any key.  NGX_DECLINED: the client has its 403.
 */

static ngx_int_t
ngx_http_msgr_template_may(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    json_t *current, json_t *body)
{
    const char  *was, *will;

    was = json_string_value(json_object_get(current, "kind"));
    will = json_string_value(json_object_get(body, "kind"));

    if (ctx->role == NGX_HTTP_MSGR_ROLE_ADMIN
        || ((was == NULL || ngx_strcmp(was, "letter") != 0)
            && (will == NULL || ngx_strcmp(will, "letter") != 0))
        || msgr_settings_bool(ctx->settings, "sending",
                              "allow_template_edit_on_compose"))
    {
        return NGX_OK;
    }

    ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "template-edit-forbidden",
                          "letter templates are edited by administrators; "
                          "other keys may edit them only when the Sending "
                          "setting sending.allow_template_edit_on_compose "
                          "is on",
                          json_pack("[{s:s, s:s}]", "field",
                                    "sending.allow_template_edit_on_compose",
                                    "message", "is off"));
    return NGX_DECLINED;
}


/* the texts' merge tokens, as a message's (src/msgr_compose.c) */

static void
ngx_http_msgr_template_tokens(ngx_http_msgr_ctx_t *ctx, json_t *attributes,
    json_t *body, json_t *errors)
{
    char        *why;
    json_t      *nobody, *school, *names, *v;

    static const char *const  texts[] = {
        "subject", "body", "sms_body", "voice_body", NULL
    };
    const char *const        *t;

    nobody = json_object();
    school = msgr_template_school_tokens(ctx->settings);
    names = (nobody && school)
            ? msgr_template_contact_tokens(nobody, attributes, school)
            : NULL;

    json_decref(nobody);
    json_decref(school);

    if (names == NULL) {
        ngx_http_msgr_field_error(errors, "body", "could not be checked");
        return;
    }

    for (t = texts; *t; t++) {
        v = json_object_get(body, *t);

        if (!json_is_string(v)) {
            continue;
        }

        why = msgr_template_check(json_string_value(v),
                                  json_string_length(v), names);
        if (why != NULL) {
            ngx_http_msgr_field_error(errors, *t, why);
            free(why);
        }
    }

    json_decref(names);
}


/* a string member as the i-th parameter; absent or null: NULL */

static ngx_int_t
ngx_http_msgr_template_param(ngx_http_msgr_pg_query_t *q, ngx_uint_t i,
    json_t *body, const char *field)
{
    json_t  *v;

    v = json_object_get(body, field);

    if (json_is_array(v)) {
        return ngx_http_msgr_param_text_array(q, i, v);
    }

    if (!json_is_string(v)) {
        return NGX_OK;
    }

    return ngx_http_msgr_pg_param(q, i, (u_char *) json_string_value(v),
                                  json_string_length(v));
}


static void
ngx_http_msgr_template_write(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    ngx_http_msgr_tpl_change_t *tc)
{
    json_t                    *b, *given;
    ngx_int_t                  rc;
    ngx_uint_t                 i, k;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  post[] = {
        "kind", "name", "category", "channels", "subject", "body",
        "sms_body", "voice_body", NULL
    };
    static const char *const  patch[] = {
        "kind", "name", "category", "channels", "body", "subject",
        "sms_body", "voice_body", NULL
    };

    b = tc->body;

    if (b == NULL) {
        q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_template_del,
                                ngx_http_msgr_no_content_done);

        if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
                  || ngx_http_msgr_pg_param_int(q, 1, tc->id) != NGX_OK))
        {
            q = NULL;
        }

        (void) ngx_http_msgr_run(r, q);
        return;
    }

    q = ngx_http_msgr_query(r, tc->id ? &ngx_http_msgr_stmt_template_edit
                                      : &ngx_http_msgr_stmt_template_add,
                            ngx_http_msgr_item_done);
    if (q == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_msgr_pg_param_int(q, 0, ctx->school_id);

    if (tc->id == 0) {
        for (i = 0; post[i]; i++) {
            rc |= ngx_http_msgr_template_param(q, i + 1, b, post[i]);
        }

        rc |= ngx_http_msgr_pg_param(q, 9, (u_char *) ctx->key.id,
                                     ngx_strlen(ctx->key.id));

    } else {
        rc |= ngx_http_msgr_pg_param_int(q, 1, tc->id);

        for (i = 0; patch[i]; i++) {
            rc |= ngx_http_msgr_template_param(q, i + 2, b, patch[i]);
        }

        /* the optional texts the patch names, null ones included */
        given = json_array();
        rc |= ngx_http_msgr_json_keep(r, given);

        for (k = 5; patch[k]; k++) {
            if (json_object_get(b, patch[k])) {
                json_array_append_new(given, json_string(patch[k]));
            }
        }

        rc |= ngx_http_msgr_param_text_array(q, 10, given);

        if (r->headers_in.if_match) {
            rc |= ngx_http_msgr_pg_param(q, 11,
                                         r->headers_in.if_match->value.data,
                                         r->headers_in.if_match->value.len);
        }

        rc |= ngx_http_msgr_pg_param(q, 12, (u_char *) ctx->key.id,
                                     ngx_strlen(ctx->key.id));
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


/*
 * GET /v1/templates/library: the library with each template's state here;
 * POST /v1/templates/library/copy?dry_run=true: brings it in (sql/0015)
 */

static void
ngx_http_msgr_library(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_str_t                  dry;
    ngx_uint_t                 copy;
    ngx_http_msgr_pg_query_t  *q;

    copy = (r->method == NGX_HTTP_POST);

    if (ctx->conf->library.data == NULL) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "this server has no template library: its "
                              "configuration has no msgr_library", NULL);
        return;
    }

    ngx_str_set(&dry, "false");

    if (copy && ngx_http_msgr_arg(r, "dry_run", &dry) == NGX_OK
        && !(dry.len == 4 && ngx_strncmp(dry.data, "true", 4) == 0)
        && !(dry.len == 5 && ngx_strncmp(dry.data, "false", 5) == 0))
    {
        ngx_http_msgr_bad_arg(r, "dry_run", "must be true or false");
        return;
    }

    q = ngx_http_msgr_query(r, copy ? &ngx_http_msgr_stmt_library_copy
                                    : &ngx_http_msgr_stmt_library,
                            ngx_http_msgr_json_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, ctx->conf->library.data,
                                        ctx->conf->library.len) != NGX_OK
              || (copy && (ngx_http_msgr_pg_param(q, 2, dry.data, dry.len)
                           != NGX_OK
                           || ngx_http_msgr_pg_param(q, 3,
                                  (u_char *) ctx->key.id,
                                  ngx_strlen(ctx->key.id)) != NGX_OK))))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}

/*
 * msgr: contact attributes, the school's custom merge tokens.
 *
 *   GET    /v1/contact-attributes
 *   POST   /v1/contact-attributes             {"name", "default_value"}
 *   GET    /v1/contact-attributes/{id}         with its ETag
 *   PATCH  /v1/contact-attributes/{id}         If-Match honoured
 *   DELETE /v1/contact-attributes/{id}
 *   DELETE /v1/contact-attributes?id=1&id=2    all or nothing
 *   PUT    /v1/contacts/{id}/attributes/{id}   {"value"}: the contact's own
 *   DELETE /v1/contacts/{id}/attributes/{id}   back to the default
 *   GET    /v1/contacts/{id}/tokens            what a message merges
 *
 * Names are unique per school, whatever their case.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "msgr_text.h"
#include "msgr_template.h"
#include "ngx_http_msgr_attributes.h"


static void ngx_http_msgr_attributes(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_attribute_add(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_attribute_delete(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_attribute(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_attribute_edit(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_contact_attribute(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_contact_tokens(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_attributes_routes[] = {

    { NGX_HTTP_MSGR_READ, "v1/contact-attributes", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_attributes },

    { NGX_HTTP_POST, "v1/contact-attributes", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_attribute_add },

    { NGX_HTTP_DELETE, "v1/contact-attributes", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_attribute_delete },

    { NGX_HTTP_MSGR_READ, "v1/contact-attributes/{}",
      NGX_HTTP_MSGR_ROLE_ANY, ngx_http_msgr_attribute },

    { NGX_HTTP_PATCH, "v1/contact-attributes/{}", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_attribute_edit },

    { NGX_HTTP_DELETE, "v1/contact-attributes/{}", NGX_HTTP_MSGR_ROLE_ADMIN,
      ngx_http_msgr_attribute_delete },

    { NGX_HTTP_PUT|NGX_HTTP_DELETE, "v1/contacts/{}/attributes/{}",
      NGX_HTTP_MSGR_ROLE_ADMIN|NGX_HTTP_MSGR_ROLE_STAFF,
      ngx_http_msgr_contact_attribute },

    { NGX_HTTP_MSGR_READ, "v1/contacts/{}/tokens", NGX_HTTP_MSGR_ROLE_ANY,
      ngx_http_msgr_contact_tokens },

    { 0, NULL, 0, NULL }
};


#define NGX_HTTP_MSGR_ATTR_NAME_MAX   100
#define NGX_HTTP_MSGR_ATTR_VALUE_MAX  1000

#define NGX_HTTP_MSGR_NO_ATTRIBUTE    "no such contact attribute"
#define NGX_HTTP_MSGR_ATTR_TAKEN                                             \
    "the school has a contact attribute of that name already (names are "    \
    "compared without case)"


static void ngx_http_msgr_attributes_done(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_attributes_deleted(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_tokens_done(ngx_http_msgr_pg_query_t *q);


#define NGX_HTTP_MSGR_ATTR_JSON                                              \
    "jsonb_build_object('id', a.attribute_id, 'name', a.name,"               \
    " 'default_value', a.default_value, 'created_at', "                      \
    NGX_HTTP_MSGR_TIME("a.created_at") ")::text"


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attributes = {
    "msgr_attributes",
    "SELECT coalesce(jsonb_agg(jsonb_build_object('id', a.attribute_id,"
    " 'name', a.name, 'default_value', a.default_value, 'created_at', "
    NGX_HTTP_MSGR_TIME("a.created_at") ")"
    " ORDER BY lower(a.name)), '[]')::text"
    " FROM msgr_contact_attributes a WHERE a.school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

#define NGX_HTTP_MSGR_ATTR_ETAG  "'\"' || a.xmin || '\"'"

/*
 * These answer one row: whether the attribute is there, its JSON and its
 * ETag (the row version's transaction id, which every change replaces).
 */

/* JSON NULL: the name is taken */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attribute_add = {
    "msgr_attribute_add",
    "WITH ins AS ("
    "  INSERT INTO msgr_contact_attributes AS a"
    "         (school_id, name, default_value) VALUES ($1, $2, $3)"
    "  ON CONFLICT (school_id, lower(name)) DO NOTHING"
    "  RETURNING " NGX_HTTP_MSGR_ATTR_JSON " AS j,"
    "            " NGX_HTTP_MSGR_ATTR_ETAG " AS e)"
    " SELECT 1, (SELECT j FROM ins), (SELECT e FROM ins)",
    3, NGX_HTTP_MSGR_PG_WRITE, 0
};

/*
 * $3, $4: the new name and default, NULL to keep; $5: If-Match.  JSON NULL:
 * If-Match names another version.  If-Match is compared in the UPDATE's own
 * WHERE: when the row lock had to be waited for, against the row as the
 * other writer left it, never against an older snapshot.
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attribute_edit = {
    "msgr_attribute_edit",
    "WITH cur AS ("
    "  SELECT 1 FROM msgr_contact_attributes a"
    "   WHERE a.school_id = $1 AND a.attribute_id = $2),"
    " upd AS ("
    "  UPDATE msgr_contact_attributes AS a"
    "     SET name = coalesce($3, a.name),"
    "         default_value = coalesce($4, a.default_value)"
    "   WHERE a.school_id = $1 AND a.attribute_id = $2"
    "     AND ($5::text IS NULL OR $5 = '*'"
    "          OR $5 = " NGX_HTTP_MSGR_ATTR_ETAG ")"
    "  RETURNING " NGX_HTTP_MSGR_ATTR_JSON " AS j,"
    "            " NGX_HTTP_MSGR_ATTR_ETAG " AS e)"
    " SELECT (SELECT count(*) FROM cur), upd.j, upd.e"
    "   FROM (SELECT 1) AS one LEFT JOIN upd ON true",
    5, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attribute = {
    "msgr_attribute",
    "SELECT 1, " NGX_HTTP_MSGR_ATTR_JSON ", " NGX_HTTP_MSGR_ATTR_ETAG
    " FROM msgr_contact_attributes a"
    " WHERE a.school_id = $1 AND a.attribute_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/*
 * Deletes all of $2 or none: one row, the ids that are not this school's
 * (NULL when there are none and all went).
 */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attribute_del = {
    "msgr_attribute_del",
    "WITH want AS (SELECT DISTINCT unnest($2::bigint[]) AS id),"
    " missing AS (SELECT id FROM want WHERE id NOT IN"
    "   (SELECT attribute_id FROM msgr_contact_attributes"
    "     WHERE school_id = $1)),"
    " gone AS (DELETE FROM msgr_contact_attributes"
    "   WHERE school_id = $1 AND attribute_id IN (SELECT id FROM want)"
    "     AND NOT EXISTS (SELECT 1 FROM missing) RETURNING 1)"
    " SELECT (SELECT jsonb_agg(id ORDER BY id) FROM missing)::text,"
    "        (SELECT count(*) FROM gone)",
    2, NGX_HTTP_MSGR_PG_WRITE, 0
};

/* $4 NULL: back to the default.  No row: no such contact or attribute */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_attribute_value = {
    "msgr_attribute_value",
    "WITH ok AS ("
    "  SELECT 1 FROM msgr_contact_attributes a, msgr_contacts c"
    "   WHERE a.school_id = $1 AND a.attribute_id = $2"
    "     AND c.school_id = $1 AND c.contact_id = $3"
    "     AND c.retired_at IS NULL),"
    " del AS ("
    "  DELETE FROM msgr_contact_attribute_values"
    "   WHERE $4::text IS NULL AND school_id = $1 AND attribute_id = $2"
    "     AND contact_id = $3 AND EXISTS (SELECT 1 FROM ok)),"
    " ins AS ("
    "  INSERT INTO msgr_contact_attribute_values"
    "         (school_id, attribute_id, contact_id, value)"
    "  SELECT $1, $2, $3, $4 FROM ok WHERE $4::text IS NOT NULL"
    "  ON CONFLICT (school_id, attribute_id, contact_id)"
    "  DO UPDATE SET value = excluded.value)"
    " SELECT 1 FROM ok",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_tokens = {
    "msgr_tokens",
    "SELECT jsonb_build_object("
    "  'contact', msgr_contact_json(c),"
    "  'attributes', (SELECT coalesce(jsonb_object_agg(a.name,"
    "     coalesce(v.value, a.default_value)), '{}')"
    "     FROM msgr_contact_attributes a"
    "     LEFT JOIN msgr_contact_attribute_values v"
    "       ON v.school_id = a.school_id"
    "      AND v.attribute_id = a.attribute_id"
    "      AND v.contact_id = c.contact_id"
    "    WHERE a.school_id = c.school_id))::text"
    " FROM msgr_contacts c"
    " WHERE c.school_id = $1 AND c.contact_id = $2 AND c.retired_at IS NULL",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};


/* the resource's statements: ids are given when the module starts */
ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_attributes_stmts[] = {
    &ngx_http_msgr_stmt_attributes,
    &ngx_http_msgr_stmt_attribute_add,
    &ngx_http_msgr_stmt_attribute_edit,
    &ngx_http_msgr_stmt_attribute,
    &ngx_http_msgr_stmt_attribute_del,
    &ngx_http_msgr_stmt_attribute_value,
    &ngx_http_msgr_stmt_tokens,
    NULL
};




static void
ngx_http_msgr_check_name(json_t *v, json_t *errors)
{
    const char  *s;

    if (ngx_http_msgr_text_field(v, "name", NGX_HTTP_MSGR_ATTR_NAME_MAX,
                                 MSGR_TEXT_REQUIRED, errors)
        != NGX_OK)
    {
        return;
    }

    s = json_string_value(v);

    if (strpbrk(s, "{}")) {
        ngx_http_msgr_field_error(errors, "name",
                                  "must not contain { or }");
        return;
    }

    /* the tokens every contact has (src/msgr_template.c) */
    if (msgr_template_reserved(s, json_string_length(v))) {
        ngx_http_msgr_field_error(errors, "name",
                                  "is a token every contact has; "
                                  "choose another name");
    }
}


static void
ngx_http_msgr_check_value(json_t *v, const char *field, json_t *errors)
{
    (void) ngx_http_msgr_text_field(v, field, NGX_HTTP_MSGR_ATTR_VALUE_MAX,
                                    0, errors);
}


/* GET /v1/contact-attributes */

static void
ngx_http_msgr_attributes(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_attributes,
                               ngx_http_msgr_attributes_done);
}


static void
ngx_http_msgr_attributes_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *items;
    json_error_t         err;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    items = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
                            items ? json_pack("{s:o}", "items", items)
                                  : NULL);
}


/* POST /v1/contact-attributes */

static void
ngx_http_msgr_attribute_add(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    json_t                    *body, *errors, *name, *def;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "name", "default_value", NULL };

    body = ngx_http_msgr_read_fields(r, allowed, &errors);
    if (body == NULL) {
        return;
    }

    ctx->taken = NGX_HTTP_MSGR_ATTR_TAKEN;

    name = json_object_get(body, "name");
    def = json_object_get(body, "default_value");

    if (name == NULL) {
        ngx_http_msgr_field_error(errors, "name", "is required");

    } else {
        ngx_http_msgr_check_name(name, errors);
    }

    if (def) {
        ngx_http_msgr_check_value(def, "default_value", errors);
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_attribute_add,
                            ngx_http_msgr_item_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param(q, 1, (u_char *) json_string_value(name),
                                  json_string_length(name)) != NGX_OK
        || ngx_http_msgr_pg_param(q, 2,
                                  (u_char *) (def ? json_string_value(def)
                                                  : ""),
                                  def ? json_string_length(def) : 0)
           != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


/* PATCH /v1/contact-attributes/{id} */

static void
ngx_http_msgr_attribute_edit(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    id;
    json_t                    *body, *errors, *name, *def;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "name", "default_value", NULL };

    id = ngx_http_msgr_id(&ctx->args[0]);

    if (id == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              NGX_HTTP_MSGR_NO_ATTRIBUTE, NULL);
        return;
    }

    /* a merge patch: a member left out keeps its value */
    body = ngx_http_msgr_read_fields_as(r, 1, allowed, &errors);
    if (body == NULL) {
        return;
    }

    ctx->not_found = NGX_HTTP_MSGR_NO_ATTRIBUTE;
    ctx->taken = NGX_HTTP_MSGR_ATTR_TAKEN;

    name = json_object_get(body, "name");
    def = json_object_get(body, "default_value");

    if (name) {
        ngx_http_msgr_check_name(name, errors);
    }

    if (def) {
        ngx_http_msgr_check_value(def, "default_value", errors);
    }

    if (name == NULL && def == NULL && json_array_size(errors) == 0) {
        ngx_http_msgr_field_error(errors, "name",
                                  "give name, default_value or both");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_attribute_edit,
                            ngx_http_msgr_item_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK
        || (name && ngx_http_msgr_pg_param(q, 2,
                        (u_char *) json_string_value(name),
                        json_string_length(name)) != NGX_OK)
        || (def && ngx_http_msgr_pg_param(q, 3,
                        (u_char *) json_string_value(def),
                        json_string_length(def)) != NGX_OK)
        || (r->headers_in.if_match
            && ngx_http_msgr_pg_param(q, 4,
                                      r->headers_in.if_match->value.data,
                                      r->headers_in.if_match->value.len)
               != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


/* GET /v1/contact-attributes/{id} */

static void
ngx_http_msgr_attribute(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ctx->not_found = NGX_HTTP_MSGR_NO_ATTRIBUTE;

    ngx_http_msgr_query_school_id(r, &ngx_http_msgr_stmt_attribute,
                                  ngx_http_msgr_item_done);
}


/* DELETE /v1/contact-attributes/{id} and /v1/contact-attributes?id=... */

static void
ngx_http_msgr_attribute_delete(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    json_t                    *errors;
    int64_t                   *id;
    ngx_array_t                ids;
    ngx_http_msgr_pg_query_t  *q;

    static ngx_str_t  name = ngx_string("id");

    errors = json_array();

    if (ngx_http_msgr_json_keep(r, errors) != NGX_OK
        || ngx_array_init(&ids, r->pool, 4, sizeof(int64_t)) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->nargs) {
        id = ngx_array_push(&ids);
        if (id == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        *id = ngx_http_msgr_id(&ctx->args[0]);

        if (*id == 0) {
            ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                                  NGX_HTTP_MSGR_NO_ATTRIBUTE, NULL);
            return;
        }

    } else if (ngx_http_msgr_ids_arg(r, &name, &ids, errors) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ids.nelts == 0 && json_array_size(errors) == 0) {
        ngx_http_msgr_field_error(errors, "id", "name the attributes to "
                                  "delete: ?id=1&id=2 or ?id=1,2");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_bad_args(r, errors);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_attribute_del,
                            ngx_http_msgr_attributes_deleted);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_param_ids(q, 1, &ids) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_attributes_deleted(ngx_http_msgr_pg_query_t *q)
{
    u_char               detail[256];
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (!PQgetisnull(q->result, 0, 0)) {
        ngx_snprintf(detail, sizeof(detail) - 1,
                     "no such contact attribute: %s; nothing was deleted%Z",
                     PQgetvalue(q->result, 0, 0));
        detail[sizeof(detail) - 1] = '\0';

        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, (char *) detail,
                              NULL);
        return;
    }

    ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT, &ngx_http_msgr_json_type,
                           NULL, 0);
}


/* PUT and DELETE /v1/contacts/{id}/attributes/{attribute} */

static void
ngx_http_msgr_contact_attribute(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    contact, attr;
    json_t                    *body, *errors, *value;
    ngx_http_msgr_pg_query_t  *q;

    static const char *const  allowed[] = { "value", NULL };

    contact = ngx_http_msgr_id(&ctx->args[0]);
    attr = ngx_http_msgr_id(&ctx->args[1]);

    if (contact == 0 || attr == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL,
                              "no such contact or contact attribute", NULL);
        return;
    }

    value = NULL;

    if (r->method == NGX_HTTP_PUT) {
        body = ngx_http_msgr_read_fields(r, allowed, &errors);
        if (body == NULL) {
            return;
        }

        value = json_object_get(body, "value");

        if (value == NULL) {
            ngx_http_msgr_field_error(errors, "value", "is required");

        } else {
            ngx_http_msgr_check_value(value, "value", errors);
        }

        if (json_array_size(errors)) {
            ngx_http_msgr_invalid(r, errors);
            return;
        }
    }

    ctx->not_found = "no such contact or contact attribute";

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_attribute_value,
                            ngx_http_msgr_no_content_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 1, attr) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 2, contact) != NGX_OK
        || (value && ngx_http_msgr_pg_param(q, 3,
                        (u_char *) json_string_value(value),
                        json_string_length(value)) != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


/* GET /v1/contacts/{id}/tokens */

static void
ngx_http_msgr_contact_tokens(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    contact;
    ngx_http_msgr_pg_query_t  *q;

    contact = ngx_http_msgr_id(&ctx->args[0]);

    if (contact == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_tokens,
                            ngx_http_msgr_tokens_done);

    if (q == NULL
        || ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
        || ngx_http_msgr_pg_param_int(q, 1, contact) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_query_run(r, q);
}


static void
ngx_http_msgr_tokens_done(ngx_http_msgr_pg_query_t *q)
{
    json_t              *doc, *contact, *tokens;
    json_error_t         err;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) != 1) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such contact",
                              NULL);
        return;
    }

    doc = json_loads(PQgetvalue(q->result, 0, 0), 0, &err);

    if (ngx_http_msgr_json_keep(r, doc) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    contact = json_object_get(doc, "contact");

    /* the school's tokens are not shown here */
    tokens = msgr_template_contact_tokens(contact,
                                          json_object_get(doc, "attributes"),
                                          NULL);
    if (tokens == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_json(r, NGX_HTTP_OK,
        json_pack("{s:O, s:o}", "contact_id",
                  json_object_get(contact, "id"), "tokens", tokens));
}

/*
 * msgr: Emergency & Voice pincodes (admin).
 *
 *   GET    /v1/pincodes                  the school's, without codes
 *   POST   /v1/pincodes                  a new one; its code answered once
 *   GET    /v1/pincodes/attempts         dial-in attempts from its numbers
 *   GET    /v1/pincodes/{id}             one, with its ETag
 *   PATCH  /v1/pincodes/{id}             If-Match honoured
 *   DELETE /v1/pincodes/{id}             If-Match honoured
 *   POST   /v1/pincodes/{id}/regenerate  a new code, answered once
 *
 * The code is msgr's (six random digits, libsodium), never the caller's;
 * only its Argon2id hash, made in the thread pool, is kept.  Every change
 * is audited (sql/0016_emergency.sql).  docs/emergency.md.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <sodium.h>

#include "ngx_http_msgr_request.h"
#include "ngx_http_msgr_query.h"
#include "ngx_http_msgr_thread.h"
#include "ngx_http_msgr_settings.h"
#include "ngx_http_msgr_pincodes.h"
#include "msgr_phone.h"
#include "msgr_settings.h"
#include "msgr_text.h"


#define NGX_HTTP_MSGR_PINCODE_DIGITS   6
#define NGX_HTTP_MSGR_LABEL_MAX        100
#define NGX_HTTP_MSGR_SCRIPT_MAX       1000
#define NGX_HTTP_MSGR_NUMBERS_MAX      100
#define NGX_HTTP_MSGR_OPTIONS_MAX      9


static void ngx_http_msgr_pincodes(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_pincode(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_pincode_regenerate(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
static void ngx_http_msgr_pincode_attempts(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);


const ngx_http_msgr_route_t  ngx_http_msgr_pincodes_routes[] = {

    { NGX_HTTP_MSGR_READ|NGX_HTTP_POST, "v1/pincodes",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_pincodes },

    { NGX_HTTP_MSGR_READ, "v1/pincodes/attempts",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_pincode_attempts },

    { NGX_HTTP_MSGR_READ|NGX_HTTP_PATCH|NGX_HTTP_DELETE, "v1/pincodes/{}",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_pincode },

    { NGX_HTTP_POST, "v1/pincodes/{}/regenerate",
      NGX_HTTP_MSGR_ROLE_ADMIN, ngx_http_msgr_pincode_regenerate },

    { 0, NULL, 0, NULL }
};


static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pincodes = {
    "msgr_pincodes",
    "SELECT coalesce(jsonb_agg(msgr_pincode_json(p)"
    "                          ORDER BY p.pincode_id), '[]')::text"
    "  FROM msgr_pincodes p WHERE p.school_id = $1",
    1, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pincode = {
    "msgr_pincode",
    "SELECT jsonb_build_object('status', 200,"
    " 'pincode', msgr_pincode_json(p),"
    " 'etag', '\"' || p.version || '\"')::text"
    "  FROM msgr_pincodes p WHERE p.school_id = $1 AND p.pincode_id = $2",
    2, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};

/* $3 the pincode (NULL: a new one), $4 a new code's hash, $5 the fields */
static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pincode_save = {
    "msgr_pincode_save",
    "SELECT msgr_pincode_save($1, $2, $3, $4, $5::jsonb, $6)::text",
    6, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pincode_delete = {
    "msgr_pincode_delete",
    "SELECT msgr_pincode_delete($1, $2, $3, $4)",
    4, NGX_HTTP_MSGR_PG_WRITE, 0
};

static ngx_http_msgr_pg_stmt_t  ngx_http_msgr_stmt_pincode_attempts = {
    "msgr_pincode_attempts",
    "SELECT coalesce(jsonb_agg(jsonb_build_object("
    "   'id', a.attempt_id, 'number', a.number, 'channel', a.channel,"
    "   'outcome', a.outcome,"
    "   'pincode_id', (SELECT p.pincode_id FROM msgr_pincodes p"
    "                   WHERE p.school_id = $1"
    "                     AND p.pincode_id = a.pincode_id),"
    "   'at', " NGX_HTTP_MSGR_TIME("a.at") ")"
    "   ORDER BY a.attempt_id DESC), '[]')::text"
    "  FROM (SELECT * FROM msgr_dial_in_attempts"
    "         WHERE school_ids @> ARRAY[$1::bigint]"
    "           AND ($2::bigint IS NULL OR attempt_id < $2)"
    "         ORDER BY attempt_id DESC LIMIT $3) a",
    3, NGX_HTTP_MSGR_PG_IDEMPOTENT, 0
};


ngx_http_msgr_pg_stmt_t *const  ngx_http_msgr_pincodes_stmts[] = {
    &ngx_http_msgr_stmt_pincodes,
    &ngx_http_msgr_stmt_pincode,
    &ngx_http_msgr_stmt_pincode_save,
    &ngx_http_msgr_stmt_pincode_delete,
    &ngx_http_msgr_stmt_pincode_attempts,
    NULL
};


/* a write in progress: the checked fields and the new code */

typedef struct {
    int64_t                   id;          /* 0: a new pincode */
    json_t                   *body;
    json_t                   *errors;      /* the body's bad fields */
    json_t                   *doc;         /* what msgr_pincode_save sets */
    unsigned                  code:1;      /* a new code is made */
    char                      pin[NGX_HTTP_MSGR_PINCODE_DIGITS + 1];
    char                      hash[crypto_pwhash_STRBYTES];
    int                       rc;
} ngx_http_msgr_pincode_ctx_t;


static void ngx_http_msgr_pincode_write(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, int64_t id, ngx_uint_t code);
static void ngx_http_msgr_pincode_checked(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings);
static void ngx_http_msgr_pincode_numbers(json_t *v, const char *country,
    json_t *doc, json_t *errors);
static void ngx_http_msgr_pincode_options(json_t *v, json_t *doc,
    json_t *errors);
static void ngx_http_msgr_pincode_hash(void *data);
static void ngx_http_msgr_pincode_hashed(ngx_http_request_t *r, void *data);
static void ngx_http_msgr_pincode_saved(ngx_http_msgr_pg_query_t *q);
static void ngx_http_msgr_pincode_deleted(ngx_http_msgr_pg_query_t *q);
static ngx_uint_t ngx_http_msgr_pincode_refused(ngx_http_request_t *r,
    ngx_int_t status);
static void ngx_http_msgr_pincode_cleanup(void *data);


/* GET, POST /v1/pincodes */

static void
ngx_http_msgr_pincodes(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    if (r->method == NGX_HTTP_POST) {
        ngx_http_msgr_pincode_write(r, ctx, 0, 1);
        return;
    }

    ngx_http_msgr_query_school(r, &ngx_http_msgr_stmt_pincodes,
                               ngx_http_msgr_json_done);
}


/* GET, PATCH, DELETE /v1/pincodes/{id} */

static void
ngx_http_msgr_pincode(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    id;
    const char                *actor;
    ngx_http_msgr_pg_query_t  *q;

    id = ngx_http_msgr_id(&ctx->args[0]);

    if (id == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such pincode",
                              NULL);
        return;
    }

    if (r->method == NGX_HTTP_PATCH) {
        ngx_http_msgr_pincode_write(r, ctx, id, 0);
        return;
    }

    if (r->method == NGX_HTTP_DELETE) {
        actor = ctx->key.id;

        q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pincode_delete,
                                ngx_http_msgr_pincode_deleted);

        if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
                  || ngx_http_msgr_pg_param(q, 1, (u_char *) actor,
                                            ngx_strlen(actor)) != NGX_OK
                  || ngx_http_msgr_pg_param_int(q, 2, id) != NGX_OK
                  || (r->headers_in.if_match
                      && ngx_http_msgr_pg_param(q, 3,
                             r->headers_in.if_match->value.data,
                             r->headers_in.if_match->value.len) != NGX_OK)))
        {
            q = NULL;
        }

        (void) ngx_http_msgr_run(r, q);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pincode,
                            ngx_http_msgr_pincode_saved);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param_int(q, 1, id) != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* POST /v1/pincodes/{id}/regenerate */

static void
ngx_http_msgr_pincode_regenerate(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    int64_t  id;

    id = ngx_http_msgr_id(&ctx->args[0]);

    if (id == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such pincode",
                              NULL);
        return;
    }

    ngx_http_msgr_pincode_write(r, ctx, id, 1);
}


/* GET /v1/pincodes/attempts?before=&limit= */

static void
ngx_http_msgr_pincode_attempts(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx)
{
    int64_t                    before;
    ngx_http_msgr_pg_query_t  *q;

    if (ngx_http_msgr_page_args(r, ctx, &before) != NGX_OK) {
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pincode_attempts,
                            ngx_http_msgr_page_done);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || (before
                  && ngx_http_msgr_pg_param_int(q, 1, before) != NGX_OK)
              || ngx_http_msgr_pg_param_int(q, 2, ctx->limit)
                 != NGX_OK))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/*
 * A new pincode, a change or a new code: the body's fields are checked
 * once the school's country is known (its phone numbers are normalised
 * with it).
 */

static void
ngx_http_msgr_pincode_write(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    int64_t id, ngx_uint_t code)
{
    ngx_pool_cleanup_t           *cln;
    ngx_http_msgr_pincode_ctx_t  *pc;

    static const char *const  allowed[] = {
        "label", "permitted_numbers", "menu_script", "options", NULL
    };

    pc = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_pincode_ctx_t));
    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (pc == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln->handler = ngx_http_msgr_pincode_cleanup;
    cln->data = pc;

    pc->id = id;
    pc->code = code;
    ctx->data = pc;

    if (id && code) {
        /* regenerate: no body */
        ngx_http_msgr_offload(r, ctx, pc, ngx_http_msgr_pincode_hash,
                              ngx_http_msgr_pincode_hashed);
        return;
    }

    pc->body = ngx_http_msgr_read_fields_as(r, id != 0, allowed,
                                            &pc->errors);
    if (pc->body == NULL) {
        return;
    }

    ngx_http_msgr_settings_load(r, ctx, ngx_http_msgr_pincode_checked);
}


static void
ngx_http_msgr_pincode_checked(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, json_t *settings)
{
    json_t                       *errors, *v;
    const char                   *country;
    ngx_http_msgr_pincode_ctx_t  *pc;

    pc = ctx->data;
    errors = pc->errors;

    pc->doc = json_object();
    if (pc->doc == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    country = msgr_settings_string(settings, "school", "phone_country");

    v = json_object_get(pc->body, "label");

    if (v != NULL || pc->id == 0) {
        if (v == NULL) {
            ngx_http_msgr_field_error(errors, "label", "is required");

        } else if (ngx_http_msgr_text_field(v, "label",
                                            NGX_HTTP_MSGR_LABEL_MAX,
                                            MSGR_TEXT_REQUIRED, errors)
                   == NGX_OK)
        {
            json_object_set(pc->doc, "label", v);
        }
    }

    v = json_object_get(pc->body, "menu_script");

    if (v != NULL || pc->id == 0) {
        if (v == NULL) {
            ngx_http_msgr_field_error(errors, "menu_script", "is required");

        } else if (ngx_http_msgr_text_field(v, "menu_script",
                                            NGX_HTTP_MSGR_SCRIPT_MAX,
                                            MSGR_TEXT_REQUIRED
                                            |MSGR_TEXT_MULTILINE, errors)
                   == NGX_OK)
        {
            json_object_set(pc->doc, "menu_script", v);
        }
    }

    v = json_object_get(pc->body, "permitted_numbers");

    if (v != NULL || pc->id == 0) {
        ngx_http_msgr_pincode_numbers(v, country ? country : "GB", pc->doc,
                                      errors);
    }

    v = json_object_get(pc->body, "options");

    if (v != NULL || pc->id == 0) {
        ngx_http_msgr_pincode_options(v, pc->doc, errors);
    }

    if (pc->id && json_object_size(pc->body) == 0) {
        ngx_http_msgr_field_error(errors, "label",
                                  "give label, permitted_numbers, "
                                  "menu_script or options");
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_invalid(r, errors);
        return;
    }

    if (pc->code) {
        ngx_http_msgr_offload(r, ctx, pc, ngx_http_msgr_pincode_hash,
                              ngx_http_msgr_pincode_hashed);
        return;
    }

    ngx_http_msgr_pincode_hashed(r, pc);
}


/*
 * "permitted_numbers": "01632 960001, 07700 900123" (the form's text, a
 * comma and a space between numbers) or a list; each normalised to E.164
 * with the school's country, each bad one named.
 */

static void
ngx_http_msgr_pincode_numbers(json_t *v, const char *country, json_t *doc,
    json_t *errors)
{
    char         e164[MSGR_PHONE_E164_SIZE];
    u_char      *msg, field[48];
    size_t       i, n, len;
    json_t      *list, *item, *out;
    const char  *s, *p, *end, *why;

    static const char  bad[] = "must be a list of phone numbers, or "
                               "numbers separated by \", \"";

    if (v == NULL || json_is_null(v)) {
        json_object_set_new(doc, "permitted_numbers", json_array());
        return;
    }

    list = NULL;

    if (json_is_string(v)) {
        list = json_array();
        s = json_string_value(v);
        end = s + json_string_length(v);

        while (list && s < end) {
            for (p = s; p < end && *p != ','; p++) {
                /* void */
            }

            while (s < p && (*s == ' ' || *s == '\t')) {
                s++;
            }

            len = p - s;

            while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
                len--;
            }

            if (len) {
                json_array_append_new(list, json_stringn(s, len));
            }

            s = p + 1;
        }

    } else if (json_is_array(v)) {
        list = json_incref(v);
    }

    if (list == NULL) {
        ngx_http_msgr_field_error(errors, "permitted_numbers", bad);
        return;
    }

    n = json_array_size(list);

    if (n > NGX_HTTP_MSGR_NUMBERS_MAX) {
        ngx_http_msgr_field_error(errors, "permitted_numbers",
                                  "must be at most 100 numbers");
        json_decref(list);
        return;
    }

    out = json_array();

    json_array_foreach(list, i, item) {
        ngx_snprintf(field, sizeof(field) - 1, "permitted_numbers[%uz]%Z",
                     i);

        s = json_string_value(item);

        if (s == NULL || strlen(s) != json_string_length(item)) {
            ngx_http_msgr_field_error(errors, (char *) field, bad);
            continue;
        }

        if (msgr_phone_e164(s, country, e164, sizeof(e164), &why) != 0) {
            len = json_string_length(item) + ngx_strlen(why) + 40;
            msg = malloc(len);

            if (msg) {
                ngx_snprintf(msg, len - 1, "\"%s\" is not a phone number: "
                             "%s%Z", s, why);
            }

            ngx_http_msgr_field_error(errors, (char *) field,
                                      msg ? (char *) msg : why);
            free(msg);
            continue;
        }

        json_array_append_new(out, json_string(e164));
    }

    json_object_set_new(doc, "permitted_numbers", out);
    json_decref(list);
}


/*
 * "options": [{"digit": 1..9, "label", "channels": ["voice", "sms"],
 * "groups": [ids]}], at most 9, each digit once; the groups are checked to
 * be the school's by msgr_pincode_save().
 */

static void
ngx_http_msgr_pincode_options(json_t *v, json_t *doc, json_t *errors)
{
    u_char       field[48];
    size_t       i, j;
    json_t      *o, *x, *out, *opt, *channels, *groups;
    ngx_int_t    digit;
    const char  *key, *s;
    ngx_uint_t   seen;

    if (!json_is_array(v) || json_array_size(v) == 0
        || json_array_size(v) > NGX_HTTP_MSGR_OPTIONS_MAX)
    {
        ngx_http_msgr_field_error(errors, "options",
                                  "must be a list of 1 to 9 menu options");
        return;
    }

    out = json_array();
    seen = 0;

    json_array_foreach(v, i, o) {

        ngx_snprintf(field, sizeof(field) - 1, "options[%uz]%Z", i);

        if (!json_is_object(o)) {
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "must be an object with digit, "
                                      "label, channels and groups");
            continue;
        }

        json_object_foreach(o, key, x) {
            if (ngx_strcmp(key, "digit") != 0
                && ngx_strcmp(key, "label") != 0
                && ngx_strcmp(key, "channels") != 0
                && ngx_strcmp(key, "groups") != 0)
            {
                ngx_http_msgr_field_error(errors, (char *) field,
                                          "takes only digit, label, "
                                          "channels and groups");
                break;
            }
        }

        x = json_object_get(o, "digit");
        digit = json_is_integer(x) ? (ngx_int_t) json_integer_value(x) : 0;

        ngx_snprintf(field, sizeof(field) - 1, "options[%uz].digit%Z", i);

        if (digit < 1 || digit > 9) {
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "must be a digit from 1 to 9");

        } else if (seen & (1u << digit)) {
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "is used by another option");
        }

        seen |= (digit >= 1 && digit <= 9) ? (1u << digit) : 0;

        ngx_snprintf(field, sizeof(field) - 1, "options[%uz].label%Z", i);

        x = json_object_get(o, "label");

        if (x == NULL) {
            ngx_http_msgr_field_error(errors, (char *) field, "is required");

        } else {
            (void) ngx_http_msgr_text_field(x, (char *) field,
                                            NGX_HTTP_MSGR_LABEL_MAX,
                                            MSGR_TEXT_REQUIRED, errors);
        }

        ngx_snprintf(field, sizeof(field) - 1, "options[%uz].channels%Z", i);

        channels = json_object_get(o, "channels");

        if (channels == NULL || json_is_null(channels)) {
            channels = json_pack("[s]", "voice");

        } else if (!json_is_array(channels) || json_array_size(channels) == 0
                   || json_array_size(channels) > 2)
        {
            channels = NULL;

        } else {
            json_array_foreach(channels, j, x) {
                s = json_string_value(x);

                if (s == NULL
                    || (ngx_strcmp(s, "voice") != 0
                        && ngx_strcmp(s, "sms") != 0)
                    || (j == 1 && json_equal(x, json_array_get(channels, 0))))
                {
                    channels = NULL;
                    break;
                }
            }

            json_incref(channels);
        }

        if (channels == NULL) {
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "must be a list of voice, sms or both");
        }

        ngx_snprintf(field, sizeof(field) - 1, "options[%uz].groups%Z", i);

        groups = json_object_get(o, "groups");

        if (!json_is_array(groups) || json_array_size(groups) == 0
            || json_array_size(groups) > NGX_HTTP_MSGR_IDS_MAX)
        {
            ngx_http_msgr_field_error(errors, (char *) field,
                                      "must be a list of one or more of the "
                                      "school's group ids");
            groups = NULL;

        } else {
            json_array_foreach(groups, j, x) {
                if (!json_is_integer(x) || json_integer_value(x) < 1) {
                    ngx_http_msgr_field_error(errors, (char *) field,
                                              "must be a list of positive "
                                              "integer group ids");
                    groups = NULL;
                    break;
                }
            }
        }

        opt = json_pack("{s:I, s:O, s:o, s:O}", "digit", (json_int_t) digit,
                        "label", json_object_get(o, "label"),
                        "channels", channels ? channels : json_array(),
                        "groups", groups ? groups : json_null());

        json_array_append_new(out, opt);
    }

    json_object_set_new(doc, "options", out);
}


/* in a thread: a new code, six digits of libsodium's, and its hash */

static void
ngx_http_msgr_pincode_hash(void *data)
{
    ngx_http_msgr_pincode_ctx_t *pc = data;

    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_MSGR_PINCODE_DIGITS; i++) {
        pc->pin[i] = (char) ('0' + randombytes_uniform(10));
    }

    pc->pin[i] = '\0';

    pc->rc = crypto_pwhash_str_alg(pc->hash, pc->pin, i,
                                   crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                   crypto_pwhash_MEMLIMIT_INTERACTIVE,
                                   crypto_pwhash_ALG_ARGON2ID13);
}


static void
ngx_http_msgr_pincode_hashed(ngx_http_request_t *r, void *data)
{
    ngx_http_msgr_pincode_ctx_t *pc = data;

    const char                *actor;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_pg_query_t  *q;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    actor = ctx->key.id;

    if (pc->code && pc->rc != 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "msgr: a pincode could not be hashed (out of memory)");
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    q = ngx_http_msgr_query(r, &ngx_http_msgr_stmt_pincode_save,
                            ngx_http_msgr_pincode_saved);

    if (q && (ngx_http_msgr_pg_param_int(q, 0, ctx->school_id) != NGX_OK
              || ngx_http_msgr_pg_param(q, 1, (u_char *) actor,
                                        ngx_strlen(actor)) != NGX_OK
              || (pc->id
                  && ngx_http_msgr_pg_param_int(q, 2, pc->id) != NGX_OK)
              || (pc->code
                  && ngx_http_msgr_pg_param(q, 3, (u_char *) pc->hash,
                                            ngx_strlen(pc->hash)) != NGX_OK)
              || ngx_http_msgr_param_json(q, 4, pc->doc ? pc->doc
                                                        : json_object())
                 != NGX_OK
              || (r->headers_in.if_match
                  && ngx_http_msgr_pg_param(q, 5,
                         r->headers_in.if_match->value.data,
                         r->headers_in.if_match->value.len) != NGX_OK)))
    {
        q = NULL;
    }

    (void) ngx_http_msgr_run(r, q);
}


/* {"status", "pincode", "etag"} or {"status": 404 | 412 | 422, ...} */

static void
ngx_http_msgr_pincode_saved(ngx_http_msgr_pg_query_t *q)
{
    json_t                       *answer, *pincode;
    ngx_str_t                     etag;
    ngx_int_t                     status;
    ngx_http_request_t           *r;
    ngx_http_msgr_ctx_t          *ctx;
    ngx_http_msgr_pincode_ctx_t  *pc;

    r = q->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    pc = (r->method == NGX_HTTP_GET || r->method == NGX_HTTP_HEAD)
         ? NULL : ctx->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    if (PQntuples(q->result) == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such pincode",
                              NULL);
        return;
    }

    answer = ngx_http_msgr_result_json(r, q);
    if (answer == NULL) {
        return;
    }

    status = (ngx_int_t) json_integer_value(json_object_get(answer,
                                                            "status"));

    if (ngx_http_msgr_pincode_refused(r, status)) {
        return;
    }

    if (status == 422) {
        ngx_http_msgr_invalid(r, json_object_get(answer, "errors"));
        return;
    }

    pincode = json_object_get(answer, "pincode");

    /* the code, once: it is nowhere else */
    if (pc && pc->code) {
        json_object_set_new(pincode, "pincode", json_string(pc->pin));
        sodium_memzero(pc->pin, sizeof(pc->pin));
    }

    etag.data = (u_char *) json_string_value(json_object_get(answer,
                                                             "etag"));
    etag.len = etag.data ? ngx_strlen(etag.data) : 0;

    if (etag.len && ngx_http_msgr_etag(r, &etag) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (pc) {
        /* If-Match has been judged against the row itself */
        r->disable_not_modified = 1;
    }

    ngx_http_msgr_send_json(r, status, json_incref(pincode));
}


static void
ngx_http_msgr_pincode_deleted(ngx_http_msgr_pg_query_t *q)
{
    ngx_int_t            status;
    ngx_http_request_t  *r;

    r = q->data;

    if (!ngx_http_msgr_result_ok(r, q)) {
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(q->result, 0, 0),
                      PQgetlength(q->result, 0, 0));

    if (ngx_http_msgr_pincode_refused(r, status)) {
        return;
    }

    r->disable_not_modified = 1;
    ngx_http_msgr_send_raw(r, NGX_HTTP_NO_CONTENT, &ngx_http_msgr_json_type,
                           NULL, 0);
}


/* 404 or 412 from msgr_pincode_save() or _delete(): answered, 1 */

static ngx_uint_t
ngx_http_msgr_pincode_refused(ngx_http_request_t *r, ngx_int_t status)
{
    if (status == NGX_HTTP_NOT_FOUND) {
        ngx_http_msgr_problem(r, NGX_HTTP_NOT_FOUND, NULL, "no such pincode",
                              NULL);
        return 1;
    }

    if (status == NGX_HTTP_PRECONDITION_FAILED) {
        ngx_http_msgr_problem(r, NGX_HTTP_PRECONDITION_FAILED, NULL,
                              "the pincode has changed since the version "
                              "named in If-Match; read it again", NULL);
        return 1;
    }

    return 0;
}


static void
ngx_http_msgr_pincode_cleanup(void *data)
{
    ngx_http_msgr_pincode_ctx_t *pc = data;

    json_decref(pc->doc);
    sodium_memzero(pc->pin, sizeof(pc->pin));
}

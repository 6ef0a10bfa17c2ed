/*
 * msgr: what a request brings: its body as JSON, its query parameters (and
 * the check that they are text PostgreSQL takes), the fields of a JSON
 * object, the paging arguments, and the 400s that answer bad ones.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr_request.h"
#include "msgr_text.h"
#include "msgr_twilio.h"


#define NGX_HTTP_MSGR_PAGE_LIMIT  50
#define NGX_HTTP_MSGR_PAGE_MAX    200


static ngx_int_t ngx_http_msgr_unescape_arg(ngx_pool_t *pool, u_char *data,
    size_t len, ngx_str_t *value);
static void ngx_http_msgr_json_cleanup(void *data);


/*
 * A query parameter's value, or a header the API reads, as text: well-formed
 * UTF-8 and no NUL (nor, in a header, other control characters); NULL when
 * good, else why not.
 */

static const char *
ngx_http_msgr_text_error(u_char *data, size_t len, ngx_uint_t header)
{
    if (!msgr_utf8_valid((const char *) data, len)) {
        return MSGR_TEXT_UTF8;
    }

    if (ngx_strlchr(data, data + len, '\0') != NULL) {
        return MSGR_TEXT_NUL;
    }

    if (header && msgr_text_has_control((const char *) data, len)) {
        return MSGR_TEXT_CONTROL;
    }

    return NULL;
}


/*
 * The next "name=value" of the query string from *p (raw, not decoded; a
 * parameter without "=" has an empty value); 0 when there is none left.
 */

static ngx_uint_t
ngx_http_msgr_next_arg(u_char **p, u_char *last, ngx_str_t *name,
    ngx_str_t *value)
{
    u_char  *start, *end, *eq;

    if (*p >= last) {
        return 0;
    }

    start = *p;
    end = ngx_strlchr(start, last, '&');
    if (end == NULL) {
        end = last;
    }

    *p = end + 1;

    eq = ngx_strlchr(start, end, '=');
    if (eq == NULL) {
        eq = end;
    }

    name->data = start;
    name->len = eq - start;
    value->data = eq < end ? eq + 1 : end;
    value->len = eq < end ? end - eq - 1 : 0;

    return 1;
}


/*
 * Every query parameter (name and value, decoded) and the conditional
 * headers, before any route looks at them: PostgreSQL takes text only as
 * UTF-8, and a NUL would cut it short.  NGX_DECLINED: the client has had its
 * 400; NGX_ERROR: out of memory.
 */

ngx_int_t
ngx_http_msgr_check_input(ngx_http_request_t *r)
{
    u_char           *p, *last;
    json_t           *errors;
    ngx_str_t         name, value, raw, rawv;
    ngx_uint_t        i;
    const char       *why, *field;
    ngx_table_elt_t  *h;

    static const char  *headers[] = { "If-Match", "If-None-Match" };

    errors = json_array();

    if (ngx_http_msgr_json_keep(r, errors) != NGX_OK) {
        return NGX_ERROR;
    }

    p = r->args.data;
    last = p + r->args.len;

    while (ngx_http_msgr_next_arg(&p, last, &raw, &rawv)) {
        if (ngx_http_msgr_unescape_arg(r->pool, raw.data, raw.len, &name)
               != NGX_OK
            || ngx_http_msgr_unescape_arg(r->pool, rawv.data, rawv.len,
                                          &value)
               != NGX_OK)
        {
            return NGX_ERROR;
        }

        why = ngx_http_msgr_text_error(name.data, name.len, 0);
        field = why ? "query" : (const char *) name.data;

        if (why == NULL) {
            why = ngx_http_msgr_text_error(value.data, value.len, 0);
        }

        if (why != NULL) {
            ngx_http_msgr_field_error(errors, field, why);
            break;
        }
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_bad_args(r, errors);
        return NGX_DECLINED;
    }

    for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        h = (i == 0) ? r->headers_in.if_match : r->headers_in.if_none_match;

        if (h == NULL) {
            continue;
        }

        why = ngx_http_msgr_text_error(h->value.data, h->value.len, 1);

        if (why != NULL) {
            ngx_http_msgr_field_error(errors, headers[i], why);
        }
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_problem(r, NGX_HTTP_BAD_REQUEST, "invalid",
                              "the request headers are invalid",
                              json_incref(errors));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a query string's name or value, decoded: "+" a space, then "%XX" */

static ngx_int_t
ngx_http_msgr_unescape_arg(ngx_pool_t *pool, u_char *data, size_t len,
    ngx_str_t *value)
{
    u_char  *plus, *dst, *src;
    size_t   i;

    plus = ngx_pnalloc(pool, 2 * len + 1);
    if (plus == NULL) {
        return NGX_ERROR;
    }

    /* "+" is a space in a query string, "%2B" a plus: "+" goes first */
    for (i = 0; i < len; i++) {
        plus[i] = (data[i] == '+') ? ' ' : data[i];
    }

    dst = plus + len;
    src = plus;
    value->data = dst;

    ngx_unescape_uri(&dst, &src, len, 0);

    value->len = dst - value->data;
    *dst = '\0';

    return NGX_OK;
}


/*
 * Query argument name: its URL-decoded value in the request pool, or
 * NGX_DECLINED when absent.
 */

ngx_int_t
ngx_http_msgr_arg(ngx_http_request_t *r, const char *name, ngx_str_t *value)
{
    ngx_str_t  raw;

    if (ngx_http_arg(r, (u_char *) name, ngx_strlen(name), &raw) != NGX_OK) {
        return NGX_DECLINED;
    }

    return ngx_http_msgr_unescape_arg(r->pool, raw.data, raw.len, value);
}


ngx_str_t  ngx_http_msgr_merge_patch_type =
    ngx_string("application/merge-patch+json");
ngx_str_t  ngx_http_msgr_form_type =
    ngx_string("application/x-www-form-urlencoded");


/*
 * The request body as JSON, released with the request.  On a body that is
 * not JSON the client has had its 415 or 400 and NULL comes back.
 */

json_t *
ngx_http_msgr_read_json(ngx_http_request_t *r)
{
    return ngx_http_msgr_read_json_as(r, 0);
}


/* merge_patch: application/merge-patch+json is taken too */

json_t *
ngx_http_msgr_read_json_as(ngx_http_request_t *r, ngx_uint_t merge_patch)
{
    json_t        *json;
    ngx_str_t      body;
    json_error_t   err;

    if (ngx_http_msgr_read_body(r, merge_patch, &body) != NGX_OK) {
        return NULL;
    }

    json = json_loadb((char *) body.data, body.len, JSON_REJECT_DUPLICATES,
                      &err);

    if (json == NULL) {
        ngx_http_msgr_bad_json(r, &err);
        return NULL;
    }

    if (ngx_http_msgr_json_keep(r, json) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    return json;
}


/*
 * The request body in one piece of the request's pool, once its type is
 * checked; NGX_ERROR when the client has had its answer (415).
 */

ngx_int_t
ngx_http_msgr_read_body(ngx_http_request_t *r, ngx_uint_t merge_patch,
    ngx_str_t *body)
{
    if (r->headers_in.content_type == NULL
        || !(ngx_http_msgr_media_type(&r->headers_in.content_type->value,
                                      &ngx_http_msgr_json_type)
             || (merge_patch
                 && ngx_http_msgr_media_type(
                        &r->headers_in.content_type->value,
                        &ngx_http_msgr_merge_patch_type))))
    {
        ngx_http_msgr_problem(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                              merge_patch
                              ? "the body must be a JSON merge patch: "
                                "Content-Type application/merge-patch+json "
                                "or application/json"
                              : "the body must be JSON: Content-Type "
                                "application/json", NULL);
        return NGX_ERROR;
    }

    return ngx_http_msgr_body_bytes(r, body);
}


/*
 * The request body, whatever its type, in one piece of the request's
 * pool; NGX_ERROR when the client has had its answer.
 */

ngx_int_t
ngx_http_msgr_body_bytes(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char       *p;
    size_t        len;
    ngx_chain_t  *cl;

    len = 0;

    if (r->request_body) {
        for (cl = r->request_body->bufs; cl; cl = cl->next) {
            if (cl->buf->in_file && !ngx_buf_in_memory(cl->buf)) {
                /* msgr_max_body keeps bodies in memory */
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return NGX_ERROR;
            }

            len += cl->buf->last - cl->buf->pos;
        }
    }

    p = ngx_pnalloc(r->pool, len ? len : 1);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    body->data = p;
    body->len = len;

    for (cl = r->request_body ? r->request_body->bufs : NULL;
         cl;
         cl = cl->next)
    {
        /* an empty body's buffer may have no memory at all */
        if (cl->buf->last != cl->buf->pos) {
            p = ngx_cpymem(p, cl->buf->pos, cl->buf->last - cl->buf->pos);
        }
    }

    return NGX_OK;
}


/*
 * An application/x-www-form-urlencoded body (what providers' callbacks
 * post) as its decoded name=value pairs (ngx_http_msgr_pair_t), each text
 * by the query parameters' rule; NGX_ERROR when the client has had its
 * answer (415, 400 naming the field).
 */

ngx_int_t
ngx_http_msgr_read_form(ngx_http_request_t *r, ngx_array_t **pairs)
{
    u_char                *p, *last;
    ngx_str_t              body, raw, rawv;
    const char            *why, *field;
    ngx_http_msgr_pair_t  *pair;

    if (r->headers_in.content_type == NULL
        || !ngx_http_msgr_media_type(&r->headers_in.content_type->value,
                                     &ngx_http_msgr_form_type))
    {
        ngx_http_msgr_problem(r, NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, NULL,
                              "the body must be a form: Content-Type "
                              "application/x-www-form-urlencoded", NULL);
        return NGX_ERROR;
    }

    if (ngx_http_msgr_body_bytes(r, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    *pairs = ngx_array_create(r->pool, 16, sizeof(ngx_http_msgr_pair_t));
    if (*pairs == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    p = body.data;
    last = p + body.len;

    while (ngx_http_msgr_next_arg(&p, last, &raw, &rawv)) {
        if (raw.len == 0 && rawv.len == 0) {
            continue;
        }

        pair = ngx_array_push(*pairs);

        if (pair == NULL
            || ngx_http_msgr_unescape_arg(r->pool, raw.data, raw.len,
                                          &pair->name) != NGX_OK
            || ngx_http_msgr_unescape_arg(r->pool, rawv.data, rawv.len,
                                          &pair->value) != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return NGX_ERROR;
        }

        why = ngx_http_msgr_text_error(pair->name.data, pair->name.len, 0);

        if (why == NULL) {
            why = ngx_http_msgr_text_error(pair->value.data, pair->value.len,
                                           0);
        }

        if (why != NULL) {
            field = ngx_http_msgr_text_error(pair->name.data, pair->name.len,
                                             0)
                    ? "body" : (const char *) pair->name.data;
            ngx_http_msgr_problem(r, NGX_HTTP_BAD_REQUEST, "invalid",
                                  "the form's fields must be text",
                                  json_pack("[{s:s, s:s}]", "field", field,
                                            "message", why));
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* 400 naming where the body stops being JSON */

void
ngx_http_msgr_bad_json(ngx_http_request_t *r, json_error_t *err)
{
    u_char  detail[JSON_ERROR_TEXT_LENGTH + 64];

    ngx_snprintf(detail, sizeof(detail) - 1,
                 "the body is not valid JSON: %s (line %d, column %d)%Z",
                 err->text, err->line, err->column);
    detail[sizeof(detail) - 1] = '\0';

    ngx_http_msgr_problem(r, NGX_HTTP_BAD_REQUEST, NULL, (char *) detail,
                          NULL);
}


/* "application/json; charset=utf-8" is "application/json" */

ngx_uint_t
ngx_http_msgr_media_type(ngx_str_t *header, ngx_str_t *type)
{
    size_t  len;

    len = 0;

    while (len < header->len && header->data[len] != ';'
           && header->data[len] != ' ')
    {
        len++;
    }

    return len == type->len
           && ngx_strncasecmp(header->data, type->data, len) == 0;
}


/* an entry of a problem's "errors" */

void
ngx_http_msgr_field_error(json_t *errors, const char *field,
    const char *message)
{
    json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field,
                                            "message", message));
}


/*
 * The body as an object with only the allowed keys; answers itself (400,
 * 422) and returns NULL otherwise.  *errors is a fresh list for the caller.
 */

json_t *
ngx_http_msgr_read_fields(ngx_http_request_t *r, const char *const *allowed,
    json_t **errors)
{
    return ngx_http_msgr_read_fields_as(r, 0, allowed, errors);
}


/* merge_patch: application/merge-patch+json is taken too */

json_t *
ngx_http_msgr_read_fields_as(ngx_http_request_t *r, ngx_uint_t merge_patch,
    const char *const *allowed, json_t **errors)
{
    json_t             *body, *v;
    const char         *key;
    const char *const  *a;

    body = ngx_http_msgr_read_json_as(r, merge_patch);
    if (body == NULL) {
        return NULL;
    }

    *errors = json_array();

    if (ngx_http_msgr_json_keep(r, *errors) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NULL;
    }

    if (!json_is_object(body)) {
        ngx_http_msgr_problem(r, 422, NULL, "the body must be a JSON object",
                              NULL);
        return NULL;
    }

    json_object_foreach(body, key, v) {
        for (a = allowed; *a; a++) {
            if (ngx_strcmp(*a, key) == 0) {
                break;
            }
        }

        if (*a == NULL) {
            ngx_http_msgr_field_error(*errors, key, "unknown field");
        }
    }

    return body;
}


void
ngx_http_msgr_invalid(ngx_http_request_t *r, json_t *errors)
{
    ngx_http_msgr_problem(r, 422, NULL, "the request has invalid fields; "
                          "nothing was changed", json_incref(errors));
}


/* 400: the query parameters are invalid, errors says which and why */

void
ngx_http_msgr_bad_args(ngx_http_request_t *r, json_t *errors)
{
    ngx_http_msgr_problem(r, NGX_HTTP_BAD_REQUEST, "invalid",
                          "the query parameters are invalid",
                          json_incref(errors));
}


/* 400 naming one query parameter */

void
ngx_http_msgr_bad_arg(ngx_http_request_t *r, const char *field,
    const char *message)
{
    ngx_http_msgr_problem(r, NGX_HTTP_BAD_REQUEST, "invalid",
                          "the query parameters are invalid",
                          json_pack("[{s:s, s:s}]", "field", field,
                                    "message", message));
}


/* limit= of a page into ctx->limit; what is wrong with it, or NULL */

const char *
ngx_http_msgr_limit_arg(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx)
{
    ngx_str_t  v;

    ctx->limit = NGX_HTTP_MSGR_PAGE_LIMIT;

    if (ngx_http_msgr_arg(r, "limit", &v) == NGX_OK) {
        ctx->limit = ngx_atoi(v.data, v.len);

        if (ctx->limit < 1 || ctx->limit > NGX_HTTP_MSGR_PAGE_MAX) {
            return "must be an integer from 1 to 200";
        }
    }

    return NULL;
}


/* before= and limit= of a page; answers 400 itself */

ngx_int_t
ngx_http_msgr_page_args(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    int64_t *before)
{
    json_t      *errors;
    ngx_str_t    v;
    const char  *why;

    errors = json_array();

    if (ngx_http_msgr_json_keep(r, errors) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    *before = 0;

    why = ngx_http_msgr_limit_arg(r, ctx);

    if (why) {
        ngx_http_msgr_field_error(errors, "limit", why);
    }

    if (ngx_http_msgr_arg(r, "before", &v) == NGX_OK) {
        *before = ngx_http_msgr_id(&v);

        if (*before == 0) {
            ngx_http_msgr_field_error(errors, "before",
                                      "must be the next_before of the "
                                      "previous page");
        }
    }

    if (json_array_size(errors)) {
        ngx_http_msgr_bad_args(r, errors);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a positive id from a path segment or a query argument; 0 when not one */

int64_t
ngx_http_msgr_id(ngx_str_t *s)
{
    off_t  n;

    if (s->len == 0 || s->len > 18) {
        return 0;
    }

    n = ngx_atoof(s->data, s->len);

    return n > 0 ? (int64_t) n : 0;
}


/*
 * Every "name=" of the query string, each a comma-separated list of ids,
 * into ids; a bad one goes into errors.
 */

ngx_int_t
ngx_http_msgr_ids_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_array_t *ids, json_t *errors)
{
    u_char     *p, *last, *start, *end;
    int64_t    *id;
    ngx_str_t   v, arg, value;

    p = r->args.data;
    last = p + r->args.len;

    while (ngx_http_msgr_next_arg(&p, last, &arg, &value)) {
        /* another name, or this one without "=" */
        if (arg.len != name->len
            || ngx_strncmp(arg.data, name->data, name->len) != 0
            || value.data == arg.data + arg.len)
        {
            continue;
        }

        start = value.data;
        end = value.data + value.len;

        while (start < end) {
            v.data = start;
            while (start < end && *start != ',') {
                start++;
            }

            v.len = start - v.data;
            start++;

            if (ngx_http_msgr_id(&v) == 0) {
                ngx_http_msgr_field_error(errors, (char *) name->data,
                                          "must be ids (positive integers), "
                                          "repeated or comma-separated");
                return NGX_OK;
            }

            if (ids->nelts == NGX_HTTP_MSGR_IDS_MAX) {
                ngx_http_msgr_field_error(errors, (char *) name->data,
                                          "at most 500 ids");
                return NGX_OK;
            }

            id = ngx_array_push(ids);
            if (id == NULL) {
                return NGX_ERROR;
            }

            *id = ngx_http_msgr_id(&v);
        }
    }

    return NGX_OK;
}


static void
ngx_http_msgr_json_cleanup(void *data)
{
    json_decref(data);
}


/* a json_t released with the request */

ngx_int_t
ngx_http_msgr_json_keep(ngx_http_request_t *r, json_t *json)
{
    ngx_pool_cleanup_t  *cln;

    if (json == NULL) {
        return NGX_ERROR;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        json_decref(json);
        return NGX_ERROR;
    }

    cln->handler = ngx_http_msgr_json_cleanup;
    cln->data = json;

    return NGX_OK;
}


/*
 * The one text rule (src/msgr_text.c) on a string of a body; the string is
 * trimmed in place.  NGX_OK when good; otherwise the field's error is added
 * to errors.
 */

ngx_int_t
ngx_http_msgr_text_field(json_t *v, const char *field, size_t max,
    unsigned flags, json_t *errors)
{
    char         buf[64];
    size_t       len;
    const char  *s, *why;

    if (!json_is_string(v)) {
        ngx_http_msgr_field_error(errors, field, "must be a string");
        return NGX_ERROR;
    }

    s = json_string_value(v);
    len = json_string_length(v);

    why = msgr_text_check(&s, &len, max, flags, buf, sizeof(buf));

    if (why != NULL) {
        ngx_http_msgr_field_error(errors, field, why);
        return NGX_ERROR;
    }

    if (len != json_string_length(v) && json_string_setn(v, s, len) != 0) {
        ngx_http_msgr_field_error(errors, field, "could not be read");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a request header's value by its name; NGX_DECLINED when absent */

ngx_int_t
ngx_http_msgr_header_in(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NGX_DECLINED;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == name->len
            && ngx_strncasecmp(h[i].key.data, name->data, name->len) == 0)
        {
            *value = h[i].value;
            return NGX_OK;
        }
    }
}


/*
 * A Twilio webhook (a receipt, a dial-in step): its form, and its
 * X-Twilio-Signature checked with msgr_twilio_auth_token over the URL
 * Twilio called: msgr_twilio_callback_url (the API location's public URL)
 * followed by the route's path and query, else this request's scheme,
 * Host and target.  form's strings are the request's.  NGX_ERROR when the
 * client has had its answer (415, 400, 403 signature-invalid).
 */

ngx_int_t
ngx_http_msgr_twilio_form(ngx_http_request_t *r, ngx_http_msgr_ctx_t *ctx,
    msgr_twilio_form_t *form)
{
    u_char                *p;
    size_t                 skip;
    ngx_str_t              url, base, host, sig;
    ngx_uint_t             i;
    ngx_array_t           *pairs;
    ngx_http_msgr_pair_t  *pair;

    static ngx_str_t  name = ngx_string("X-Twilio-Signature");

    if (ngx_http_msgr_read_form(r, &pairs) != NGX_OK) {
        return NGX_ERROR;
    }

    form->n = pairs->nelts;
    form->params = ngx_pcalloc(r->pool, (pairs->nelts + 1)
                                        * sizeof(msgr_twilio_param_t));
    if (form->params == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    pair = pairs->elts;

    for (i = 0; i < pairs->nelts; i++) {
        form->params[i].name = (char *) pair[i].name.data;
        form->params[i].name_len = pair[i].name.len;
        form->params[i].value = (char *) pair[i].value.data;
        form->params[i].value_len = pair[i].value.len;
    }

    if (ctx->conf->twilio_auth_token.len == 0) {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "no Twilio auth token is configured here "
                              "(msgr_twilio_auth_token)", NULL);
        return NGX_ERROR;
    }

    if (ngx_http_msgr_header_in(r, &name, &sig) != NGX_OK) {
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "the request is not signed: "
                              "X-Twilio-Signature is missing", NULL);
        return NGX_ERROR;
    }

    /* the URL Twilio called */

    base = ctx->conf->twilio_callback_url;
    host = r->headers_in.host ? r->headers_in.host->value
                              : r->headers_in.server;

    /* the location's part of the target (its path has no escapes) */
    skip = (r->uri.len > ctx->path.len) ? r->uri.len - ctx->path.len : 0;
    skip = ngx_min(skip, r->unparsed_uri.len);

    url.len = base.len ? base.len + 1 + r->unparsed_uri.len - skip
                       : sizeof("https://") - 1 + host.len
                         + r->unparsed_uri.len;
    url.data = ngx_pnalloc(r->pool, url.len);

    if (url.data == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (base.len) {
        p = ngx_cpymem(url.data, base.data, base.len);

        if (base.data[base.len - 1] != '/') {
            *p++ = '/';
        }

        p = ngx_cpymem(p, r->unparsed_uri.data + skip,
                       r->unparsed_uri.len - skip);

    } else {
#if (NGX_HTTP_SSL)
        p = ngx_cpymem(url.data, r->connection->ssl ? "https://" : "http://",
                       r->connection->ssl ? 8 : 7);
#else
        p = ngx_cpymem(url.data, "http://", 7);
#endif
        p = ngx_cpymem(p, host.data, host.len);
        p = ngx_cpymem(p, r->unparsed_uri.data, r->unparsed_uri.len);
    }

    url.len = p - url.data;

    if (!msgr_twilio_verify((char *) ctx->conf->twilio_auth_token.data,
                            ctx->conf->twilio_auth_token.len,
                            (char *) url.data, url.len, form,
                            (char *) sig.data, sig.len))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "msgr: X-Twilio-Signature does not match the URL "
                      "\"%V\" and msgr_twilio_auth_token (behind a proxy? "
                      "msgr_twilio_callback_url)", &url);
        ngx_http_msgr_problem(r, NGX_HTTP_FORBIDDEN, "signature-invalid",
                              "X-Twilio-Signature does not match", NULL);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the school's date today, "YYYY-MM-DD" (UTC), as resolving a send uses */

void
ngx_http_msgr_today(u_char today[NGX_HTTP_MSGR_TODAY_LEN])
{
    ngx_tm_t  tm;

    ngx_gmtime(ngx_time(), &tm);
    ngx_sprintf(today, "%4d-%02d-%02d%Z", tm.ngx_tm_year, tm.ngx_tm_mon,
                tm.ngx_tm_mday);
}

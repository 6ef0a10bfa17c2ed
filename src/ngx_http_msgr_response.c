/*
 * msgr: responses: JSON bodies, RFC 9457 problems, and a header and body
 * filter that turns nginx's own error pages in an API location (a body
 * over msgr_max_body, a malformed request) into problem+json as well.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr.h"


static ngx_int_t ngx_http_msgr_problem_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, const char *detail, json_t *errors,
    ngx_str_t *out);
static ngx_int_t ngx_http_msgr_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_msgr_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


ngx_str_t  ngx_http_msgr_json_type = ngx_string("application/json");
ngx_str_t  ngx_http_msgr_problem_type = ngx_string("application/problem+json");


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


typedef struct {
    ngx_uint_t    status;
    const char   *title;
    const char   *type;
    const char   *detail;
} ngx_http_msgr_status_t;


static const ngx_http_msgr_status_t  ngx_http_msgr_statuses[] = {
    { NGX_HTTP_BAD_REQUEST, "Bad Request", "bad-request",
      "the request is malformed" },
    { NGX_HTTP_UNAUTHORIZED, "Unauthorized", "unauthorized",
      "an API key is needed" },
    { NGX_HTTP_FORBIDDEN, "Forbidden", "forbidden",
      "this credential may not do that" },
    { NGX_HTTP_NOT_FOUND, "Not Found", "not-found",
      "no such resource" },
    { NGX_HTTP_NOT_ALLOWED, "Method Not Allowed", "method-not-allowed",
      "this resource does not support that method" },
    { NGX_HTTP_REQUEST_TIME_OUT, "Request Timeout", "timeout",
      "the request was not received in time" },
    { NGX_HTTP_CONFLICT, "Conflict", "conflict",
      "the request conflicts with the resource's current state" },
    { NGX_HTTP_PRECONDITION_FAILED, "Precondition Failed",
      "precondition-failed", "the resource has changed" },
    { NGX_HTTP_LENGTH_REQUIRED, "Length Required", "length-required",
      "the request body needs a length" },
    { NGX_HTTP_REQUEST_ENTITY_TOO_LARGE, "Content Too Large",
      "body-too-large",
      "the request body is larger than this server accepts "
      "(msgr_max_body)" },
    { NGX_HTTP_REQUEST_URI_TOO_LARGE, "URI Too Long", "uri-too-long",
      "the request URI is too long" },
    { NGX_HTTP_UNSUPPORTED_MEDIA_TYPE, "Unsupported Media Type",
      "unsupported-media-type", "the request body must be JSON" },
    { 422, "Unprocessable Content", "invalid",
      "the request has invalid fields" },
    { 429, "Too Many Requests", "rate-limited",
      "too many requests; try again later" },
    { NGX_HTTP_SERVICE_UNAVAILABLE, "Service Unavailable", "unavailable",
      "the service is busy or unavailable; try again shortly" },
    { NGX_HTTP_GATEWAY_TIME_OUT, "Gateway Timeout", "outcome-unknown",
      "the database did not confirm the change in time: it may or may not "
      "have been made" },
    { NGX_HTTP_INTERNAL_SERVER_ERROR, "Internal Server Error", "internal",
      "the request could not be completed" },
    { 0, NULL, NULL, NULL }
};


typedef struct {
    ngx_uint_t    method;
    const char   *name;
} ngx_http_msgr_method_t;


static const ngx_http_msgr_method_t  ngx_http_msgr_methods[] = {
    { NGX_HTTP_GET, "GET" },
    { NGX_HTTP_HEAD, "HEAD" },
    { NGX_HTTP_POST, "POST" },
    { NGX_HTTP_PUT, "PUT" },
    { NGX_HTTP_PATCH, "PATCH" },
    { NGX_HTTP_DELETE, "DELETE" },
    { 0, NULL }
};


static const ngx_http_msgr_status_t *
ngx_http_msgr_status(ngx_uint_t status)
{
    const ngx_http_msgr_status_t  *s;

    for (s = ngx_http_msgr_statuses; s->status; s++) {
        if (s->status == status) {
            return s;
        }
    }

    /* the last one: internal */
    return s - 1;
}


/*
 * Every header the module adds goes through here.  nginx 1.23 links
 * headers of the same name (ngx_table_elt_t.next) and walks those links
 * (auth_request's WWW-Authenticate, multi-header variables, HTTP/2 and 3):
 * an element fresh from ngx_list_push holds garbage there.
 */

static ngx_table_elt_t *
ngx_http_msgr_header_push(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NULL;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;
    h->lowcase_key = NULL;
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


ngx_int_t
ngx_http_msgr_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgr_header_push(r, name, value);
    if (h == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * WWW-Authenticate, known to nginx as such: auth_request passes a
 * subrequest's challenge on to the client.
 */

ngx_int_t
ngx_http_msgr_www_authenticate(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgr_header_push(r, "WWW-Authenticate", value);
    if (h == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.www_authenticate = h;

    return NGX_OK;
}


/* a strong ETag, "..." with its quotes; the value must outlive the answer */

ngx_int_t
ngx_http_msgr_etag(ngx_http_request_t *r, ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_http_msgr_header_push(r, "ETag", value);
    if (h == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.etag = h;

    return NGX_OK;
}


ngx_int_t
ngx_http_msgr_retry_after(ngx_http_request_t *r)
{
    static ngx_str_t  after = ngx_string(NGX_HTTP_MSGR_RETRY_AFTER);

    return ngx_http_msgr_header(r, "Retry-After", &after);
}


void
ngx_http_msgr_send_raw(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len)
{
    ngx_int_t             rc;
    ngx_buf_t            *b;
    ngx_chain_t           out;
    ngx_http_msgr_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);
    if (ctx) {
        ctx->answered = 1;
    }

    r->headers_out.status = status;

    if (status == 422) {
        /* nginx has no reason phrase of its own for it */
        ngx_str_set(&r->headers_out.status_line, "422 Unprocessable Content");
    }

    r->headers_out.content_type = *type;
    r->headers_out.content_type_len = type->len;
    r->headers_out.content_length_n = len;

    if (r->method == NGX_HTTP_HEAD) {
        r->header_only = 1;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    b->pos = data;
    b->last = data + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
}


/* serialises a JSON value into the request pool and releases it */

ngx_int_t
ngx_http_msgr_json_dump(ngx_http_request_t *r, json_t *body, ngx_str_t *out)
{
    size_t   len;
    u_char  *p;

    if (body == NULL) {
        return NGX_ERROR;
    }

    len = json_dumpb(body, NULL, 0, JSON_COMPACT);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL || json_dumpb(body, (char *) p, len, JSON_COMPACT) != len) {
        json_decref(body);
        return NGX_ERROR;
    }

    json_decref(body);
    p[len++] = '\n';

    out->data = p;
    out->len = len;

    return NGX_OK;
}


/* sends a JSON body and releases it */

void
ngx_http_msgr_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_str_t  s;

    if (ngx_http_msgr_json_dump(r, body, &s) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_raw(r, status, &ngx_http_msgr_json_type, s.data,
                           s.len);
}


/*
 * An RFC 9457 problem: {"type", "title", "status", "detail"} and, for
 * invalid input, "errors": [{"field", "message"}].  Takes errors over.
 */

static ngx_int_t
ngx_http_msgr_problem_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *detail, json_t *errors, ngx_str_t *out)
{
    u_char                         urn[64];
    json_t                        *body;
    const ngx_http_msgr_status_t  *s;

    s = ngx_http_msgr_status(status);

    ngx_snprintf(urn, sizeof(urn) - 1, "urn:msgr:problem:%s%Z",
                 type ? type : s->type);
    urn[sizeof(urn) - 1] = '\0';

    body = json_pack("{s:s, s:s, s:I, s:s}",
                     "type", (char *) urn,
                     "title", s->title,
                     "status", (json_int_t) status,
                     "detail", detail ? detail : s->detail);

    if (body == NULL) {
        json_decref(errors);
        return NGX_ERROR;
    }

    if (errors) {
        json_object_set_new(body, "errors", errors);
    }

    return ngx_http_msgr_json_dump(r, body, out);
}


void
ngx_http_msgr_problem(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *detail, json_t *errors)
{
    ngx_str_t  s;

    if (ngx_http_msgr_problem_body(r, status, type, detail, errors, &s)
        != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_send_raw(r, status, &ngx_http_msgr_problem_type, s.data,
                           s.len);
}


void
ngx_http_msgr_unavailable(ngx_http_request_t *r)
{
    if (ngx_http_msgr_retry_after(r) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_problem(r, NGX_HTTP_SERVICE_UNAVAILABLE, NULL,
                          "the database is busy or unavailable; "
                          "try again shortly", NULL);
}


/*
 * A write was sent and then its connection timed out or was lost: it may
 * have committed.  Not "503, retry": the client reads the resource (its
 * ETag, the audit trail) and retries with If-Match if it must.
 */

void
ngx_http_msgr_outcome_unknown(ngx_http_request_t *r)
{
    ngx_http_msgr_problem(r, NGX_HTTP_GATEWAY_TIME_OUT, "outcome-unknown",
                          "the database did not confirm the change in time: "
                          "it may or may not have been made; read the "
                          "resource before trying again, with If-Match",
                          NULL);
}


void
ngx_http_msgr_method_not_allowed(ngx_http_request_t *r, ngx_uint_t allowed)
{
    u_char                        *p, *last;
    ngx_str_t                      allow;
    const ngx_http_msgr_method_t  *m;

    p = ngx_pnalloc(r->pool, 64);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    allow.data = p;
    last = p + 64;

    for (m = ngx_http_msgr_methods; m->name; m++) {
        if (allowed & m->method) {
            p = ngx_slprintf(p, last, "%s%s", p == allow.data ? "" : ", ",
                             m->name);
        }
    }

    allow.len = p - allow.data;

    if (ngx_http_msgr_header(r, "Allow", &allow) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_problem(r, NGX_HTTP_NOT_ALLOWED, "method-not-allowed",
                          "this resource does not support that method",
                          NULL);
}


void
ngx_http_msgr_unauthorized(ngx_http_request_t *r, const char *detail)
{
    static ngx_str_t  challenge = ngx_string("Bearer realm=\"msgr\"");

    if (ngx_http_msgr_www_authenticate(r, &challenge) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_msgr_problem(r, NGX_HTTP_UNAUTHORIZED, "unauthorized", detail,
                          NULL);
}


ngx_int_t
ngx_http_msgr_response_init(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_msgr_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_msgr_body_filter;

    return NGX_OK;
}


/*
 * nginx answers some errors itself before the API sees the request (413
 * from msgr_max_body, 400 for a malformed body): in an API location their
 * HTML pages are replaced by a problem+json body.
 */

static ngx_int_t
ngx_http_msgr_header_filter(ngx_http_request_t *r)
{
    ngx_str_t                  body;
    ngx_http_msgr_ctx_t       *ctx;
    ngx_http_msgr_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_msgr_module);

    if (lcf == NULL || !lcf->api || r != r->main
        || r->headers_out.status < NGX_HTTP_BAD_REQUEST)
    {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (ctx && ctx->answered) {
        return ngx_http_next_header_filter(r);
    }

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_msgr_ctx_t));
        if (ctx == NULL) {
            return NGX_ERROR;
        }

        ctx->conf = lcf;
        ngx_http_set_ctx(r, ctx, ngx_http_msgr_module);
    }

    if (ngx_http_msgr_problem_body(r, r->headers_out.status, NULL, NULL,
                                   NULL, &body)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->answered = 1;
    ctx->replacement = body;

    r->headers_out.content_type = ngx_http_msgr_problem_type;
    r->headers_out.content_type_len = ngx_http_msgr_problem_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.charset.len = 0;
    r->headers_out.content_length_n = body.len;

    if (r->headers_out.content_length) {
        r->headers_out.content_length->hash = 0;
        r->headers_out.content_length = NULL;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_msgr_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t            *b;
    ngx_chain_t          *cl, out;
    ngx_http_msgr_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_msgr_module);

    if (ctx == NULL || ctx->replacement.data == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    /* nginx's page is dropped */
    for (cl = in; cl; cl = cl->next) {
        cl->buf->pos = cl->buf->last;
        cl->buf->file_pos = cl->buf->file_last;
    }

    if (ctx->replaced) {
        return NGX_OK;
    }

    ctx->replaced = 1;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = ctx->replacement.data;
    b->last = b->pos + ctx->replacement.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_body_filter(r, &out);
}

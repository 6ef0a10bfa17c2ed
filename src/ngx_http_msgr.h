/*
 * msgr: shared declarations of the nginx module.
 */

#ifndef _NGX_HTTP_MSGR_H_INCLUDED_
#define _NGX_HTTP_MSGR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <jansson.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif

#include "ngx_http_msgr_pg.h"
#include "ngx_http_msgr_cache.h"
#include "msgr_key.h"


/* seconds a client is asked to wait when the database is unavailable */
#define NGX_HTTP_MSGR_RETRY_AFTER  "1"


typedef enum {
    NGX_HTTP_MSGR_ROLE_NONE = 0,
    NGX_HTTP_MSGR_ROLE_ADMIN = 0x01,
    NGX_HTTP_MSGR_ROLE_STAFF = 0x02,
    NGX_HTTP_MSGR_ROLE_INTEGRATOR = 0x04,
    NGX_HTTP_MSGR_ROLE_APP = 0x08          /* a parent, with an app token */
} ngx_http_msgr_role_e;

#define NGX_HTTP_MSGR_ROLE_ANY  (NGX_HTTP_MSGR_ROLE_ADMIN                  \
                                 |NGX_HTTP_MSGR_ROLE_STAFF                 \
                                 |NGX_HTTP_MSGR_ROLE_INTEGRATOR)


typedef struct {
    ngx_array_t                   pools;  /* ngx_http_msgr_pg_pool_t * */
} ngx_http_msgr_main_conf_t;


typedef struct {
    ngx_http_msgr_pg_pool_t      *pool;
    ngx_uint_t                    pool_size;
    ngx_uint_t                    queue_max;
    ngx_msec_t                    timeout;
    ngx_msec_t                    heartbeat;
    size_t                        cache_size;
} ngx_http_msgr_srv_conf_t;


typedef struct {
    ngx_flag_t                    api;
    size_t                        max_body;
    ngx_uint_t                    app_rate;
    ngx_uint_t                    app_refused_rate;
    ngx_str_t                     twilio_auth_token;    /* "": off */
    ngx_str_t                     twilio_callback_url;  /* "": the Host */
    ngx_http_msgr_pg_pool_t      *pool;
    ngx_http_msgr_cache_t        *cache;
#if (NGX_THREADS)
    ngx_thread_pool_t            *thread_pool;  /* for heavy JSON work */
#endif
} ngx_http_msgr_loc_conf_t;


#define NGX_HTTP_MSGR_MAX_ARGS  4


typedef struct ngx_http_msgr_route_s  ngx_http_msgr_route_t;

typedef struct ngx_http_msgr_ctx_s {
    ngx_http_msgr_loc_conf_t     *conf;
    const ngx_http_msgr_route_t  *route;
    ngx_str_t                     path;
    ngx_str_t                     args[NGX_HTTP_MSGR_MAX_ARGS];
    ngx_uint_t                    nargs;

    /* the credential's school and role; an app token's contact */
    int64_t                       school_id;
    ngx_uint_t                    role;
    msgr_key_t                    key;
    int64_t                       contact_id;
    unsigned                      app:1;

    /* the cache's generation when the request began (what it reads) */
    ngx_uint_t                    cache_generation;

    /* the running query's completion handler */
    ngx_http_msgr_pg_handler_pt   query_handler;

    /*
     * The route's own state: a struct of the route's file, which only
     * that file reads (ngx_http_msgr_list_ctx_t, ngx_http_msgr_post_t...).
     * What several files share has a typed field of its own here: the
     * body, the page size, the 404's detail, the settings.
     */
    void                         *data;

    /* the request's JSON body, kept while the settings are loaded */
    json_t                       *body;

    /* paging: the page size asked for (ngx_http_msgr_limit_arg()) */
    ngx_int_t                     limit;

    /* the detail of the 404 of ngx_http_msgr_json_done() and co. */
    const char                   *not_found;

    /* the school's settings, once loaded */
    void                         *settings_ctx;
    json_t                       *settings;
    void                        (*on_settings)(ngx_http_request_t *r,
                                     struct ngx_http_msgr_ctx_s *ctx,
                                     json_t *settings);

    /* a problem+json body in place of an nginx error page */
    ngx_str_t                     replacement;
    unsigned                      answered:1;
    unsigned                      replaced:1;
} ngx_http_msgr_ctx_t;


typedef void (*ngx_http_msgr_route_pt)(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);

#define NGX_HTTP_MSGR_READ  (NGX_HTTP_GET|NGX_HTTP_HEAD)

struct ngx_http_msgr_route_s {
    ngx_uint_t                    methods;
    const char                   *pattern;
    ngx_uint_t                    roles;      /* 0: no credential needed */
    ngx_http_msgr_route_pt        handler;
};


/*
 * A resource: its routes and its statements, both ending with an empty
 * entry; the router walks ngx_http_msgr_resources[] (ngx_http_msgr_api.c).
 */
typedef struct {
    const ngx_http_msgr_route_t    *routes;
    ngx_http_msgr_pg_stmt_t *const *stmts;
} ngx_http_msgr_resource_t;


extern ngx_module_t  ngx_http_msgr_module;
extern ngx_str_t     ngx_http_msgr_json_type;
extern ngx_str_t     ngx_http_msgr_problem_type;


/* gives every resource's statements their ids; [emerg] when too many */
ngx_int_t ngx_http_msgr_api_init(ngx_conf_t *cf);
ngx_int_t ngx_http_msgr_api_handler(ngx_http_request_t *r);

ngx_int_t ngx_http_msgr_response_init(ngx_conf_t *cf);
ngx_int_t ngx_http_msgr_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_msgr_retry_after(ngx_http_request_t *r);
ngx_int_t ngx_http_msgr_etag(ngx_http_request_t *r, ngx_str_t *value);
ngx_int_t ngx_http_msgr_www_authenticate(ngx_http_request_t *r,
    ngx_str_t *value);
ngx_int_t ngx_http_msgr_json_dump(ngx_http_request_t *r, json_t *body,
    ngx_str_t *out);
void ngx_http_msgr_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
void ngx_http_msgr_send_raw(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *type, u_char *data, size_t len);
/* 401 with the Bearer challenge */
void ngx_http_msgr_unauthorized(ngx_http_request_t *r, const char *detail);
void ngx_http_msgr_problem(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *detail, json_t *errors);
void ngx_http_msgr_unavailable(ngx_http_request_t *r);
void ngx_http_msgr_outcome_unknown(ngx_http_request_t *r);
void ngx_http_msgr_method_not_allowed(ngx_http_request_t *r,
    ngx_uint_t allowed);


#endif /* _NGX_HTTP_MSGR_H_INCLUDED_ */

/*
 * msgr: school-to-parent messaging, as an nginx module.
 *
 * Directives, configuration merge, worker start and stop, and the content
 * handler that hands requests to the API router (src/ngx_http_msgr_api.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_msgr.h"


#define NGX_HTTP_MSGR_DEFAULT_POOL     4
#define NGX_HTTP_MSGR_DEFAULT_QUEUE    64
#define NGX_HTTP_MSGR_DEFAULT_TIMEOUT  5000
#define NGX_HTTP_MSGR_DEFAULT_HEARTBEAT 10000
#define NGX_HTTP_MSGR_DEFAULT_BODY     (1024 * 1024)
#define NGX_HTTP_MSGR_DEFAULT_CACHE    (10 * 1024 * 1024)
#define NGX_HTTP_MSGR_DEFAULT_APP_RATE 10


static void *ngx_http_msgr_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_msgr_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_msgr_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_msgr_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_msgr_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_msgr_pg(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_msgr_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_msgr_twilio(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_msgr_pool_cache(ngx_conf_t *cf,
    ngx_http_msgr_pg_pool_t *pool, size_t size);
static void ngx_http_msgr_notify(ngx_http_msgr_pg_pool_t *pool,
    PGnotify *n);
static void ngx_http_msgr_listen_up(ngx_http_msgr_pg_pool_t *pool);
static ngx_int_t ngx_http_msgr_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_msgr_init_process(ngx_cycle_t *cycle);
static void ngx_http_msgr_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_msgr_pool_bounds = {
    ngx_conf_check_num_bounds, 1, 1024
};

static ngx_conf_num_bounds_t  ngx_http_msgr_queue_bounds = {
    ngx_conf_check_num_bounds, 0, 1000000
};

static ngx_conf_num_bounds_t  ngx_http_msgr_rate_bounds = {
    ngx_conf_check_num_bounds, 1, 60000
};


static ngx_command_t  ngx_http_msgr_commands[] = {

    { ngx_string("msgr_pg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_msgr_pg,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgr_pg_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_msgr_srv_conf_t, pool_size),
      &ngx_http_msgr_pool_bounds },

    { ngx_string("msgr_pg_queue"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_msgr_srv_conf_t, queue_max),
      &ngx_http_msgr_queue_bounds },

    { ngx_string("msgr_pg_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_msgr_srv_conf_t, timeout),
      NULL },

    { ngx_string("msgr_pg_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_msgr_srv_conf_t, heartbeat),
      NULL },

    { ngx_string("msgr_cache_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_msgr_srv_conf_t, cache_size),
      NULL },

    { ngx_string("msgr_api"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_msgr_api,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("msgr_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgr_loc_conf_t, max_body),
      NULL },

    { ngx_string("msgr_app_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgr_loc_conf_t, app_rate),
      &ngx_http_msgr_rate_bounds },

    { ngx_string("msgr_app_refused_rate"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgr_loc_conf_t, app_refused_rate),
      &ngx_http_msgr_rate_bounds },

    { ngx_string("msgr_twilio_auth_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_msgr_twilio,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgr_loc_conf_t, twilio_auth_token),
      NULL },

    { ngx_string("msgr_twilio_callback_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_msgr_twilio,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_msgr_loc_conf_t, twilio_callback_url),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_msgr_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_msgr_postconfiguration,       /* postconfiguration */

    ngx_http_msgr_create_main_conf,        /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_msgr_create_srv_conf,         /* create server configuration */
    ngx_http_msgr_merge_srv_conf,          /* merge server configuration */

    ngx_http_msgr_create_loc_conf,         /* create location configuration */
    ngx_http_msgr_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_msgr_module = {
    NGX_MODULE_V1,
    &ngx_http_msgr_module_ctx,             /* module context */
    ngx_http_msgr_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_msgr_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_msgr_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_msgr_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_msgr_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgr_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->pools, cf->pool, 2,
                       sizeof(ngx_http_msgr_pg_pool_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


static void *
ngx_http_msgr_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_msgr_srv_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgr_srv_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->pool = NGX_CONF_UNSET_PTR;
    conf->pool_size = NGX_CONF_UNSET_UINT;
    conf->queue_max = NGX_CONF_UNSET_UINT;
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->heartbeat = NGX_CONF_UNSET_MSEC;
    conf->cache_size = NGX_CONF_UNSET_SIZE;

    return conf;
}


/*
 * A pool takes its size, queue and timeout from the level where its
 * msgr_pg stands: a server that inherits msgr_pg shares the pool, and
 * its settings, with the other servers of the http block.
 */

static char *
ngx_http_msgr_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_msgr_srv_conf_t *prev = parent;
    ngx_http_msgr_srv_conf_t *conf = child;

    ngx_http_msgr_pg_pool_t   *pool;
    ngx_http_msgr_srv_conf_t  *src;

    ngx_conf_merge_ptr_value(conf->pool, prev->pool, NULL);

    ngx_conf_merge_uint_value(conf->pool_size, prev->pool_size,
                              NGX_HTTP_MSGR_DEFAULT_POOL);
    ngx_conf_merge_uint_value(conf->queue_max, prev->queue_max,
                              NGX_HTTP_MSGR_DEFAULT_QUEUE);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout,
                              NGX_HTTP_MSGR_DEFAULT_TIMEOUT);
    ngx_conf_merge_msec_value(conf->heartbeat, prev->heartbeat,
                              NGX_HTTP_MSGR_DEFAULT_HEARTBEAT);
    ngx_conf_merge_size_value(conf->cache_size, prev->cache_size,
                              NGX_HTTP_MSGR_DEFAULT_CACHE);

    pool = conf->pool;
    if (pool == NULL) {
        return NGX_CONF_OK;
    }

    src = (pool == prev->pool) ? prev : conf;

    pool->size = (src->pool_size != NGX_CONF_UNSET_UINT)
                 ? src->pool_size : NGX_HTTP_MSGR_DEFAULT_POOL;
    pool->queue_max = (src->queue_max != NGX_CONF_UNSET_UINT)
                      ? src->queue_max : NGX_HTTP_MSGR_DEFAULT_QUEUE;
    pool->timeout = (src->timeout != NGX_CONF_UNSET_MSEC)
                    ? src->timeout : NGX_HTTP_MSGR_DEFAULT_TIMEOUT;
    pool->heartbeat = (src->heartbeat != NGX_CONF_UNSET_MSEC)
                      ? src->heartbeat : NGX_HTTP_MSGR_DEFAULT_HEARTBEAT;

    if (pool->timeout == 0 || pool->heartbeat == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"msgr_pg_timeout\" and \"msgr_pg_heartbeat\" "
                           "must be more than 0");
        return NGX_CONF_ERROR;
    }

    /* statement_timeout and lock_timeout follow msgr_pg_timeout */
    if (ngx_http_msgr_pg_conninfo_build(cf, pool) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_msgr_pool_cache(cf, pool,
                                 (src->cache_size != NGX_CONF_UNSET_SIZE)
                                 ? src->cache_size
                                 : NGX_HTTP_MSGR_DEFAULT_CACHE)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Each pool has its read cache, shared by the workers, and a LISTEN
 * connection per worker that keeps the cache true (docs/architecture.md).
 */


/*
 * msgr_twilio_auth_token TOKEN | off; msgr_twilio_callback_url URL | off:
 * off is stored as "" (a token and a URL are never empty)
 */

static char *
ngx_http_msgr_twilio(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_str_t  *field, *value;

    field = (ngx_str_t *) ((char *) conf + cmd->offset);

    if (field->data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *field = value[1];

    if (ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(field, "");
        return NGX_CONF_OK;
    }

    if (value[1].len == 0) {
        return "takes a value or off";
    }

    if (cmd->offset == offsetof(ngx_http_msgr_loc_conf_t,
                                twilio_callback_url)
        && ((ngx_strncmp(value[1].data, "http://", 7) != 0
             && ngx_strncmp(value[1].data, "https://", 8) != 0)
            || ngx_strlchr(value[1].data, value[1].data + value[1].len, '?')
               != NULL))
    {
        return "takes the status route's public URL, http:// or https://, "
               "without a query";
    }

    return NGX_CONF_OK;
}

static ngx_int_t
ngx_http_msgr_pool_cache(ngx_conf_t *cf, ngx_http_msgr_pg_pool_t *pool,
    size_t size)
{
    ngx_str_t                   name;
    ngx_uint_t                  i;
    ngx_http_msgr_pg_pool_t   **pools;
    ngx_http_msgr_main_conf_t  *mcf;

    if (pool->notify_data) {
        return NGX_OK;
    }

    if (size < 8 * ngx_pagesize) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"msgr_cache_size\" must be at least %uzk",
                           8 * ngx_pagesize / 1024);
        return NGX_ERROR;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgr_module);
    pools = mcf->pools.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        if (pools[i] == pool) {
            break;
        }
    }

    name.data = ngx_pnalloc(cf->pool, sizeof("msgr_cache_") + NGX_INT_T_LEN);
    if (name.data == NULL) {
        return NGX_ERROR;
    }

    name.len = ngx_sprintf(name.data, "msgr_cache_%ui", i) - name.data;

    pool->notify_data = ngx_http_msgr_cache_add(cf, &name, size,
                                                &ngx_http_msgr_module);
    if (pool->notify_data == NULL) {
        return NGX_ERROR;
    }

    pool->notify = ngx_http_msgr_notify;
    pool->listen_sql = "LISTEN msgr_keys; LISTEN msgr_app_tokens;"
                       " LISTEN msgr_app_tokens_restored;"
                       " LISTEN msgr_settings";
    pool->listen_up = ngx_http_msgr_listen_up;

    return NGX_OK;
}


/*
 * "msgr_keys" and "msgr_app_tokens": "school:id" revoked;
 * "msgr_app_tokens_restored": "school:id" live again (its contact is back);
 * "msgr_settings": "school:version"
 */

static void
ngx_http_msgr_notify(ngx_http_msgr_pg_pool_t *pool, PGnotify *n)
{
    char                   *colon, *end;
    long long               school, version;
    ngx_http_msgr_cache_t  *cache;

    cache = pool->notify_data;

    colon = strchr(n->extra, ':');
    if (colon == NULL) {
        goto bad;
    }

    school = strtoll(n->extra, &end, 10);
    if (end != colon || school <= 0) {
        goto bad;
    }

    if (ngx_strcmp(n->relname, "msgr_keys") == 0) {
        if (ngx_strlen(colon + 1) != MSGR_KEY_ID_LEN) {
            goto bad;
        }

        ngx_http_msgr_cache_key_revoke(cache, 0, school, colon + 1);
        return;
    }

    if (ngx_strcmp(n->relname, "msgr_app_tokens") == 0) {
        if (ngx_strlen(colon + 1) != MSGR_KEY_ID_LEN) {
            goto bad;
        }

        ngx_http_msgr_cache_key_revoke(cache, 1, school, colon + 1);
        return;
    }

    if (ngx_strcmp(n->relname, "msgr_app_tokens_restored") == 0) {
        if (ngx_strlen(colon + 1) != MSGR_KEY_ID_LEN) {
            goto bad;
        }

        ngx_http_msgr_cache_key_restore(cache, 1, school, colon + 1);
        return;
    }

    if (ngx_strcmp(n->relname, "msgr_settings") == 0) {
        version = strtoll(colon + 1, &end, 10);
        if (*end != '\0' || version <= 0) {
            goto bad;
        }

        ngx_http_msgr_cache_settings_changed(cache, school, version);
        return;
    }

bad:

    ngx_log_error(NGX_LOG_WARN, pool->log, 0,
                  "msgr: unexpected notification \"%s\": \"%s\"",
                  n->relname, n->extra);
}


/*
 * Notifications may have been missed while nobody listened: the cache is
 * emptied, and reads begun before cannot fill it (flood control stays).
 */

static void
ngx_http_msgr_listen_up(ngx_http_msgr_pg_pool_t *pool)
{
    ngx_http_msgr_cache_flush(pool->notify_data);
}


static void *
ngx_http_msgr_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_msgr_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgr_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->api = NGX_CONF_UNSET;
    conf->max_body = NGX_CONF_UNSET_SIZE;
    conf->app_rate = NGX_CONF_UNSET_UINT;
    conf->app_refused_rate = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_msgr_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_msgr_loc_conf_t *prev = parent;
    ngx_http_msgr_loc_conf_t *conf = child;

    ngx_http_msgr_srv_conf_t  *scf;
    ngx_http_core_loc_conf_t  *clcf;

    ngx_conf_merge_value(conf->api, prev->api, 0);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              NGX_HTTP_MSGR_DEFAULT_BODY);
    ngx_conf_merge_uint_value(conf->app_rate, prev->app_rate,
                              NGX_HTTP_MSGR_DEFAULT_APP_RATE);

    /* refused posts: six times the accepted ones unless said */
    ngx_conf_merge_uint_value(conf->app_refused_rate, prev->app_refused_rate,
                              ngx_min(6 * conf->app_rate, 60000));

    /* "off" (the default) is stored as an empty string */
    ngx_conf_merge_str_value(conf->twilio_auth_token,
                             prev->twilio_auth_token, "");
    ngx_conf_merge_str_value(conf->twilio_callback_url,
                             prev->twilio_callback_url, "");

#if (NGX_THREADS)
    if (conf->thread_pool == NULL) {
        conf->thread_pool = prev->thread_pool;
    }
#endif

    if (!conf->api) {
        return NGX_CONF_OK;
    }

    scf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_msgr_module);

    if (scf->pool == NULL || scf->pool == NGX_CONF_UNSET_PTR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"msgr_api\" is used, but no \"msgr_pg\" says "
                           "where PostgreSQL is: add \"msgr_pg CONNINFO;\" "
                           "to the http or server block");
        return NGX_CONF_ERROR;
    }

    conf->pool = scf->pool;
    conf->cache = scf->pool->notify_data;

    /*
     * msgr_max_body is client_max_body_size here: nginx enforces it for
     * every body, chunked or not, and the response filter turns its 413
     * into problem+json.
     */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->client_max_body_size = conf->max_body;

    /* and bodies stay in memory, where the API parses them */
    clcf->client_body_buffer_size = conf->max_body;

    return NGX_CONF_OK;
}


static char *
ngx_http_msgr_pg(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgr_srv_conf_t *scf = conf;

    ngx_str_t                   *value;
    ngx_http_msgr_pg_pool_t     *pool, **pp;
    ngx_http_msgr_main_conf_t   *mcf;

    if (scf->pool != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "needs a PostgreSQL connection string, "
               "e.g. \"host=127.0.0.1 dbname=msgr\"";
    }

    if (ngx_http_msgr_pg_conninfo_check(cf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    pool = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgr_pg_pool_t));
    if (pool == NULL) {
        return NGX_CONF_ERROR;
    }

    /* cf->args values are NUL-terminated */
    pool->configured = value[1];
    pool->size = NGX_HTTP_MSGR_DEFAULT_POOL;
    pool->queue_max = NGX_HTTP_MSGR_DEFAULT_QUEUE;
    pool->timeout = NGX_HTTP_MSGR_DEFAULT_TIMEOUT;
    pool->heartbeat = NGX_HTTP_MSGR_DEFAULT_HEARTBEAT;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_msgr_module);

    pp = ngx_array_push(&mcf->pools);
    if (pp == NULL) {
        return NGX_CONF_ERROR;
    }

    *pp = pool;
    scf->pool = pool;

    return NGX_CONF_OK;
}


static char *
ngx_http_msgr_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_msgr_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->api != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    mlcf->api = 1;

#if (NGX_THREADS)
    /* nginx's "default" pool, unless the configuration sizes it otherwise */
    mlcf->thread_pool = ngx_thread_pool_add(cf, NULL);
    if (mlcf->thread_pool == NULL) {
        return NGX_CONF_ERROR;
    }
#endif

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_msgr_api_handler;

    return NGX_CONF_OK;
}


/* the resources' statements get their ids; the error-page filter */

static ngx_int_t
ngx_http_msgr_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_msgr_api_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_msgr_response_init(cf);
}


static ngx_int_t
ngx_http_msgr_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_msgr_pg_pool_t   **pools;
    ngx_http_msgr_main_conf_t  *mcf;

    if (msgr_key_init() != 0) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "msgr: libsodium could not be initialised");
        return NGX_ERROR;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgr_module);
    if (mcf == NULL) {
        return NGX_OK;
    }

    pools = mcf->pools.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        if (ngx_http_msgr_pg_init_worker(pools[i], cycle) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static void
ngx_http_msgr_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_http_msgr_pg_pool_t   **pools;
    ngx_http_msgr_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_msgr_module);
    if (mcf == NULL) {
        return;
    }

    pools = mcf->pools.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        ngx_http_msgr_pg_exit_worker(pools[i]);
    }
}

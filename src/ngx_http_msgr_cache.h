/*
 * msgr: the read cache, in shared memory across the host's workers.
 *
 * It holds API keys (school, role, secret hash) and each school's settings
 * response body with its version.  The consistency rule, in full in
 * docs/architecture.md:
 *
 *   - a worker writes what it committed into the cache before it answers;
 *   - other hosts and msgrctl announce changes with NOTIFY, and a worker
 *     applies them to the cache as they arrive: a revoked key and a settings
 *     version newer than the cached one leave a tombstone that an older
 *     read cannot overwrite;
 *   - a worker uses the cache only while its LISTEN connection is up, and
 *     the cache is emptied whenever a LISTEN connection (re)starts, since
 *     notifications may have been missed while it was down; the emptying
 *     bumps the cache's generation, and a fill made under an older one
 *     (read before) is dropped; flood-control counters are kept;
 *   - every entry also expires after a while, as a last resort.
 */

#ifndef _NGX_HTTP_MSGR_CACHE_H_INCLUDED_
#define _NGX_HTTP_MSGR_CACHE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "msgr_key.h"


#define NGX_HTTP_MSGR_CACHE_VALID  60000


typedef struct ngx_http_msgr_cache_s  ngx_http_msgr_cache_t;


/* an API key (app 0) or a parents' app token (app 1) */
typedef struct {
    ngx_uint_t       app;
    ngx_uint_t       role;
    int64_t          contact_id;
    u_char           hash[MSGR_KEY_HASH_LEN];
} ngx_http_msgr_cache_key_t;


typedef struct {
    int64_t          version;
    ngx_uint_t       enhanced;
    ngx_str_t        body;          /* copied into the caller's pool */
} ngx_http_msgr_cache_settings_t;


ngx_http_msgr_cache_t *ngx_http_msgr_cache_add(ngx_conf_t *cf,
    ngx_str_t *name, size_t size, void *tag);

/*
 * out->app says which kind to look for.  NGX_OK: found; NGX_DECLINED: known
 * revoked; NGX_DONE: not cached.
 */
ngx_int_t ngx_http_msgr_cache_key_get(ngx_http_msgr_cache_t *cache,
    int64_t school_id, const char *key_id, ngx_http_msgr_cache_key_t *out);
/*
 * The generation to take before reading what will fill the cache, and to
 * pass to the put: the fill is dropped if the cache was emptied meanwhile.
 */
ngx_uint_t ngx_http_msgr_cache_generation(ngx_http_msgr_cache_t *cache);

void ngx_http_msgr_cache_key_put(ngx_http_msgr_cache_t *cache,
    int64_t school_id, const char *key_id, ngx_http_msgr_cache_key_t *key,
    ngx_uint_t generation);
void ngx_http_msgr_cache_key_revoke(ngx_http_msgr_cache_t *cache,
    ngx_uint_t app, int64_t school_id, const char *key_id);
/* a key (an app token whose contact is back) usable again: no tombstone */
void ngx_http_msgr_cache_key_restore(ngx_http_msgr_cache_t *cache,
    ngx_uint_t app, int64_t school_id, const char *key_id);

/*
 * Counts events of an app token against "limit a minute", for every worker
 * of the host (GCRA: a burst of limit, then one per 60/limit s); each
 * token has two counters, one for accepted events and one for refused
 * ones.  take: NGX_HTTP_MSGR_RATE_TAKE counts one, _PEEK only looks,
 * _GIVE_BACK uncounts one taken earlier.  NGX_OK, or NGX_BUSY (the limit
 * is reached: nothing counted) with *retry_after in seconds.
 */

#define NGX_HTTP_MSGR_RATE_PEEK       0
#define NGX_HTTP_MSGR_RATE_TAKE       1
#define NGX_HTTP_MSGR_RATE_GIVE_BACK  2

ngx_int_t ngx_http_msgr_cache_rate(ngx_http_msgr_cache_t *cache,
    int64_t school_id, const char *token_id, ngx_uint_t refused,
    ngx_uint_t limit, ngx_uint_t take, time_t *retry_after);

/* NGX_OK: found (body copied from pool); NGX_DONE: not cached */
ngx_int_t ngx_http_msgr_cache_settings_get(ngx_http_msgr_cache_t *cache,
    int64_t school_id, ngx_pool_t *pool, ngx_http_msgr_cache_settings_t *out);
void ngx_http_msgr_cache_settings_put(ngx_http_msgr_cache_t *cache,
    int64_t school_id, ngx_http_msgr_cache_settings_t *s,
    ngx_uint_t generation);
void ngx_http_msgr_cache_settings_changed(ngx_http_msgr_cache_t *cache,
    int64_t school_id, int64_t version);

/* empties all but the flood-control counters, and bumps the generation */
void ngx_http_msgr_cache_flush(ngx_http_msgr_cache_t *cache);
void ngx_http_msgr_cache_app_flush(ngx_http_msgr_cache_t *cache,
    int64_t school_id);


#endif /* _NGX_HTTP_MSGR_CACHE_H_INCLUDED_ */

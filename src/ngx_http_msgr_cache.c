/*
 * msgr: the shared-memory read cache of API keys and settings.
 *
 * One red-black tree per zone, ordered by a CRC32 of (kind, school, id)
 * with the whole identity as tie-breaker, and a least-recently-used queue
 * from which entries are evicted when the slab pool is full.
 *
 * The zone has a generation, which every (re)start of a LISTEN connection
 * bumps while it empties the cache: a fill made with what a request read
 * under an older generation is dropped, since a notification it should
 * have yielded to may have been missed, or emptied away with its
 * tombstone.  Flood-control counters are not read from the database and
 * stay.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_msgr_cache.h"


#define NGX_HTTP_MSGR_CACHE_KEY       1
#define NGX_HTTP_MSGR_CACHE_SETTINGS  2
#define NGX_HTTP_MSGR_CACHE_APP       3
#define NGX_HTTP_MSGR_CACHE_RATE      4
#define NGX_HTTP_MSGR_CACHE_REFUSED   5


typedef struct {
    ngx_rbtree_t                  rbtree;
    ngx_rbtree_node_t             sentinel;
    ngx_queue_t                   lru;
    ngx_atomic_t                  generation;
} ngx_http_msgr_cache_sh_t;


struct ngx_http_msgr_cache_s {
    ngx_shm_zone_t               *zone;
    ngx_slab_pool_t              *shpool;
    ngx_http_msgr_cache_sh_t     *sh;
};


typedef struct {
    int64_t                       school_id;
    u_char                        kind;
    u_char                        id[MSGR_KEY_ID_LEN];
} ngx_http_msgr_cache_id_t;


typedef struct {
    ngx_rbtree_node_t             node;
    ngx_queue_t                   queue;
    ngx_msec_t                    expires;
    ngx_http_msgr_cache_id_t      ident;
    int64_t                       version;    /* settings; app: contact */
    u_char                        gone;
    u_char                        role;
    u_char                        enhanced;
    u_char                        hash[MSGR_KEY_HASH_LEN];
    size_t                        len;
    u_char                        data[1];
} ngx_http_msgr_cache_node_t;


static ngx_int_t ngx_http_msgr_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_msgr_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_msgr_cache_node_t *ngx_http_msgr_cache_lookup(
    ngx_http_msgr_cache_t *cache, ngx_http_msgr_cache_id_t *ident,
    ngx_uint_t hash);
static ngx_http_msgr_cache_node_t *ngx_http_msgr_cache_alloc(
    ngx_http_msgr_cache_t *cache, ngx_http_msgr_cache_id_t *ident,
    ngx_uint_t hash, size_t len);
static void ngx_http_msgr_cache_delete(ngx_http_msgr_cache_t *cache,
    ngx_http_msgr_cache_node_t *cn);
static void ngx_http_msgr_cache_drop(ngx_http_msgr_cache_t *cache,
    ngx_uint_t kind, int64_t school_id);


ngx_http_msgr_cache_t *
ngx_http_msgr_cache_add(ngx_conf_t *cf, ngx_str_t *name, size_t size,
    void *tag)
{
    ngx_shm_zone_t         *zone;
    ngx_http_msgr_cache_t  *cache;

    cache = ngx_pcalloc(cf->pool, sizeof(ngx_http_msgr_cache_t));
    if (cache == NULL) {
        return NULL;
    }

    zone = ngx_shared_memory_add(cf, name, size, tag);
    if (zone == NULL) {
        return NULL;
    }

    if (zone->data) {
        /* the zone is already there: the same cache */
        return zone->data;
    }

    zone->init = ngx_http_msgr_cache_init_zone;
    zone->data = cache;
    cache->zone = zone;

    return cache;
}


static ngx_int_t
ngx_http_msgr_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_msgr_cache_t *ocache = data;

    size_t                  len;
    ngx_http_msgr_cache_t  *cache;

    cache = shm_zone->data;
    cache->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ocache) {
        /* a reload: the old cache goes on, emptied by the new LISTENs */
        cache->sh = ocache->sh;
        return NGX_OK;
    }

    if (shm_zone->shm.exists) {
        cache->sh = cache->shpool->data;
        return NGX_OK;
    }

    cache->sh = ngx_slab_alloc(cache->shpool,
                               sizeof(ngx_http_msgr_cache_sh_t));
    if (cache->sh == NULL) {
        return NGX_ERROR;
    }

    cache->shpool->data = cache->sh;

    ngx_rbtree_init(&cache->sh->rbtree, &cache->sh->sentinel,
                    ngx_http_msgr_cache_rbtree_insert);
    ngx_queue_init(&cache->sh->lru);
    cache->sh->generation = 1;

    len = sizeof(" in msgr cache zone \"\"") + shm_zone->shm.name.len;

    cache->shpool->log_ctx = ngx_slab_alloc(cache->shpool, len);
    if (cache->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(cache->shpool->log_ctx, " in msgr cache zone \"%V\"%Z",
                &shm_zone->shm.name);

    cache->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_uint_t
ngx_http_msgr_cache_ident(ngx_http_msgr_cache_id_t *ident, ngx_uint_t kind,
    int64_t school_id, const char *id)
{
    ngx_memzero(ident, sizeof(ngx_http_msgr_cache_id_t));

    ident->kind = (u_char) kind;
    ident->school_id = school_id;

    if (id) {
        ngx_memcpy(ident->id, id, MSGR_KEY_ID_LEN);
    }

    return ngx_crc32_short((u_char *) ident,
                           sizeof(ngx_http_msgr_cache_id_t));
}


static void
ngx_http_msgr_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_msgr_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_msgr_cache_node_t *) node;
            cnt = (ngx_http_msgr_cache_node_t *) temp;

            p = (ngx_memcmp(&cn->ident, &cnt->ident,
                            sizeof(ngx_http_msgr_cache_id_t)) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_msgr_cache_node_t *
ngx_http_msgr_cache_lookup(ngx_http_msgr_cache_t *cache,
    ngx_http_msgr_cache_id_t *ident, ngx_uint_t hash)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_msgr_cache_node_t  *cn;

    node = cache->sh->rbtree.root;
    sentinel = cache->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_msgr_cache_node_t *) node;

        rc = ngx_memcmp(ident, &cn->ident, sizeof(ngx_http_msgr_cache_id_t));

        if (rc == 0) {
            if ((ngx_msec_int_t) (cn->expires - ngx_current_msec) <= 0) {
                ngx_http_msgr_cache_delete(cache, cn);
                return NULL;
            }

            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_msgr_cache_delete(ngx_http_msgr_cache_t *cache,
    ngx_http_msgr_cache_node_t *cn)
{
    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&cache->sh->rbtree, &cn->node);
    ngx_slab_free_locked(cache->shpool, cn);
}


/* a new entry, evicting the least recently used ones while memory lacks */

static ngx_http_msgr_cache_node_t *
ngx_http_msgr_cache_alloc(ngx_http_msgr_cache_t *cache,
    ngx_http_msgr_cache_id_t *ident, ngx_uint_t hash, size_t len)
{
    size_t                       size;
    ngx_queue_t                 *q;
    ngx_http_msgr_cache_node_t  *cn;

    size = offsetof(ngx_http_msgr_cache_node_t, data) + len;

    for ( ;; ) {
        cn = ngx_slab_alloc_locked(cache->shpool, size);
        if (cn) {
            break;
        }

        if (ngx_queue_empty(&cache->sh->lru)) {
            return NULL;
        }

        q = ngx_queue_last(&cache->sh->lru);
        ngx_http_msgr_cache_delete(cache,
            ngx_queue_data(q, ngx_http_msgr_cache_node_t, queue));
    }

    ngx_memzero(cn, offsetof(ngx_http_msgr_cache_node_t, data));

    cn->ident = *ident;
    cn->node.key = hash;
    cn->expires = ngx_current_msec + NGX_HTTP_MSGR_CACHE_VALID;
    cn->len = len;

    ngx_rbtree_insert(&cache->sh->rbtree, &cn->node);
    ngx_queue_insert_head(&cache->sh->lru, &cn->queue);

    return cn;
}


ngx_int_t
ngx_http_msgr_cache_key_get(ngx_http_msgr_cache_t *cache, int64_t school_id,
    const char *key_id, ngx_http_msgr_cache_key_t *out)
{
    ngx_int_t                    rc;
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident,
                                     out->app ? NGX_HTTP_MSGR_CACHE_APP
                                              : NGX_HTTP_MSGR_CACHE_KEY,
                                     school_id, key_id);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn == NULL) {
        rc = NGX_DONE;

    } else if (cn->gone) {
        rc = NGX_DECLINED;

    } else {
        out->role = cn->role;
        out->contact_id = cn->version;
        ngx_memcpy(out->hash, cn->hash, MSGR_KEY_HASH_LEN);

        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&cache->sh->lru, &cn->queue);
        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "msgr cache: %s %L/%*s: %s",
                   out->app ? "app token" : "key", school_id,
                   (size_t) MSGR_KEY_ID_LEN, key_id,
                   rc == NGX_OK ? "hit" : rc == NGX_DECLINED ? "hit, revoked"
                                                             : "miss");

    return rc;
}


ngx_uint_t
ngx_http_msgr_cache_generation(ngx_http_msgr_cache_t *cache)
{
    return cache->sh->generation;
}


void
ngx_http_msgr_cache_key_put(ngx_http_msgr_cache_t *cache, int64_t school_id,
    const char *key_id, ngx_http_msgr_cache_key_t *key, ngx_uint_t generation)
{
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident,
                                     key->app ? NGX_HTTP_MSGR_CACHE_APP
                                              : NGX_HTTP_MSGR_CACHE_KEY,
                                     school_id, key_id);

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (generation != cache->sh->generation) {
        /* read before the cache was emptied */
        goto done;
    }

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    /* a revoked key stays revoked, whatever an older read says */
    if (cn == NULL) {
        cn = ngx_http_msgr_cache_alloc(cache, &ident, hash, 0);

        if (cn) {
            cn->role = (u_char) key->role;
            cn->version = key->contact_id;
            ngx_memcpy(cn->hash, key->hash, MSGR_KEY_HASH_LEN);
        }
    }

done:

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_msgr_cache_key_revoke(ngx_http_msgr_cache_t *cache, ngx_uint_t app,
    int64_t school_id, const char *key_id)
{
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident,
                                     app ? NGX_HTTP_MSGR_CACHE_APP
                                         : NGX_HTTP_MSGR_CACHE_KEY,
                                     school_id, key_id);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn == NULL) {
        cn = ngx_http_msgr_cache_alloc(cache, &ident, hash, 0);
    }

    if (cn) {
        cn->gone = 1;
        ngx_memzero(cn->hash, MSGR_KEY_HASH_LEN);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


/* the key is live again: its tombstone goes, the next look-up reads it */

void
ngx_http_msgr_cache_key_restore(ngx_http_msgr_cache_t *cache, ngx_uint_t app,
    int64_t school_id, const char *key_id)
{
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident,
                                     app ? NGX_HTTP_MSGR_CACHE_APP
                                         : NGX_HTTP_MSGR_CACHE_KEY,
                                     school_id, key_id);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn && cn->gone) {
        ngx_http_msgr_cache_delete(cache, cn);
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_http_msgr_cache_settings_get(ngx_http_msgr_cache_t *cache,
    int64_t school_id, ngx_pool_t *pool, ngx_http_msgr_cache_settings_t *out)
{
    ngx_int_t                    rc;
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident, NGX_HTTP_MSGR_CACHE_SETTINGS,
                                     school_id, NULL);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    rc = NGX_DONE;

    if (cn && !cn->gone) {
        out->body.data = ngx_pnalloc(pool, cn->len);

        if (out->body.data) {
            out->body.len = cn->len;
            ngx_memcpy(out->body.data, cn->data, cn->len);
            out->version = cn->version;
            out->enhanced = cn->enhanced;

            ngx_queue_remove(&cn->queue);
            ngx_queue_insert_head(&cache->sh->lru, &cn->queue);
            rc = NGX_OK;
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ngx_cycle->log, 0,
                   "msgr cache: settings of school %L: %s", school_id,
                   rc == NGX_OK ? "hit" : "miss");

    return rc;
}


void
ngx_http_msgr_cache_settings_put(ngx_http_msgr_cache_t *cache,
    int64_t school_id, ngx_http_msgr_cache_settings_t *s,
    ngx_uint_t generation)
{
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident, NGX_HTTP_MSGR_CACHE_SETTINGS,
                                     school_id, NULL);

    ngx_shmtx_lock(&cache->shpool->mutex);

    if (generation != cache->sh->generation) {
        /* read before the cache was emptied */
        goto done;
    }

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn) {
        /*
         * Never go back: a newer body, or a tombstone naming a newer
         * version than this one, stays.
         */
        if (cn->version > s->version
            || (cn->version == s->version && !cn->gone))
        {
            goto done;
        }

        ngx_http_msgr_cache_delete(cache, cn);
    }

    cn = ngx_http_msgr_cache_alloc(cache, &ident, hash, s->body.len);

    if (cn) {
        cn->version = s->version;
        cn->enhanced = (u_char) s->enhanced;
        ngx_memcpy(cn->data, s->body.data, s->body.len);
    }

done:

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


void
ngx_http_msgr_cache_settings_changed(ngx_http_msgr_cache_t *cache,
    int64_t school_id, int64_t version)
{
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    hash = ngx_http_msgr_cache_ident(&ident, NGX_HTTP_MSGR_CACHE_SETTINGS,
                                     school_id, NULL);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn && cn->version >= version) {
        /* this host wrote it, or has already heard of it */
        goto done;
    }

    if (cn) {
        ngx_http_msgr_cache_delete(cache, cn);
    }

    cn = ngx_http_msgr_cache_alloc(cache, &ident, hash, 0);

    if (cn) {
        cn->gone = 1;
        cn->version = version;
    }

done:

    ngx_shmtx_unlock(&cache->shpool->mutex);
}


ngx_int_t
ngx_http_msgr_cache_rate(ngx_http_msgr_cache_t *cache, int64_t school_id,
    const char *token_id, ngx_uint_t refused, ngx_uint_t limit,
    ngx_uint_t take, time_t *retry_after)
{
    int64_t                      now, tat, interval, burst;
    ngx_int_t                    rc;
    ngx_uint_t                   hash;
    ngx_http_msgr_cache_id_t     ident;
    ngx_http_msgr_cache_node_t  *cn;

    /* the "theoretical arrival time" of the next event, in ms */

    interval = 60000 / (int64_t) limit;
    burst = 60000 - interval;
    now = (int64_t) ngx_current_msec;

    hash = ngx_http_msgr_cache_ident(&ident,
                                     refused ? NGX_HTTP_MSGR_CACHE_REFUSED
                                             : NGX_HTTP_MSGR_CACHE_RATE,
                                     school_id, token_id);

    ngx_shmtx_lock(&cache->shpool->mutex);

    cn = ngx_http_msgr_cache_lookup(cache, &ident, hash);

    if (cn == NULL) {
        if (take != NGX_HTTP_MSGR_RATE_TAKE) {
            /* nothing counted yet, or forgotten: nothing to give back */
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_OK;
        }

        cn = ngx_http_msgr_cache_alloc(cache, &ident, hash, 0);

        if (cn == NULL) {
            /* no memory at all: let it through rather than lock parents out */
            ngx_shmtx_unlock(&cache->shpool->mutex);
            return NGX_OK;
        }

        cn->version = now;
    }

    if (take == NGX_HTTP_MSGR_RATE_GIVE_BACK) {
        cn->version = ngx_max(cn->version - interval, now);
        ngx_shmtx_unlock(&cache->shpool->mutex);
        return NGX_OK;
    }

    tat = ngx_max(cn->version, now);

    if (tat - now > burst) {
        *retry_after = (time_t) ((tat - now - burst + 999) / 1000);
        rc = NGX_BUSY;

    } else {
        if (take == NGX_HTTP_MSGR_RATE_TAKE) {
            cn->version = tat + interval;
            cn->expires = ngx_current_msec + 60000
                          + NGX_HTTP_MSGR_CACHE_VALID;
        }

        rc = NGX_OK;
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);

    return rc;
}


/*
 * A LISTEN connection (re)starts: what was heard before may be incomplete.
 * Every entry read from the database goes, and a read still in flight
 * cannot put its answer back; flood-control counters stay.
 */

void
ngx_http_msgr_cache_flush(ngx_http_msgr_cache_t *cache)
{
    ngx_http_msgr_cache_drop(cache, 0, 0);
}


/*
 * A school's parents may have come and gone (a MIS sync retires and
 * restores contacts): every app token of the school is read again from the
 * database, on this host at once, without waiting for the notifications
 * (which tell the other hosts).  A read in flight cannot put back what it
 * read before.
 */

void
ngx_http_msgr_cache_app_flush(ngx_http_msgr_cache_t *cache,
    int64_t school_id)
{
    ngx_http_msgr_cache_drop(cache, NGX_HTTP_MSGR_CACHE_APP, school_id);
}


/*
 * Drops what was read from the database (kind 0: every kind but the
 * flood-control counters; else that kind of school_id's) and bumps the
 * generation, so that a read in flight cannot put back what it read.
 */

static void
ngx_http_msgr_cache_drop(ngx_http_msgr_cache_t *cache, ngx_uint_t kind,
    int64_t school_id)
{
    ngx_queue_t                 *q, *next;
    ngx_http_msgr_cache_node_t  *cn;

    ngx_shmtx_lock(&cache->shpool->mutex);

    cache->sh->generation++;

    for (q = ngx_queue_head(&cache->sh->lru);
         q != ngx_queue_sentinel(&cache->sh->lru);
         q = next)
    {
        next = ngx_queue_next(q);
        cn = ngx_queue_data(q, ngx_http_msgr_cache_node_t, queue);

        if (kind == 0
            ? (cn->ident.kind != NGX_HTTP_MSGR_CACHE_RATE
               && cn->ident.kind != NGX_HTTP_MSGR_CACHE_REFUSED)
            : (cn->ident.kind == kind && cn->ident.school_id == school_id))
        {
            ngx_http_msgr_cache_delete(cache, cn);
        }
    }

    ngx_shmtx_unlock(&cache->shpool->mutex);
}

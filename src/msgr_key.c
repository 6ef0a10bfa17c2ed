/*
 * msgr API keys: generation, parsing and verification.
 */

#include <stdio.h>
#include <string.h>
#include <sodium.h>

#include "msgr_key.h"


int
msgr_key_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}


void
msgr_key_hash(const char *secret, size_t len,
    unsigned char hash[MSGR_KEY_HASH_LEN])
{
    crypto_generichash(hash, MSGR_KEY_HASH_LEN,
                       (const unsigned char *) secret, len, NULL, 0);
}


static int msgr_key_generate_prefixed(const char *prefix, int64_t school_id,
    char *buf, size_t size, msgr_key_t *key,
    unsigned char hash[MSGR_KEY_HASH_LEN]);
static int msgr_key_parse_prefixed(const char *prefix, const char *s,
    size_t len, msgr_key_t *key);


int
msgr_key_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN])
{
    return msgr_key_generate_prefixed(MSGR_KEY_PREFIX, school_id, buf, size,
                                      key, hash);
}


int
msgr_app_token_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN])
{
    return msgr_key_generate_prefixed(MSGR_APP_PREFIX, school_id, buf, size,
                                      key, hash);
}


int
msgr_key_parse(const char *s, size_t len, msgr_key_t *key)
{
    return msgr_key_parse_prefixed(MSGR_KEY_PREFIX, s, len, key);
}


int
msgr_app_token_parse(const char *s, size_t len, msgr_key_t *key)
{
    return msgr_key_parse_prefixed(MSGR_APP_PREFIX, s, len, key);
}


int
msgr_session_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN])
{
    return msgr_key_generate_prefixed(MSGR_SESSION_PREFIX, school_id, buf,
                                      size, key, hash);
}


int
msgr_session_parse(const char *s, size_t len, msgr_key_t *key)
{
    return msgr_key_parse_prefixed(MSGR_SESSION_PREFIX, s, len, key);
}


int
msgr_pwtoken_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN])
{
    return msgr_key_generate_prefixed(MSGR_PWTOKEN_PREFIX, school_id, buf,
                                      size, key, hash);
}


int
msgr_pwtoken_parse(const char *s, size_t len, msgr_key_t *key)
{
    return msgr_key_parse_prefixed(MSGR_PWTOKEN_PREFIX, s, len, key);
}


static int
msgr_key_generate_prefixed(const char *prefix, int64_t school_id, char *buf,
    size_t size, msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN])
{
    int            n;
    char           secret[MSGR_KEY_SECRET_LEN + 1];
    unsigned char  id[MSGR_KEY_ID_LEN / 2], raw[MSGR_KEY_SECRET_BYTES];

    if (school_id <= 0) {
        return -1;
    }

    randombytes_buf(id, sizeof(id));
    randombytes_buf(raw, sizeof(raw));

    sodium_bin2hex(key->id, sizeof(key->id), id, sizeof(id));
    sodium_bin2base64(secret, sizeof(secret), raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));

    n = snprintf(buf, size, "%s%lld_%s_%s", prefix,
                 (long long) school_id, key->id, secret);
    if (n < 0 || (size_t) n >= size) {
        sodium_memzero(secret, sizeof(secret));
        return -1;
    }

    key->school_id = school_id;
    msgr_key_hash(secret, MSGR_KEY_SECRET_LEN, hash);
    sodium_memzero(secret, sizeof(secret));

    key->secret = buf + n - MSGR_KEY_SECRET_LEN;
    key->secret_len = MSGR_KEY_SECRET_LEN;

    return 0;
}


static int
msgr_key_parse_prefixed(const char *prefix, const char *s, size_t len,
    msgr_key_t *key)
{
    char     ch;
    size_t   i, k, plen;
    int64_t  school;

    plen = strlen(prefix);

    if (len > MSGR_KEY_MAX_LEN || len <= plen
        || memcmp(s, prefix, plen) != 0)
    {
        return -1;
    }

    i = plen;
    school = 0;

    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (school > (INT64_MAX - (s[i] - '0')) / 10) {
            return -1;
        }

        school = school * 10 + (s[i++] - '0');
    }

    if (i == plen || school == 0 || i >= len || s[i++] != '_') {
        return -1;
    }

    if (len - i < MSGR_KEY_ID_LEN + 1 + MSGR_KEY_SECRET_LEN) {
        return -1;
    }

    for (k = 0; k < MSGR_KEY_ID_LEN; k++) {
        ch = s[i + k];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) {
            return -1;
        }
        key->id[k] = ch;
    }
    key->id[MSGR_KEY_ID_LEN] = '\0';
    i += MSGR_KEY_ID_LEN;

    if (s[i++] != '_' || len - i != MSGR_KEY_SECRET_LEN) {
        return -1;
    }

    for (k = i; k < len; k++) {
        ch = s[k];

        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
              || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'))
        {
            return -1;
        }
    }

    key->school_id = school;
    key->secret = s + i;
    key->secret_len = len - i;

    return 0;
}


int
msgr_key_verify(const msgr_key_t *key, const unsigned char *hash,
    size_t hash_len)
{
    unsigned char  h[MSGR_KEY_HASH_LEN];

    if (hash_len != MSGR_KEY_HASH_LEN) {
        return 0;
    }

    msgr_key_hash(key->secret, key->secret_len, h);

    return sodium_memcmp(h, hash, MSGR_KEY_HASH_LEN) == 0;
}

/*
 * Fuzz target: an API key or a parent's app token as presented in an
 * Authorization header.  Properties: a parsed key's secret lies inside
 * the input, its id is 16 hex digits, its school positive, and it
 * verifies against the hash of its own secret.
 */

#include <string.h>

#include "msgr_fuzz.h"
#include "msgr_key.h"


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    return msgr_key_init();
}


static void
msgr_fuzz_key(const char *s, size_t len, int app)
{
    int             rc;
    msgr_key_t      key;
    unsigned char   hash[MSGR_KEY_HASH_LEN];

    rc = app ? msgr_app_token_parse(s, len, &key)
             : msgr_key_parse(s, len, &key);

    if (rc != 0) {
        msgr_fuzz_assert(rc == -1);
        return;
    }

    msgr_fuzz_assert(key.school_id > 0);
    msgr_fuzz_assert(strlen(key.id) == MSGR_KEY_ID_LEN);
    msgr_fuzz_assert(strspn(key.id, "0123456789abcdef") == MSGR_KEY_ID_LEN);
    msgr_fuzz_assert(key.secret >= s
                     && key.secret + key.secret_len <= s + len);

    memset(hash, 0, sizeof(hash));
    (void) msgr_key_verify(&key, hash, sizeof(hash));
    msgr_key_hash(key.secret, key.secret_len, hash);
    msgr_fuzz_assert(msgr_key_verify(&key, hash, sizeof(hash)) == 1);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgr_fuzz_key((const char *) data, size, 0);
    msgr_fuzz_key((const char *) data, size, 1);

    return 0;
}

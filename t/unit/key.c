/*
 * Unit tests of src/msgr_key.c: generation, parsing and verification of
 * API keys.  Prints TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_key.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  42

#define MSGR_TEST_SECRET  "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_x"
#define MSGR_TEST_ID      "0123456789abcdef"
#define MSGR_TEST_KEY     "msgr_42_" MSGR_TEST_ID "_" MSGR_TEST_SECRET


static int
msgr_test_parses(const char *s)
{
    msgr_key_t  key;

    return msgr_key_parse(s, strlen(s), &key) == 0;
}


/* The key literal with one byte at pos replaced by ch */

static int
msgr_test_parses_with(size_t pos, char ch)
{
    char  buf[] = MSGR_TEST_KEY;

    buf[pos] = ch;

    return msgr_test_parses(buf);
}


static void
msgr_test_generated(void)
{
    int            rc;
    char           buf[MSGR_KEY_MAX_LEN + 1], copy[MSGR_KEY_MAX_LEN + 1];
    char           other[MSGR_KEY_MAX_LEN + 1];
    size_t         len, plen;
    msgr_key_t     key, parsed, key2;
    unsigned char  hash[MSGR_KEY_HASH_LEN], hash2[MSGR_KEY_HASH_LEN];

    rc = msgr_key_generate(7, buf, sizeof(buf), &key, hash);
    msgr_test_ok(rc == 0, "generate a key for school 7");

    len = strlen(buf);
    plen = sizeof("msgr_7_") - 1;

    msgr_test_ok(strncmp(buf, "msgr_7_", plen) == 0,
                 "generated key starts with msgr_7_");

    msgr_test_ok(len == plen + MSGR_KEY_ID_LEN + 1 + MSGR_KEY_SECRET_LEN
                 && buf[plen + MSGR_KEY_ID_LEN] == '_',
                 "generated key is msgr_7_<16 hex>_<43 chars>");

    msgr_test_ok(key.school_id == 7
                 && strlen(key.id) == MSGR_KEY_ID_LEN
                 && memcmp(key.id, buf + plen, MSGR_KEY_ID_LEN) == 0,
                 "generate fills in the school id and the key id");

    msgr_test_ok(key.secret == buf + len - MSGR_KEY_SECRET_LEN
                 && key.secret_len == MSGR_KEY_SECRET_LEN,
                 "generate points key.secret at the secret");

    rc = msgr_key_parse(buf, len, &parsed);
    msgr_test_ok(rc == 0, "generated key parses");

    msgr_test_ok(rc == 0 && parsed.school_id == 7,
                 "parsed school id is the generated one");

    msgr_test_ok(rc == 0 && strcmp(parsed.id, key.id) == 0,
                 "parsed key id is the generated one");

    msgr_test_ok(rc == 0 && parsed.secret_len == MSGR_KEY_SECRET_LEN
                 && parsed.secret == buf + len - MSGR_KEY_SECRET_LEN,
                 "parsed secret is the last 43 characters");

    msgr_test_ok(rc == 0 && msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "generated key verifies against its hash");

    msgr_key_hash(parsed.secret, parsed.secret_len, hash2);
    msgr_test_ok(memcmp(hash, hash2, sizeof(hash)) == 0,
                 "the stored hash is the hash of the secret");

    /* a secret changed in any one byte, still well-formed, must fail */

    memcpy(copy, buf, len + 1);
    copy[len - 1] = copy[len - 1] == 'A' ? 'B' : 'A';

    rc = msgr_key_parse(copy, len, &parsed);
    msgr_test_ok(rc == 0 && !msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "changed last secret byte fails verify");

    memcpy(copy, buf, len + 1);
    copy[len - MSGR_KEY_SECRET_LEN] =
        copy[len - MSGR_KEY_SECRET_LEN] == 'A' ? 'B' : 'A';

    rc = msgr_key_parse(copy, len, &parsed);
    msgr_test_ok(rc == 0 && !msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "changed first secret byte fails verify");

    rc = msgr_key_parse(buf, len, &parsed);
    msgr_test_ok(rc == 0 && !msgr_key_verify(&parsed, hash, sizeof(hash) - 1),
                 "a stored hash of the wrong length fails verify");

    rc = msgr_key_generate(7, other, sizeof(other), &key2, hash2);
    msgr_test_ok(rc == 0 && strcmp(buf, other) != 0
                 && strcmp(key.id, key2.id) != 0
                 && strcmp(buf + len - MSGR_KEY_SECRET_LEN,
                           other + len - MSGR_KEY_SECRET_LEN) != 0
                 && memcmp(hash, hash2, sizeof(hash)) != 0,
                 "two generated keys differ in id, secret and hash");

    rc = msgr_key_parse(other, strlen(other), &parsed);
    msgr_test_ok(rc == 0 && !msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "one key does not verify against another's hash");

    rc = msgr_key_generate(INT64_MAX / 10 * 10 - 1, buf, sizeof(buf), &key,
                           hash);
    msgr_test_ok(rc == 0 && msgr_key_parse(buf, strlen(buf), &parsed) == 0
                 && parsed.school_id == INT64_MAX / 10 * 10 - 1
                 && msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "a 19-digit school id round-trips within MSGR_KEY_MAX_LEN");

    rc = msgr_key_generate(INT64_MAX, buf, sizeof(buf), &key, hash);
    msgr_test_ok(rc == 0 && msgr_key_parse(buf, strlen(buf), &parsed) == 0
                 && parsed.school_id == INT64_MAX
                 && msgr_key_verify(&parsed, hash, sizeof(hash)),
                 "school id INT64_MAX round-trips");

    msgr_test_ok(msgr_key_generate(0, buf, sizeof(buf), &key, hash) != 0,
                 "generate refuses school 0");

    msgr_test_ok(msgr_key_generate(-1, buf, sizeof(buf), &key, hash) != 0,
                 "generate refuses a negative school");

    msgr_test_ok(msgr_key_generate(7, buf, 20, &key, hash) != 0,
                 "generate refuses a buffer too small");
}


static void
msgr_test_malformed(void)
{
    char        buf[2 * MSGR_KEY_MAX_LEN];
    size_t      id, secret;
    msgr_key_t  key;

    id = sizeof("msgr_42_") - 1;
    secret = id + MSGR_KEY_ID_LEN + 1;

    msgr_test_ok(msgr_test_parses(MSGR_TEST_KEY),
                 "the well-formed literal parses (control)");

    msgr_test_ok(!msgr_test_parses("mxgr_42_" MSGR_TEST_ID "_" MSGR_TEST_SECRET)
                 && !msgr_test_parses("MSGR_42_" MSGR_TEST_ID "_"
                                      MSGR_TEST_SECRET),
                 "wrong prefix is rejected");

    msgr_test_ok(!msgr_test_parses("msgr_0_" MSGR_TEST_ID "_" MSGR_TEST_SECRET)
                 && !msgr_test_parses("msgr_00_" MSGR_TEST_ID "_"
                                      MSGR_TEST_SECRET),
                 "school 0 is rejected");

    msgr_test_ok(!msgr_test_parses("msgr__" MSGR_TEST_ID "_" MSGR_TEST_SECRET)
                 && !msgr_test_parses("msgr_-4_" MSGR_TEST_ID "_"
                                      MSGR_TEST_SECRET)
                 && !msgr_test_parses("msgr_4x_" MSGR_TEST_ID "_"
                                      MSGR_TEST_SECRET),
                 "missing or non-numeric school is rejected");

    msgr_test_ok(!msgr_test_parses("msgr_99999999999999999999_" MSGR_TEST_ID
                                   "_" MSGR_TEST_SECRET),
                 "school id beyond int64 is rejected");

    msgr_test_ok(!msgr_test_parses_with(id + 3, 'g')
                 && !msgr_test_parses_with(id, 'z'),
                 "non-hex key id is rejected");

    msgr_test_ok(!msgr_test_parses_with(id + 10, 'A'),
                 "uppercase hex in the key id is rejected");

    msgr_test_ok(!msgr_test_parses("msgr_42_0123456789abcde_"
                                   MSGR_TEST_SECRET "x"),
                 "short key id is rejected");

    msgr_test_ok(!msgr_test_parses_with(secret - 1, 'x')
                 && !msgr_test_parses_with(id - 1, 'x'),
                 "missing separators are rejected");

    msgr_test_ok(!msgr_test_parses("msgr_42_" MSGR_TEST_ID "_"
                                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123-_")
                 && !msgr_test_parses("msgr_42_" MSGR_TEST_ID "_"),
                 "short or missing secret is rejected");

    msgr_test_ok(!msgr_test_parses_with(secret + 5, '+')
                 && !msgr_test_parses_with(secret + 6, '/')
                 && !msgr_test_parses_with(secret + 7, '=')
                 && !msgr_test_parses_with(secret + 8, ' ')
                 && !msgr_test_parses_with(secret + 9, '.'),
                 "bad characters in the secret are rejected");

    msgr_test_ok(!msgr_test_parses_with(secret + 9, '\xc3'),
                 "non-ASCII byte in the secret is rejected");

    msgr_test_ok(!msgr_test_parses(MSGR_TEST_KEY "x")
                 && !msgr_test_parses(MSGR_TEST_KEY "_"),
                 "one character too long is rejected");

    memset(buf, 'a', sizeof(buf));
    memcpy(buf, MSGR_TEST_KEY, sizeof(MSGR_TEST_KEY) - 1);
    buf[sizeof(buf) - 1] = '\0';

    msgr_test_ok(!msgr_test_parses(buf),
                 "a key longer than MSGR_KEY_MAX_LEN is rejected");

    msgr_test_ok(!msgr_test_parses("") && !msgr_test_parses("msgr_"),
                 "empty key and bare prefix are rejected");

    /* the length given wins over the NUL: a truncated key is not valid */

    msgr_test_ok(msgr_key_parse(MSGR_TEST_KEY, sizeof(MSGR_TEST_KEY) - 2,
                                &key)
                 != 0,
                 "a key cut short by its length is rejected");

    msgr_test_ok(msgr_key_parse(MSGR_TEST_KEY, sizeof(MSGR_TEST_KEY) - 1,
                                &key) == 0
                 && key.school_id == 42
                 && strcmp(key.id, MSGR_TEST_ID) == 0
                 && key.secret_len == MSGR_KEY_SECRET_LEN
                 && memcmp(key.secret, MSGR_TEST_SECRET,
                           MSGR_KEY_SECRET_LEN) == 0,
                 "parse splits a literal key into school, id, secret");
}


/* sessions and password tokens: the same form, their own prefixes */

static void
msgr_test_sessions(void)
{
    char           buf[MSGR_KEY_MAX_LEN + 1];
    msgr_key_t     key, parsed;
    unsigned char  hash[MSGR_KEY_HASH_LEN];

    msgr_test_ok(msgr_session_generate(7, buf, sizeof(buf), &key, hash) == 0
                 && strncmp(buf, "msgrsess_7_", 11) == 0
                 && msgr_session_parse(buf, strlen(buf), &parsed) == 0
                 && parsed.school_id == 7
                 && strcmp(parsed.id, key.id) == 0
                 && msgr_key_verify(&parsed, hash, MSGR_KEY_HASH_LEN),
                 "a session token parses back and verifies");

    msgr_test_ok(msgr_key_parse(buf, strlen(buf), &parsed) != 0
                 && msgr_app_token_parse(buf, strlen(buf), &parsed) != 0
                 && msgr_pwtoken_parse(buf, strlen(buf), &parsed) != 0,
                 "a session token is no key, app token or password token");

    msgr_test_ok(msgr_pwtoken_generate(7, buf, sizeof(buf), &key, hash) == 0
                 && strncmp(buf, "msgrpwt_7_", 10) == 0
                 && msgr_pwtoken_parse(buf, strlen(buf), &parsed) == 0
                 && msgr_key_verify(&parsed, hash, MSGR_KEY_HASH_LEN)
                 && msgr_session_parse(buf, strlen(buf), &parsed) != 0,
                 "a password token parses back, and is no session token");
}


int
main(void)
{
    printf("1..%d\n", MSGR_TEST_PLAN);

    if (!msgr_test_ok(msgr_key_init() == 0, "libsodium initialises")) {
        return 1;
    }

    msgr_test_generated();
    msgr_test_malformed();
    msgr_test_sessions();

    return msgr_test_end(MSGR_TEST_PLAN);
}

/*
 * msgr API keys: pure C, shared by the module, msgrctl and unit tests.
 *
 * A key reads "msgr_<school>_<id>_<secret>": the school id, a public key id
 * of 16 hex digits, and 32 random bytes in unpadded base64url.  Only a
 * BLAKE2b-256 hash of the secret is stored (libsodium crypto_generichash):
 * the secret has 256 bits of entropy, so a fast hash is enough and keeps
 * authentication cheap on every request.
 */

#ifndef _MSGR_KEY_H_INCLUDED_
#define _MSGR_KEY_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>


#define MSGR_KEY_PREFIX       "msgr_"
#define MSGR_APP_PREFIX       "msgrapp_"
#define MSGR_SESSION_PREFIX   "msgrsess_"
#define MSGR_PWTOKEN_PREFIX   "msgrpwt_"
#define MSGR_KEY_ID_LEN       16
#define MSGR_KEY_SECRET_BYTES 32
#define MSGR_KEY_SECRET_LEN   43
#define MSGR_KEY_HASH_LEN     32
#define MSGR_KEY_MAX_LEN      (sizeof(MSGR_SESSION_PREFIX) - 1 + 20 + 1   \
                               + MSGR_KEY_ID_LEN + 1 + MSGR_KEY_SECRET_LEN)


typedef struct {
    int64_t         school_id;
    char            id[MSGR_KEY_ID_LEN + 1];
    const char     *secret;
    size_t          secret_len;
} msgr_key_t;


/* libsodium must be initialised; returns 0 or -1 */
int msgr_key_init(void);

/*
 * Makes a new key for a school: writes the whole key (NUL-terminated) into
 * buf, the key id into key->id and the secret's hash into hash.
 */
int msgr_key_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN]);

/* Splits a presented key; 0 when well-formed, -1 otherwise */
int msgr_key_parse(const char *s, size_t len, msgr_key_t *key);

/*
 * The same for the parents' app tokens, "msgrapp_<school>_<id>_<secret>",
 * which answer for one parental contact.
 */
int msgr_app_token_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN]);
int msgr_app_token_parse(const char *s, size_t len, msgr_key_t *key);

/*
 * The same for a signed-in user's sessions, "msgrsess_<school>_<id>_<secret>",
 * and for the one-time tokens that set a password (an invitation or a
 * reset), "msgrpwt_<school>_<id>_<secret>".
 */
int msgr_session_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN]);
int msgr_session_parse(const char *s, size_t len, msgr_key_t *key);
int msgr_pwtoken_generate(int64_t school_id, char *buf, size_t size,
    msgr_key_t *key, unsigned char hash[MSGR_KEY_HASH_LEN]);
int msgr_pwtoken_parse(const char *s, size_t len, msgr_key_t *key);

void msgr_key_hash(const char *secret, size_t len,
    unsigned char hash[MSGR_KEY_HASH_LEN]);

/* Constant-time check of a parsed key against a stored hash */
int msgr_key_verify(const msgr_key_t *key, const unsigned char *hash,
    size_t hash_len);


#endif /* _MSGR_KEY_H_INCLUDED_ */

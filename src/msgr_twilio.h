/*
 * msgr: Twilio's webhooks, pure C, shared by the module (the dial-in
 * webhooks), msgr-sender (status callbacks) and unit tests.
 *
 * A webhook is an application/x-www-form-urlencoded POST signed in its
 * X-Twilio-Signature header: the base64 of the HMAC-SHA1, keyed by the
 * account's auth token, of the full URL Twilio requested followed by each
 * POST parameter's name and value, sorted by name (Twilio's "Webhooks
 * security" page).  OpenSSL's libcrypto computes it.
 */

#ifndef _MSGR_TWILIO_H_INCLUDED_
#define _MSGR_TWILIO_H_INCLUDED_


#include <stddef.h>


typedef struct {
    char                *name;     /* percent-decoded, NUL-terminated */
    size_t               name_len;
    char                *value;
    size_t               value_len;
} msgr_twilio_param_t;


typedef struct {
    msgr_twilio_param_t *params;   /* in the order of the body */
    size_t               n;
} msgr_twilio_form_t;


/*
 * Parses a form body ("a=1&b=x%20y", "+" a space): 0, or -1 when it is
 * not a form (a bad %-escape) or memory ran out; a name without "=" has
 * an empty value.  Free it with msgr_twilio_form_free().
 */
int msgr_twilio_form_parse(const char *body, size_t len,
    msgr_twilio_form_t *form);

void msgr_twilio_form_free(msgr_twilio_form_t *form);

/* the first value of name, or NULL (its length in *len when not NULL) */
const char *msgr_twilio_form_get(const msgr_twilio_form_t *form,
    const char *name, size_t *len);

/*
 * Twilio's signature of a request to url with form's parameters, as
 * base64 in out (NUL-terminated): 0, or -1 when out is too small or
 * memory ran out.  MSGR_TWILIO_SIGNATURE_SIZE always fits.
 */
#define MSGR_TWILIO_SIGNATURE_SIZE  32

int msgr_twilio_signature(const char *token, size_t token_len,
    const char *url, size_t url_len, const msgr_twilio_form_t *form,
    char *out, size_t size);

/*
 * 1 when signature (the X-Twilio-Signature header) is the request's,
 * compared in constant time; 0 otherwise
 */
int msgr_twilio_verify(const char *token, size_t token_len,
    const char *url, size_t url_len, const msgr_twilio_form_t *form,
    const char *signature, size_t signature_len);

/*
 * text escaped for XML (TwiML): & < > " ' as entities; a malloc'ed
 * string, or NULL when memory ran out
 */
char *msgr_twilio_xml_escape(const char *text, size_t len);


#endif /* _MSGR_TWILIO_H_INCLUDED_ */

/*
 * msgr: Twilio's webhooks: forms, signatures, TwiML text (pure C).
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "msgr_buf.h"
#include "msgr_twilio.h"


static int msgr_twilio_hex(int c);
static int msgr_twilio_decode(const char *in, size_t len, char **out,
    size_t *out_len);
static int msgr_twilio_param_cmp(const void *a, const void *b);


static int
msgr_twilio_hex(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


/* one name or value: "+" a space, %XX a byte; a malloc'ed copy */

static int
msgr_twilio_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    int     hi, lo;
    char   *p;
    size_t  i;

    p = malloc(len + 1);
    if (p == NULL) {
        return -1;
    }

    *out = p;

    for (i = 0; i < len; i++) {

        if (in[i] == '+') {
            *p++ = ' ';

        } else if (in[i] == '%') {
            if (len - i < 3
                || (hi = msgr_twilio_hex((unsigned char) in[i + 1])) < 0
                || (lo = msgr_twilio_hex((unsigned char) in[i + 2])) < 0)
            {
                free(*out);
                *out = NULL;
                return -1;
            }

            *p++ = (char) (hi * 16 + lo);
            i += 2;

        } else {
            *p++ = in[i];
        }
    }

    *p = '\0';
    *out_len = p - *out;

    return 0;
}


int
msgr_twilio_form_parse(const char *body, size_t len,
    msgr_twilio_form_t *form)
{
    size_t                n, start, end, eq;
    msgr_twilio_param_t  *p;

    form->params = NULL;
    form->n = 0;

    n = 1;
    for (start = 0; start < len; start++) {
        n += (body[start] == '&');
    }

    form->params = calloc(n, sizeof(msgr_twilio_param_t));
    if (form->params == NULL) {
        return -1;
    }

    for (start = 0; start < len; start = end + 1) {

        for (end = start; end < len && body[end] != '&'; end++) {
            /* void */
        }

        if (end == start) {
            continue;
        }

        for (eq = start; eq < end && body[eq] != '='; eq++) {
            /* void */
        }

        p = &form->params[form->n];

        if (msgr_twilio_decode(body + start, eq - start, &p->name,
                               &p->name_len) != 0)
        {
            msgr_twilio_form_free(form);
            return -1;
        }

        if (msgr_twilio_decode(body + (eq < end ? eq + 1 : end),
                               eq < end ? end - eq - 1 : 0, &p->value,
                               &p->value_len) != 0)
        {
            free(p->name);
            msgr_twilio_form_free(form);
            return -1;
        }

        form->n++;
    }

    return 0;
}


void
msgr_twilio_form_free(msgr_twilio_form_t *form)
{
    size_t  i;

    for (i = 0; i < form->n; i++) {
        free(form->params[i].name);
        free(form->params[i].value);
    }

    free(form->params);
    form->params = NULL;
    form->n = 0;
}


const char *
msgr_twilio_form_get(const msgr_twilio_form_t *form, const char *name,
    size_t *len)
{
    size_t  i;

    for (i = 0; i < form->n; i++) {
        if (strcmp(form->params[i].name, name) == 0) {
            if (len) {
                *len = form->params[i].value_len;
            }

            return form->params[i].value;
        }
    }

    return NULL;
}


/* by name, bytewise; equal names keep no particular order but by value */

static int
msgr_twilio_param_cmp(const void *a, const void *b)
{
    int                         c;
    size_t                      n;
    const msgr_twilio_param_t  *x = *(msgr_twilio_param_t *const *) a;
    const msgr_twilio_param_t  *y = *(msgr_twilio_param_t *const *) b;

    n = x->name_len < y->name_len ? x->name_len : y->name_len;
    c = memcmp(x->name, y->name, n);

    if (c == 0 && x->name_len != y->name_len) {
        c = (x->name_len < y->name_len) ? -1 : 1;
    }

    if (c == 0) {
        n = x->value_len < y->value_len ? x->value_len : y->value_len;
        c = memcmp(x->value, y->value, n);

        if (c == 0 && x->value_len != y->value_len) {
            c = (x->value_len < y->value_len) ? -1 : 1;
        }
    }

    return c;
}


int
msgr_twilio_signature(const char *token, size_t token_len, const char *url,
    size_t url_len, const msgr_twilio_form_t *form, char *out, size_t size)
{
    int                    rc;
    size_t                 i;
    unsigned int           mac_len;
    unsigned char          mac[EVP_MAX_MD_SIZE];
    msgr_buf_t             b;
    msgr_twilio_param_t  **sorted;

    if (size < MSGR_TWILIO_SIGNATURE_SIZE) {
        return -1;
    }

    sorted = calloc(form->n + 1, sizeof(msgr_twilio_param_t *));
    if (sorted == NULL) {
        return -1;
    }

    for (i = 0; i < form->n; i++) {
        sorted[i] = &form->params[i];
    }

    qsort(sorted, form->n, sizeof(msgr_twilio_param_t *),
          msgr_twilio_param_cmp);

    memset(&b, 0, sizeof(msgr_buf_t));

    (void) msgr_buf_add(&b, url, url_len);

    for (i = 0; i < form->n; i++) {
        (void) msgr_buf_add(&b, sorted[i]->name, sorted[i]->name_len);
        (void) msgr_buf_add(&b, sorted[i]->value, sorted[i]->value_len);
    }

    free(sorted);

    if (b.failed) {
        free(b.data);
        return -1;
    }

    rc = -1;

    if (HMAC(EVP_sha1(), token, (int) token_len,
             (const unsigned char *) (b.data ? b.data : ""), b.len,
             mac, &mac_len)
        != NULL)
    {
        /* 20 bytes: 28 characters of base64 and the NUL */
        EVP_EncodeBlock((unsigned char *) out, mac, (int) mac_len);
        rc = 0;
    }

    free(b.data);

    return rc;
}


int
msgr_twilio_verify(const char *token, size_t token_len, const char *url,
    size_t url_len, const msgr_twilio_form_t *form, const char *signature,
    size_t signature_len)
{
    char    expected[MSGR_TWILIO_SIGNATURE_SIZE];
    size_t  len;

    if (token_len == 0
        || msgr_twilio_signature(token, token_len, url, url_len, form,
                                 expected, sizeof(expected))
           != 0)
    {
        return 0;
    }

    len = strlen(expected);

    if (signature_len != len) {
        return 0;
    }

    return CRYPTO_memcmp(expected, signature, len) == 0;
}


char *
msgr_twilio_xml_escape(const char *text, size_t len)
{
    size_t       i;
    msgr_buf_t   b;
    const char  *e;

    memset(&b, 0, sizeof(msgr_buf_t));
    (void) msgr_buf_add(&b, "", 0);

    for (i = 0; i < len; i++) {
        switch (text[i]) {
        case '&':  e = "&amp;";  break;
        case '<':  e = "&lt;";   break;
        case '>':  e = "&gt;";   break;
        case '"':  e = "&quot;"; break;
        case '\'': e = "&apos;"; break;
        default:   e = NULL;
        }

        if (e) {
            (void) msgr_buf_add(&b, e, strlen(e));

        } else {
            (void) msgr_buf_add(&b, &text[i], 1);
        }
    }

    if (b.failed) {
        free(b.data);
        return NULL;
    }

    return b.data;
}

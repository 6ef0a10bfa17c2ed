/*
 * msgr-sender: SMS and voice calls through Twilio (or a provider speaking
 * its REST API).  docs/sender.md, "type = twilio".
 *
 *   [provider sms-main]
 *   type = twilio
 *   channels = sms, voice
 *   account_sid = AC...
 *   auth_token = ...
 *   from = +447700900000
 *   status_callback = https://msgr.example.org/msgr/v1/providers/twilio/status
 *
 * An SMS is a form post to Messages.json, a call one to Calls.json whose
 * TwiML says the text twice in the delivery's language.  The delivery id
 * goes as the idempotency key and in the status callback's URL
 * (?delivery=ID), so a receipt finds its delivery even when the sender
 * stopped before it stored the provider's sid.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msgr_sender.h"


typedef struct {
    char  *base_url;
    char  *account_sid;
    char  *auth_token;
    char  *from;
    char  *status_callback;
} msgr_sender_twilio_conf_t;


/* a language tag to the language attribute of TwiML's <Say> */

typedef struct {
    const char  *tag;
    const char  *say;
} msgr_sender_twilio_lang_t;


static const msgr_sender_twilio_lang_t  msgr_sender_twilio_langs[] = {
    { "en", "en-GB" }, { "en-gb", "en-GB" }, { "en-us", "en-US" },
    { "en-au", "en-AU" }, { "en-ca", "en-CA" }, { "en-in", "en-IN" },
    { "cy", "cy-GB" }, { "pl", "pl-PL" }, { "fr", "fr-FR" },
    { "fr-ca", "fr-CA" }, { "de", "de-DE" }, { "es", "es-ES" },
    { "es-mx", "es-MX" }, { "ca", "ca-ES" }, { "it", "it-IT" },
    { "pt", "pt-PT" }, { "pt-br", "pt-BR" }, { "nl", "nl-NL" },
    { "da", "da-DK" }, { "fi", "fi-FI" }, { "sv", "sv-SE" },
    { "nb", "nb-NO" }, { "no", "nb-NO" }, { "ru", "ru-RU" },
    { "ro", "ro-RO" }, { "tr", "tr-TR" }, { "ar", "arb" },
    { "ja", "ja-JP" }, { "ko", "ko-KR" }, { "zh", "zh-CN" },
    { "zh-cn", "zh-CN" }, { "zh-hk", "zh-HK" }, { "zh-tw", "zh-TW" },
    { "hi", "hi-IN" }, { "is", "is-IS" },
    { NULL, NULL }
};


/* Twilio's error codes that are worth another try */

static const long  msgr_sender_twilio_temporary[] = {
    20003,      /* authentication: the account, not the number */
    20429,      /* too many requests */
    30001,      /* queue overflow */
    30003,      /* unreachable handset */
    30008,      /* unknown error */
    0
};


static int
msgr_sender_twilio_url(const char *value)
{
    return strncmp(value, "http://", 7) == 0
           || strncmp(value, "https://", 8) == 0;
}


static int
msgr_sender_twilio_set(msgr_sender_provider_t *p, const char *key,
    const char *value, const char **why)
{
    char                       **field, *copy;
    msgr_sender_twilio_conf_t   *tc;

    tc = p->conf;

    if (tc == NULL) {
        tc = calloc(1, sizeof(msgr_sender_twilio_conf_t));
        if (tc == NULL) {
            *why = "out of memory";
            return -1;
        }

        p->conf = tc;
    }

    if (strcmp(key, "base_url") == 0) {
        if (!msgr_sender_twilio_url(value)) {
            *why = "base_url: an http:// or https:// URL";
            return -1;
        }

        field = &tc->base_url;

    } else if (strcmp(key, "account_sid") == 0) {
        field = &tc->account_sid;

    } else if (strcmp(key, "auth_token") == 0) {
        field = &tc->auth_token;

    } else if (strcmp(key, "from") == 0) {
        if (value[0] != '+' || strlen(value) < 8 || strlen(value) > 16
            || strspn(value + 1, "0123456789") != strlen(value) - 1)
        {
            *why = "from: a number in E.164 form, +447700900000";
            return -1;
        }

        field = &tc->from;

    } else if (strcmp(key, "status_callback") == 0) {
        if (!msgr_sender_twilio_url(value)) {
            *why = "status_callback: an http:// or https:// URL";
            return -1;
        }

        field = &tc->status_callback;

    } else {
        *why = "an unknown key for type twilio (it takes base_url, "
               "account_sid, auth_token, from, status_callback)";
        return -1;
    }

    if (field == &tc->account_sid && strpbrk(value, "/?#&% ") != NULL) {
        *why = "account_sid: the account's SID, AC...";
        return -1;
    }

    if (*value == '\0') {
        *why = "a value is needed";
        return -1;
    }

    copy = msgr_sender_strdup(value);
    if (copy == NULL) {
        *why = "out of memory";
        return -1;
    }

    free(*field);
    *field = copy;

    return 0;
}


static int
msgr_sender_twilio_check(msgr_sender_provider_t *p, const char **why)
{
    size_t                      len;
    msgr_sender_twilio_conf_t  *tc;

    tc = p->conf;

    if (tc == NULL || tc->account_sid == NULL || tc->auth_token == NULL
        || tc->from == NULL)
    {
        *why = "type twilio needs account_sid, auth_token and from";
        return -1;
    }

    if (p->channels & ~(MSGR_CHANNEL_BIT(MSGR_CHANNEL_SMS)
                        | MSGR_CHANNEL_BIT(MSGR_CHANNEL_VOICE)))
    {
        *why = "type twilio sends sms and voice only";
        return -1;
    }

    if (tc->base_url == NULL) {
        tc->base_url = msgr_sender_strdup("https://api.twilio.com");
        if (tc->base_url == NULL) {
            *why = "out of memory";
            return -1;
        }
    }

    len = strlen(tc->base_url);

    while (len > 0 && tc->base_url[len - 1] == '/') {
        tc->base_url[--len] = '\0';
    }

    return 0;
}


static const char *
msgr_sender_twilio_language(const char *tag)
{
    size_t                            len;
    const char                       *dash;
    const msgr_sender_twilio_lang_t  *l;

    if (tag == NULL) {
        return "en-GB";
    }

    /* the whole tag (pt-BR), then its language (pt) */

    for (l = msgr_sender_twilio_langs; l->tag; l++) {
        if (strcasecmp(l->tag, tag) == 0) {
            return l->say;
        }
    }

    dash = strchr(tag, '-');
    len = dash ? (size_t) (dash - tag) : strlen(tag);

    for (l = msgr_sender_twilio_langs; l->tag; l++) {
        if (strlen(l->tag) == len && strncasecmp(l->tag, tag, len) == 0) {
            return l->say;
        }
    }

    return "en-GB";
}


/* text as XML character data; control characters XML forbids as spaces */

static int
msgr_sender_twilio_xml(msgr_sender_buf_t *buf, const char *s)
{
    const char  *e;
    int          rc;

    rc = 0;

    for ( /* void */ ; *s && rc == 0; s++) {
        switch (*s) {
        case '&':  e = "&amp;"; break;
        case '<':  e = "&lt;"; break;
        case '>':  e = "&gt;"; break;
        case '"':  e = "&quot;"; break;
        case '\'': e = "&apos;"; break;
        default:
            e = NULL;
        }

        if (e != NULL) {
            rc = msgr_sender_buf_add(buf, e, strlen(e));

        } else if ((unsigned char) *s < 0x20 && *s != '\n' && *s != '\t') {
            rc = msgr_sender_buf_add(buf, " ", 1);

        } else {
            rc = msgr_sender_buf_add(buf, s, 1);
        }
    }

    return rc;
}


/* <Response><Say>text</Say><Pause/><Say>text</Say></Response> */

static char *
msgr_sender_twilio_twiml(msgr_sender_job_t *job)
{
    int                 i, rc;
    char                say[64];
    msgr_sender_buf_t   buf;

    memset(&buf, 0, sizeof(msgr_sender_buf_t));

    snprintf(say, sizeof(say), "<Say language=\"%s\">",
             msgr_sender_twilio_language(job->language));

    rc = msgr_sender_buf_add(&buf, "<Response>", 10);

    for (i = 0; i < 2 && rc == 0; i++) {
        rc = (i == 1
              && msgr_sender_buf_add(&buf, "<Pause length=\"1\"/>", 19) != 0)
             || msgr_sender_buf_add(&buf, say, strlen(say)) != 0
             || msgr_sender_twilio_xml(&buf, job->body) != 0
             || msgr_sender_buf_add(&buf, "</Say>", 6) != 0;
    }

    if (rc != 0 || msgr_sender_buf_add(&buf, "</Response>", 11) != 0) {
        free(buf.data);
        return NULL;
    }

    return buf.data;
}


static int
msgr_sender_twilio_prepare(msgr_sender_provider_t *p, msgr_sender_job_t *job)
{
    int                         rc, voice;
    char                        id[32], hdr[96], *url, *twiml, *callback;
    size_t                      len;
    struct curl_slist          *h;
    msgr_sender_buf_t           form;
    msgr_sender_twilio_conf_t  *tc;

    tc = p->conf;
    voice = (strcmp(job->channel, "voice") == 0);

    if (job->address == NULL || job->address[0] == '\0') {
        msgr_sender_job_error(job, MSGR_SENDER_PERMANENT, "no number");
        return -1;
    }

    snprintf(id, sizeof(id), "%lld", (long long) job->id);

    /* the URL: {base}/2010-04-01/Accounts/{sid}/Messages.json */

    len = strlen(tc->base_url) + strlen(tc->account_sid) + 64;
    url = malloc(len);
    callback = NULL;
    twiml = NULL;

    if (url != NULL && tc->status_callback != NULL) {
        callback = malloc(strlen(tc->status_callback) + 32);
    }

    if (url == NULL || (tc->status_callback != NULL && callback == NULL)) {
        free(url);
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return -1;
    }

    snprintf(url, len, "%s/2010-04-01/Accounts/%s/%s", tc->base_url,
             tc->account_sid, voice ? "Calls.json" : "Messages.json");

    if (callback != NULL) {
        sprintf(callback, "%s%cdelivery=%s", tc->status_callback,
                strchr(tc->status_callback, '?') ? '&' : '?', id);
    }

    /* the form */

    memset(&form, 0, sizeof(msgr_sender_buf_t));

    rc = msgr_sender_form_add(&form, job->easy, "To", job->address) != 0
         || msgr_sender_form_add(&form, job->easy, "From", tc->from) != 0;

    if (rc == 0 && voice) {
        twiml = msgr_sender_twilio_twiml(job);
        rc = twiml == NULL
             || msgr_sender_form_add(&form, job->easy, "Twiml", twiml) != 0;

    } else if (rc == 0) {
        rc = msgr_sender_form_add(&form, job->easy, "Body", job->body) != 0;
    }

    if (rc == 0 && callback != NULL) {
        rc = msgr_sender_form_add(&form, job->easy, "StatusCallback",
                                  callback) != 0;
    }

    free(twiml);
    free(callback);

    job->request = form.data;

    /* the delivery id is the idempotency key, under both names */

    h = NULL;

    if (rc == 0) {
        snprintf(hdr, sizeof(hdr), "Idempotency-Key: %s", id);
        h = curl_slist_append(NULL, hdr);
        job->headers = h;

        snprintf(hdr, sizeof(hdr), "I-Twilio-Idempotency-Token: %s", id);
        h = h ? curl_slist_append(h, hdr) : NULL;
        h = h ? curl_slist_append(h, "Accept: application/json") : NULL;
        job->headers = h ? h : job->headers;
    }

    if (rc != 0 || h == NULL) {
        free(url);
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return -1;
    }

    curl_easy_setopt(job->easy, CURLOPT_URL, url);
    curl_easy_setopt(job->easy, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
    curl_easy_setopt(job->easy, CURLOPT_USERNAME, tc->account_sid);
    curl_easy_setopt(job->easy, CURLOPT_PASSWORD, tc->auth_token);
    curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, job->request);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE, (long) form.len);

    /* curl copies the URL */
    free(url);

    return 0;
}


/*
 * The provider's words into job->error: "twilio 21211: message", or
 * "twilio HTTP 502: message" without a code; cut at a character.
 */

static void
msgr_sender_twilio_error(msgr_sender_job_t *job, msgr_sender_outcome_e outcome,
    long status, long code, const char *message)
{
    size_t  len;

    if (code) {
        msgr_sender_job_error(job, outcome, "twilio %ld: %s", code, message);

    } else if (status) {
        msgr_sender_job_error(job, outcome, "twilio HTTP %ld: %s", status,
                              message);

    } else {
        msgr_sender_job_error(job, outcome, "twilio: %s", message);
    }

    len = strlen(job->error);

    if (len == sizeof(job->error) - 1) {
        while (len > 0 && ((unsigned char) job->error[len - 1] & 0xc0) == 0x80)
        {
            len--;
        }

        if (len > 0 && (unsigned char) job->error[len - 1] >= 0xc0) {
            len--;
        }

        job->error[len] = '\0';
    }
}


static void
msgr_sender_twilio_finish(msgr_sender_provider_t *p, msgr_sender_job_t *job,
    CURLcode rc, long status)
{
    long                   code;
    json_t                *j, *v;
    const char            *message, *sid;
    const long            *t;
    msgr_sender_outcome_e  outcome;

    (void) p;

    if (rc != CURLE_OK) {
        msgr_sender_twilio_error(job, MSGR_SENDER_TEMPORARY, 0, 0,
                                 curl_easy_strerror(rc));
        return;
    }

    j = job->response.data ? json_loadb(job->response.data, job->response.len,
                                        0, NULL)
                           : NULL;

    if (status >= 200 && status < 300) {
        /* taken: the receipt maps by the delivery id if no sid came */
        sid = json_string_value(json_object_get(j, "sid"));

        job->outcome = MSGR_SENDER_SENT;

        if (sid != NULL && strlen(sid) < sizeof(job->provider_id)) {
            strcpy(job->provider_id, sid);
        }

        json_decref(j);
        return;
    }

    v = json_object_get(j, "code");
    code = json_is_integer(v) ? (long) json_integer_value(v) : 0;
    message = json_string_value(json_object_get(j, "message"));

    if (message == NULL) {
        message = "HTTP error";
    }

    /* 429 (Retry-After), 5xx and the codes worth retrying: later */

    outcome = MSGR_SENDER_PERMANENT;

    if (status == 429 || status >= 500 || status == 401 || status < 200) {
        outcome = MSGR_SENDER_TEMPORARY;
    }

    for (t = msgr_sender_twilio_temporary; *t; t++) {
        if (*t == code) {
            outcome = MSGR_SENDER_TEMPORARY;
        }
    }

    msgr_sender_twilio_error(job, outcome, status, code, message);

    json_decref(j);
}


static void
msgr_sender_twilio_free(msgr_sender_provider_t *p)
{
    msgr_sender_twilio_conf_t  *tc;

    tc = p->conf;

    if (tc != NULL) {
        free(tc->base_url);
        free(tc->account_sid);
        free(tc->auth_token);
        free(tc->from);
        free(tc->status_callback);
        free(tc);
    }
}


const msgr_sender_adapter_t  msgr_sender_twilio_adapter = {
    "twilio",
    0,
    msgr_sender_twilio_set,
    msgr_sender_twilio_check,
    msgr_sender_twilio_prepare,
    msgr_sender_twilio_finish,
    NULL,
    msgr_sender_twilio_free
};

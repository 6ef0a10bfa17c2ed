/*
 * msgr-sender: Xpressions pushes through Firebase Cloud Messaging's HTTP v1
 * API, one request per device of the parent.
 *
 *   [provider fcm]
 *   type = fcm
 *   channels = xpressions
 *   service_account = /etc/msgr/fcm-service-account.json
 *
 * The service account's key signs a JWT (RS256), exchanged at its
 * token_uri for an OAuth2 access token, kept until shortly before it
 * expires.  The exchange is a request of its own on the event loop: the
 * first job that finds no token makes its request the token's; when the
 * token is in, that job is prepared again at once (job->again) and sends
 * with it.  Jobs prepared meanwhile wait for it (prepare returns 1).
 * docs/sender.md.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "msgr_sender.h"


#define MSGR_SENDER_FCM_SCOPE                                                 \
    "https://www.googleapis.com/auth/firebase.messaging"
#define MSGR_SENDER_FCM_GRANT                                                 \
    "urn:ietf:params:oauth:grant-type:jwt-bearer"
#define MSGR_SENDER_FCM_BASE   "https://fcm.googleapis.com"
#define MSGR_SENDER_FCM_EARLY  60.0    /* seconds a token is renewed early */


typedef struct {
    /* as configured */
    char        *service_account;
    char        *base_url;
    char        *token_url;
    char        *project_id;

    /* from the service account */
    char        *client_email;
    EVP_PKEY    *key;

    /* the access token */
    char        *token;
    double       token_until;       /* msgr_sender_now() */
    double       fetching_until;    /* a job's request is fetching it */
} msgr_sender_fcm_conf_t;


/* job->data of the job whose request fetches the token */
static char  msgr_sender_fcm_fetch;


static int
msgr_sender_fcm_set(msgr_sender_provider_t *p, const char *key,
    const char *value, const char **why)
{
    char                    **field;
    msgr_sender_fcm_conf_t   *fc;

    fc = p->conf;

    if (fc == NULL) {
        fc = calloc(1, sizeof(msgr_sender_fcm_conf_t));
        if (fc == NULL) {
            *why = "out of memory";
            return -1;
        }

        p->conf = fc;
    }

    if (strcmp(key, "service_account") == 0) {
        field = &fc->service_account;

    } else if (strcmp(key, "base_url") == 0) {
        field = &fc->base_url;

    } else if (strcmp(key, "token_url") == 0) {
        field = &fc->token_url;

    } else if (strcmp(key, "project_id") == 0) {
        field = &fc->project_id;

    } else {
        *why = "an unknown key for type fcm (it takes service_account,"
               " base_url, token_url, project_id)";
        return -1;
    }

    if (*value == '\0') {
        *why = "a value is required";
        return -1;
    }

    free(*field);
    *field = msgr_sender_strdup(value);

    if (*field == NULL) {
        *why = "out of memory";
        return -1;
    }

    return 0;
}


/* a string member of the service account, copied unless set already */

static int
msgr_sender_fcm_take(json_t *sa, const char *name, char **field)
{
    const char  *v;

    if (*field != NULL) {
        return 0;
    }

    v = json_string_value(json_object_get(sa, name));

    if (v == NULL || *v == '\0') {
        return -1;
    }

    *field = msgr_sender_strdup(v);

    return *field ? 0 : -1;
}


static int
msgr_sender_fcm_check(msgr_sender_provider_t *p, const char **why)
{
    BIO                     *bio;
    json_t                  *sa;
    const char              *pem;
    msgr_sender_fcm_conf_t  *fc;

    fc = p->conf;

    if (fc == NULL || fc->service_account == NULL) {
        *why = "type fcm needs service_account = FILE (the Google service"
               " account's JSON key)";
        return -1;
    }

    sa = json_load_file(fc->service_account, 0, NULL);

    if (!json_is_object(sa)) {
        json_decref(sa);
        *why = "service_account: the file cannot be read as JSON";
        return -1;
    }

    *why = NULL;

    if (msgr_sender_fcm_take(sa, "client_email", &fc->client_email) != 0) {
        *why = "service_account: the file has no client_email";

    } else if (msgr_sender_fcm_take(sa, "project_id", &fc->project_id) != 0) {
        *why = "service_account: the file has no project_id";

    } else if (msgr_sender_fcm_take(sa, "token_uri", &fc->token_url) != 0) {
        *why = "service_account: the file has no token_uri";

    } else if (fc->base_url == NULL
               && (fc->base_url = msgr_sender_strdup(MSGR_SENDER_FCM_BASE))
                  == NULL)
    {
        *why = "out of memory";

    } else {
        pem = json_string_value(json_object_get(sa, "private_key"));
        bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;

        if (bio != NULL) {
            EVP_PKEY_free(fc->key);
            fc->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
            BIO_free(bio);
        }

        if (fc->key == NULL || EVP_PKEY_base_id(fc->key) != EVP_PKEY_RSA) {
            *why = "service_account: private_key is not an RSA key in PEM";
        }
    }

    json_decref(sa);

    return *why ? -1 : 0;
}


/* base64url without padding (RFC 7515), appended */

static int
msgr_sender_fcm_b64(msgr_sender_buf_t *buf, const unsigned char *data,
    size_t len)
{
    int     n, i;
    char   *s;

    s = malloc(4 * ((len + 2) / 3) + 1);
    if (s == NULL) {
        return -1;
    }

    n = EVP_EncodeBlock((unsigned char *) s, data, (int) len);

    while (n > 0 && s[n - 1] == '=') {
        n--;
    }

    for (i = 0; i < n; i++) {
        s[i] = (s[i] == '+') ? '-' : (s[i] == '/') ? '_' : s[i];
    }

    n = msgr_sender_buf_add(buf, s, n);
    free(s);

    return n;
}


/* the signed assertion: header.claims.signature, RS256 */

static char *
msgr_sender_fcm_jwt(msgr_sender_fcm_conf_t *fc)
{
    int                 rc;
    char               *claims;
    json_t             *j;
    size_t              siglen;
    time_t              now;
    EVP_MD_CTX         *ctx;
    unsigned char      *sig;
    msgr_sender_buf_t   jwt;

    static const char  header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";

    now = time(NULL);

    j = json_pack("{s:s, s:s, s:s, s:I, s:I}",
                  "iss", fc->client_email,
                  "scope", MSGR_SENDER_FCM_SCOPE,
                  "aud", fc->token_url,
                  "iat", (json_int_t) now,
                  "exp", (json_int_t) now + 3600);

    claims = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);

    if (claims == NULL) {
        return NULL;
    }

    memset(&jwt, 0, sizeof(jwt));

    rc = msgr_sender_fcm_b64(&jwt, (const unsigned char *) header,
                             sizeof(header) - 1)
         | msgr_sender_buf_add(&jwt, ".", 1)
         | msgr_sender_fcm_b64(&jwt, (const unsigned char *) claims,
                               strlen(claims));
    free(claims);

    sig = NULL;
    siglen = 0;
    ctx = EVP_MD_CTX_new();

    if (rc != 0 || ctx == NULL
        || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, fc->key) != 1
        || EVP_DigestSign(ctx, NULL, &siglen, (unsigned char *) jwt.data,
                          jwt.len) != 1
        || (sig = malloc(siglen)) == NULL
        || EVP_DigestSign(ctx, sig, &siglen, (unsigned char *) jwt.data,
                          jwt.len) != 1
        || msgr_sender_buf_add(&jwt, ".", 1) != 0
        || msgr_sender_fcm_b64(&jwt, sig, siglen) != 0)
    {
        free(jwt.data);
        jwt.data = NULL;
    }

    EVP_MD_CTX_free(ctx);
    free(sig);

    return jwt.data;
}


/* the job's request fetches the access token */

static int
msgr_sender_fcm_token_request(msgr_sender_fcm_conf_t *fc,
    msgr_sender_job_t *job, double timeout)
{
    char               *jwt;
    msgr_sender_buf_t   form;

    jwt = msgr_sender_fcm_jwt(fc);

    if (jwt == NULL) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "the access token's assertion cannot be"
                              " signed");
        return -1;
    }

    memset(&form, 0, sizeof(form));

    if (msgr_sender_form_add(&form, job->easy, "grant_type",
                             MSGR_SENDER_FCM_GRANT) != 0
        || msgr_sender_form_add(&form, job->easy, "assertion", jwt) != 0)
    {
        free(jwt);
        free(form.data);
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return -1;
    }

    free(jwt);

    job->request = form.data;
    job->data = &msgr_sender_fcm_fetch;

    /* the others wait for it, as long as its request may take */
    fc->fetching_until = msgr_sender_now() + timeout + 1;

    curl_easy_setopt(job->easy, CURLOPT_URL, fc->token_url);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, job->request);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE, (long) form.len);

    return 0;
}


/* the push: POST {base_url}/v1/projects/{project}/messages:send */

static int
msgr_sender_fcm_send_request(msgr_sender_fcm_conf_t *fc,
    msgr_sender_job_t *job, const char *push_token)
{
    int                 rc;
    char                id[24], message[24];
    json_t             *j;
    msgr_sender_buf_t   url, auth;

    snprintf(id, sizeof(id), "%lld", (long long) job->id);
    snprintf(message, sizeof(message), "%lld", (long long) job->message_id);

    j = json_pack("{s:{s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s},"
                  " s:{s:s}, s:{s:{s:s}}}}",
                  "message",
                  "token", push_token,
                  "notification",
                  "title", (job->subject && *job->subject) ? job->subject
                           : job->school_name ? job->school_name : "",
                  "body", job->body,
                  "data",
                  "delivery_id", id,
                  "message_id", message,
                  "school", job->school_name ? job->school_name : "",
                  "android", "priority", "high",
                  "apns", "headers", "apns-priority", "10");

    job->request = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    memset(&url, 0, sizeof(url));
    memset(&auth, 0, sizeof(auth));

    rc = (job->request == NULL)
         | msgr_sender_buf_add(&url, fc->base_url, strlen(fc->base_url))
         | msgr_sender_buf_add(&url, "/v1/projects/", 13)
         | msgr_sender_buf_add(&url, fc->project_id, strlen(fc->project_id))
         | msgr_sender_buf_add(&url, "/messages:send", 14)
         | msgr_sender_buf_add(&auth, "Authorization: Bearer ", 22)
         | msgr_sender_buf_add(&auth, fc->token, strlen(fc->token));

    if (rc == 0) {
        job->headers = curl_slist_append(NULL, auth.data);
        job->headers = job->headers
                       ? curl_slist_append(job->headers,
                                   "Content-Type: application/json")
                       : NULL;
    }

    if (rc != 0 || job->headers == NULL) {
        free(url.data);
        free(auth.data);
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return -1;
    }

    curl_easy_setopt(job->easy, CURLOPT_URL, url.data);
    curl_easy_setopt(job->easy, CURLOPT_HTTPHEADER, job->headers);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDS, job->request);
    curl_easy_setopt(job->easy, CURLOPT_POSTFIELDSIZE,
                     (long) strlen(job->request));

    /* curl copies the URL */
    free(url.data);
    free(auth.data);

    return 0;
}


static int
msgr_sender_fcm_prepare(msgr_sender_provider_t *p, msgr_sender_job_t *job)
{
    double                   now;
    const char              *push_token;
    msgr_sender_fcm_conf_t  *fc;

    fc = p->conf;

    push_token = json_string_value(
                     json_object_get(json_array_get(job->devices, job->device),
                                     "push_token"));

    if (push_token == NULL || *push_token == '\0') {
        msgr_sender_job_error(job, MSGR_SENDER_PERMANENT, "no device");
        return -1;
    }

    now = msgr_sender_now();

    if (fc->token == NULL || now >= fc->token_until) {
        if (now < fc->fetching_until) {
            return 1;
        }

        return msgr_sender_fcm_token_request(fc, job, p->timeout);
    }

    return msgr_sender_fcm_send_request(fc, job, push_token);
}


/* the token's answer: {"access_token": ..., "expires_in": seconds} */

static void
msgr_sender_fcm_token(msgr_sender_fcm_conf_t *fc, msgr_sender_job_t *job,
    CURLcode rc, long status)
{
    json_t      *j;
    double       ttl;
    const char  *token;

    fc->fetching_until = 0;
    job->data = NULL;

    if (rc != CURLE_OK) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "the access token: %s", curl_easy_strerror(rc));
        return;
    }

    j = json_loads(job->response.data ? job->response.data : "", 0, NULL);
    token = json_string_value(json_object_get(j, "access_token"));
    ttl = json_number_value(json_object_get(j, "expires_in"));

    if (status != 200 || token == NULL || *token == '\0') {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY,
                              "the access token is refused: HTTP %ld %.160s",
                              status, job->response.data
                                      ? job->response.data : "");
        json_decref(j);
        return;
    }

    free(fc->token);
    fc->token = msgr_sender_strdup(token);
    json_decref(j);

    if (fc->token == NULL) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return;
    }

    /* renewed a minute early (or halfway through a short one) */

    if (ttl <= 0) {
        ttl = 3600;
    }

    fc->token_until = msgr_sender_now()
                      + (ttl > 2 * MSGR_SENDER_FCM_EARLY
                         ? ttl - MSGR_SENDER_FCM_EARLY : ttl / 2);

    /* the push itself follows at once, with the token */
    job->again = 1;
}


/*
 * FCM's error: {"error": {"code", "message", "status", "details": [
 * {"@type": "...FcmError", "errorCode"}, {"@type": "...BadRequest",
 * "fieldViolations": [{"field": "message.token"}]}]}}
 */

static void
msgr_sender_fcm_error(json_t *error, const char **code, int *about_token)
{
    size_t       i, k;
    json_t      *d, *v;
    const char  *field;

    *code = json_string_value(json_object_get(error, "status"));
    *about_token = 0;

    json_array_foreach(json_object_get(error, "details"), i, d) {
        if (json_string_value(json_object_get(d, "errorCode"))) {
            *code = json_string_value(json_object_get(d, "errorCode"));
        }

        json_array_foreach(json_object_get(d, "fieldViolations"), k, v) {
            field = json_string_value(json_object_get(v, "field"));
            if (field && strcmp(field, "message.token") == 0) {
                *about_token = 1;
            }
        }
    }

    if (*code == NULL) {
        *code = "";
    }
}


static void
msgr_sender_fcm_finish(msgr_sender_provider_t *p, msgr_sender_job_t *job,
    CURLcode rc, long status)
{
    int                      about_token;
    json_t                  *j, *error;
    const char              *name, *code, *text;
    msgr_sender_fcm_conf_t  *fc;

    fc = p->conf;

    if (job->data == &msgr_sender_fcm_fetch) {
        msgr_sender_fcm_token(fc, job, rc, status);
        return;
    }

    if (rc != CURLE_OK) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "%s",
                              curl_easy_strerror(rc));
        return;
    }

    j = json_loads(job->response.data ? job->response.data : "", 0, NULL);

    if (status == 200) {
        name = json_string_value(json_object_get(j, "name"));
        job->outcome = MSGR_SENDER_SENT;
        snprintf(job->provider_id, sizeof(job->provider_id), "%s",
                 name ? name : "");
        json_decref(j);
        return;
    }

    error = json_object_get(j, "error");
    msgr_sender_fcm_error(error, &code, &about_token);
    text = json_string_value(json_object_get(error, "message"));

    msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "FCM %ld %s: %.160s",
                          status, code, text ? text : "");

    if (status == 404 || strcmp(code, "UNREGISTERED") == 0) {
        /* the app was removed, or the token expired: gone for good */
        job->outcome = MSGR_SENDER_PERMANENT;
        job->forget = 1;

    } else if (strcmp(code, "SENDER_ID_MISMATCH") == 0) {
        job->outcome = MSGR_SENDER_PERMANENT;

    } else if (status == 401 || status == 403) {
        /* the token is refused: a new one for the retry */
        free(fc->token);
        fc->token = NULL;

    } else if (status == 400 && strcmp(code, "INVALID_ARGUMENT") == 0) {
        job->outcome = MSGR_SENDER_PERMANENT;
        job->forget = about_token;

    } else if (status >= 400 && status < 500 && status != 429
               && status != 408)
    {
        job->outcome = MSGR_SENDER_PERMANENT;
    }

    /* 429 QUOTA_EXCEEDED, 500 INTERNAL, 503 UNAVAILABLE: again later */

    json_decref(j);
}


static void
msgr_sender_fcm_free(msgr_sender_provider_t *p)
{
    msgr_sender_fcm_conf_t  *fc;

    fc = p->conf;

    if (fc != NULL) {
        free(fc->service_account);
        free(fc->base_url);
        free(fc->token_url);
        free(fc->project_id);
        free(fc->client_email);
        EVP_PKEY_free(fc->key);
        free(fc->token);
        free(fc);
    }
}


const msgr_sender_adapter_t  msgr_sender_fcm_adapter = {
    "fcm",
    1,
    msgr_sender_fcm_set,
    msgr_sender_fcm_check,
    msgr_sender_fcm_prepare,
    msgr_sender_fcm_finish,
    NULL,
    msgr_sender_fcm_free
};

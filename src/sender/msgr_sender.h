/*
 * msgr-sender: drains the outbox (msgr_deliveries) to the providers.
 *
 * One process, one event loop (epoll): libpq connections driven
 * non-blocking (claims and completions on one, LISTEN msgr_outbox on
 * another) and libcurl's multi socket interface for every provider
 * request.  Providers are adapters behind msgr_sender_adapter_t, one file
 * each.  docs/sender.md.
 */

#ifndef _MSGR_SENDER_H_INCLUDED_
#define _MSGR_SENDER_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>
#include <jansson.h>

#include "msgr_buf.h"
#include "msgr_routing.h"


#define MSGR_SENDER_PROVIDERS_MAX  16


typedef struct msgr_sender_provider_s  msgr_sender_provider_t;
typedef struct msgr_sender_job_s       msgr_sender_job_t;


typedef enum {
    MSGR_SENDER_SENT = 0,        /* the provider took it; a receipt follows */
    MSGR_SENDER_DELIVERED,       /* delivered already (the file provider) */
    MSGR_SENDER_TEMPORARY,       /* try again later */
    MSGR_SENDER_PERMANENT        /* never: permanent-failure */
} msgr_sender_outcome_e;


typedef msgr_buf_t  msgr_sender_buf_t;


/* one claimed delivery on its way to a provider */

struct msgr_sender_job_s {
    int64_t                        id;
    int64_t                        school_id;
    int64_t                        message_id;
    int64_t                        recipient_id;
    char                          *recipient_type;
    char                          *channel;
    char                          *address;
    char                          *purpose;
    char                          *language;       /* NULL: the original */
    char                          *subject;
    char                          *body;
    char                          *school_name;
    char                          *school_email;
    char                          *school_phone;
    json_t                        *devices;        /* xpressions: [{...}] */
    int                            attempt;
    int                            max_attempts;

    /* the request */
    msgr_sender_provider_t        *provider;
    CURL                          *easy;
    struct curl_slist             *headers;
    char                          *request;        /* a body the easy sends */
    msgr_sender_buf_t              response;
    long                           retry_after;    /* seconds, from headers */
    void                          *data;           /* the adapter's own */

    /* the outcome */
    msgr_sender_outcome_e          outcome;
    char                           provider_id[128];
    char                           error[256];
    double                         delay;          /* 0: the backoff rule */
    unsigned                       technical:1;    /* out of attempts */
    /*
     * A push goes to each of the parent's devices: one child job each
     * (device: its index in devices), their outcomes merged into the
     * parent's.  A child sets forget when the provider says its device is
     * gone for good: the device is removed at completion.
     */
    msgr_sender_job_t             *parent;
    int                            children;
    int                            device;
    unsigned                       forget:1;
    json_t                        *forgotten;      /* the parent's token ids */

    msgr_sender_job_t             *next;
};


typedef struct {
    const char                    *type;
    /* a request per device of a push's parent (FCM), else one a delivery */
    int                            per_device;
    /* one "key = value" of the provider's section: 0, or -1 with why */
    int                          (*set)(msgr_sender_provider_t *p,
                                        const char *key, const char *value,
                                        const char **why);
    /* the section is complete: 0, or -1 with why */
    int                          (*check)(msgr_sender_provider_t *p,
                                          const char **why);
    /*
     * A request to send: sets up job->easy (URL, method, headers, body).
     * 0; or -1 with the outcome already set (a push to nobody: permanent).
     * NULL for a provider that sends without curl (send).
     */
    int                          (*prepare)(msgr_sender_provider_t *p,
                                            msgr_sender_job_t *job);
    /* judges the answer (rc, HTTP or SMTP status, job->response) */
    void                         (*finish)(msgr_sender_provider_t *p,
                                           msgr_sender_job_t *job,
                                           CURLcode rc, long status);
    /* sends at once, without curl (the file provider) */
    void                         (*send)(msgr_sender_provider_t *p,
                                         msgr_sender_job_t *job);
    void                         (*free)(msgr_sender_provider_t *p);
} msgr_sender_adapter_t;


struct msgr_sender_provider_s {
    char                          *name;
    const msgr_sender_adapter_t   *adapter;
    unsigned                       channels;   /* MSGR_CHANNEL_BIT()s */
    double                         weight;     /* as configured */
    double                         rate;       /* requests a second; 0 */
    double                         timeout;    /* seconds a request may take */

    /* failover: a burst of errors shifts weight away, then it recovers */
    double                         health;     /* 0.05 to 1 */
    double                         errors;     /* decaying error count */
    double                         errors_at;  /* when last decayed */
    double                         tokens;     /* the rate's token bucket */
    double                         tokens_at;

    void                          *conf;       /* the adapter's own */
};


typedef struct msgr_sender_conf_s  msgr_sender_conf_t;

struct msgr_sender_conf_s {
    msgr_sender_conf_t            *older;   /* replaced by a reload */
    char                          *path;
    char                          *sender_id;
    int                            batch;
    int                            max_in_flight;
    double                         lease;        /* seconds */
    double                         poll;         /* seconds */
    double                         backoff_cap;  /* seconds */
    double                         burst_errors; /* errors ... */
    double                         burst_window; /* ... in seconds */
    char                          *callback_base; /* the module's URL */
    int                            max_attempts[MSGR_CHANNELS];
    msgr_sender_provider_t        *providers[MSGR_SENDER_PROVIDERS_MAX];
    int                            nproviders;
};


/* msgr_sender_conf.c */
msgr_sender_conf_t *msgr_sender_conf_load(const char *path, char *err,
    size_t size);
void msgr_sender_conf_free(msgr_sender_conf_t *conf);
/* 1, 0 or -1 (not a boolean); numbers: 0 or -1 */
int msgr_sender_conf_bool(const char *value);
int msgr_sender_conf_number(const char *value, double min, double max,
    double *out);
char *msgr_sender_strdup(const char *s);

/* the adapters */
extern const msgr_sender_adapter_t  msgr_sender_file_adapter;
extern const msgr_sender_adapter_t  msgr_sender_twilio_adapter;
extern const msgr_sender_adapter_t  msgr_sender_smtp_adapter;
extern const msgr_sender_adapter_t  msgr_sender_fcm_adapter;

/* helpers for adapters */
int msgr_sender_buf_add(msgr_sender_buf_t *buf, const void *data,
    size_t len);
void msgr_sender_job_error(msgr_sender_job_t *job,
    msgr_sender_outcome_e outcome, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "a=b&c=d" form encoding of one value, appended; 0 or -1 */
int msgr_sender_form_add(msgr_sender_buf_t *buf, CURL *easy,
    const char *name, const char *value);
double msgr_sender_now(void);


#endif /* _MSGR_SENDER_H_INCLUDED_ */

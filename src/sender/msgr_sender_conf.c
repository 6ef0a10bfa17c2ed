/*
 * msgr-sender: the configuration file (conf/msgr-sender.conf).
 *
 *   # a comment
 *   [sender]
 *   batch = 100
 *   [provider sms-main]
 *   type = twilio
 *   channels = sms, voice
 *   ...the adapter's own keys
 *
 * Every key is checked; an unknown one or a bad value names its line.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msgr_sender.h"


#define MSGR_SENDER_LINE_MAX  4096


static const msgr_sender_adapter_t *const  msgr_sender_adapters[] = {
    &msgr_sender_file_adapter,
    &msgr_sender_twilio_adapter,
    &msgr_sender_fcm_adapter,
    &msgr_sender_smtp_adapter,
    NULL
};


static int msgr_sender_conf_sender(msgr_sender_conf_t *conf,
    const char *key, const char *value, const char **why);
static int msgr_sender_conf_provider(msgr_sender_provider_t *p,
    const char *key, const char *value, const char **why);


char *
msgr_sender_strdup(const char *s)
{
    size_t   len;
    char    *p;

    len = strlen(s);

    p = malloc(len + 1);
    if (p != NULL) {
        memcpy(p, s, len + 1);
    }

    return p;
}


int
msgr_sender_conf_bool(const char *value)
{
    if (strcmp(value, "on") == 0 || strcmp(value, "yes") == 0
        || strcmp(value, "true") == 0)
    {
        return 1;
    }

    if (strcmp(value, "off") == 0 || strcmp(value, "no") == 0
        || strcmp(value, "false") == 0)
    {
        return 0;
    }

    return -1;
}


int
msgr_sender_conf_number(const char *value, double min, double max,
    double *out)
{
    char    *end;
    double   d;

    errno = 0;
    d = strtod(value, &end);

    if (end == value || *end != '\0' || errno != 0 || d < min || d > max) {
        return -1;
    }

    *out = d;

    return 0;
}


/* trims s in place */

static char *
msgr_sender_trim(char *s)
{
    char  *e;

    while (isspace((unsigned char) *s)) {
        s++;
    }

    e = s + strlen(s);

    while (e > s && isspace((unsigned char) e[-1])) {
        *--e = '\0';
    }

    return s;
}


static msgr_sender_conf_t *
msgr_sender_conf_new(const char *path)
{
    char                 host[256];
    msgr_sender_conf_t  *conf;
    int                  i;

    conf = calloc(1, sizeof(msgr_sender_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    if (gethostname(host, sizeof(host) - 32) != 0) {
        strcpy(host, "sender");
    }

    host[sizeof(host) - 32] = '\0';
    snprintf(host + strlen(host), 32, ":%ld", (long) getpid());

    conf->path = msgr_sender_strdup(path);
    conf->sender_id = msgr_sender_strdup(host);
    conf->batch = 100;
    conf->max_in_flight = 200;
    conf->connections = 32;
    conf->lease = 120;
    conf->poll = 1;
    conf->backoff_cap = 3600;
    conf->burst_errors = 50;
    conf->burst_window = 60;

    for (i = 0; i < MSGR_CHANNELS; i++) {
        conf->max_attempts[i] = 5;
    }

    if (conf->path == NULL || conf->sender_id == NULL) {
        msgr_sender_conf_free(conf);
        return NULL;
    }

    return conf;
}


void
msgr_sender_conf_free(msgr_sender_conf_t *conf)
{
    int                      i;
    msgr_sender_provider_t  *p;

    if (conf == NULL) {
        return;
    }

    msgr_sender_conf_free(conf->older);

    for (i = 0; i < conf->nproviders; i++) {
        p = conf->providers[i];

        if (p->adapter && p->adapter->free) {
            p->adapter->free(p);
        }

        free(p->name);
        free(p);
    }

    free(conf->path);
    free(conf->sender_id);
    free(conf->callback_base);
    free(conf);
}


static msgr_sender_provider_t *
msgr_sender_provider_new(msgr_sender_conf_t *conf, const char *name,
    const char **why)
{
    int                      i;
    msgr_sender_provider_t  *p;

    if (conf->nproviders == MSGR_SENDER_PROVIDERS_MAX) {
        *why = "too many providers (at most 16)";
        return NULL;
    }

    for (i = 0; i < conf->nproviders; i++) {
        if (strcmp(conf->providers[i]->name, name) == 0) {
            *why = "a provider of that name already";
            return NULL;
        }
    }

    p = calloc(1, sizeof(msgr_sender_provider_t));
    if (p == NULL || (p->name = msgr_sender_strdup(name)) == NULL) {
        free(p);
        *why = "out of memory";
        return NULL;
    }

    p->weight = 1;
    p->timeout = 30;
    p->health = 1;

    conf->providers[conf->nproviders++] = p;

    return p;
}


msgr_sender_conf_t *
msgr_sender_conf_load(const char *path, char *err, size_t size)
{
    int                      n, i, in_sender;
    char                     line[MSGR_SENDER_LINE_MAX], *s, *eq, *key;
    char                    *value;
    FILE                    *f;
    const char              *why;
    msgr_sender_conf_t      *conf;
    msgr_sender_provider_t  *p;

    conf = msgr_sender_conf_new(path);
    if (conf == NULL) {
        snprintf(err, size, "out of memory");
        return NULL;
    }

    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, size, "%s: %s", path, strerror(errno));
        msgr_sender_conf_free(conf);
        return NULL;
    }

    n = 0;
    in_sender = 0;
    p = NULL;
    why = NULL;

    while (fgets(line, sizeof(line), f) != NULL) {
        n++;

        if (strchr(line, '\n') == NULL && !feof(f)) {
            why = "the line is too long";
            break;
        }

        s = msgr_sender_trim(line);

        if (*s == '\0' || *s == '#') {
            continue;
        }

        if (*s == '[') {
            in_sender = 0;
            p = NULL;

            if (strcmp(s, "[sender]") == 0) {
                in_sender = 1;
                continue;
            }

            if (strncmp(s, "[provider ", 10) == 0 && s[strlen(s) - 1] == ']')
            {
                s[strlen(s) - 1] = '\0';
                s = msgr_sender_trim(s + 10);

                if (*s == '\0') {
                    why = "a provider needs a name: [provider NAME]";
                    break;
                }

                p = msgr_sender_provider_new(conf, s, &why);
                if (p == NULL) {
                    break;
                }

                continue;
            }

            why = "a section is [sender] or [provider NAME]";
            break;
        }

        eq = strchr(s, '=');
        if (eq == NULL) {
            why = "expected key = value";
            break;
        }

        *eq = '\0';
        key = msgr_sender_trim(s);
        value = msgr_sender_trim(eq + 1);

        if (in_sender) {
            if (msgr_sender_conf_sender(conf, key, value, &why) != 0) {
                break;
            }

        } else if (p != NULL) {
            if (msgr_sender_conf_provider(p, key, value, &why) != 0) {
                break;
            }

        } else {
            why = "a key outside [sender] or [provider NAME]";
            break;
        }
    }

    fclose(f);

    if (why == NULL) {
        n = 0;

        for (i = 0; i < conf->nproviders && why == NULL; i++) {
            p = conf->providers[i];

            if (p->adapter == NULL) {
                why = "a provider has no type";

            } else if (p->channels == 0) {
                why = "a provider has no channels";

            } else if (p->adapter->check && p->adapter->check(p, &why) != 0)
            {
                /* why is set */
            }

            if (why != NULL) {
                snprintf(err, size, "%s: provider %s: %s", path, p->name,
                         why);
                msgr_sender_conf_free(conf);
                return NULL;
            }
        }

        return conf;
    }

    snprintf(err, size, "%s:%d: %s", path, n, why);
    msgr_sender_conf_free(conf);

    return NULL;
}


static int
msgr_sender_conf_sender(msgr_sender_conf_t *conf, const char *key,
    const char *value, const char **why)
{
    double          d;
    char           *copy;
    msgr_channel_e  ch;

    if (strcmp(key, "id") == 0) {
        if (*value == '\0' || strlen(value) > 200) {
            *why = "id: 1 to 200 characters";
            return -1;
        }

        copy = msgr_sender_strdup(value);
        if (copy == NULL) {
            *why = "out of memory";
            return -1;
        }

        free(conf->sender_id);
        conf->sender_id = copy;
        return 0;
    }

    if (strcmp(key, "callback_base") == 0) {
        if (strncmp(value, "http://", 7) != 0
            && strncmp(value, "https://", 8) != 0)
        {
            *why = "callback_base: an http:// or https:// URL";
            return -1;
        }

        copy = msgr_sender_strdup(value);
        if (copy == NULL) {
            *why = "out of memory";
            return -1;
        }

        free(conf->callback_base);
        conf->callback_base = copy;
        return 0;
    }

    if (strncmp(key, "max_attempts.", 13) == 0) {
        if (msgr_channel_parse(key + 13, &ch) != 0) {
            *why = "max_attempts.CHANNEL: xpressions, sms, voice or email";
            return -1;
        }

        if (msgr_sender_conf_number(value, 1, 100, &d) != 0) {
            *why = "max_attempts: an integer from 1 to 100";
            return -1;
        }

        conf->max_attempts[ch] = (int) d;
        return 0;
    }

#define MSGR_SENDER_NUMBER(name, field, min, max, cast)                      \
    if (strcmp(key, name) == 0) {                                            \
        if (msgr_sender_conf_number(value, min, max, &d) != 0) {             \
            *why = name ": a number from " #min " to " #max;                 \
            return -1;                                                       \
        }                                                                    \
        conf->field = (cast) d;                                              \
        return 0;                                                            \
    }

    MSGR_SENDER_NUMBER("batch", batch, 1, 10000, int)
    MSGR_SENDER_NUMBER("max_in_flight", max_in_flight, 1, 100000, int)
    MSGR_SENDER_NUMBER("connections", connections, 1, 10000, int)
    MSGR_SENDER_NUMBER("lease", lease, 5, 86400, double)
    MSGR_SENDER_NUMBER("poll", poll, 0.05, 60, double)
    MSGR_SENDER_NUMBER("backoff_cap", backoff_cap, 1, 86400, double)
    MSGR_SENDER_NUMBER("burst_errors", burst_errors, 1, 100000, double)
    MSGR_SENDER_NUMBER("burst_window", burst_window, 1, 86400, double)

#undef MSGR_SENDER_NUMBER

    *why = "an unknown key of [sender]";

    return -1;
}


static int
msgr_sender_conf_provider(msgr_sender_provider_t *p, const char *key,
    const char *value, const char **why)
{
    char                                *list, *tok, *save;
    unsigned                             bits;
    msgr_channel_e                       ch;
    const msgr_sender_adapter_t *const  *a;

    if (strcmp(key, "type") == 0) {
        if (p->adapter != NULL) {
            *why = "type is given twice";
            return -1;
        }

        for (a = msgr_sender_adapters; *a; a++) {
            if (strcmp((*a)->type, value) == 0) {
                p->adapter = *a;
                return 0;
            }
        }

        *why = "type: file, twilio, smtp or fcm";
        return -1;
    }

    if (p->adapter == NULL) {
        *why = "type = ... comes first in a provider's section";
        return -1;
    }

    if (strcmp(key, "channels") == 0) {
        list = msgr_sender_strdup(value);
        if (list == NULL) {
            *why = "out of memory";
            return -1;
        }

        bits = 0;

        for (tok = strtok_r(list, ", ", &save); tok;
             tok = strtok_r(NULL, ", ", &save))
        {
            if (msgr_channel_parse(tok, &ch) != 0) {
                free(list);
                *why = "channels: a list of xpressions, sms, voice, email";
                return -1;
            }

            bits |= MSGR_CHANNEL_BIT(ch);
        }

        free(list);
        p->channels = bits;
        return 0;
    }

    if (strcmp(key, "weight") == 0) {
        if (msgr_sender_conf_number(value, 0, 1000000, &p->weight) != 0) {
            *why = "weight: a number from 0 to 1000000";
            return -1;
        }
        return 0;
    }

    if (strcmp(key, "rate") == 0) {
        if (msgr_sender_conf_number(value, 0, 1000000, &p->rate) != 0) {
            *why = "rate: requests a second, from 0 (no limit) to 1000000";
            return -1;
        }
        return 0;
    }

    if (strcmp(key, "timeout") == 0) {
        if (msgr_sender_conf_number(value, 0.1, 3600, &p->timeout) != 0) {
            *why = "timeout: seconds, from 0.1 to 3600";
            return -1;
        }
        return 0;
    }

    if (p->adapter->set == NULL) {
        *why = "an unknown key for this type";
        return -1;
    }

    return p->adapter->set(p, key, value, why);
}

/*
 * msgr-sender: the file provider, make run's default.  Each delivery is
 * appended as one JSON line to DIR/<channel>.jsonl and counts as
 * delivered, so a fresh machine with no provider account sends too.
 *
 *   [provider outbox]
 *   type = file
 *   channels = xpressions, sms, voice, email
 *   dir = var/outbox
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "msgr_sender.h"


typedef struct {
    char  *dir;
} msgr_sender_file_conf_t;


static int
msgr_sender_file_set(msgr_sender_provider_t *p, const char *key,
    const char *value, const char **why)
{
    msgr_sender_file_conf_t  *fc;

    if (strcmp(key, "dir") != 0) {
        *why = "an unknown key for type file (it takes dir)";
        return -1;
    }

    if (*value == '\0') {
        *why = "dir: a directory";
        return -1;
    }

    fc = p->conf;

    if (fc == NULL) {
        fc = calloc(1, sizeof(msgr_sender_file_conf_t));
        if (fc == NULL) {
            *why = "out of memory";
            return -1;
        }

        p->conf = fc;
    }

    free(fc->dir);
    fc->dir = msgr_sender_strdup(value);

    if (fc->dir == NULL) {
        *why = "out of memory";
        return -1;
    }

    return 0;
}


static int
msgr_sender_file_check(msgr_sender_provider_t *p, const char **why)
{
    msgr_sender_file_conf_t  *fc;

    fc = p->conf;

    if (fc == NULL || fc->dir == NULL) {
        *why = "type file needs dir = DIRECTORY";
        return -1;
    }

    if (mkdir(fc->dir, 0755) != 0 && errno != EEXIST) {
        *why = "dir cannot be made";
        return -1;
    }

    return 0;
}


static void
msgr_sender_file_send(msgr_sender_provider_t *p, msgr_sender_job_t *job)
{
    int                       fd;
    char                      path[4096], at[32];
    char                     *line;
    size_t                    len;
    ssize_t                   n;
    json_t                   *j;
    time_t                    now;
    struct tm                 tm;
    msgr_sender_file_conf_t  *fc;

    fc = p->conf;

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);

    j = json_pack("{s:I, s:I, s:I, s:s, s:I, s:s, s:s?, s:s, s:s?, s:s?,"
                  " s:s, s:s?, s:i, s:s}",
                  "delivery_id", (json_int_t) job->id,
                  "school_id", (json_int_t) job->school_id,
                  "message_id", (json_int_t) job->message_id,
                  "recipient_type", job->recipient_type,
                  "recipient_id", (json_int_t) job->recipient_id,
                  "channel", job->channel,
                  "address", job->address,
                  "purpose", job->purpose,
                  "language", job->language,
                  "subject", job->subject,
                  "body", job->body,
                  "school", job->school_name,
                  "attempt", job->attempt,
                  "at", at);

    line = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);

    if (line == NULL) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");
        return;
    }

    snprintf(path, sizeof(path), "%s/%s.jsonl", fc->dir, job->channel);

    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

    if (fd == -1) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "%s: %s", path,
                              strerror(errno));
        free(line);
        return;
    }

    /* one write: lines of concurrent senders do not interleave */

    len = strlen(line);
    line[len++] = '\n';

    n = write(fd, line, len);

    if (n != (ssize_t) len) {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "%s: %s", path,
                              n == -1 ? strerror(errno) : "a short write");
        if (n > 0 && ftruncate(fd, lseek(fd, 0, SEEK_END) - n) != 0) {
            /* the line is cut: a reader skips what is not JSON */
        }

    } else {
        job->outcome = MSGR_SENDER_DELIVERED;
        snprintf(job->provider_id, sizeof(job->provider_id), "file:%lld",
                 (long long) job->id);
    }

    close(fd);
    free(line);
}


static void
msgr_sender_file_free(msgr_sender_provider_t *p)
{
    msgr_sender_file_conf_t  *fc;

    fc = p->conf;

    if (fc != NULL) {
        free(fc->dir);
        free(fc);
    }
}


const msgr_sender_adapter_t  msgr_sender_file_adapter = {
    "file",
    0,
    msgr_sender_file_set,
    msgr_sender_file_check,
    NULL,
    NULL,
    msgr_sender_file_send,
    msgr_sender_file_free
};

/*
 * msgr-sender: email over SMTP (libcurl's smtp:// and smtps://).
 *
 *   [provider mail]
 *   type = smtp
 *   channels = email
 *   url = smtp://mail.example.org:587
 *   starttls = required
 *   username = msgr
 *   password = secret
 *   from = noreply@school.example
 *
 * Each delivery is one message to one recipient: headers (From with the
 * school's name, Reply-To the school's email, Subject RFC 2047-encoded
 * when it is not plain ASCII, a Message-ID and X-Msgr-Delivery carrying
 * the delivery id) and a multipart/alternative body, the text as it was
 * rendered and the same text as HTML, both quoted-printable.  libcurl
 * does the dot-stuffing.  A 5xx reply fails for good, anything else is
 * tried again.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgr_sender.h"


typedef struct {
    char                *url;
    char                *helo;
    char                *username;
    char                *password;
    char                *from;
    char                *from_name;
    char                *reply_to;
    char                *domain;       /* of the Message-ID */
    char                *ca_file;
    long                 starttls;     /* CURLUSESSL_* */
    int                  tls_verify;
} msgr_sender_smtp_conf_t;


/* a message on its way: job->data */

typedef struct {
    size_t               len;          /* of the message, job->request */
    size_t               off;          /* what libcurl has read of it */
    msgr_sender_buf_t    reply;        /* the server's replies */
    char                *message_id;   /* without the angle brackets */
    char                 why[CURL_ERROR_SIZE];
} msgr_sender_smtp_state_t;


#define MSGR_SENDER_SMTP_ADD(buf, s)                                         \
    msgr_sender_buf_add(buf, s, strlen(s))


/*
 * An address fit for a header and the envelope: one @, printable ASCII or
 * UTF-8, nothing that ends or breaks a header (CR, LF, <, >, spaces).
 */

static int
msgr_sender_smtp_address(const char *a)
{
    const char  *at;

    if (a == NULL || *a == '\0' || strlen(a) > 254) {
        return 0;
    }

    at = strchr(a, '@');

    if (at == NULL || at == a || at[1] == '\0' || strchr(at + 1, '@')) {
        return 0;
    }

    for ( /* void */ ; *a; a++) {
        if ((unsigned char) *a <= ' ' || *a == 0x7f || *a == '<'
            || *a == '>' || *a == '(' || *a == ')' || *a == ',')
        {
            return 0;
        }
    }

    return 1;
}


/* a header's text as it is: printable ASCII, at most 900 characters */

static int
msgr_sender_smtp_plain(const char *s)
{
    size_t  n;

    for (n = 0; s[n]; n++) {
        if ((unsigned char) s[n] < 0x20 || (unsigned char) s[n] >= 0x7f) {
            return 0;
        }
    }

    return n <= 900;
}


/*
 * RFC 2047 encoded words (UTF-8, base64), never cutting a character, one
 * a line, each line at most 76 characters: the first starts at column col
 * (after "Subject: "), the others on folded lines.
 */

static int
msgr_sender_smtp_words(msgr_sender_buf_t *buf, const char *s, size_t col)
{
    static const char     b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789+/";
    char                  out[64];
    size_t                len, n, max, i, o;
    uint32_t              v;
    const unsigned char  *p;

    p = (const unsigned char *) s;
    len = strlen(s);

    do {
        /* "=?UTF-8?B?" and "?=" are 12; 45 bytes are 60 in base64 */

        max = (76 - col - 12) / 4 * 3;
        max = max > 45 ? 45 : max;
        n = len < max ? len : max;

        while (n < len && n > 0 && (p[n] & 0xc0) == 0x80) {
            n--;
        }

        if (n == 0 && len > 0) {
            n = len < max ? len : max;
        }

        o = 0;

        for (i = 0; i < n; i += 3) {
            v = (uint32_t) p[i] << 16;
            v |= (i + 1 < n) ? (uint32_t) p[i + 1] << 8 : 0;
            v |= (i + 2 < n) ? p[i + 2] : 0;

            out[o++] = b64[(v >> 18) & 63];
            out[o++] = b64[(v >> 12) & 63];
            out[o++] = (i + 1 < n) ? b64[(v >> 6) & 63] : '=';
            out[o++] = (i + 2 < n) ? b64[v & 63] : '=';
        }

        if ((p != (const unsigned char *) s
             && msgr_sender_buf_add(buf, "\r\n ", 3) != 0)
            || MSGR_SENDER_SMTP_ADD(buf, "=?UTF-8?B?") != 0
            || msgr_sender_buf_add(buf, out, o) != 0
            || MSGR_SENDER_SMTP_ADD(buf, "?=") != 0)
        {
            return -1;
        }

        p += n;
        len -= n;
        col = 1;

    } while (len > 0);

    return 0;
}


/*
 * Unstructured text (Subject): as it is when it can be, folded before
 * spaces onto lines of at most 76 characters where words allow; else
 * encoded.
 */

static int
msgr_sender_smtp_text(msgr_sender_buf_t *buf, const char *s, size_t col)
{
    const char  *p, *cut;

    if (!msgr_sender_smtp_plain(s)) {
        return msgr_sender_smtp_words(buf, s, col);
    }

    while (col + strlen(s) > 76) {
        cut = NULL;

        for (p = s + 1; *p && (size_t) (p - s) + col <= 76; p++) {
            if (*p == ' ' && p[-1] != ' ') {
                cut = p;
            }
        }

        for (p = s + 1; cut == NULL && *p; p++) {
            if (*p == ' ' && p[-1] != ' ') {
                cut = p;    /* a word too long for a line: after it */
            }
        }

        if (cut == NULL) {
            break;
        }

        if (msgr_sender_buf_add(buf, s, cut - s) != 0
            || msgr_sender_buf_add(buf, "\r\n", 2) != 0)
        {
            return -1;
        }

        s = cut;
        col = 0;
    }

    return MSGR_SENDER_SMTP_ADD(buf, s);
}


/*
 * A display name and a space: a quoted string, or encoded words and a
 * folded line for the address that follows.
 */

static int
msgr_sender_smtp_phrase(msgr_sender_buf_t *buf, const char *s, size_t col)
{
    if (!msgr_sender_smtp_plain(s)) {
        return (msgr_sender_smtp_words(buf, s, col)
                || msgr_sender_buf_add(buf, "\r\n ", 3)) ? -1 : 0;
    }

    if (msgr_sender_buf_add(buf, "\"", 1) != 0) {
        return -1;
    }

    for ( /* void */ ; *s; s++) {
        if ((*s == '"' || *s == '\\') && msgr_sender_buf_add(buf, "\\", 1))
        {
            return -1;
        }

        if (msgr_sender_buf_add(buf, s, 1) != 0) {
            return -1;
        }
    }

    return msgr_sender_buf_add(buf, "\" ", 2);
}


/*
 * Quoted-printable (RFC 2045): lines of at most 76 characters, the text's
 * line breaks as CRLF, soft breaks "=" CRLF, space before a break encoded.
 */

static int
msgr_sender_smtp_qp(msgr_sender_buf_t *buf, const char *s)
{
    static const char  hex[] = "0123456789ABCDEF";
    char               enc[3];
    size_t             col, n;
    u_char             c;

    col = 0;

    for ( /* void */ ; *s; s++) {
        c = (u_char) *s;

        if (c == '\n' || (c == '\r' && s[1] == '\n')) {
            if (c == '\r') {
                s++;
            }

            if (msgr_sender_buf_add(buf, "\r\n", 2) != 0) {
                return -1;
            }

            col = 0;
            continue;
        }

        if ((c >= 33 && c <= 126 && c != '=')
            || ((c == ' ' || c == '\t')
                && s[1] != '\0' && s[1] != '\n' && s[1] != '\r'))
        {
            enc[0] = (char) c;
            n = 1;

        } else {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            n = 3;
        }

        if (col + n > 75) {
            if (msgr_sender_buf_add(buf, "=\r\n", 3) != 0) {
                return -1;
            }

            col = 0;
        }

        if (msgr_sender_buf_add(buf, enc, n) != 0) {
            return -1;
        }

        col += n;
    }

    return msgr_sender_buf_add(buf, "\r\n", 2);
}


/* one character of text in HTML */

static int
msgr_sender_smtp_escape(msgr_sender_buf_t *html, const char *c)
{
    switch (*c) {
    case '&':
        return MSGR_SENDER_SMTP_ADD(html, "&amp;");
    case '<':
        return MSGR_SENDER_SMTP_ADD(html, "&lt;");
    case '>':
        return MSGR_SENDER_SMTP_ADD(html, "&gt;");
    case '"':
        return MSGR_SENDER_SMTP_ADD(html, "&quot;");
    case '\'':
        return MSGR_SENDER_SMTP_ADD(html, "&#39;");
    default:
        return msgr_sender_buf_add(html, c, 1);
    }
}


/*
 * The text as HTML: escaped, a paragraph for each run of lines between
 * blank ones (or ones of spaces), a <br> for each line break inside one.
 */

static int
msgr_sender_smtp_html(msgr_sender_buf_t *html, const char *subject,
    const char *text)
{
    int          open, rc, nl;
    const char  *s, *e;

    rc = MSGR_SENDER_SMTP_ADD(html, "<!DOCTYPE html>\n<html><head>"
                              "<meta charset=\"utf-8\"><title>");

    for (s = subject; rc == 0 && *s; s++) {
        rc = msgr_sender_smtp_escape(html, s);
    }

    rc = rc || MSGR_SENDER_SMTP_ADD(html, "</title></head>\n<body>\n");
    open = 0;

    for (s = text; rc == 0 && *s; s++) {
        if (*s == '\r' && s[1] == '\n') {
            continue;
        }

        if (*s == '\n') {
            nl = 0;

            for (e = s; *e == '\n' || *e == '\r' || *e == ' ' || *e == '\t';
                 e++)
            {
                nl += (*e == '\n');
            }

            if (nl > 1 || *e == '\0') {
                /* a blank line, or the end: the paragraph ends */
                rc = open ? MSGR_SENDER_SMTP_ADD(html, "</p>\n") : 0;
                open = 0;
                s = e - 1;

            } else {
                rc = open ? MSGR_SENDER_SMTP_ADD(html, "<br>\n") : 0;
            }

            continue;
        }

        if (!open) {
            rc = MSGR_SENDER_SMTP_ADD(html, "<p>");
            open = 1;
        }

        rc = rc || msgr_sender_smtp_escape(html, s);
    }

    rc = rc || (open && MSGR_SENDER_SMTP_ADD(html, "</p>\n"))
         || MSGR_SENDER_SMTP_ADD(html, "</body></html>\n");

    return rc ? -1 : 0;
}


/* the headers: From, Reply-To, To, Subject, Date, Message-ID, ... */

static int
msgr_sender_smtp_headers(msgr_sender_smtp_conf_t *sc, msgr_sender_job_t *job,
    msgr_sender_buf_t *m, const char *message_id, const char *boundary)
{
    int          rc;
    char         line[160];
    time_t       now;
    struct tm    tm;
    const char  *name, *reply_to;

    name = sc->from_name ? sc->from_name
           : (job->school_name && *job->school_name) ? job->school_name
           : NULL;

    reply_to = sc->reply_to ? sc->reply_to
               : msgr_sender_smtp_address(job->school_email)
                 ? job->school_email : NULL;

    now = time(NULL);
    gmtime_r(&now, &tm);
    strftime(line, sizeof(line), "Date: %a, %d %b %Y %H:%M:%S +0000\r\n",
             &tm);

    rc = MSGR_SENDER_SMTP_ADD(m, line)
         || MSGR_SENDER_SMTP_ADD(m, "From: ")
         || (name && msgr_sender_smtp_phrase(m, name, sizeof("From: ") - 1))
         || MSGR_SENDER_SMTP_ADD(m, "<")
         || MSGR_SENDER_SMTP_ADD(m, sc->from)
         || MSGR_SENDER_SMTP_ADD(m, ">\r\n")
         || (reply_to && (MSGR_SENDER_SMTP_ADD(m, "Reply-To: <")
                          || MSGR_SENDER_SMTP_ADD(m, reply_to)
                          || MSGR_SENDER_SMTP_ADD(m, ">\r\n")))
         || MSGR_SENDER_SMTP_ADD(m, "To: <")
         || MSGR_SENDER_SMTP_ADD(m, job->address)
         || MSGR_SENDER_SMTP_ADD(m, ">\r\nSubject: ")
         || msgr_sender_smtp_text(m, job->subject ? job->subject : "",
                                  sizeof("Subject: ") - 1)
         || MSGR_SENDER_SMTP_ADD(m, "\r\nMessage-ID: <")
         || MSGR_SENDER_SMTP_ADD(m, message_id)
         || MSGR_SENDER_SMTP_ADD(m, ">\r\n");

    snprintf(line, sizeof(line), "X-Msgr-Delivery: %lld\r\n"
             "MIME-Version: 1.0\r\n"
             "Content-Type: multipart/alternative;\r\n"
             " boundary=\"%s\"\r\n\r\n", (long long) job->id, boundary);

    rc = rc || MSGR_SENDER_SMTP_ADD(m, line);

    return rc ? -1 : 0;
}



/* one part's delimiter and headers */

static int
msgr_sender_smtp_part(msgr_sender_buf_t *m, const char *boundary,
    const char *type)
{
    return (MSGR_SENDER_SMTP_ADD(m, "--")
            || MSGR_SENDER_SMTP_ADD(m, boundary)
            || MSGR_SENDER_SMTP_ADD(m, "\r\nContent-Type: ")
            || MSGR_SENDER_SMTP_ADD(m, type)
            || MSGR_SENDER_SMTP_ADD(m, "; charset=utf-8\r\n"
                                    "Content-Transfer-Encoding:"
                                    " quoted-printable\r\n\r\n")) ? -1 : 0;
}


/*
 * The whole message.  The boundary starts with "=_", which quoted-printable
 * never writes, so no part can contain it.
 */

static char *
msgr_sender_smtp_message(msgr_sender_smtp_conf_t *sc, msgr_sender_job_t *job,
    const char *message_id, size_t *len)
{
    int                rc;
    char               boundary[64];
    const char        *body;
    msgr_sender_buf_t  m, html;

    memset(&m, 0, sizeof(msgr_sender_buf_t));
    memset(&html, 0, sizeof(msgr_sender_buf_t));

    body = job->body ? job->body : "";

    snprintf(boundary, sizeof(boundary), "=_msgr_%lld_%d",
             (long long) job->id, job->attempt);

    rc = msgr_sender_smtp_headers(sc, job, &m, message_id, boundary)
         || msgr_sender_smtp_html(&html, job->subject ? job->subject : "",
                                  body)
         || msgr_sender_smtp_part(&m, boundary, "text/plain")
         || msgr_sender_smtp_qp(&m, body)
         || msgr_sender_smtp_part(&m, boundary, "text/html")
         || msgr_sender_smtp_qp(&m, html.data)
         || MSGR_SENDER_SMTP_ADD(&m, "--")
         || MSGR_SENDER_SMTP_ADD(&m, boundary)
         || MSGR_SENDER_SMTP_ADD(&m, "--\r\n");

    free(html.data);

    if (rc) {
        free(m.data);
        return NULL;
    }

    *len = m.len;

    return m.data;
}


/* libcurl reads the message from here */

static size_t
msgr_sender_smtp_read(char *to, size_t size, size_t n, void *arg)
{
    size_t                     len;
    msgr_sender_job_t         *job = arg;
    msgr_sender_smtp_state_t  *st;

    st = job->data;

    len = st->len - st->off;

    if (len > size * n) {
        len = size * n;
    }

    memcpy(to, job->request + st->off, len);
    st->off += len;

    return len;
}


/* the server's replies, line by line: the last few are kept */

static size_t
msgr_sender_smtp_reply(char *data, size_t size, size_t n, void *arg)
{
    msgr_sender_job_t         *job = arg;
    msgr_sender_smtp_state_t  *st;

    st = job->data;

    if (st->reply.len + size * n <= 16384) {
        (void) msgr_sender_buf_add(&st->reply, data, size * n);
    }

    return size * n;
}


/* a host name for EHLO and the Message-ID */

static int
msgr_sender_smtp_domain(const char *s)
{
    size_t  n;

    for (n = 0; s[n]; n++) {
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z')
              || (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '.'))
        {
            return 0;
        }
    }

    return n > 0 && n <= 253;
}


static int
msgr_sender_smtp_set(msgr_sender_provider_t *p, const char *key,
    const char *value, const char **why)
{
    int                       b;
    char                    **field;
    msgr_sender_smtp_conf_t  *sc;

    sc = p->conf;

    if (sc == NULL) {
        sc = calloc(1, sizeof(msgr_sender_smtp_conf_t));
        if (sc == NULL) {
            *why = "out of memory";
            return -1;
        }

        sc->starttls = CURLUSESSL_TRY;
        sc->tls_verify = 1;
        p->conf = sc;
    }

    if (strcmp(key, "starttls") == 0) {
        if (strcmp(value, "off") == 0) {
            sc->starttls = CURLUSESSL_NONE;
        } else if (strcmp(value, "try") == 0) {
            sc->starttls = CURLUSESSL_TRY;
        } else if (strcmp(value, "required") == 0) {
            sc->starttls = CURLUSESSL_ALL;
        } else {
            *why = "starttls: off, try or required";
            return -1;
        }

        return 0;
    }

    if (strcmp(key, "tls_verify") == 0) {
        b = msgr_sender_conf_bool(value);
        if (b == -1) {
            *why = "tls_verify: on or off";
            return -1;
        }

        sc->tls_verify = b;
        return 0;
    }

    field = NULL;

    if (strcmp(key, "url") == 0) {
        if (strncmp(value, "smtp://", 7) != 0
            && strncmp(value, "smtps://", 8) != 0)
        {
            *why = "url: smtp://HOST:PORT or smtps://HOST:PORT";
            return -1;
        }
        field = &sc->url;

    } else if (strcmp(key, "from") == 0 || strcmp(key, "reply_to") == 0) {
        if (!msgr_sender_smtp_address(value)) {
            *why = "from, reply_to: an email address (name@domain)";
            return -1;
        }
        field = key[0] == 'f' ? &sc->from : &sc->reply_to;

    } else if (strcmp(key, "helo") == 0
               || strcmp(key, "message_id_domain") == 0)
    {
        if (!msgr_sender_smtp_domain(value)) {
            *why = "helo, message_id_domain: a host name";
            return -1;
        }
        field = key[0] == 'h' ? &sc->helo : &sc->domain;

    } else if (strcmp(key, "username") == 0) {
        field = &sc->username;
    } else if (strcmp(key, "password") == 0) {
        field = &sc->password;
    } else if (strcmp(key, "from_name") == 0) {
        field = &sc->from_name;
    } else if (strcmp(key, "ca_file") == 0) {
        field = &sc->ca_file;
    }

    if (field == NULL) {
        *why = "an unknown key for type smtp (it takes url, starttls,"
               " username, password, from, from_name, reply_to, helo,"
               " message_id_domain, tls_verify, ca_file)";
        return -1;
    }

    if (*value == '\0') {
        *why = "an empty value (leave the key out instead)";
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


static int
msgr_sender_smtp_check(msgr_sender_provider_t *p, const char **why)
{
    size_t                    len;
    char                     *url, *host, *slash;
    msgr_sender_smtp_conf_t  *sc;

    sc = p->conf;

    if (sc == NULL || sc->url == NULL || sc->from == NULL) {
        *why = "type smtp needs url = smtp://HOST:PORT and from = ADDRESS";
        return -1;
    }

    if (p->channels != MSGR_CHANNEL_BIT(MSGR_CHANNEL_EMAIL)) {
        *why = "type smtp carries email only (channels = email)";
        return -1;
    }

    if (sc->domain == NULL) {
        sc->domain = msgr_sender_strdup(strchr(sc->from, '@') + 1);
        if (sc->domain == NULL) {
            *why = "out of memory";
            return -1;
        }
    }

    if (sc->helo != NULL) {
        /* libcurl says EHLO with the URL's path */

        host = strstr(sc->url, "://") + 3;
        slash = strchr(host, '/');

        if (slash != NULL && slash[strspn(slash, "/")] != '\0') {
            *why = "helo: the url has a path already (its EHLO name)";
            return -1;
        }

        len = slash ? (size_t) (slash - sc->url) : strlen(sc->url);

        url = malloc(len + strlen(sc->helo) + 2);
        if (url == NULL) {
            *why = "out of memory";
            return -1;
        }

        sprintf(url, "%.*s/%s", (int) len, sc->url, sc->helo);
        free(sc->url);
        sc->url = url;
        free(sc->helo);
        sc->helo = NULL;
    }

    return 0;
}


static void
msgr_sender_smtp_state_free(msgr_sender_job_t *job)
{
    msgr_sender_smtp_state_t  *st;

    st = job->data;

    if (st != NULL) {
        free(st->reply.data);
        free(st->message_id);
        free(st);
        job->data = NULL;
    }
}


static int
msgr_sender_smtp_prepare(msgr_sender_provider_t *p, msgr_sender_job_t *job)
{
    size_t                     len;
    msgr_sender_smtp_conf_t   *sc;
    msgr_sender_smtp_state_t  *st;

    sc = p->conf;

    if (!msgr_sender_smtp_address(job->address)) {
        msgr_sender_job_error(job, MSGR_SENDER_PERMANENT,
                              "not an email address: %s",
                              job->address ? job->address : "(none)");
        return -1;
    }

    st = calloc(1, sizeof(msgr_sender_smtp_state_t));
    job->data = st;

    len = sizeof("delivery-.@") + 2 * 24 + strlen(sc->domain);

    if (st == NULL || (st->message_id = malloc(len)) == NULL) {
        goto nomem;
    }

    snprintf(st->message_id, len, "delivery-%lld.%lld@%s",
             (long long) job->id, (long long) job->message_id, sc->domain);

    job->request = msgr_sender_smtp_message(sc, job, st->message_id,
                                            &st->len);
    job->headers = curl_slist_append(NULL, job->address);

    if (job->request == NULL || job->headers == NULL) {
        goto nomem;
    }

    curl_easy_setopt(job->easy, CURLOPT_URL, sc->url);
    curl_easy_setopt(job->easy, CURLOPT_MAIL_FROM, sc->from);
    curl_easy_setopt(job->easy, CURLOPT_MAIL_RCPT, job->headers);
    curl_easy_setopt(job->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(job->easy, CURLOPT_READFUNCTION, msgr_sender_smtp_read);
    curl_easy_setopt(job->easy, CURLOPT_READDATA, job);
    curl_easy_setopt(job->easy, CURLOPT_INFILESIZE_LARGE,
                     (curl_off_t) st->len);
    curl_easy_setopt(job->easy, CURLOPT_HEADERFUNCTION,
                     msgr_sender_smtp_reply);
    curl_easy_setopt(job->easy, CURLOPT_HEADERDATA, job);
    curl_easy_setopt(job->easy, CURLOPT_ERRORBUFFER, st->why);
    curl_easy_setopt(job->easy, CURLOPT_USE_SSL, sc->starttls);

    if (!sc->tls_verify) {
        curl_easy_setopt(job->easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(job->easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }

    if (sc->ca_file) {
        curl_easy_setopt(job->easy, CURLOPT_CAINFO, sc->ca_file);
    }

    if (sc->username) {
        curl_easy_setopt(job->easy, CURLOPT_USERNAME, sc->username);
        curl_easy_setopt(job->easy, CURLOPT_PASSWORD,
                         sc->password ? sc->password : "");
    }

    return 0;

nomem:

    msgr_sender_smtp_state_free(job);
    msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "out of memory");

    return -1;
}


/* the last reply line with this code: its text after the code */

static const char *
msgr_sender_smtp_text_of(msgr_sender_smtp_state_t *st, long status,
    size_t *len)
{
    char         code[8];
    const char  *s, *e, *found;

    found = NULL;
    snprintf(code, sizeof(code), "%03ld", status);

    for (s = st->reply.data; s && *s; s = *e ? e + 1 : e) {
        e = strchr(s, '\n');
        if (e == NULL) {
            e = s + strlen(s);
        }

        if (e - s >= 4 && strncmp(s, code, 3) == 0
            && (s[3] == ' ' || s[3] == '-'))
        {
            found = s + 4;
            *len = e - found;
        }
    }

    while (found && *len > 0
           && (found[*len - 1] == '\r' || found[*len - 1] == ' '))
    {
        (*len)--;
    }

    return found;
}


static void
msgr_sender_smtp_finish(msgr_sender_provider_t *p, msgr_sender_job_t *job,
    CURLcode rc, long status)
{
    size_t                     len;
    const char                *text, *q;
    msgr_sender_smtp_state_t  *st;

    (void) p;

    st = job->data;
    len = 0;
    text = msgr_sender_smtp_text_of(st, status, &len);

    if (rc == CURLE_OK) {
        /* "250 2.0.0 Ok: queued as 4XyZ1": the server's own id */

        q = text ? strstr(text, "queued as ") : NULL;

        if (q != NULL && q < text + len) {
            q += 10;
            snprintf(job->provider_id, sizeof(job->provider_id), "%.*s",
                     (int) (text + len - q), q);

        } else {
            snprintf(job->provider_id, sizeof(job->provider_id), "%s",
                     st->message_id);
        }

        job->outcome = MSGR_SENDER_SENT;

    } else if (status >= 400 && status < 600) {
        /*
         * 5xx fails for good, but for a refused login (530, 534, 535,
         * 538): that is the provider's configuration, not the parent's.
         */

        msgr_sender_job_error(job,
                              (status >= 500 && status != 530
                               && status != 534 && status != 535
                               && status != 538)
                              ? MSGR_SENDER_PERMANENT : MSGR_SENDER_TEMPORARY,
                              "smtp %ld: %.*s", status, (int) len,
                              text ? text : "");

    } else {
        msgr_sender_job_error(job, MSGR_SENDER_TEMPORARY, "smtp: %s",
                              st->why[0] ? st->why : curl_easy_strerror(rc));
    }

    msgr_sender_smtp_state_free(job);
}


static void
msgr_sender_smtp_free(msgr_sender_provider_t *p)
{
    msgr_sender_smtp_conf_t  *sc;

    sc = p->conf;

    if (sc != NULL) {
        free(sc->url);
        free(sc->helo);
        free(sc->username);
        free(sc->password);
        free(sc->from);
        free(sc->from_name);
        free(sc->reply_to);
        free(sc->domain);
        free(sc->ca_file);
        free(sc);
    }
}


const msgr_sender_adapter_t  msgr_sender_smtp_adapter = {
    "smtp",
    0,
    msgr_sender_smtp_set,
    msgr_sender_smtp_check,
    msgr_sender_smtp_prepare,
    msgr_sender_smtp_finish,
    NULL,
    msgr_sender_smtp_free
};

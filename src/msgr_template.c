/*
 * msgr merge tokens and translations: pure C (see msgr_template.h).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_recipients.h"
#include "msgr_settings.h"
#include "msgr_buf.h"
#include "msgr_template.h"
#include "msgr_text.h"


const char *const  msgr_template_builtin_tokens[] = {
    "title", "first_name", "last_name", "name", "student_names",
    "student_first_names", NULL
};


/* the school's tokens and the settings of the school tab they show */

static const char *const  msgr_template_school[][2] = {
    { "school_name", "name" },
    { "school_phone", "phone" },
    { "school_email", "email" },
    { "school_address", "address" },
    { "school_website", "website" },
    { NULL, NULL }
};


/* the pieces msgr_template_walk() finds */

#define MSGR_TEMPLATE_TEXT      0
#define MSGR_TEMPLATE_TOKEN     1

/* what it says of the braces */

#define MSGR_TEMPLATE_OK        0
#define MSGR_TEMPLATE_UNCLOSED  1
#define MSGR_TEMPLATE_UNOPENED  2
#define MSGR_TEMPLATE_EMPTY     3
#define MSGR_TEMPLATE_FAILED   -1   /* the piece handler failed */

typedef int (*msgr_template_piece_pt)(void *data, int kind, const char *s,
    size_t len);


/* a growing string of any length (src/msgr_buf.c) */

typedef msgr_buf_t  msgr_template_buf_t;


static int
msgr_template_add(msgr_template_buf_t *b, const char *s, size_t len)
{
    return msgr_buf_add(b, s, len);
}


static int
msgr_template_adds(msgr_template_buf_t *b, const char *s)
{
    return msgr_template_add(b, s, strlen(s));
}


/* the string built, NULL when memory ran out; "" when nothing was added */

static char *
msgr_template_buf_done(msgr_template_buf_t *b)
{
    if (b->failed) {
        free(b->data);
        return NULL;
    }

    if (b->data == NULL) {
        return calloc(1, 1);
    }

    return b->data;
}


int
msgr_template_reserved(const char *name, size_t len)
{
    const char *const  *t;
    size_t              i;

    for (t = msgr_template_builtin_tokens; *t; t++) {
        if (msgr_utf8_casecmp(name, len, *t, strlen(*t)) == 0) {
            return 1;
        }
    }

    for (i = 0; msgr_template_school[i][0]; i++) {
        t = &msgr_template_school[i][0];

        if (msgr_utf8_casecmp(name, len, *t, strlen(*t)) == 0) {
            return 1;
        }
    }

    return 0;
}


json_t *
msgr_template_token(json_t *tokens, const char *name, size_t len)
{
    json_t      *v;
    const char  *key;

    v = json_object_getn(tokens, name, len);
    if (v != NULL) {
        return v;
    }

    json_object_foreach(tokens, key, v) {
        if (msgr_utf8_casecmp(key, strlen(key), name, len) == 0) {
            return v;
        }
    }

    return NULL;
}


/* tokens */

json_t *
msgr_template_school_tokens(json_t *settings)
{
    size_t       i;
    json_t      *school;
    const char  *v;

    school = json_object();
    if (school == NULL) {
        return NULL;
    }

    for (i = 0; msgr_template_school[i][0]; i++) {
        v = msgr_settings_string(settings, "school",
                                 msgr_template_school[i][1]);

        if (json_object_set_new(school, msgr_template_school[i][0],
                                json_string(v ? v : ""))
            != 0)
        {
            json_decref(school);
            return NULL;
        }
    }

    return school;
}


/*
 * "Amy Jones", "Amy Jones and Ben Jones", "Amy Jones, Ben Jones and Cal
 * Jones"; first names only unless full; "" for no students
 */

static json_t *
msgr_template_student_names(json_t *students, int full)
{
    char                 *name, *s;
    size_t                i, n;
    json_t               *student, *out;
    const char           *first;
    msgr_template_buf_t   b;

    memset(&b, 0, sizeof(b));
    n = json_array_size(students);

    json_array_foreach(students, i, student) {
        first = json_string_value(json_object_get(student, "first_name"));

        if (full) {
            name = msgr_student_display_name(first,
                       json_string_value(json_object_get(student,
                                                         "last_name")),
                       NULL, 0);
            if (name == NULL) {
                b.failed = 1;
                break;
            }

        } else {
            name = NULL;
        }

        (void) msgr_template_adds(&b, i == 0 ? ""
                                         : (i == n - 1 ? " and " : ", "));
        (void) msgr_template_adds(&b, full ? name : (first ? first : ""));

        free(name);
    }

    s = msgr_template_buf_done(&b);
    if (s == NULL) {
        return NULL;
    }

    out = json_string(s);
    free(s);

    return out;
}


/* sets name to v (a new reference, may be NULL): 0, or -1 */

static int
msgr_template_set(json_t *tokens, const char *name, json_t *v)
{
    return v == NULL ? -1 : json_object_set_new(tokens, name, v);
}


/*
 * The tokens of a contact or a staff member: the attributes, the person's
 * names, the students' names (students may be NULL), the school's.
 */

static json_t *
msgr_template_tokens(json_t *person, json_t *attributes, json_t *students,
    json_t *school)
{
    int          rc;
    char        *name;
    size_t       i;
    json_t      *tokens, *v;
    const char  *key, *t, *part[3];

    tokens = json_object();
    if (tokens == NULL) {
        return NULL;
    }

    rc = 0;

    /* the school's attributes first; the built-in tokens cannot clash */
    json_object_foreach(attributes, key, v) {
        rc |= msgr_template_set(tokens, key,
                  json_string(json_is_string(v) ? json_string_value(v) : ""));
    }

    /* title, first_name, last_name: the first three built-in tokens */
    for (i = 0; i < 3; i++) {
        t = msgr_template_builtin_tokens[i];
        part[i] = json_string_value(json_object_get(person, t));

        if (part[i] == NULL) {
            part[i] = "";
        }

        rc |= msgr_template_set(tokens, t, json_string(part[i]));
    }

    name = msgr_person_display_name(part[0], part[1], part[2]);
    rc |= msgr_template_set(tokens, "name", name ? json_string(name) : NULL);
    free(name);

    rc |= msgr_template_set(tokens, "student_names",
                            msgr_template_student_names(students, 1));
    rc |= msgr_template_set(tokens, "student_first_names",
                            msgr_template_student_names(students, 0));

    if (school != NULL) {
        rc |= json_object_update(tokens, school);
    }

    if (rc != 0) {
        json_decref(tokens);
        return NULL;
    }

    return tokens;
}


json_t *
msgr_template_contact_tokens(json_t *contact, json_t *attributes,
    json_t *school)
{
    return msgr_template_tokens(contact, attributes,
                                json_object_get(contact, "students"), school);
}


json_t *
msgr_template_staff_tokens(json_t *staff, json_t *attributes,
    json_t *school)
{
    return msgr_template_tokens(staff, attributes, NULL, school);
}


/*
 * Walks a text: piece() gets each run of literal text (a doubled brace as
 * one brace) and each token's name, trimmed.  MSGR_TEMPLATE_OK, a brace
 * problem with *at the offending brace's byte offset, or
 * MSGR_TEMPLATE_FAILED when piece() returned non-zero.
 */

static int
msgr_template_walk(const char *text, size_t len, msgr_template_piece_pt piece,
    void *data, size_t *at)
{
    size_t       n;
    const char  *p, *q, *end, *lit, *name;

    p = text;
    end = text + len;
    lit = p;

    while (p < end) {

        if (*p != '{' && *p != '}') {
            p++;
            continue;
        }

        if (p + 1 < end && p[1] == *p) {
            /* {{ or }}: the text so far and one brace */
            if (piece(data, MSGR_TEMPLATE_TEXT, lit, p + 1 - lit) != 0) {
                return MSGR_TEMPLATE_FAILED;
            }

            p += 2;
            lit = p;
            continue;
        }

        *at = p - text;

        if (*p == '}') {
            return MSGR_TEMPLATE_UNOPENED;
        }

        for (q = p + 1; q < end && *q != '}' && *q != '{'; q++) {
            /* void */
        }

        if (q == end || *q == '{') {
            return MSGR_TEMPLATE_UNCLOSED;
        }

        name = p + 1;
        n = q - name;
        msgr_text_trim(&name, &n);

        if (n == 0) {
            return MSGR_TEMPLATE_EMPTY;
        }

        if (piece(data, MSGR_TEMPLATE_TEXT, lit, p - lit) != 0
            || piece(data, MSGR_TEMPLATE_TOKEN, name, n) != 0)
        {
            return MSGR_TEMPLATE_FAILED;
        }

        p = q + 1;
        lit = p;
    }

    if (piece(data, MSGR_TEMPLATE_TEXT, lit, end - lit) != 0) {
        return MSGR_TEMPLATE_FAILED;
    }

    return MSGR_TEMPLATE_OK;
}


/* checking */

typedef struct {
    json_t               *names;     /* the tokens allowed */
    json_t               *unknown;   /* the unknown ones seen: {name: true} */
    msgr_template_buf_t   list;      /* "{foo}, {bar}" */
    size_t                count;
} msgr_template_check_t;


static int
msgr_template_check_piece(void *data, int kind, const char *s, size_t len)
{
    msgr_template_check_t  *c;

    c = data;

    if (kind == MSGR_TEMPLATE_TEXT
        || msgr_template_token(c->names, s, len) != NULL
        || msgr_template_token(c->unknown, s, len) != NULL)
    {
        return 0;
    }

    if (json_object_setn_new(c->unknown, s, len, json_true()) != 0) {
        return -1;
    }

    c->count++;

    return msgr_template_adds(&c->list, c->count == 1 ? "{" : ", {")
           || msgr_template_add(&c->list, s, len)
           || msgr_template_adds(&c->list, "}");
}


char *
msgr_template_check(const char *text, size_t len, json_t *names)
{
    int                     rc;
    char                   *msg;
    size_t                  at, size;
    const char             *fmt;
    msgr_template_check_t   c;

    memset(&c, 0, sizeof(c));
    c.names = names;
    c.unknown = json_object();

    at = 0;
    rc = c.unknown ? msgr_template_walk(text, len, msgr_template_check_piece,
                                        &c, &at)
                   : MSGR_TEMPLATE_FAILED;

    json_decref(c.unknown);

    switch (rc) {

    case MSGR_TEMPLATE_OK:
        if (c.count == 0) {
            free(c.list.data);
            return NULL;
        }

        size = c.list.len + sizeof("unknown merge tokens ");
        msg = malloc(size);
        if (msg != NULL) {
            snprintf(msg, size, "unknown merge token%s %s",
                     c.count > 1 ? "s" : "", c.list.data);
        }

        free(c.list.data);
        return msg ? msg : strdup("out of memory");

    case MSGR_TEMPLATE_UNCLOSED:
        fmt = "{ at character %zu is not closed (write {{ for a brace)";
        break;

    case MSGR_TEMPLATE_UNOPENED:
        fmt = "} at character %zu has no opening { (write }} for a brace)";
        break;

    case MSGR_TEMPLATE_EMPTY:
        fmt = "empty merge token {} at character %zu";
        break;

    default:
        free(c.list.data);
        return strdup("out of memory");
    }

    free(c.list.data);

    /* a size_t has at most 20 digits */
    size = strlen(fmt) + 20;
    msg = malloc(size);
    if (msg == NULL) {
        return strdup("out of memory");
    }

    snprintf(msg, size, fmt, msgr_utf8_chars(text, at) + 1);

    return msg;
}


/* rendering */

typedef struct {
    json_t               *tokens;
    msgr_template_buf_t   out;
} msgr_template_render_t;


static int
msgr_template_render_piece(void *data, int kind, const char *s, size_t len)
{
    json_t                  *v;
    msgr_template_render_t  *r;

    r = data;

    if (kind == MSGR_TEMPLATE_TEXT) {
        return msgr_template_add(&r->out, s, len);
    }

    v = msgr_template_token(r->tokens, s, len);

    if (!json_is_string(v)) {
        return 0;
    }

    return msgr_template_add(&r->out, json_string_value(v),
                             json_string_length(v));
}


char *
msgr_template_render(const char *text, size_t len, json_t *tokens,
    size_t *out_len)
{
    char                    *s;
    size_t                   at;
    msgr_template_render_t   r;

    memset(&r, 0, sizeof(r));
    r.tokens = tokens;

    if (msgr_template_walk(text, len, msgr_template_render_piece, &r, &at)
        != MSGR_TEMPLATE_OK)
    {
        free(r.out.data);
        return NULL;
    }

    s = msgr_template_buf_done(&r.out);

    if (s != NULL && out_len != NULL) {
        *out_len = r.out.len;
    }

    return s;
}


/* translations */

json_t *
msgr_template_translation(json_t *translations, const char *language)
{
    size_t       len;
    json_t      *v;
    const char  *key;

    if (language == NULL) {
        return NULL;
    }

    len = strlen(language);

    while (len > 0) {
        json_object_foreach(translations, key, v) {
            if (json_is_object(v)
                && msgr_utf8_casecmp(key, strlen(key), language, len) == 0)
            {
                return v;
            }
        }

        /* "zh-Hant-TW", then "zh-Hant", then "zh" */
        while (len > 0 && language[len - 1] != '-') {
            len--;
        }

        if (len > 0) {
            len--;
        }
    }

    return NULL;
}


char *
msgr_template_translation_warning(const char *url)
{
    msgr_template_buf_t  b;

    memset(&b, 0, sizeof(b));

    (void) msgr_template_adds(&b, "\n\n" MSGR_TEMPLATE_WARNING);

    if (url != NULL && *url != '\0') {
        (void) msgr_template_adds(&b, ": ");
        (void) msgr_template_adds(&b, url);
    }

    return msgr_template_buf_done(&b);
}

/*
 * msgr MIS sync: validation and normalisation of a snapshot.
 *
 * Every kind of record (the snapshot itself, students, a student's
 * contact links, contacts, staff, groups) is a table of fields: name,
 * type, flags, bounds, choices, the list a mis_id refers to, and the
 * default.  The code below knows types, never individual fields; the two
 * rules between fields are rows of msgr_mis_rules[].
 *
 * Every error is reported, not just the first: a bad field is named
 * ("students[S1].status"), left null in the output and the checks go on.
 * The output is thrown away when there is any error.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "msgr_mis.h"
#include "msgr_text.h"
#include "msgr_phone.h"


#define MSGR_MIS_PATH_LEN  1024
#define MSGR_MIS_MSG_LEN   512
#define MSGR_MIS_ID_MAX    64
#define MSGR_MIS_FIELDS    16


typedef enum {
    MSGR_MIS_KEY,        /* the record's mis_id, its name in its list */
    MSGR_MIS_TEXT,       /* string, trimmed, min..max characters */
    MSGR_MIS_CHOICE,     /* one of choices */
    MSGR_MIS_DATE,       /* "YYYY-MM-DD", a calendar date */
    MSGR_MIS_INT,        /* integer, min..max */
    MSGR_MIS_BOOL,
    MSGR_MIS_PHONE,      /* normalised to E.164; a bad one is a warning */
    MSGR_MIS_EMAIL,
    MSGR_MIS_LANGUAGE,   /* a language tag, msgr_text_language() */
    MSGR_MIS_COUNTRY,    /* a country msgr_phone knows */
    MSGR_MIS_RECORDS,    /* a list of records of kind `list` */
    MSGR_MIS_REFS        /* a list of mis_ids of the records of `list` */
} msgr_mis_type_e;

#define MSGR_MIS_REQUIRED  0x01   /* neither absent nor null */
#define MSGR_MIS_UNIQUE    0x02   /* no two records of a list share it */


/* kinds of records; the first four are the snapshot's lists */

#define MSGR_MIS_STUDENTS  0
#define MSGR_MIS_CONTACTS  1
#define MSGR_MIS_STAFF     2
#define MSGR_MIS_GROUPS    3
#define MSGR_MIS_LINKS     4
#define MSGR_MIS_SNAPSHOT  5
#define MSGR_MIS_LISTS     4
#define MSGR_MIS_NONE     -1


typedef struct {
    const char             *name;
    msgr_mis_type_e         type;
    unsigned                flags;
    size_t                  min, max;   /* characters; INT bounds */
    const char *const      *choices;    /* CHOICE, NULL-ended */
    int                     list;       /* KEY, REFS: the records named;
                                           RECORDS: their kind */
    const char             *def;        /* TEXT, LANGUAGE, COUNTRY: the
                                           string; BOOL: "true", "false";
                                           lists: always []; else null */
} msgr_mis_field_t;


typedef struct {
    const char             *name;       /* its list: "students" */
    const char             *noun;       /* one record: "student" */
    size_t                  max;        /* records in one list */
    unsigned                phones:1;   /* has phone_problems */
    const msgr_mis_field_t *fields;
} msgr_mis_kind_t;


typedef enum {
    MSGR_MIS_REQUIRED_WHEN,    /* not empty when `when` is `value` */
    MSGR_MIS_ONLY_WHEN         /* empty unless `when` is `value` */
} msgr_mis_rule_e;

typedef struct {
    int                     kind;
    const char             *field;
    msgr_mis_rule_e         rule;
    const char             *when;
    const char             *value;
    const char             *message;
} msgr_mis_rule_t;


typedef struct {
    json_t                 *errors;
    json_t                 *warnings;
    json_t                 *index[MSGR_MIS_LISTS];  /* NULL: not a list */
    const char             *country;    /* of phone numbers */
    char                    country_buf[4];
    unsigned                oom:1;
} msgr_mis_ctx_t;


/* one list of records being checked */

typedef struct {
    json_t                 *index;      /* mis_id -> its first position */
    json_t                 *seen[MSGR_MIS_FIELDS];  /* UNIQUE: value ->
                                                       first record */
    const char             *within;     /* "students", "the student" */
    size_t                  i;          /* the record's position */
} msgr_mis_list_t;


/* one record being checked */

typedef struct {
    const msgr_mis_kind_t  *kind;
    msgr_mis_list_t        *list;       /* NULL for the snapshot */
    json_t                 *out;
    json_t                 *problems;   /* phone_problems */
    const char             *path;       /* "students[S1]", "" */
    const char             *name;       /* "S1", "3", "" */
    unsigned                bad;        /* a bit per field with an error */
} msgr_mis_rec_t;


static const char *const  msgr_mis_statuses[] = {
    "on_roll", "guest", "pre_admission", "leaver", NULL
};

static const char *const  msgr_mis_group_types[] = {
    "class", "registration", "year", "custom", NULL
};


static const msgr_mis_field_t  msgr_mis_snapshot_fields[] = {
    { "default_country", MSGR_MIS_COUNTRY, 0, 0, 0, NULL, MSGR_MIS_NONE,
      "GB" },
    { "students", MSGR_MIS_RECORDS, 0, 0, 0, NULL, MSGR_MIS_STUDENTS,
      NULL },
    { "contacts", MSGR_MIS_RECORDS, 0, 0, 0, NULL, MSGR_MIS_CONTACTS,
      NULL },
    { "staff", MSGR_MIS_RECORDS, 0, 0, 0, NULL, MSGR_MIS_STAFF, NULL },
    { "groups", MSGR_MIS_RECORDS, 0, 0, 0, NULL, MSGR_MIS_GROUPS, NULL },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


static const msgr_mis_field_t  msgr_mis_student_fields[] = {
    { "mis_id", MSGR_MIS_KEY, MSGR_MIS_REQUIRED, 1, MSGR_MIS_ID_MAX, NULL,
      MSGR_MIS_NONE, NULL },
    { "first_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "last_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "reg_group", MSGR_MIS_TEXT, 0, 0, 20, NULL, MSGR_MIS_NONE, "" },
    { "year", MSGR_MIS_TEXT, 0, 0, 20, NULL, MSGR_MIS_NONE, "" },
    { "status", MSGR_MIS_CHOICE, MSGR_MIS_REQUIRED, 0, 0, msgr_mis_statuses,
      MSGR_MIS_NONE, NULL },
    { "leaving_date", MSGR_MIS_DATE, 0, 0, 0, NULL, MSGR_MIS_NONE, NULL },
    { "contacts", MSGR_MIS_RECORDS, 0, 0, 0, NULL, MSGR_MIS_LINKS, NULL },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


/* a student's link to one of the contacts, named by the contact's mis_id */

static const msgr_mis_field_t  msgr_mis_link_fields[] = {
    { "mis_id", MSGR_MIS_KEY, MSGR_MIS_REQUIRED, 1, MSGR_MIS_ID_MAX, NULL,
      MSGR_MIS_CONTACTS, NULL },
    { "relationship", MSGR_MIS_TEXT, 0, 0, 50, NULL, MSGR_MIS_NONE,
      "" },
    { "priority", MSGR_MIS_INT, MSGR_MIS_REQUIRED|MSGR_MIS_UNIQUE, 1, 99,
      NULL, MSGR_MIS_NONE, NULL },
    { "correspondence", MSGR_MIS_BOOL, 0, 0, 0, NULL, MSGR_MIS_NONE,
      "true" },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


static const msgr_mis_field_t  msgr_mis_contact_fields[] = {
    { "mis_id", MSGR_MIS_KEY, MSGR_MIS_REQUIRED, 1, MSGR_MIS_ID_MAX, NULL,
      MSGR_MIS_NONE, NULL },
    { "title", MSGR_MIS_TEXT, 0, 0, 50, NULL, MSGR_MIS_NONE, "" },
    { "first_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "last_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "home_phone", MSGR_MIS_PHONE, 0, 0, 0, NULL, MSGR_MIS_NONE, NULL },
    { "work_phone", MSGR_MIS_PHONE, 0, 0, 0, NULL, MSGR_MIS_NONE, NULL },
    { "mobile_phone", MSGR_MIS_PHONE, 0, 0, 0, NULL, MSGR_MIS_NONE,
      NULL },
    { "email", MSGR_MIS_EMAIL, 0, 0, 254, NULL, MSGR_MIS_NONE, NULL },
    { "language", MSGR_MIS_LANGUAGE, 0, 2, 8, NULL, MSGR_MIS_NONE,
      "en" },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


static const msgr_mis_field_t  msgr_mis_staff_fields[] = {
    { "mis_id", MSGR_MIS_KEY, MSGR_MIS_REQUIRED, 1, MSGR_MIS_ID_MAX, NULL,
      MSGR_MIS_NONE, NULL },
    { "title", MSGR_MIS_TEXT, 0, 0, 50, NULL, MSGR_MIS_NONE, "" },
    { "first_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "last_name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "work_phone", MSGR_MIS_PHONE, 0, 0, 0, NULL, MSGR_MIS_NONE, NULL },
    { "mobile_phone", MSGR_MIS_PHONE, 0, 0, 0, NULL, MSGR_MIS_NONE,
      NULL },
    { "email", MSGR_MIS_EMAIL, 0, 0, 254, NULL, MSGR_MIS_NONE, NULL },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


static const msgr_mis_field_t  msgr_mis_group_fields[] = {
    { "mis_id", MSGR_MIS_KEY, MSGR_MIS_REQUIRED, 1, MSGR_MIS_ID_MAX, NULL,
      MSGR_MIS_NONE, NULL },
    { "name", MSGR_MIS_TEXT, MSGR_MIS_REQUIRED, 1, 100, NULL,
      MSGR_MIS_NONE, NULL },
    { "type", MSGR_MIS_CHOICE, MSGR_MIS_REQUIRED, 0, 0, msgr_mis_group_types,
      MSGR_MIS_NONE, NULL },
    { "students", MSGR_MIS_REFS, 0, 0, 0, NULL, MSGR_MIS_STUDENTS, NULL },
    { "staff", MSGR_MIS_REFS, 0, 0, 0, NULL, MSGR_MIS_STAFF, NULL },
    { "teachers", MSGR_MIS_REFS, 0, 0, 0, NULL, MSGR_MIS_STAFF, NULL },
    { NULL, 0, 0, 0, 0, NULL, 0, NULL }
};


/* indexed by MSGR_MIS_STUDENTS ... MSGR_MIS_SNAPSHOT */

static const msgr_mis_kind_t  msgr_mis_kinds[] = {
    { "students", "student", 50000, 0, msgr_mis_student_fields },
    { "contacts", "contact", 100000, 1, msgr_mis_contact_fields },
    { "staff", "staff member", 10000, 1, msgr_mis_staff_fields },
    { "groups", "group", 10000, 0, msgr_mis_group_fields },
    { "contacts", "contact link", 99, 0, msgr_mis_link_fields },
    { "", NULL, 1, 0, msgr_mis_snapshot_fields }
};


static const msgr_mis_rule_t  msgr_mis_rules[] = {

    { MSGR_MIS_STUDENTS, "leaving_date", MSGR_MIS_REQUIRED_WHEN,
      "status", "leaver", "is required when status is leaver" },

    { MSGR_MIS_GROUPS, "teachers", MSGR_MIS_ONLY_WHEN,
      "type", "class", "is allowed only on class groups" },

    { MSGR_MIS_NONE, NULL, 0, NULL, NULL, NULL }
};


static json_t *msgr_mis_record(msgr_mis_ctx_t *ctx, msgr_mis_list_t *list,
    int kind, json_t *in, const char *path, const char *name);


/* NULL when v is a usable mis_id, else why not */

static const char *
msgr_mis_id_error(json_t *v)
{
    size_t       len;
    const char  *s;

    if (v == NULL || json_is_null(v)) {
        return "is required";
    }

    if (!json_is_string(v)) {
        return "must be a string";
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (len == 0) {
        return "must not be empty";
    }

    if (msgr_utf8_chars(s, len) > MSGR_MIS_ID_MAX) {
        return "must be at most 64 characters";
    }

    if (memchr(s, '\0', len) != NULL || msgr_text_has_control(s, len)) {
        return MSGR_TEXT_CONTROL;
    }

    if (msgr_text_space_at(s, len) || msgr_text_space_before(s, len)) {
        return "must not start or end with white space";
    }

    return NULL;
}


static int
msgr_mis_email(const char *s, size_t len, size_t max)
{
    return msgr_utf8_chars(s, len) <= max && msgr_email_valid(s, len);
}


/* reports */

static void
msgr_mis_report(msgr_mis_ctx_t *ctx, json_t *list, const char *field,
    const char *message)
{
    json_t  *e;

    e = json_pack("{s:s, s:s}", "field", field, "message", message);

    if (json_array_append_new(list, e) != 0) {
        ctx->oom = 1;
    }
}


/* snprintf for paths: a path that does not fit is cut short */

static void
msgr_mis_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    (void) vsnprintf(buf, size, fmt, args);
    va_end(args);
}


/* a, b, c and d (any may be NULL) into buf, cut short when it is full */

static void
msgr_mis_cat(char *buf, size_t size, const char *a, const char *b,
    const char *c, const char *d)
{
    size_t       i, n, len;
    const char  *part[4];

    part[0] = a;
    part[1] = b;
    part[2] = c;
    part[3] = d;

    n = 0;

    for (i = 0; i < 4; i++) {
        if (part[i] == NULL) {
            continue;
        }

        len = strlen(part[i]);

        if (len > size - 1 - n) {
            len = size - 1 - n;
        }

        memcpy(buf + n, part[i], len);
        n += len;
    }

    buf[n] = '\0';
}


/* base.name, or name when base is "" */

static void
msgr_mis_path(char *buf, size_t size, const char *base, const char *name)
{
    msgr_mis_cat(buf, size, base, base[0] ? "." : NULL, name, NULL);
}


/*
 * Reports an error of field fi of r, as "students[S1].status" followed by
 * sub ("[S9]" or ""); fi -1: of the key named sub ("students[S1].dob").
 */

static void
msgr_mis_error(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi,
    const char *sub, const char *message)
{
    char  field[MSGR_MIS_PATH_LEN];

    if (fi >= 0) {
        r->bad |= 1u << fi;
        msgr_mis_cat(field, sizeof(field), r->path,
                     r->path[0] ? "." : NULL, r->kind->fields[fi].name, sub);

    } else {
        msgr_mis_path(field, sizeof(field), r->path, sub);
    }

    msgr_mis_report(ctx, ctx->errors, field, message);
}


/*
 * mis_id -> the position of the first record of list that has it, for the
 * records whose mis_id is usable.  NULL on out of memory.
 */

static json_t *
msgr_mis_index(msgr_mis_ctx_t *ctx, int kind, json_t *list)
{
    size_t       i;
    json_t      *index, *rec, *id;
    const char  *key;

    index = json_object();
    if (index == NULL) {
        ctx->oom = 1;
        return NULL;
    }

    key = msgr_mis_kinds[kind].fields[0].name;

    json_array_foreach(list, i, rec) {
        id = json_object_get(rec, key);

        if (msgr_mis_id_error(id) != NULL
            || json_object_get(index, json_string_value(id)) != NULL)
        {
            continue;
        }

        if (json_object_set_new_nocheck(index, json_string_value(id),
                                        json_integer((json_int_t) i))
            != 0)
        {
            ctx->oom = 1;
        }
    }

    return index;
}


static int
msgr_mis_known(json_t *index, const char *id)
{
    return json_object_get(index, id) != NULL;
}


/* fields */

static json_t *
msgr_mis_key(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi, json_t *v)
{
    char                    msg[MSGR_MIS_MSG_LEN];
    const char             *why, *id;
    json_t                 *first;
    const msgr_mis_field_t *f;
    const msgr_mis_kind_t  *target;

    f = &r->kind->fields[fi];

    why = msgr_mis_id_error(v);

    if (why != NULL) {
        msgr_mis_error(ctx, r, fi, "", why);
        return json_null();
    }

    id = json_string_value(v);
    first = r->list != NULL ? json_object_get(r->list->index, id) : NULL;

    if (first != NULL && (size_t) json_integer_value(first) != r->list->i) {
        snprintf(msg, sizeof(msg),
                 "must be unique within %s: %s[%s] has the same %s",
                 r->list->within, r->kind->name, id, f->name);
        msgr_mis_error(ctx, r, fi, "", msg);
        return json_null();
    }

    if (f->list != MSGR_MIS_NONE && ctx->index[f->list] != NULL
        && !msgr_mis_known(ctx->index[f->list], id))
    {
        target = &msgr_mis_kinds[f->list];
        snprintf(msg, sizeof(msg), "no %s with this %s in %s", target->noun,
                 f->name, target->name);
        msgr_mis_error(ctx, r, fi, "", msg);
        return json_null();
    }

    return json_copy(v);
}


static json_t *
msgr_mis_phone(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi,
    const char *s, size_t len, json_t *raw)
{
    char         e164[MSGR_PHONE_E164_SIZE], buf[64];
    char         field[MSGR_MIS_PATH_LEN];
    json_t      *w;
    const char  *why;

    if (len == 0) {
        return json_null();
    }

    /* longer than any number with separators can sensibly be */

    if (len >= sizeof(buf)) {
        why = "too long";

    } else {
        memcpy(buf, s, len);
        buf[len] = '\0';

        if (msgr_phone_e164(buf, ctx->country, e164, sizeof(e164), &why)
            == 0)
        {
            return json_string(e164);
        }
    }

    if (json_object_set(r->problems, r->kind->fields[fi].name, raw) != 0) {
        ctx->oom = 1;
    }

    msgr_mis_path(field, sizeof(field), r->path, r->kind->fields[fi].name);

    w = json_pack("{s:s, s:o}", "field", field, "message",
                  json_sprintf("\"%s\" is not a valid %s phone number (%s); "
                               "it was not imported",
                               json_string_value(raw), ctx->country, why));

    if (json_array_append_new(ctx->warnings, w) != 0) {
        ctx->oom = 1;
    }

    return json_null();
}


static json_t *
msgr_mis_refs(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi, json_t *v)
{
    char                    msg[MSGR_MIS_MSG_LEN], sub[MSGR_MIS_PATH_LEN];
    size_t                  i;
    json_t                 *out, *seen, *e, *index;
    const char             *id;
    const msgr_mis_field_t *f;
    const msgr_mis_kind_t  *target;

    f = &r->kind->fields[fi];
    target = &msgr_mis_kinds[f->list];
    index = ctx->index[f->list];

    if (json_array_size(v) > target->max) {
        snprintf(msg, sizeof(msg), "must list at most %zu %s", target->max,
                 target->name);
        msgr_mis_error(ctx, r, fi, "", msg);
        return json_null();
    }

    snprintf(msg, sizeof(msg), "no %s with this mis_id in %s", target->noun,
             target->name);

    out = json_array();
    seen = json_object();

    if (out == NULL || seen == NULL) {
        ctx->oom = 1;
        json_decref(out);
        json_decref(seen);
        return NULL;
    }

    json_array_foreach(v, i, e) {

        if (!json_is_string(e)) {
            msgr_mis_fmt(sub, sizeof(sub), "[%zu]", i);
            msgr_mis_error(ctx, r, fi, sub, "must be a string");
            continue;
        }

        if (msgr_mis_id_error(e) != NULL) {
            msgr_mis_fmt(sub, sizeof(sub), "[%zu]", i);
            msgr_mis_error(ctx, r, fi, sub, msg);
            continue;
        }

        id = json_string_value(e);
        msgr_mis_cat(sub, sizeof(sub), "[", id, "]", NULL);

        if (json_object_get(seen, id) != NULL) {
            msgr_mis_error(ctx, r, fi, sub, "is listed more than once");
            continue;
        }

        if (json_object_set_new_nocheck(seen, id, json_true()) != 0) {
            ctx->oom = 1;
        }

        if (index != NULL && !msgr_mis_known(index, id)) {
            msgr_mis_error(ctx, r, fi, sub, msg);
            continue;
        }

        if (json_array_append_new(out, json_copy(e)) != 0) {
            ctx->oom = 1;
        }
    }

    json_decref(seen);

    return out;
}


static json_t *
msgr_mis_records(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi, json_t *v)
{
    char                    msg[MSGR_MIS_MSG_LEN], within[64], pos[32];
    char                    field[MSGR_MIS_PATH_LEN], path[MSGR_MIS_PATH_LEN];
    const char             *name;
    size_t                  i, k;
    json_t                 *out, *e, *id, *first, *rec;
    msgr_mis_list_t         list;
    const msgr_mis_field_t *f;
    const msgr_mis_kind_t  *kind;

    f = &r->kind->fields[fi];
    kind = &msgr_mis_kinds[f->list];

    if (json_array_size(v) > kind->max) {
        snprintf(msg, sizeof(msg), "must list at most %zu %s", kind->max,
                 kind->name);
        msgr_mis_error(ctx, r, fi, "", msg);
    }

    msgr_mis_path(field, sizeof(field), r->path, f->name);

    memset(&list, 0, sizeof(list));

    if (r->kind->noun != NULL) {
        snprintf(within, sizeof(within), "the %s", r->kind->noun);
        list.within = within;

    } else {
        list.within = kind->name;
    }

    if (f->list < MSGR_MIS_LISTS) {
        list.index = json_incref(ctx->index[f->list]);

    } else {
        list.index = msgr_mis_index(ctx, f->list, v);
    }

    out = json_array();
    if (out == NULL) {
        ctx->oom = 1;
    }

    json_array_foreach(v, i, e) {
        list.i = i;

        /* named by its mis_id when usable and its list's first */

        id = json_object_get(e, kind->fields[0].name);
        first = msgr_mis_id_error(id) == NULL
                ? json_object_get(list.index, json_string_value(id)) : NULL;

        if (first != NULL && (size_t) json_integer_value(first) == i) {
            name = json_string_value(id);

        } else {
            snprintf(pos, sizeof(pos), "%zu", i);
            name = pos;
        }

        msgr_mis_cat(path, sizeof(path), field, "[", name, "]");

        rec = msgr_mis_record(ctx, &list, f->list, e, path, name);

        if (rec != NULL && json_array_append_new(out, rec) != 0) {
            ctx->oom = 1;
        }
    }

    json_decref(list.index);

    for (k = 0; k < MSGR_MIS_FIELDS; k++) {
        json_decref(list.seen[k]);
    }

    return out;
}


/* the value of an optional field that is absent or null */

static json_t *
msgr_mis_default(const msgr_mis_field_t *f)
{
    switch (f->type) {

    case MSGR_MIS_RECORDS:
    case MSGR_MIS_REFS:
        return json_array();

    case MSGR_MIS_BOOL:
        return json_boolean(strcmp(f->def, "true") == 0);

    default:
        return f->def != NULL ? json_string(f->def) : json_null();
    }
}


/* a country msgr_phone knows, the country of the snapshot's numbers */

static json_t *
msgr_mis_country(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi,
    const char *s, size_t len)
{
    char    msg[MSGR_MIS_MSG_LEN];
    size_t  i, chars;

    if (len < sizeof(ctx->country_buf)) {
        memcpy(ctx->country_buf, s, len);
        ctx->country_buf[len] = '\0';
    }

    if (len >= sizeof(ctx->country_buf)
        || !msgr_phone_country_known(ctx->country_buf))
    {
        snprintf(msg, sizeof(msg), "must be one of: ");

        for (i = 0; msgr_phone_country(i) != NULL; i++) {
            chars = strlen(msg);
            snprintf(msg + chars, sizeof(msg) - chars, "%s%s",
                     i ? ", " : "", msgr_phone_country(i));
        }

        msgr_mis_error(ctx, r, fi, "", msg);
        return json_null();
    }

    ctx->country = ctx->country_buf;

    return json_string(ctx->country);
}


/*
 * The normalised value of a string field fi of record r (v is a given
 * value, not null).  Errors are reported and give null.
 */

static json_t *
msgr_mis_string(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi, json_t *v)
{
    char                    msg[MSGR_MIS_MSG_LEN];
    size_t                  len;
    const char             *s, *why;
    const msgr_mis_field_t *f;

    f = &r->kind->fields[fi];

    if (!json_is_string(v)) {
        msgr_mis_error(ctx, r, fi, "", "must be a string");
        return json_null();
    }

    s = json_string_value(v);
    len = json_string_length(v);

    if (memchr(s, '\0', len) != NULL) {
        msgr_mis_error(ctx, r, fi, "", MSGR_TEXT_NUL);
        return json_null();
    }

    if (f->type == MSGR_MIS_TEXT) {
        why = msgr_text_check(&s, &len, f->max,
                              f->min > 0 ? MSGR_TEXT_REQUIRED : 0,
                              msg, sizeof(msg));
        if (why != NULL) {
            msgr_mis_error(ctx, r, fi, "", why);
            return json_null();
        }

        return json_stringn_nocheck(s, len);
    }

    msgr_text_trim(&s, &len);

    switch (f->type) {

    case MSGR_MIS_CHOICE:
        if (msgr_text_choice(f->choices, s, len) < 0) {
            snprintf(msg, sizeof(msg), "must be one of: ");
            msgr_text_join(msg, sizeof(msg), f->choices, NULL);
            msgr_mis_error(ctx, r, fi, "", msg);
            return json_null();
        }

        return json_stringn_nocheck(s, len);

    case MSGR_MIS_DATE:
        if (len == 0) {
            return json_null();
        }

        switch (msgr_date_parse(s, len, NULL)) {
        case MSGR_DATE_OK:
            return json_stringn_nocheck(s, len);

        case MSGR_DATE_FORMAT:
            msgr_mis_error(ctx, r, fi, "",
                           "must be a date written YYYY-MM-DD, or null");
            return json_null();

        default:
            msgr_mis_error(ctx, r, fi, "", "is not a calendar date");
            return json_null();
        }

    case MSGR_MIS_COUNTRY:
        return msgr_mis_country(ctx, r, fi, s, len);

    case MSGR_MIS_PHONE:
        return msgr_mis_phone(ctx, r, fi, s, len, v);

    case MSGR_MIS_EMAIL:
        if (len == 0) {
            return json_null();
        }

        if (!msgr_mis_email(s, len, f->max)) {
            msgr_mis_error(ctx, r, fi, "",
                           "must be an email address such as "
                           "jane@example.org (one @, a domain with a dot, "
                           "no spaces), or null");
            return json_null();
        }

        return json_stringn_nocheck(s, len);

    case MSGR_MIS_LANGUAGE:
        if (len == 0) {
            return msgr_mis_default(f);
        }

        if (!msgr_text_language(s, len)) {
            msgr_mis_error(ctx, r, fi, "", MSGR_TEXT_LANGUAGE);
            return json_null();
        }

        return json_stringn_nocheck(s, len);

    default:
        break;
    }

    msgr_mis_error(ctx, r, fi, "", "has an unknown type");
    return json_null();
}


/*
 * The normalised value of field fi of record r; v is NULL when absent.
 * Errors are reported and give null.  NULL only on out of memory.
 */

static json_t *
msgr_mis_value(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi, json_t *v)
{
    char                    msg[MSGR_MIS_MSG_LEN];
    json_int_t              n;
    const msgr_mis_field_t *f;

    f = &r->kind->fields[fi];

    if (f->type == MSGR_MIS_KEY) {
        return msgr_mis_key(ctx, r, fi, v);
    }

    if (v == NULL || json_is_null(v)) {
        if (f->flags & MSGR_MIS_REQUIRED) {
            msgr_mis_error(ctx, r, fi, "", "is required");
            return json_null();
        }

        return msgr_mis_default(f);
    }

    switch (f->type) {

    case MSGR_MIS_BOOL:
        if (!json_is_boolean(v)) {
            msgr_mis_error(ctx, r, fi, "", "must be a boolean");
            return json_null();
        }

        return json_copy(v);

    case MSGR_MIS_INT:
        if (!json_is_integer(v)) {
            msgr_mis_error(ctx, r, fi, "", "must be an integer");
            return json_null();
        }

        n = json_integer_value(v);

        if (n < (json_int_t) f->min || n > (json_int_t) f->max) {
            snprintf(msg, sizeof(msg), "must be an integer from %zu to %zu",
                     f->min, f->max);
            msgr_mis_error(ctx, r, fi, "", msg);
            return json_null();
        }

        return json_copy(v);

    case MSGR_MIS_RECORDS:
    case MSGR_MIS_REFS:
        if (!json_is_array(v)) {
            msgr_mis_error(ctx, r, fi, "", "must be a list");
            return json_null();
        }

        return f->type == MSGR_MIS_RECORDS
               ? msgr_mis_records(ctx, r, fi, v)
               : msgr_mis_refs(ctx, r, fi, v);

    default:
        return msgr_mis_string(ctx, r, fi, v);
    }
}


/* a value that counts as given: not null, "" or [] */

static int
msgr_mis_given(json_t *v)
{
    if (v == NULL || json_is_null(v)) {
        return 0;
    }

    if (json_is_string(v)) {
        return json_string_length(v) > 0;
    }

    if (json_is_array(v)) {
        return json_array_size(v) > 0;
    }

    return 1;
}


static int
msgr_mis_field_index(const msgr_mis_kind_t *kind, const char *name)
{
    int  i;

    for (i = 0; kind->fields[i].name != NULL; i++) {
        if (strcmp(kind->fields[i].name, name) == 0) {
            return i;
        }
    }

    return -1;
}


static void
msgr_mis_rules_check(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int kind)
{
    int                     fi, wi, is;
    json_t                 *when;
    const msgr_mis_rule_t  *rule;

    for (rule = msgr_mis_rules; rule->field != NULL; rule++) {
        if (rule->kind != kind) {
            continue;
        }

        fi = msgr_mis_field_index(r->kind, rule->field);
        wi = msgr_mis_field_index(r->kind, rule->when);

        if (fi < 0 || wi < 0 || (r->bad & ((1u << fi) | (1u << wi)))) {
            continue;
        }

        when = json_object_get(r->out, rule->when);

        if (!json_is_string(when)) {
            continue;
        }

        is = strcmp(json_string_value(when), rule->value) == 0;

        if ((rule->rule == MSGR_MIS_REQUIRED_WHEN && is
             && !msgr_mis_given(json_object_get(r->out, rule->field)))
            || (rule->rule == MSGR_MIS_ONLY_WHEN && !is
                && msgr_mis_given(json_object_get(r->out, rule->field))))
        {
            msgr_mis_error(ctx, r, fi, "", rule->message);
        }
    }
}


/* UNIQUE fields other than the key: no two records of the list share one */

static void
msgr_mis_unique(msgr_mis_ctx_t *ctx, msgr_mis_rec_t *r, int fi)
{
    char                    msg[MSGR_MIS_MSG_LEN], buf[32];
    json_t                 *v, *first, **seen;
    const char             *key;
    msgr_mis_list_t        *list;
    const msgr_mis_field_t *f;

    f = &r->kind->fields[fi];
    list = r->list;
    v = json_object_get(r->out, f->name);

    if (list == NULL || fi >= MSGR_MIS_FIELDS || (r->bad & (1u << fi))
        || v == NULL || json_is_null(v))
    {
        return;
    }

    seen = &list->seen[fi];

    if (*seen == NULL) {
        *seen = json_object();
        if (*seen == NULL) {
            ctx->oom = 1;
            return;
        }
    }

    /* UNIQUE fields are integers or strings */

    if (json_is_integer(v)) {
        snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
                 json_integer_value(v));
        key = buf;

    } else {
        key = json_string_value(v);
    }

    if (key == NULL) {
        return;
    }

    first = json_object_get(*seen, key);

    if (first != NULL) {
        snprintf(msg, sizeof(msg),
                 "must be unique within %s: %s[%s] has the same %s",
                 list->within, r->kind->name, json_string_value(first),
                 f->name);
        msgr_mis_error(ctx, r, fi, "", msg);

    } else if (json_object_set_new_nocheck(*seen, key, json_string(r->name))
               != 0)
    {
        ctx->oom = 1;
    }
}


/*
 * The normalised record of kind for in, named path in the errors; NULL
 * when in is not an object (an error is reported) or on out of memory.
 */

static json_t *
msgr_mis_record(msgr_mis_ctx_t *ctx, msgr_mis_list_t *list, int kind,
    json_t *in, const char *path, const char *name)
{
    int                     fi;
    json_t                 *v, *value;
    const char             *key;
    msgr_mis_rec_t          r;
    const msgr_mis_field_t *f;

    if (!json_is_object(in)) {
        msgr_mis_report(ctx, ctx->errors, path, "must be an object");
        return NULL;
    }

    memset(&r, 0, sizeof(r));
    r.kind = &msgr_mis_kinds[kind];
    r.list = list;
    r.path = path;
    r.name = name;

    r.out = json_object();
    if (r.out == NULL) {
        ctx->oom = 1;
        return NULL;
    }

    if (r.kind->phones) {
        r.problems = json_object();
        if (r.problems == NULL) {
            ctx->oom = 1;
        }
    }

    for (fi = 0; r.kind->fields[fi].name != NULL; fi++) {
        f = &r.kind->fields[fi];

        value = msgr_mis_value(ctx, &r, fi, json_object_get(in, f->name));

        if (json_object_set_new_nocheck(r.out, f->name, value) != 0) {
            ctx->oom = 1;
        }

        if (f->flags & MSGR_MIS_UNIQUE) {
            msgr_mis_unique(ctx, &r, fi);
        }
    }

    msgr_mis_rules_check(ctx, &r, kind);

    json_object_foreach(in, key, v) {
        if (msgr_mis_field_index(r.kind, key) < 0) {
            msgr_mis_error(ctx, &r, -1, key, "unknown field");
        }
    }

    if (r.kind->phones
        && json_object_set_new(r.out, "phone_problems", r.problems) != 0)
    {
        ctx->oom = 1;
    }

    return r.out;
}


int
msgr_mis_normalise(json_t *snapshot, json_t **normalised,
    json_t **warnings, json_t **errors)
{
    int              k, rc;
    json_t          *out, *list;
    msgr_mis_ctx_t   ctx;

    memset(&ctx, 0, sizeof(ctx));
    ctx.country = "GB";

    ctx.errors = json_array();
    ctx.warnings = json_array();

    if (ctx.errors == NULL || ctx.warnings == NULL) {
        ctx.oom = 1;
    }

    /* the lists' mis_ids first: records refer to later lists */

    for (k = 0; k < MSGR_MIS_LISTS && json_is_object(snapshot); k++) {
        list = json_object_get(snapshot, msgr_mis_kinds[k].name);

        if (list == NULL || json_is_null(list)) {
            ctx.index[k] = json_object();
            if (ctx.index[k] == NULL) {
                ctx.oom = 1;
            }

        } else if (json_is_array(list)) {
            ctx.index[k] = msgr_mis_index(&ctx, k, list);
        }
    }

    out = msgr_mis_record(&ctx, NULL, MSGR_MIS_SNAPSHOT, snapshot, "", "");

    for (k = 0; k < MSGR_MIS_LISTS; k++) {
        json_decref(ctx.index[k]);
    }

    if (normalised != NULL) {
        *normalised = NULL;
    }

    if (warnings != NULL) {
        *warnings = NULL;
    }

    if (errors != NULL) {
        *errors = NULL;
    }

    if (ctx.oom || (out == NULL && json_array_size(ctx.errors) == 0)) {
        rc = MSGR_MIS_ERROR;

    } else if (json_array_size(ctx.errors) > 0) {
        rc = MSGR_MIS_INVALID;

        if (errors != NULL) {
            *errors = json_incref(ctx.errors);
        }

    } else {
        rc = MSGR_MIS_OK;

        if (normalised != NULL) {
            *normalised = json_incref(out);
        }

        if (warnings != NULL) {
            *warnings = json_incref(ctx.warnings);
        }
    }

    json_decref(out);
    json_decref(ctx.errors);
    json_decref(ctx.warnings);

    return rc;
}

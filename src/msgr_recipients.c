/*
 * msgr recipient resolution: who receives a message, on which channels,
 * and why everyone else selected does not.  docs/recipients.md has the
 * rules in plain words; the code below follows them in the same order:
 * students (once each, status filter), their contacts (primary or all),
 * then the staff of the selected groups.
 *
 * Working state is kept in jansson objects keyed by id ("10"), so siblings
 * share one contact recipient and a staff member of several groups is one
 * recipient; the lists keep the order of first appearance.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_settings.h"
#include "msgr_recipients.h"
#include "msgr_text.h"


#define MSGR_RECIPIENTS_KEY_LEN  32
#define MSGR_RECIPIENTS_NOMEM    "out of memory"

#define MSGR_RECIPIENTS_BAD_CONTACT                                          \
    "contacts: title and names must be strings or null"
#define MSGR_RECIPIENTS_BAD_STAFF                                            \
    "staff: title and names must be strings or null"

#define MSGR_RECIPIENTS_NONE                                                 \
    "no contact allows correspondence and can be reached"
#define MSGR_RECIPIENTS_NEXT_OFF                                             \
    " (contacts.next_available_if_no_primary is off)"


typedef struct {
    int                            xpressions;
    const char                    *sms;
    const char                    *voice[3];
    size_t                         nvoice;
    const char                    *email;
} msgr_recipients_channels_t;


/* one contact of a student, in the order contacts are tried */

typedef struct {
    json_int_t                     id;
    json_int_t                     priority;
    int                            has_priority;
    size_t                         index;      /* in the student's list */
    json_t                        *link;       /* the student's link */
    json_t                        *contact;    /* data.contacts[id] */
} msgr_recipients_link_t;


typedef struct {
    const msgr_recipient_rules_t  *rules;
    msgr_send_to_e                 send_to;
    long                           today;      /* days since 1970-01-01 */
    json_t                        *groups;     /* data.selected_groups */
    json_t                        *students;   /* data.students */
    json_t                        *contacts;   /* data.contacts */
    json_t                        *staff;      /* data.staff */
    json_t                        *seen;       /* student id: true */
    json_t                        *by_contact; /* contact id: recipient */
    json_t                        *by_staff;   /* staff id: its entry */
    json_t                        *contact_list;
    json_t                        *staff_list;
    json_t                        *unreachable;        /* students */
    json_t                        *staff_unreachable;
    json_t                        *excluded;
    json_int_t                     nstudents;
    const char                    *why;
} msgr_recipients_ctx_t;


static const char *const  msgr_send_to_names[] = {
    "primary_contact", "all_contacts", "staff", NULL
};


int
msgr_send_to_parse(const char *s, msgr_send_to_e *out)
{
    int  i;

    if (s == NULL) {
        return -1;
    }

    for (i = 0; msgr_send_to_names[i] != NULL; i++) {
        if (strcmp(s, msgr_send_to_names[i]) == 0) {
            *out = (msgr_send_to_e) i;
            return 0;
        }
    }

    return -1;
}


const char *
msgr_send_to_name(msgr_send_to_e send_to)
{
    if ((unsigned) send_to > MSGR_SEND_STAFF) {
        return NULL;
    }

    return msgr_send_to_names[send_to];
}


void
msgr_recipient_rules_from_settings(json_t *settings,
    msgr_recipient_rules_t *rules)
{
    memset(rules, 0, sizeof(msgr_recipient_rules_t));

    rules->next_available_if_no_primary =
        msgr_settings_bool(settings, "contacts",
                           "next_available_if_no_primary");
    rules->show_registration_in_names =
        msgr_settings_bool(settings, "contacts",
                           "show_registration_in_names");

    rules->teachers_in_class_groups =
        msgr_settings_bool(settings, "mis", "teachers_in_class_groups");
    rules->guest_students =
        msgr_settings_bool(settings, "mis", "guest_students");
    rules->pre_admissions =
        msgr_settings_bool(settings, "mis", "pre_admissions");
    rules->leavers_included =
        msgr_settings_bool(settings, "mis", "leavers_included");
    rules->leavers_persistence_days =
        (int) msgr_settings_int(settings, "mis",
                                "leavers_persistence_days");

    rules->voice_all_numbers =
        msgr_settings_is(settings, "sending", "voice_calling",
                         "all_numbers");
}


/* names */

/* the non-empty parts joined by spaces, then " (reg)"; malloc'd */

static char *
msgr_recipients_join(const char *const *parts, size_t n, const char *reg)
{
    char    *s, *p;
    size_t   i, len;

    len = 1;

    for (i = 0; i < n; i++) {
        if (parts[i] != NULL && parts[i][0] != '\0') {
            len += strlen(parts[i]) + 1;
        }
    }

    if (reg != NULL && reg[0] != '\0') {
        len += strlen(reg) + 3;
    }

    s = malloc(len);
    if (s == NULL) {
        return NULL;
    }

    p = s;

    for (i = 0; i < n; i++) {
        if (parts[i] != NULL && parts[i][0] != '\0') {
            if (p != s) {
                *p++ = ' ';
            }

            p = stpcpy(p, parts[i]);
        }
    }

    if (reg != NULL && reg[0] != '\0') {
        if (p != s) {
            *p++ = ' ';
        }

        *p++ = '(';
        p = stpcpy(p, reg);
        *p++ = ')';
    }

    *p = '\0';

    return s;
}


char *
msgr_student_display_name(const char *first, const char *last,
    const char *reg_group, int with_reg)
{
    const char  *parts[2];

    parts[0] = first;
    parts[1] = last;

    return msgr_recipients_join(parts, 2, with_reg ? reg_group : NULL);
}


char *
msgr_person_display_name(const char *title, const char *first,
    const char *last)
{
    const char  *parts[3];

    parts[0] = title;
    parts[1] = first;
    parts[2] = last;

    return msgr_recipients_join(parts, 3, NULL);
}


/* masking */

char *
msgr_mask_detail(const char *s)
{
    char        *m, *p;
    size_t       len, chars, stars, i;
    const char  *at, *tail;

    len = strlen(s);
    at = strchr(s, '@');

    if (at != NULL) {
        /* the first character, all of its bytes */
        tail = s;

        if (at > s) {
            tail++;

            while (tail < at && ((unsigned char) *tail & 0xc0) == 0x80) {
                tail++;
            }
        }

        m = malloc((tail - s) + 3 + strlen(at) + 1);
        if (m == NULL) {
            return NULL;
        }

        p = m;
        memcpy(p, s, tail - s);
        p += tail - s;
        memcpy(p, "***", 3);
        strcpy(p + 3, at);

        return m;
    }

    chars = 0;

    for (i = 0; i < len; i++) {
        chars += ((unsigned char) s[i] & 0xc0) != 0x80;
    }

    stars = chars > 3 ? chars - 3 : 0;

    /* the last three characters start after stars character starts */

    tail = s;

    for (i = 0; i < stars; i++) {
        tail++;

        while (((unsigned char) *tail & 0xc0) == 0x80) {
            tail++;
        }
    }

    m = malloc(stars + strlen(tail) + 1);
    if (m == NULL) {
        return NULL;
    }

    memset(m, '*', stars);
    strcpy(m + stars, tail);

    return m;
}


/* json[key], a non-empty string, masked; 0 or -1 (then it is null) */

static int
msgr_recipients_mask_member(json_t *json, const char *key)
{
    char    *m;
    json_t  *v;

    v = json_object_get(json, key);

    if (!json_is_string(v) || json_string_length(v) == 0) {
        return 0;
    }

    m = msgr_mask_detail(json_string_value(v));
    v = (m != NULL) ? json_string(m) : NULL;
    free(m);

    if (v == NULL || json_object_set_new(json, key, v) != 0) {
        json_object_set_new(json, key, json_null());
        return -1;
    }

    return 0;
}


int
msgr_staff_mask(json_t *rec)
{
    int      rc;
    void    *it;
    json_t  *problems;

    rc = 0;

    rc |= msgr_recipients_mask_member(rec, "work_phone");
    rc |= msgr_recipients_mask_member(rec, "mobile_phone");
    rc |= msgr_recipients_mask_member(rec, "email");

    problems = json_object_get(rec, "phone_problems");

    if (json_is_object(problems)) {
        /* replacing a member's value keeps the iteration valid */

        for (it = json_object_iter(problems);
             it != NULL;
             it = json_object_iter_next(problems, it))
        {
            rc |= msgr_recipients_mask_member(problems,
                                              json_object_iter_key(it));
        }

    } else if (problems != NULL) {
        rc |= json_object_set_new(rec, "phone_problems", json_object());
    }

    if (json_object_set_new(rec, "masked", json_true()) != 0) {
        rc = -1;
    }

    return rc ? -1 : 0;
}


/* a staff entry of the result, for display to a key that must not see */

int
msgr_recipients_mask_entry(json_t *e)
{
    int      rc;
    char    *m;
    size_t   i;
    json_t  *ch, *voice, *v, *dels;

    ch = json_object_get(e, "channels");

    rc = msgr_recipients_mask_member(ch, "sms");
    rc |= msgr_recipients_mask_member(ch, "email");

    voice = json_object_get(ch, "voice");

    for (i = 0; i < json_array_size(voice); i++) {
        v = json_array_get(voice, i);
        m = json_is_string(v) ? msgr_mask_detail(json_string_value(v)) : NULL;
        v = (m != NULL) ? json_string(m) : NULL;
        free(m);

        if (v == NULL || json_array_set_new(voice, i, v) != 0) {
            json_array_clear(voice);
            rc = -1;
            break;
        }
    }

    /* and the addresses its deliveries go to (msgr_route()) */

    dels = json_object_get(e, "deliveries");

    for (i = 0; i < json_array_size(dels); i++) {
        rc |= msgr_recipients_mask_member(json_array_get(dels, i),
                                          "address");
    }

    if (json_object_set_new(e, "masked", json_true()) != 0) {
        rc = -1;
    }

    return rc ? -1 : 0;
}


/* records */

static void
msgr_recipients_key(char *buf, json_int_t id)
{
    snprintf(buf, MSGR_RECIPIENTS_KEY_LEN, "%" JSON_INTEGER_FORMAT, id);
}


/*
 * obj.name as a string: 0 and *out set (NULL when the member is missing,
 * null or ""), -1 when it is of another type.
 */

static int
msgr_recipients_string(json_t *obj, const char *name, const char **out)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return 0;
    }

    if (!json_is_string(v)) {
        return -1;
    }

    *out = json_string_length(v) ? json_string_value(v) : NULL;

    return 0;
}


/* obj.name as an array (NULL when missing or null), -1 on another type */

static int
msgr_recipients_array(json_t *obj, const char *name, json_t **out)
{
    json_t  *v;

    v = json_object_get(obj, name);

    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return 0;
    }

    *out = v;

    return json_is_array(v) ? 0 : -1;
}


static int
msgr_recipients_map(json_t *data, const char *name, json_t **out)
{
    json_t  *v;

    v = json_object_get(data, name);

    if (v == NULL || json_is_null(v)) {
        *out = NULL;
        return 0;
    }

    *out = v;

    return json_is_object(v) ? 0 : -1;
}


/*
 * "Title First Last" (with_title) or "First Last" of a contact or staff
 * record, as a json string; NULL with ctx->why set when a part is not a
 * string (what says where) or on out of memory.
 */

static json_t *
msgr_recipients_person(msgr_recipients_ctx_t *ctx, json_t *rec,
    int with_title, const char *what)
{
    char        *s;
    json_t      *name;
    const char  *parts[3];

    if (msgr_recipients_string(rec, "title", &parts[0]) != 0
        || msgr_recipients_string(rec, "first_name", &parts[1]) != 0
        || msgr_recipients_string(rec, "last_name", &parts[2]) != 0)
    {
        ctx->why = what;
        return NULL;
    }

    s = msgr_person_display_name(with_title ? parts[0] : NULL, parts[1],
                                 parts[2]);
    if (s == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return NULL;
    }

    name = json_string(s);
    free(s);

    if (name == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
    }

    return name;
}


/* channels */

static void
msgr_recipients_voice_add(msgr_recipients_channels_t *ch, const char *num)
{
    size_t  i;

    if (num == NULL) {
        return;
    }

    for (i = 0; i < ch->nvoice; i++) {
        if (strcmp(ch->voice[i], num) == 0) {
            return;
        }
    }

    ch->voice[ch->nvoice++] = num;
}


static int
msgr_recipients_contact_channels(msgr_recipients_ctx_t *ctx, json_t *c,
    msgr_recipients_channels_t *ch)
{
    json_t      *dev;
    const char  *home, *work, *mobile;

    memset(ch, 0, sizeof(msgr_recipients_channels_t));

    if (msgr_recipients_string(c, "home_phone", &home) != 0
        || msgr_recipients_string(c, "work_phone", &work) != 0
        || msgr_recipients_string(c, "mobile_phone", &mobile) != 0
        || msgr_recipients_string(c, "email", &ch->email) != 0)
    {
        ctx->why = "contacts: phone numbers and email must be strings or "
                   "null";
        return -1;
    }

    dev = json_object_get(c, "devices");

    if (dev != NULL && !json_is_null(dev) && !json_is_integer(dev)) {
        ctx->why = "contacts: devices must be an integer";
        return -1;
    }

    ch->xpressions = json_integer_value(dev) > 0;
    ch->sms = mobile;

    if (ctx->rules->voice_all_numbers) {
        msgr_recipients_voice_add(ch, home);
        msgr_recipients_voice_add(ch, work);
        msgr_recipients_voice_add(ch, mobile);

    } else {
        msgr_recipients_voice_add(ch, home != NULL ? home : work);
    }

    return 0;
}


static int
msgr_recipients_staff_channels(msgr_recipients_ctx_t *ctx, json_t *s,
    msgr_recipients_channels_t *ch)
{
    const char  *work, *mobile;

    memset(ch, 0, sizeof(msgr_recipients_channels_t));

    if (msgr_recipients_string(s, "work_phone", &work) != 0
        || msgr_recipients_string(s, "mobile_phone", &mobile) != 0
        || msgr_recipients_string(s, "email", &ch->email) != 0)
    {
        ctx->why = "staff: phone numbers and email must be strings or null";
        return -1;
    }

    ch->sms = mobile;

    if (ctx->rules->voice_all_numbers) {
        msgr_recipients_voice_add(ch, work);
        msgr_recipients_voice_add(ch, mobile);

    } else {
        msgr_recipients_voice_add(ch, work != NULL ? work : mobile);
    }

    return 0;
}


static int
msgr_recipients_reachable(msgr_recipients_channels_t *ch)
{
    return ch->xpressions || ch->sms != NULL || ch->nvoice > 0
           || ch->email != NULL;
}


static json_t *
msgr_recipients_channels_json(msgr_recipients_channels_t *ch)
{
    size_t   i;
    json_t  *voice;

    voice = json_array();
    if (voice == NULL) {
        return NULL;
    }

    for (i = 0; i < ch->nvoice; i++) {
        if (json_array_append_new(voice, json_string(ch->voice[i])) != 0) {
            json_decref(voice);
            return NULL;
        }
    }

    return json_pack("{s:b, s:s?, s:o, s:s?}",
                     "xpressions", ch->xpressions,
                     "sms", ch->sms,
                     "voice", voice,
                     "email", ch->email);
}


/* students */

/* 0: included; 1: excluded, *reason set; -1: error, ctx->why set */

static int
msgr_recipients_filter(msgr_recipients_ctx_t *ctx, json_t *st,
    const char *status, json_t **reason)
{
    int                            days;
    long                           left;
    const char                    *date;
    const msgr_recipient_rules_t  *rules;

    rules = ctx->rules;
    *reason = NULL;

    if (strcmp(status, "on_roll") == 0) {
        return 0;

    } else if (strcmp(status, "guest") == 0) {
        if (rules->guest_students) {
            return 0;
        }

        *reason = json_string("guest students are not included "
                              "(mis.guest_students is off)");

    } else if (strcmp(status, "pre_admission") == 0) {
        if (rules->pre_admissions) {
            return 0;
        }

        *reason = json_string("pre-admission students are not included "
                              "(mis.pre_admissions is off)");

    } else if (strcmp(status, "leaver") == 0) {
        if (!rules->leavers_included) {
            *reason = json_string("leavers are not included "
                                  "(mis.leavers_included is off)");
            goto done;
        }

        if (msgr_recipients_string(st, "leaving_date", &date) != 0
            || (date != NULL
                && msgr_date_parse(date, strlen(date), &left)
                   != MSGR_DATE_OK))
        {
            ctx->why = "students: leaving_date must be a YYYY-MM-DD date "
                       "or null";
            return -1;
        }

        if (date == NULL) {
            *reason = json_string("a leaver without a leaving date "
                                  "(mis.leavers_persistence_days)");
            goto done;
        }

        days = rules->leavers_persistence_days;

        if (ctx->today - left <= days) {
            return 0;
        }

        *reason = json_sprintf("left on %s, more than %d day%s ago "
                               "(mis.leavers_persistence_days)",
                               date, days, days == 1 ? "" : "s");

    } else {
        *reason = json_sprintf("unknown status \"%s\"", status);
    }

done:

    if (*reason == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return -1;
    }

    return 1;
}


static int
msgr_recipients_link_cmp(const void *one, const void *two)
{
    const msgr_recipients_link_t  *a, *b;

    a = one;
    b = two;

    if (a->has_priority != b->has_priority) {
        return a->has_priority ? -1 : 1;
    }

    if (a->has_priority && a->priority != b->priority) {
        return a->priority < b->priority ? -1 : 1;
    }

    return a->index < b->index ? -1 : (a->index > b->index);
}


/* the student's contact links, sorted by priority; *n set */

static msgr_recipients_link_t *
msgr_recipients_links(msgr_recipients_ctx_t *ctx, json_t *links, size_t *n)
{
    char                     key[MSGR_RECIPIENTS_KEY_LEN];
    size_t                   i;
    json_t                  *lk, *id, *prio, *corr;
    msgr_recipients_link_t  *l;

    *n = json_array_size(links);

    l = calloc(*n, sizeof(msgr_recipients_link_t));
    if (l == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return NULL;
    }

    json_array_foreach(links, i, lk) {
        id = json_object_get(lk, "id");
        prio = json_object_get(lk, "priority");
        corr = json_object_get(lk, "correspondence");

        if (!json_is_integer(id)
            || (prio != NULL && !json_is_null(prio) && !json_is_integer(prio))
            || (corr != NULL && !json_is_null(corr) && !json_is_boolean(corr)))
        {
            ctx->why = "students: contacts must be objects with an integer "
                       "id, an integer priority and a boolean "
                       "correspondence";
            goto failed;
        }

        l[i].id = json_integer_value(id);
        l[i].priority = json_integer_value(prio);
        l[i].has_priority = json_is_integer(prio);
        l[i].index = i;
        l[i].link = lk;

        msgr_recipients_key(key, l[i].id);
        l[i].contact = json_object_get(ctx->contacts, key);

        if (!json_is_object(l[i].contact)) {
            ctx->why = "a student's contact is not in contacts";
            goto failed;
        }
    }

    qsort(l, *n, sizeof(msgr_recipients_link_t), msgr_recipients_link_cmp);

    return l;

failed:

    free(l);
    return NULL;
}


/* adds the student to the contact's recipient, made on first use */

static int
msgr_recipients_add_contact(msgr_recipients_ctx_t *ctx,
    msgr_recipients_link_t *lk, msgr_recipients_channels_t *ch,
    json_int_t sid, const char *sname)
{
    char         key[MSGR_RECIPIENTS_KEY_LEN];
    size_t       i;
    json_t      *r, *name, *students, *s;
    const char  *rel;

    msgr_recipients_key(key, lk->id);

    r = json_object_get(ctx->by_contact, key);

    if (r == NULL) {
        name = msgr_recipients_person(ctx, lk->contact, 1,
                                      MSGR_RECIPIENTS_BAD_CONTACT);
        if (name == NULL) {
            return -1;
        }

        r = json_pack("{s:s, s:I, s:o, s:[], s:o}",
                      "type", "contact",
                      "id", lk->id,
                      "name", name,
                      "students",
                      "channels", msgr_recipients_channels_json(ch));

        if (r == NULL
            || json_array_append_new(ctx->contact_list, r) != 0
            || json_object_set(ctx->by_contact, key, r) != 0)
        {
            goto nomem;
        }
    }

    students = json_object_get(r, "students");

    json_array_foreach(students, i, s) {
        if (json_integer_value(json_object_get(s, "id")) == sid) {
            return 0;
        }
    }

    if (msgr_recipients_string(lk->link, "relationship", &rel) != 0) {
        ctx->why = "students: a contact's relationship must be a string or "
                   "null";
        return -1;
    }

    s = json_pack("{s:I, s:s, s:s?}", "id", sid, "name", sname,
                  "relationship", rel);

    if (json_array_append_new(students, s) != 0) {
        goto nomem;
    }

    return 0;

nomem:

    ctx->why = MSGR_RECIPIENTS_NOMEM;
    return -1;
}


static int
msgr_recipients_unreachable(msgr_recipients_ctx_t *ctx, json_t *list,
    const char *type, json_int_t id, const char *name, json_t *reason)
{
    json_t  *e;

    if (reason == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return -1;
    }

    e = json_pack("{s:s, s:I, s:s, s:o}", "type", type, "id", id,
                  "name", name, "reason", reason);

    if (json_array_append_new(list, e) != 0) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return -1;
    }

    return 0;
}


/* why the primary contact is not used, next_available_if_no_primary off */

static json_t *
msgr_recipients_primary_reason(msgr_recipients_ctx_t *ctx,
    msgr_recipients_link_t *lk, int corr)
{
    json_t  *name, *reason;

    name = msgr_recipients_person(ctx, lk->contact, 0,
                                  MSGR_RECIPIENTS_BAD_CONTACT);
    if (name == NULL) {
        return NULL;
    }

    if (json_string_length(name) == 0) {
        json_decref(name);

        name = json_sprintf("#%" JSON_INTEGER_FORMAT, lk->id);
        if (name == NULL) {
            ctx->why = MSGR_RECIPIENTS_NOMEM;
            return NULL;
        }
    }

    if (!corr) {
        reason = json_sprintf("the primary contact %s does not allow "
                              "correspondence" MSGR_RECIPIENTS_NEXT_OFF,
                              json_string_value(name));

    } else {
        reason = json_sprintf("the primary contact %s has no Xpressions "
                              "app, phone number or email"
                              MSGR_RECIPIENTS_NEXT_OFF,
                              json_string_value(name));
    }

    json_decref(name);

    if (reason == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
    }

    return reason;
}


static int
msgr_recipients_student_contacts(msgr_recipients_ctx_t *ctx, json_t *st,
    json_int_t sid, const char *sname)
{
    int                          rc, corr, chosen;
    size_t                       i, n;
    json_t                      *links, *reason;
    msgr_recipients_link_t      *l;
    msgr_recipients_channels_t   ch;

    if (msgr_recipients_array(st, "contacts", &links) != 0) {
        ctx->why = "students: contacts must be an array";
        return -1;
    }

    if (json_array_size(links) == 0) {
        return msgr_recipients_unreachable(ctx, ctx->unreachable, "student",
                                           sid, sname,
                                           json_string("no contacts"));
    }

    l = msgr_recipients_links(ctx, links, &n);
    if (l == NULL) {
        return -1;
    }

    rc = -1;
    chosen = 0;
    reason = NULL;

    for (i = 0; i < n; i++) {
        corr = json_is_true(json_object_get(l[i].link, "correspondence"));

        if (msgr_recipients_contact_channels(ctx, l[i].contact, &ch) != 0) {
            goto done;
        }

        if (corr && msgr_recipients_reachable(&ch)) {
            if (msgr_recipients_add_contact(ctx, &l[i], &ch, sid, sname)
                != 0)
            {
                goto done;
            }

            chosen++;

            if (ctx->send_to == MSGR_SEND_PRIMARY_CONTACT) {
                break;
            }

            continue;
        }

        if (ctx->send_to == MSGR_SEND_PRIMARY_CONTACT
            && !ctx->rules->next_available_if_no_primary)
        {
            reason = msgr_recipients_primary_reason(ctx, &l[i], corr);
            if (reason == NULL) {
                goto done;
            }

            break;
        }
    }

    rc = 0;

    if (!chosen) {
        if (reason == NULL) {
            reason = json_string(MSGR_RECIPIENTS_NONE);
        }

        rc = msgr_recipients_unreachable(ctx, ctx->unreachable, "student",
                                         sid, sname, reason);
    }

done:

    free(l);
    return rc;
}


static int
msgr_recipients_student(msgr_recipients_ctx_t *ctx, json_t *idv)
{
    int          rc;
    char         key[MSGR_RECIPIENTS_KEY_LEN];
    char        *name;
    json_t      *st, *reason, *e;
    json_int_t   id;
    const char  *first, *last, *reg, *status;

    if (!json_is_integer(idv)) {
        ctx->why = "selected_students and groups' students must be integer "
                   "ids";
        return -1;
    }

    id = json_integer_value(idv);
    msgr_recipients_key(key, id);

    if (json_object_get(ctx->seen, key) != NULL) {
        return 0;
    }

    if (json_object_set_new(ctx->seen, key, json_true()) != 0) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return -1;
    }

    st = json_object_get(ctx->students, key);

    if (!json_is_object(st)) {
        ctx->why = "a selected student is not in students";
        return -1;
    }

    if (msgr_recipients_string(st, "first_name", &first) != 0
        || msgr_recipients_string(st, "last_name", &last) != 0
        || msgr_recipients_string(st, "reg_group", &reg) != 0)
    {
        ctx->why = "students: names and reg_group must be strings or null";
        return -1;
    }

    status = json_string_value(json_object_get(st, "status"));

    if (status == NULL) {
        ctx->why = "students: status must be a string";
        return -1;
    }

    name = msgr_student_display_name(first, last, reg,
                                     ctx->rules->show_registration_in_names);
    if (name == NULL) {
        ctx->why = MSGR_RECIPIENTS_NOMEM;
        return -1;
    }

    rc = msgr_recipients_filter(ctx, st, status, &reason);

    if (rc == 1) {
        e = json_pack("{s:s, s:I, s:s, s:o}", "type", "student", "id", id,
                      "name", name, "reason", reason);

        rc = 0;

        if (json_array_append_new(ctx->excluded, e) != 0) {
            ctx->why = MSGR_RECIPIENTS_NOMEM;
            rc = -1;
        }

    } else if (rc == 0) {
        ctx->nstudents++;
        rc = msgr_recipients_student_contacts(ctx, st, id, name);
    }

    free(name);

    return rc;
}


/* staff */

static int
msgr_recipients_staff_member(msgr_recipients_ctx_t *ctx, json_t *idv,
    json_int_t gid)
{
    char                         key[MSGR_RECIPIENTS_KEY_LEN];
    size_t                       i;
    json_t                      *e, *rec, *name, *groups, *g;
    json_int_t                   id;
    msgr_recipients_channels_t   ch;

    if (!json_is_integer(idv)) {
        ctx->why = "groups: staff and teachers must be integer ids";
        return -1;
    }

    id = json_integer_value(idv);
    msgr_recipients_key(key, id);

    e = json_object_get(ctx->by_staff, key);

    if (e != NULL) {
        groups = json_object_get(e, "groups");

        json_array_foreach(groups, i, g) {
            if (json_integer_value(g) == gid) {
                return 0;
            }
        }

        if (json_array_append_new(groups, json_integer(gid)) != 0) {
            ctx->why = MSGR_RECIPIENTS_NOMEM;
            return -1;
        }

        return 0;
    }

    rec = json_object_get(ctx->staff, key);

    if (!json_is_object(rec)) {
        ctx->why = "a staff member of a selected group is not in staff";
        return -1;
    }

    if (msgr_recipients_staff_channels(ctx, rec, &ch) != 0) {
        return -1;
    }

    name = msgr_recipients_person(ctx, rec, 1, MSGR_RECIPIENTS_BAD_STAFF);
    if (name == NULL) {
        return -1;
    }

    if (msgr_recipients_reachable(&ch)) {
        e = json_pack("{s:s, s:I, s:o, s:[I], s:o}",
                      "type", "staff",
                      "id", id,
                      "name", name,
                      "groups", gid,
                      "channels", msgr_recipients_channels_json(&ch));

        if (json_array_append_new(ctx->staff_list, e) != 0) {
            goto nomem;
        }

    } else {
        e = json_pack("{s:s, s:I, s:o, s:[I], s:s}",
                      "type", "staff",
                      "id", id,
                      "name", name,
                      "groups", gid,
                      "reason", "no mobile, work number or email");

        if (json_array_append_new(ctx->staff_unreachable, e) != 0) {
            goto nomem;
        }
    }

    if (ctx->rules->mask_staff_details && msgr_recipients_mask_entry(e) != 0)
    {
        goto nomem;
    }

    if (json_object_set(ctx->by_staff, key, e) != 0) {
        goto nomem;
    }

    return 0;

nomem:

    ctx->why = MSGR_RECIPIENTS_NOMEM;
    return -1;
}


/* checks every selected group before any is used */

static int
msgr_recipients_check_groups(msgr_recipients_ctx_t *ctx)
{
    size_t   i;
    json_t  *g, *type, *a;

    json_array_foreach(ctx->groups, i, g) {
        type = json_object_get(g, "type");

        if (!json_is_object(g) || !json_is_integer(json_object_get(g, "id"))
            || (type != NULL && !json_is_null(type) && !json_is_string(type))
            || msgr_recipients_array(g, "students", &a) != 0
            || msgr_recipients_array(g, "staff", &a) != 0
            || msgr_recipients_array(g, "teachers", &a) != 0)
        {
            ctx->why = "selected_groups must be objects with an integer id, "
                       "a string type and arrays of students, staff and "
                       "teachers";
            return -1;
        }
    }

    return 0;
}


static int
msgr_recipients_group_staff(msgr_recipients_ctx_t *ctx, json_t *g)
{
    size_t       i;
    json_t      *s;
    json_int_t   gid;
    const char  *type;

    gid = json_integer_value(json_object_get(g, "id"));

    if (ctx->send_to == MSGR_SEND_STAFF) {
        json_array_foreach(json_object_get(g, "staff"), i, s) {
            if (msgr_recipients_staff_member(ctx, s, gid) != 0) {
                return -1;
            }
        }
    }

    type = json_string_value(json_object_get(g, "type"));

    if (ctx->rules->teachers_in_class_groups
        && type != NULL && strcmp(type, "class") == 0)
    {
        json_array_foreach(json_object_get(g, "teachers"), i, s) {
            if (msgr_recipients_staff_member(ctx, s, gid) != 0) {
                return -1;
            }
        }
    }

    return 0;
}


/* the result */

static json_t *
msgr_recipients_result(msgr_recipients_ctx_t *ctx)
{
    size_t      i;
    json_t     *recipients, *r, *ch, *v, *unreachable;
    json_int_t  nx, ns, nv, ne;

    recipients = json_array();
    unreachable = json_array();

    if (recipients == NULL || unreachable == NULL
        || json_array_extend(recipients, ctx->contact_list) != 0
        || json_array_extend(recipients, ctx->staff_list) != 0
        || json_array_extend(unreachable, ctx->unreachable) != 0
        || json_array_extend(unreachable, ctx->staff_unreachable) != 0)
    {
        json_decref(recipients);
        json_decref(unreachable);
        return NULL;
    }

    nx = ns = nv = ne = 0;

    json_array_foreach(recipients, i, r) {
        ch = json_object_get(r, "channels");

        nx += json_is_true(json_object_get(ch, "xpressions"));
        ns += json_is_string(json_object_get(ch, "sms"));

        v = json_object_get(ch, "voice");
        nv += json_array_size(v) > 0;

        ne += json_is_string(json_object_get(ch, "email"));
    }

    return json_pack("{s:o, s:o, s:O, s:{s:I, s:I, s:I, s:I, s:I, s:I,"
                     " s:{s:I, s:I, s:I, s:I}}}",
                     "recipients", recipients,
                     "unreachable", unreachable,
                     "excluded", ctx->excluded,
                     "counts",
                     "students", ctx->nstudents,
                     "recipients", (json_int_t) json_array_size(recipients),
                     "contacts",
                     (json_int_t) json_array_size(ctx->contact_list),
                     "staff", (json_int_t) json_array_size(ctx->staff_list),
                     "unreachable",
                     (json_int_t) json_array_size(unreachable),
                     "excluded", (json_int_t) json_array_size(ctx->excluded),
                     "by_channel",
                     "xpressions", nx,
                     "sms", ns,
                     "voice", nv,
                     "email", ne);
}


json_t *
msgr_recipients_resolve(json_t *data, msgr_send_to_e send_to,
    const msgr_recipient_rules_t *rules, const char *today,
    const char **why)
{
    size_t                  i, j;
    json_t                 *selected, *g, *s, *result;
    msgr_recipients_ctx_t   ctx;

    memset(&ctx, 0, sizeof(msgr_recipients_ctx_t));

    result = NULL;
    ctx.rules = rules;
    ctx.send_to = send_to;

    if (!json_is_object(data)) {
        ctx.why = "data must be an object";
        goto done;
    }

    if (rules == NULL || msgr_send_to_name(send_to) == NULL) {
        ctx.why = "no rules or an unknown send_to";
        goto done;
    }

    if (today == NULL
        || msgr_date_parse(today, strlen(today), &ctx.today) != MSGR_DATE_OK)
    {
        ctx.why = "today must be a YYYY-MM-DD date";
        goto done;
    }

    if (msgr_recipients_array(data, "selected_groups", &ctx.groups) != 0
        || msgr_recipients_array(data, "selected_students", &selected) != 0)
    {
        ctx.why = "selected_groups and selected_students must be arrays";
        goto done;
    }

    if (msgr_recipients_map(data, "students", &ctx.students) != 0
        || msgr_recipients_map(data, "contacts", &ctx.contacts) != 0
        || msgr_recipients_map(data, "staff", &ctx.staff) != 0)
    {
        ctx.why = "students, contacts and staff must be objects";
        goto done;
    }

    if (msgr_recipients_check_groups(&ctx) != 0) {
        goto done;
    }

    ctx.seen = json_object();
    ctx.by_contact = json_object();
    ctx.by_staff = json_object();
    ctx.contact_list = json_array();
    ctx.staff_list = json_array();
    ctx.unreachable = json_array();
    ctx.staff_unreachable = json_array();
    ctx.excluded = json_array();

    if (ctx.seen == NULL || ctx.by_contact == NULL || ctx.by_staff == NULL
        || ctx.contact_list == NULL || ctx.staff_list == NULL
        || ctx.unreachable == NULL || ctx.staff_unreachable == NULL
        || ctx.excluded == NULL)
    {
        ctx.why = MSGR_RECIPIENTS_NOMEM;
        goto done;
    }

    if (send_to != MSGR_SEND_STAFF) {
        json_array_foreach(selected, i, s) {
            if (msgr_recipients_student(&ctx, s) != 0) {
                goto done;
            }
        }

        json_array_foreach(ctx.groups, i, g) {
            json_array_foreach(json_object_get(g, "students"), j, s) {
                if (msgr_recipients_student(&ctx, s) != 0) {
                    goto done;
                }
            }
        }
    }

    json_array_foreach(ctx.groups, i, g) {
        if (msgr_recipients_group_staff(&ctx, g) != 0) {
            goto done;
        }
    }

    result = msgr_recipients_result(&ctx);
    if (result == NULL) {
        ctx.why = MSGR_RECIPIENTS_NOMEM;
    }

done:

    json_decref(ctx.seen);
    json_decref(ctx.by_contact);
    json_decref(ctx.by_staff);
    json_decref(ctx.contact_list);
    json_decref(ctx.staff_list);
    json_decref(ctx.unreachable);
    json_decref(ctx.staff_unreachable);
    json_decref(ctx.excluded);

    if (why != NULL) {
        *why = result != NULL ? NULL : ctx.why;
    }

    return result;
}

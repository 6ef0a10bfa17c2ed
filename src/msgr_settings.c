/*
 * msgr account settings: the declarative table, defaults, validation,
 * merge patches and reading a resolved settings object.  The reference
 * (docs/settings.md) is written from the same tables by
 * msgr_settings_doc.c.
 *
 * Everything about a setting is in its msgr_settings[] entry; the code
 * below knows types and formats, never individual fields.  The one
 * cross-field rule is a row of msgr_settings_rules[].
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "msgr_settings.h"
#include "msgr_text.h"
#include "msgr_phone.h"


#define MSGR_SETTINGS_MSG_LEN  512
#define MSGR_SETTINGS_MAX_CHOICES  32


typedef struct {
    msgr_settings_caps_t    caps;
    json_t                 *next;        /* the new stored overrides */
    json_t                 *current;     /* the settings before the patch */
    json_t                 *forbidden;
    json_t                 *invalid;
} msgr_settings_ctx_t;


static int msgr_settings_url(const char *s, size_t len);
static int msgr_settings_country(const char *s, size_t len);
static int msgr_settings_phone(const char *s, size_t len);


#define MSGR_SETTINGS_READONLY_MSG                                           \
    "read-only: the MIS settings are changed by your operator"
#define MSGR_SETTINGS_ENHANCED_MSG  "needs Enhanced Messenger"


static const char *const  msgr_settings_voice_calling[] = {
    "first_number", "all_numbers", NULL
};

static const char *const  msgr_settings_sms_voice_routing[] = {
    "sms_priority", "voice_priority", "send_both", NULL
};

static const char *const  msgr_settings_send_to[] = {
    "primary_contact", "last_chosen", NULL
};

static const char *const  msgr_settings_timetable[] = {
    "week_grid", "week_list", "day_list", NULL
};

static const char *const  msgr_settings_routing[] = {
    "default", "least_cost", "fastest", "custom", NULL
};

static const char *const  msgr_settings_channels[] = {
    "xpressions", "sms", "voice", "email", NULL
};

static const char *const  msgr_settings_strength[] = {
    "any", "medium", "strong", "very_strong", NULL
};

static const char *const  msgr_settings_history[] = {
    "previous", "last_5", NULL
};

static const int64_t  msgr_settings_backup_minutes[] = {
    5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, -1
};


const char *const  msgr_settings_tabs[] = {
    "sending", "contacts", "security", "school", "xpressions", "mis", NULL
};


const msgr_setting_t  msgr_settings[] = {

    /* sending */

    { "sending", "pin_threshold", MSGR_SETTING_INT, 0, 1, 1000000,
      NULL, NULL, "1000",
      "Messages (SMS + email + voice) in one send before a PIN is "
      "required." },

    { "sending", "voice_calling", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_voice_calling, NULL, "\"first_number\"",
      "Numbers a voice message calls: first_number calls Home, else Work; "
      "all_numbers calls every number of the contact in the MIS." },

    { "sending", "sms_voice_routing", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_sms_voice_routing, NULL, "\"sms_priority\"",
      "A message sent by SMS and voice: sms_priority texts mobiles and calls "
      "the rest; voice_priority calls Home or Work and texts mobile-only "
      "contacts; send_both sends both (the most costly)." },

    { "sending", "allow_template_edit_on_compose", MSGR_SETTING_BOOL, 0,
      0, 0, NULL, NULL, "false",
      "Any user may edit letter templates while composing a message "
      "(otherwise administrators only)." },

    { "sending", "default_send_to", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_send_to, NULL, "\"primary_contact\"",
      "Who a new message is sent to at first: the primary parental contact "
      "or the contacts last chosen." },

    { "sending", "timetable_layout", MSGR_SETTING_CHOICE,
      MSGR_SETTING_ENHANCED, 0, 0,
      msgr_settings_timetable, NULL, "\"week_grid\"",
      "Layout of student timetables." },

    { "sending", "report_warning_email", MSGR_SETTING_BOOL,
      MSGR_SETTING_ENHANCED, 0, 0, NULL, NULL, "false",
      "Send yourself a warning email when generating reports to be sent "
      "home." },

    { "sending", "include_translation_warning_link", MSGR_SETTING_BOOL, 0,
      0, 0, NULL, NULL, "false",
      "Send parents the translation warning link with every translated "
      "message." },

    { "sending", "translation_warning_url", MSGR_SETTING_STRING,
      MSGR_SETTING_URL, 0, 2000, NULL, NULL, "\"\"",
      "The page the translation warning link opens; empty: msgr's own "
      "page, which the module serves at `/v1/translation-warning`." },

    { "sending", "advanced_routing", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_routing, NULL, "\"default\"",
      "Messages of several types: default follows voice_calling, "
      "sms_voice_routing and the Xpressions tab; least_cost sends each "
      "parent only the cheapest type they can receive; fastest sends one, "
      "the first of Xpressions, SMS, voice, email; custom follows "
      "custom_priority." },

    { "sending", "custom_priority", MSGR_SETTING_CHANNELS, 0, 0, 0,
      msgr_settings_channels, NULL,
      "[\"xpressions\",\"sms\",\"voice\",\"email\"]",
      "The order of channels for advanced_routing custom: each parent is "
      "sent the first one they can receive." },

    /* contacts */

    { "contacts", "can_edit_imported_contacts", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Contacts imported from the MIS may be edited in Messenger (edits are "
      "not written back to the MIS)." },

    { "contacts", "auto_sync_contacts", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "true",
      "Update contacts from the MIS regularly." },

    { "contacts", "next_available_if_no_primary", MSGR_SETTING_BOOL, 0,
      0, 0, NULL, NULL, "false",
      "A student with no primary contact: send to the next available "
      "contact with whom correspondence is allowed." },

    { "contacts", "show_registration_in_names", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Show students' registration groups next to their names." },

    { "contacts", "hide_staff_contact_details", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Hide other staff members' contact details (mobile numbers, email "
      "addresses, ...)." },

    /* security */

    { "security", "enforce_password_change", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Users must change their password every 30 days." },

    { "security", "password_strength", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_strength, NULL, "\"any\"",
      "any: 8 or more characters; medium, strong and very_strong need "
      "growing mixes of upper and lower case letters, digits and "
      "symbols." },

    { "security", "password_history", MSGR_SETTING_CHOICE, 0, 0, 0,
      msgr_settings_history, NULL, "\"previous\"",
      "A new password must differ from: previous, the last one; last_5, "
      "each of the last 5." },

    /* school */

    { "school", "name", MSGR_SETTING_STRING, MSGR_SETTING_REQUIRED, 1, 200,
      NULL, NULL, NULL,
      "The school's name, as parents see it." },

    { "school", "address", MSGR_SETTING_STRING, 0, 0, 500,
      NULL, NULL, "\"\"",
      "Postal address, as parents see it." },

    { "school", "phone", MSGR_SETTING_STRING, MSGR_SETTING_PHONE, 0, 32,
      NULL, NULL, "\"\"",
      "Phone number, as parents see it." },

    { "school", "phone_country", MSGR_SETTING_STRING,
      MSGR_SETTING_COUNTRY, 2, 2,
      NULL, NULL, "\"GB\"",
      "The country of phone numbers written without a +country code, "
      "in the MIS and in local edits." },

    { "school", "email", MSGR_SETTING_STRING, MSGR_SETTING_EMAIL, 0, 254,
      NULL, NULL, "\"\"",
      "Email address, as parents see it." },

    { "school", "website", MSGR_SETTING_STRING, MSGR_SETTING_URL, 0, 2000,
      NULL, NULL, "\"\"",
      "The school's web site." },

    { "school", "logo_url", MSGR_SETTING_STRING, MSGR_SETTING_URL, 0, 2000,
      NULL, NULL, "\"\"",
      "Where the school's logo image is." },

    /* xpressions */

    { "xpressions", "backup_sms", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Send an SMS when an Xpression cannot be delivered." },

    { "xpressions", "backup_sms_after_minutes", MSGR_SETTING_INT_CHOICE, 0,
      0, 0, NULL, msgr_settings_backup_minutes, "30",
      "Minutes to wait for an Xpression to be delivered before the backup "
      "SMS." },

    { "xpressions", "incoming_enabled", MSGR_SETTING_BOOL, 0, 0, 0,
      NULL, NULL, "false",
      "Parents may send new messages to the school via Xpressions." },

    /* mis */

    { "mis", "teachers_in_class_groups", MSGR_SETTING_BOOL,
      MSGR_SETTING_READONLY, 0, 0, NULL, NULL, "true",
      "Teachers receive the messages sent to their class groups." },

    { "mis", "guest_students", MSGR_SETTING_BOOL, MSGR_SETTING_READONLY,
      0, 0, NULL, NULL, "false",
      "Guest students are recipients when their class is selected." },

    { "mis", "pre_admissions", MSGR_SETTING_BOOL, MSGR_SETTING_READONLY,
      0, 0, NULL, NULL, "false",
      "Pre-admission students can be sent messages." },

    { "mis", "leavers_included", MSGR_SETTING_BOOL, MSGR_SETTING_READONLY,
      0, 0, NULL, NULL, "false",
      "Leavers can be sent messages, for leavers_persistence_days." },

    { "mis", "attendance_by_reg_group", MSGR_SETTING_BOOL,
      MSGR_SETTING_READONLY, 0, 0, NULL, NULL, "false",
      "Attendance groups are listed by date, session and registration "
      "group, then attendance code (otherwise by date and session only)." },

    { "mis", "leavers_persistence_days", MSGR_SETTING_INT,
      MSGR_SETTING_READONLY, 1, 3650, NULL, NULL, "90",
      "Days leavers stay available in Messenger after they leave." },

    { NULL, NULL, MSGR_SETTING_BOOL, 0, 0, 0, NULL, NULL, NULL, NULL }
};


static const msgr_settings_format_t  msgr_settings_formats[] = {

    { MSGR_SETTING_COUNTRY, msgr_settings_country,
      "must be the code of a country whose phone numbers msgr knows: "
      "GB, IE, US, CA, FR, ES, DE, PL, IN or AU",
      "the ISO 3166 code of a country whose phone numbers msgr knows: "
      "`GB`, `IE`, `US`, `CA`, `FR`, `ES`, `DE`, `PL`, `IN`, `AU`" },

    { MSGR_SETTING_EMAIL, msgr_email_valid,
      "must be an email address such as office@school.example, or empty",
      "an email address (one `@`, a local part of at most 64 characters, "
      "a domain with a dot, no spaces)" },

    { MSGR_SETTING_URL, msgr_settings_url,
      "must be an absolute http:// or https:// URL with a host, or empty",
      "an absolute `http://` or `https://` URL with a host, no spaces" },

    { MSGR_SETTING_PHONE, msgr_settings_phone,
      "must be a phone number of digits, spaces, a leading +, (, ) and -, "
      "with at least 5 digits, or empty",
      "a phone number of at least 5 characters: digits, spaces, `+` "
      "(first only), `(`, `)`, `-`, with at least 5 digits" },

    { 0, NULL, NULL, NULL }
};


const msgr_settings_rule_t  msgr_settings_rules[] = {

    { "sending", "custom_priority", "advanced_routing", "custom",
      "must not be empty when advanced_routing is custom" },

    { NULL, NULL, NULL, NULL, NULL }
};


const msgr_settings_fixed_t  msgr_settings_fixed[] = {

    { "sending", "enhanced_messenger",
      "read-only: Enhanced Messenger is changed by your operator",
      "whether the school has Enhanced Messenger, which the fields marked "
      "so need. `GET /v1/school` shows it; the operator changes it with "
      "`msgrctl school set ID enhanced_messenger=true`, and a patch that "
      "names it is refused." },

    { NULL, NULL, NULL, NULL }
};


static int
msgr_settings_country(const char *s, size_t len)
{
    char  code[3];

    if (len != 2) {
        return 0;
    }

    code[0] = s[0];
    code[1] = s[1];
    code[2] = '\0';

    return msgr_phone_country_known(code);
}


static int
msgr_settings_url(const char *s, size_t len)
{
    size_t       i, n, alen, hlen;
    const char  *auth, *host, *p;

    if (msgr_text_has_space(s, len)) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (strchr("\"<>\\^`{|}", s[i]) != NULL) {
            return 0;
        }
    }

    if (len > 7 && strncasecmp(s, "http://", 7) == 0) {
        n = 7;

    } else if (len > 8 && strncasecmp(s, "https://", 8) == 0) {
        n = 8;

    } else {
        return 0;
    }

    auth = s + n;

    for (alen = 0; n + alen < len; alen++) {
        if (strchr("/?#", auth[alen]) != NULL) {
            break;
        }
    }

    /* user info, if any, ends at the last '@' of the authority */

    host = auth;

    for (i = 0; i < alen; i++) {
        if (auth[i] == '@') {
            host = auth + i + 1;
        }
    }

    hlen = alen - (host - auth);

    if (hlen > 0 && host[0] == '[') {
        p = memchr(host, ']', hlen);
        if (p == NULL || p == host + 1) {
            return 0;
        }
        p++;

    } else {
        p = memchr(host, ':', hlen);
        if (p == NULL) {
            p = host + hlen;
        }

        if (p == host) {
            return 0;
        }
    }

    /* an optional port: ':' and 1 to 5 digits */

    if (p < host + hlen) {
        if (*p++ != ':' || p == host + hlen || host + hlen - p > 5) {
            return 0;
        }

        for ( /* void */ ; p < host + hlen; p++) {
            if (*p < '0' || *p > '9') {
                return 0;
            }
        }
    }

    return 1;
}


static int
msgr_settings_phone(const char *s, size_t len)
{
    size_t  i, digits;

    if (len == 0 || s[0] == ' ' || s[len - 1] == ' ') {
        return 0;
    }

    digits = 0;

    for (i = 0; i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            digits++;

        } else if (s[i] == '+') {
            if (i != 0) {
                return 0;
            }

        } else if (s[i] != ' ' && s[i] != '(' && s[i] != ')'
                   && s[i] != '-')
        {
            return 0;
        }
    }

    return digits >= 5;
}


const msgr_settings_format_t *
msgr_settings_format(const msgr_setting_t *s)
{
    const msgr_settings_format_t  *f;

    for (f = msgr_settings_formats; f->flag; f++) {
        if (s->flags & f->flag) {
            return f;
        }
    }

    return NULL;
}


/* CHANNELS: an ordered distinct subset of the choices */

static int
msgr_settings_check_channels(const msgr_setting_t *s, json_t *v, char *msg,
    size_t size)
{
    int            i;
    size_t         n;
    json_t        *e;
    unsigned char  seen[MSGR_SETTINGS_MAX_CHOICES];

    if (!json_is_array(v)) {
        snprintf(msg, size, "must be an array of distinct channels "
                 "from: ");
        msgr_text_join(msg, size, s->choices, NULL);
        return -1;
    }

    memset(seen, 0, sizeof(seen));

    for (n = 0; n < json_array_size(v); n++) {
        e = json_array_get(v, n);

        i = json_is_string(e)
            ? msgr_text_choice(s->choices, json_string_value(e),
                               json_string_length(e))
            : -1;

        if (i < 0 || i >= MSGR_SETTINGS_MAX_CHOICES) {
            snprintf(msg, size, "must list only: ");
            msgr_text_join(msg, size, s->choices, NULL);
            return -1;
        }

        if (seen[i]) {
            snprintf(msg, size, "must not list a channel twice");
            return -1;
        }

        seen[i] = 1;
    }

    return 0;
}


/* STRING: lengths, not blank when required, the format */

static int
msgr_settings_check_string(const msgr_setting_t *s, json_t *v, char *msg,
    size_t size)
{
    size_t                         len, chars, n;
    const char                    *str;
    const msgr_settings_format_t  *f;

    if (!json_is_string(v)) {
        snprintf(msg, size, "must be a string");
        return -1;
    }

    str = json_string_value(v);
    len = json_string_length(v);

    if (memchr(str, '\0', len) != NULL) {
        snprintf(msg, size, "must not contain NUL characters");
        return -1;
    }

    chars = msgr_utf8_chars(str, len);

    if (chars == 0 && s->min > 0) {
        snprintf(msg, size, "must not be empty");
        return -1;
    }

    if ((int64_t) chars > s->max) {
        snprintf(msg, size, "must be at most %lld characters",
                 (long long) s->max);
        return -1;
    }

    if ((int64_t) chars < s->min) {
        snprintf(msg, size, "must be at least %lld characters",
                 (long long) s->min);
        return -1;
    }

    if (s->flags & MSGR_SETTING_REQUIRED) {
        for (n = 0; n < len; n++) {
            if (strchr(" \t\r\n", str[n]) == NULL) {
                break;
            }
        }

        if (n == len) {
            snprintf(msg, size, "must not be blank");
            return -1;
        }
    }

    f = msgr_settings_format(s);

    if (f != NULL && len > 0 && !f->valid(str, len)) {
        snprintf(msg, size, "%s", f->message);
        return -1;
    }

    return 0;
}


/*
 * Checks a (non-null) value against its entry: 0, or -1 with the error
 * message in msg.
 */

static int
msgr_settings_check(const msgr_setting_t *s, json_t *v, char *msg,
    size_t size)
{
    int         i;
    json_int_t  iv;

    msg[0] = '\0';

    switch (s->type) {

    case MSGR_SETTING_BOOL:
        if (json_is_boolean(v)) {
            return 0;
        }

        snprintf(msg, size, "must be a boolean");
        return -1;

    case MSGR_SETTING_INT:
        if (json_is_integer(v)) {
            iv = json_integer_value(v);
            if (iv >= s->min && iv <= s->max) {
                return 0;
            }
        }

        snprintf(msg, size, "must be an integer from %lld to %lld",
                 (long long) s->min, (long long) s->max);
        return -1;

    case MSGR_SETTING_INT_CHOICE:
        if (json_is_integer(v)) {
            iv = json_integer_value(v);
            for (i = 0; s->int_choices[i] != -1; i++) {
                if (s->int_choices[i] == iv) {
                    return 0;
                }
            }
        }

        snprintf(msg, size, "must be one of: ");
        msgr_text_join(msg, size, NULL, s->int_choices);
        return -1;

    case MSGR_SETTING_CHOICE:
        if (json_is_string(v)
            && msgr_text_choice(s->choices, json_string_value(v),
                                json_string_length(v))
               >= 0)
        {
            return 0;
        }

        snprintf(msg, size, "must be one of: ");
        msgr_text_join(msg, size, s->choices, NULL);
        return -1;

    case MSGR_SETTING_CHANNELS:
        return msgr_settings_check_channels(s, v, msg, size);

    case MSGR_SETTING_STRING:
        return msgr_settings_check_string(s, v, msg, size);
    }

    snprintf(msg, size, "has an unknown type");
    return -1;
}


int
msgr_settings_tab_known(const char *tab, size_t len)
{
    return tab != NULL
           && msgr_text_choice(msgr_settings_tabs, tab, len) >= 0;
}


const msgr_setting_t *
msgr_settings_find(const char *tab, const char *name)
{
    const msgr_setting_t  *s;

    for (s = msgr_settings; s->tab != NULL; s++) {
        if (strcmp(s->tab, tab) == 0 && strcmp(s->name, name) == 0) {
            return s;
        }
    }

    return NULL;
}


static json_t *
msgr_settings_default(const msgr_setting_t *s, const char *school_name)
{
    if (s->default_json == NULL) {
        return json_string(school_name != NULL ? school_name : "");
    }

    return json_loads(s->default_json, JSON_DECODE_ANY, NULL);
}


json_t *
msgr_settings_resolve(json_t *stored, const char *school_name)
{
    char                   msg[MSGR_SETTINGS_MSG_LEN];
    json_t                *out, *tab, *st, *v;
    const char *const     *t;
    const msgr_setting_t  *s;

    out = json_object();
    if (out == NULL) {
        return NULL;
    }

    for (t = msgr_settings_tabs; *t != NULL; t++) {
        if (json_object_set_new(out, *t, json_object()) != 0) {
            goto failed;
        }
    }

    for (s = msgr_settings; s->tab != NULL; s++) {
        tab = json_object_get(out, s->tab);
        v = NULL;

        st = json_is_object(stored) ? json_object_get(stored, s->tab) : NULL;
        st = json_is_object(st) ? json_object_get(st, s->name) : NULL;

        if (st != NULL && !json_is_null(st)
            && msgr_settings_check(s, st, msg, sizeof(msg)) == 0)
        {
            v = json_deep_copy(st);

        } else {
            v = msgr_settings_default(s, school_name);
        }

        if (v == NULL || json_object_set_new(tab, s->name, v) != 0) {
            goto failed;
        }
    }

    return out;

failed:

    json_decref(out);
    return NULL;
}


/* reading a resolved settings object */

static json_t *
msgr_settings_get(json_t *settings, const char *tab, const char *name)
{
    return json_object_get(json_object_get(settings, tab), name);
}


int
msgr_settings_bool(json_t *settings, const char *tab, const char *name)
{
    json_t                *v;
    const msgr_setting_t  *s;

    v = msgr_settings_get(settings, tab, name);

    if (json_is_boolean(v)) {
        return json_is_true(v);
    }

    s = msgr_settings_find(tab, name);

    return s != NULL && s->default_json != NULL
           && strcmp(s->default_json, "true") == 0;
}


int64_t
msgr_settings_int(json_t *settings, const char *tab, const char *name)
{
    json_t                *v;
    const int64_t         *c;
    const msgr_setting_t  *s;

    v = msgr_settings_get(settings, tab, name);
    s = msgr_settings_find(tab, name);

    if (json_is_integer(v) && s != NULL && s->int_choices != NULL) {

        /* INT_CHOICE: one of its integers */

        for (c = s->int_choices; *c != -1; c++) {
            if (*c == json_integer_value(v)) {
                return *c;
            }
        }

    } else if (json_is_integer(v)
               && (s == NULL
                   || (json_integer_value(v) >= s->min
                       && json_integer_value(v) <= s->max)))
    {
        return json_integer_value(v);
    }

    return s != NULL && s->default_json != NULL
           ? strtoll(s->default_json, NULL, 10) : 0;
}


int
msgr_settings_is(json_t *settings, const char *tab, const char *name,
    const char *value)
{
    size_t                 len;
    json_t                *v;
    const char            *d;
    const msgr_setting_t  *s;

    v = msgr_settings_get(settings, tab, name);

    if (json_is_string(v)) {
        return strcmp(json_string_value(v), value) == 0;
    }

    s = msgr_settings_find(tab, name);
    if (s == NULL || s->default_json == NULL) {
        return 0;
    }

    /* the default is JSON text: "\"value\"" */

    d = s->default_json;
    len = strlen(value);

    return d[0] == '"' && strncmp(d + 1, value, len) == 0
           && d[len + 1] == '"' && d[len + 2] == '\0';
}


const char *
msgr_settings_string(json_t *settings, const char *tab, const char *name)
{
    return json_string_value(msgr_settings_get(settings, tab, name));
}


static int
msgr_settings_error(json_t *errors, const char *tab, const char *field,
    const char *message)
{
    json_t  *name, *e;

    if (field == NULL) {
        name = json_string(tab);

    } else {
        name = json_sprintf("%s.%s", tab, field);
    }

    if (name == NULL) {
        return -1;
    }

    e = json_pack("{s:o, s:s}", "field", name, "message", message);

    return json_array_append_new(errors, e);
}


static int
msgr_settings_has_error(json_t *errors, const char *tab, const char *field)
{
    size_t       i, tlen;
    json_t      *e;
    const char  *f;

    tlen = strlen(tab);

    json_array_foreach(errors, i, e) {
        f = json_string_value(json_object_get(e, "field"));

        if (f != NULL && strncmp(f, tab, tlen) == 0 && f[tlen] == '.'
            && strcmp(f + tlen + 1, field) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static const msgr_settings_fixed_t *
msgr_settings_find_fixed(const char *tab, const char *name)
{
    const msgr_settings_fixed_t  *x;

    for (x = msgr_settings_fixed; x->tab != NULL; x++) {
        if (strcmp(x->tab, tab) == 0 && strcmp(x->name, name) == 0) {
            return x;
        }
    }

    return NULL;
}


/* Checks one tab's fields and applies the good ones to ctx->next */

static int
msgr_settings_patch_tab(msgr_settings_ctx_t *ctx, const char *tab,
    json_t *fields)
{
    char                          msg[MSGR_SETTINGS_MSG_LEN];
    json_t                       *value, *obj, *copy;
    const char                   *name;
    const msgr_setting_t         *s;
    const msgr_settings_fixed_t  *x;

    json_object_foreach(fields, name, value) {
        s = msgr_settings_find(tab, name);

        if (s == NULL) {
            x = msgr_settings_find_fixed(tab, name);

            if (x != NULL) {
                if (msgr_settings_error(ctx->forbidden, tab, name,
                                        x->message)
                    != 0)
                {
                    return -1;
                }

            } else if (msgr_settings_error(ctx->invalid, tab, name,
                                           "unknown field")
                       != 0)
            {
                return -1;
            }

            continue;
        }

        if ((s->flags & (MSGR_SETTING_READONLY|MSGR_SETTING_ENHANCED))
            && json_equal(value, json_object_get(
                                     json_object_get(ctx->current, tab),
                                     name)))
        {
            /*
             * The value it has already: no change, so no permission is
             * needed, and a client may send back what it read.
             */
            continue;
        }

        if ((s->flags & MSGR_SETTING_READONLY) && !ctx->caps.operator) {
            if (msgr_settings_error(ctx->forbidden, tab, name,
                                    MSGR_SETTINGS_READONLY_MSG)
                != 0)
            {
                return -1;
            }

            continue;
        }

        if ((s->flags & MSGR_SETTING_ENHANCED) && !ctx->caps.enhanced) {
            if (msgr_settings_error(ctx->forbidden, tab, name,
                                    MSGR_SETTINGS_ENHANCED_MSG)
                != 0)
            {
                return -1;
            }

            continue;
        }

        if (json_is_null(value)) {
            if (s->flags & MSGR_SETTING_REQUIRED) {
                if (msgr_settings_error(ctx->invalid, tab, name,
                                        "must not be null")
                    != 0)
                {
                    return -1;
                }

                continue;
            }

        } else if (msgr_settings_check(s, value, msg, sizeof(msg)) != 0) {
            if (msgr_settings_error(ctx->invalid, tab, name, msg) != 0) {
                return -1;
            }

            continue;
        }

        /* a good value: apply it to the new overrides */

        obj = json_object_get(ctx->next, tab);

        if (!json_is_object(obj)) {
            obj = json_object();
            if (json_object_set_new(ctx->next, tab, obj) != 0) {
                return -1;
            }
        }

        if (json_is_null(value)) {
            (void) json_object_del(obj, name);
            continue;
        }

        copy = json_deep_copy(value);
        if (json_object_set_new(obj, name, copy) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
msgr_settings_check_rules(json_t *resolved, json_t *invalid)
{
    json_t                      *tab, *when, *v;
    const msgr_settings_rule_t  *r;

    for (r = msgr_settings_rules; r->tab != NULL; r++) {
        tab = json_object_get(resolved, r->tab);
        when = json_object_get(tab, r->when);
        v = json_object_get(tab, r->field);

        if (!json_is_string(when)
            || strcmp(json_string_value(when), r->value) != 0)
        {
            continue;
        }

        if ((json_is_array(v) && json_array_size(v) > 0)
            || (json_is_string(v) && json_string_length(v) > 0))
        {
            continue;
        }

        if (msgr_settings_has_error(invalid, r->tab, r->field)) {
            continue;
        }

        if (msgr_settings_error(invalid, r->tab, r->field, r->message) != 0) {
            return -1;
        }
    }

    return 0;
}


static json_t *
msgr_settings_changes(json_t *old, json_t *now)
{
    json_t                *changes, *o, *n, *c;
    const msgr_setting_t  *s;

    changes = json_array();
    if (changes == NULL) {
        return NULL;
    }

    for (s = msgr_settings; s->tab != NULL; s++) {
        o = json_object_get(json_object_get(old, s->tab), s->name);
        n = json_object_get(json_object_get(now, s->tab), s->name);

        if (json_equal(o, n)) {
            continue;
        }

        c = json_pack("{s:s, s:s, s:o, s:o}", "tab", s->tab,
                      "field", s->name, "old", json_deep_copy(o),
                      "new", json_deep_copy(n));

        if (json_array_append_new(changes, c) != 0) {
            json_decref(changes);
            return NULL;
        }
    }

    return changes;
}


/* drops the empty tabs of the new overrides, to keep them sparse */

static void
msgr_settings_prune(json_t *next)
{
    void        *tmp;
    json_t      *obj;
    const char  *tab;

    json_object_foreach_safe(next, tmp, tab, obj) {
        if (json_is_object(obj) && json_object_size(obj) == 0) {
            (void) json_object_del(next, tab);
        }
    }
}


/* a tab's part of a patch: the tab must exist and be given an object */

static int
msgr_settings_patch_named_tab(msgr_settings_ctx_t *ctx, const char *tab,
    json_t *fields)
{
    char  msg[MSGR_SETTINGS_MSG_LEN];

    if (!msgr_settings_tab_known(tab, strlen(tab))) {
        snprintf(msg, sizeof(msg), "unknown tab; tabs are: ");
        msgr_text_join(msg, sizeof(msg), msgr_settings_tabs, NULL);

        return msgr_settings_error(ctx->invalid, tab, NULL, msg);
    }

    if (!json_is_object(fields)) {
        return msgr_settings_error(ctx->invalid, tab, NULL,
                                   "must be an object");
    }

    return msgr_settings_patch_tab(ctx, tab, fields);
}


int
msgr_settings_patch(json_t *stored, const char *school_name,
    const char *tab, json_t *patch, msgr_settings_caps_t caps,
    json_t **new_stored, json_t **changes, json_t **resolved,
    json_t **errors)
{
    int                   rc;
    json_t               *value, *now, *ch;
    const char           *key;
    msgr_settings_ctx_t   ctx;

    if (new_stored != NULL) {
        *new_stored = NULL;
    }

    if (changes != NULL) {
        *changes = NULL;
    }

    if (resolved != NULL) {
        *resolved = NULL;
    }

    if (errors != NULL) {
        *errors = NULL;
    }

    now = NULL;
    ch = NULL;

    ctx.caps = caps;
    ctx.next = json_is_object(stored) ? json_deep_copy(stored)
                                      : json_object();
    ctx.current = msgr_settings_resolve(stored, school_name);
    ctx.forbidden = json_array();
    ctx.invalid = json_array();

    if (ctx.next == NULL || ctx.current == NULL || ctx.forbidden == NULL
        || ctx.invalid == NULL)
    {
        goto error;
    }

    if (tab != NULL) {
        if (msgr_settings_patch_named_tab(&ctx, tab, patch) != 0) {
            goto error;
        }

    } else if (!json_is_object(patch)) {
        if (msgr_settings_error(ctx.invalid, "", NULL, "must be an object")
            != 0)
        {
            goto error;
        }

    } else {
        json_object_foreach(patch, key, value) {
            if (msgr_settings_patch_named_tab(&ctx, key, value) != 0) {
                goto error;
            }
        }
    }

    if (json_array_size(ctx.forbidden) > 0) {
        rc = MSGR_SETTINGS_FORBIDDEN;

        if (errors != NULL) {
            *errors = ctx.forbidden;
            ctx.forbidden = NULL;
        }

        goto done;
    }

    /* cross-field rules hold on the result */

    now = msgr_settings_resolve(ctx.next, school_name);
    if (now == NULL) {
        goto error;
    }

    if (msgr_settings_check_rules(now, ctx.invalid) != 0) {
        goto error;
    }

    if (json_array_size(ctx.invalid) > 0) {
        rc = MSGR_SETTINGS_INVALID;

        if (errors != NULL) {
            *errors = ctx.invalid;
            ctx.invalid = NULL;
        }

        goto done;
    }

    ch = msgr_settings_changes(ctx.current, now);
    if (ch == NULL) {
        goto error;
    }

    msgr_settings_prune(ctx.next);

    rc = MSGR_SETTINGS_OK;

    if (new_stored != NULL) {
        *new_stored = ctx.next;
        ctx.next = NULL;
    }

    if (changes != NULL) {
        *changes = ch;
        ch = NULL;
    }

    if (resolved != NULL) {
        *resolved = now;
        now = NULL;
    }

    goto done;

error:

    rc = MSGR_SETTINGS_ERROR;

done:

    json_decref(ctx.next);
    json_decref(ctx.current);
    json_decref(ctx.forbidden);
    json_decref(ctx.invalid);
    json_decref(now);
    json_decref(ch);

    return rc;
}

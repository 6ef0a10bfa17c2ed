/*
 * Unit tests of src/msgr_settings.c: defaults, validation of every field,
 * merge patches (null, all or nothing, forbidden fields, cross-field rule,
 * changes) and the formats of strings.  Prints TAP.
 *
 * The expectations are written out here, from the product description, not
 * read back from the table under test.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_settings.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  272

#define MSGR_TEST_SCHOOL  "Alpha School"


typedef struct {
    int             rc;
    json_t         *stored;
    json_t         *changes;
    json_t         *resolved;
    json_t         *errors;
} msgr_test_result_t;


typedef struct {
    const char     *field;      /* tab.field */
    const char     *value;      /* JSON text */
    int             good;
    const char     *message;    /* the error expected, when not NULL */
} msgr_test_case_t;


static const msgr_settings_caps_t  msgr_test_none = { 0, 0 };
static const msgr_settings_caps_t  msgr_test_enhanced = { 1, 0 };
static const msgr_settings_caps_t  msgr_test_operator = { 0, 1 };
static const msgr_settings_caps_t  msgr_test_all = { 1, 1 };


static json_t *
msgr_test_raw_json(const char *text)
{
    json_t        *v;
    json_error_t   err;

    if (text == NULL) {
        return NULL;
    }

    v = json_loads(text, JSON_DECODE_ANY, &err);
    if (v == NULL) {
        printf("Bail out! bad JSON in the test: %s: %s\n", text, err.text);
        exit(255);
    }

    return v;
}


/* a string value of n copies of unit, as JSON text (caller frees) */

static char *
msgr_test_repeat(const char *prefix, const char *unit, size_t n,
    const char *suffix)
{
    char    *s, *p;
    size_t   len, ulen;

    ulen = strlen(unit);
    len = strlen(prefix) + ulen * n + strlen(suffix) + 3;

    s = malloc(len);
    if (s == NULL) {
        printf("Bail out! out of memory\n");
        exit(255);
    }

    p = s;
    *p++ = '"';
    p = stpcpy(p, prefix);

    while (n--) {
        p = stpcpy(p, unit);
    }

    p = stpcpy(p, suffix);
    *p++ = '"';
    *p = '\0';

    return s;
}


static json_t *
msgr_test_get(json_t *obj, const char *path)
{
    char        tab[64];
    const char  *dot;

    dot = strchr(path, '.');
    if (dot == NULL || (size_t) (dot - path) >= sizeof(tab)) {
        return json_object_get(obj, path);
    }

    memcpy(tab, path, dot - path);
    tab[dot - path] = '\0';

    return json_object_get(json_object_get(obj, tab), dot + 1);
}


static int
msgr_test_is(json_t *v, const char *text)
{
    int      eq;
    json_t  *want;

    want = msgr_test_raw_json(text);
    eq = v != NULL && json_equal(v, want);
    json_decref(want);

    return eq;
}


static void
msgr_test_free(msgr_test_result_t *r)
{
    json_decref(r->stored);
    json_decref(r->changes);
    json_decref(r->resolved);
    json_decref(r->errors);
    memset(r, 0, sizeof(*r));
}


static void
msgr_test_patch(msgr_test_result_t *r, const char *stored, const char *tab,
    const char *patch, msgr_settings_caps_t caps)
{
    json_t  *st, *p;

    st = msgr_test_raw_json(stored);
    p = msgr_test_raw_json(patch);

    memset(r, 0, sizeof(*r));

    /* garbage in the outputs: the function must set every one */

    r->stored = r->changes = r->resolved = r->errors = (json_t *) 1;

    r->rc = msgr_settings_patch(st, MSGR_TEST_SCHOOL, tab, p, caps,
                                &r->stored, &r->changes, &r->resolved,
                                &r->errors);

    json_decref(st);
    json_decref(p);

    if (r->rc == MSGR_SETTINGS_ERROR) {
        printf("Bail out! msgr_settings_patch: out of memory\n");
        exit(255);
    }
}


/* the fields of errors are exactly the comma-separated list, in order */

static int
msgr_test_errors_are(json_t *errors, const char *fields)
{
    char         buf[1024];
    size_t       i, n;
    json_t      *e;
    const char  *f;

    if (!json_is_array(errors)) {
        return 0;
    }

    buf[0] = '\0';
    n = 0;

    json_array_foreach(errors, i, e) {
        f = json_string_value(json_object_get(e, "field"));
        if (f == NULL
            || !json_is_string(json_object_get(e, "message"))
            || json_object_size(e) != 2)
        {
            return 0;
        }

        n += snprintf(buf + n, sizeof(buf) - n, "%s%s", i ? "," : "", f);
        if (n >= sizeof(buf)) {
            return 0;
        }
    }

    if (strcmp(buf, fields) != 0) {
        printf("# errors name: %s\n# expected:    %s\n", buf, fields);
        return 0;
    }

    return 1;
}


static const char *
msgr_test_message(json_t *errors, const char *field)
{
    size_t   i;
    json_t  *e;

    json_array_foreach(errors, i, e) {
        if (strcmp(json_string_value(json_object_get(e, "field")), field)
            == 0)
        {
            return json_string_value(json_object_get(e, "message"));
        }
    }

    return "";
}


/* rc is an error and no success output was set */

static int
msgr_test_failed_cleanly(msgr_test_result_t *r, int rc)
{
    return r->rc == rc && r->stored == NULL && r->changes == NULL
           && r->resolved == NULL && json_is_array(r->errors);
}


static int
msgr_test_succeeded(msgr_test_result_t *r)
{
    if (r->rc != MSGR_SETTINGS_OK) {
        printf("# rc %d\n", r->rc);
        msgr_test_diag("errors", r->errors);
    }

    return r->rc == MSGR_SETTINGS_OK && r->errors == NULL
           && json_is_object(r->stored) && json_is_array(r->changes)
           && json_is_object(r->resolved);
}


/* patches {"tab":{"field":value}} with every capability */

static void
msgr_test_case(const char *field, const char *value, int good,
    const char *message)
{
    int                  ok;
    char                 tab[64], desc[200];
    const char          *dot, *msg;
    json_t              *v, *patch, *obj;
    msgr_test_result_t   r;

    dot = strchr(field, '.');
    memcpy(tab, field, dot - field);
    tab[dot - field] = '\0';

    v = msgr_test_raw_json(value);
    patch = json_object();
    obj = json_object();
    json_object_set_new(obj, dot + 1, v);
    json_object_set_new(patch, tab, obj);

    memset(&r, 0, sizeof(r));
    r.rc = msgr_settings_patch(NULL, MSGR_TEST_SCHOOL, NULL, patch,
                               msgr_test_all, &r.stored, &r.changes,
                               &r.resolved, &r.errors);

    snprintf(desc, sizeof(desc), "%s %s = %.60s%s",
             good ? "accepts" : "rejects", field, value,
             strlen(value) > 60 ? "..." : "");

    if (good) {
        ok = msgr_test_succeeded(&r)
             && json_equal(msgr_test_get(r.resolved, field), v)
             && json_equal(msgr_test_get(r.stored, field), v);

    } else {
        msg = msgr_test_message(r.errors, field);

        ok = msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
             && msgr_test_errors_are(r.errors, field)
             && (message == NULL || strcmp(msg, message) == 0);

        if (!ok) {
            printf("# message: %s\n", msg);
        }
    }

    if (!ok) {
        msgr_test_diag("errors", r.errors);
    }

    msgr_test_ok(ok, desc);

    json_decref(patch);
    msgr_test_free(&r);
}


static void
msgr_test_defaults(void)
{
    int            ok;
    char           desc[128], keys[1024];
    size_t         i, n;
    json_t        *d, *e, *tab, *v;
    const char    *name, *tname;

    static const char *const  defaults[][2] = {
        { "sending.pin_threshold", "1000" },
        { "sending.voice_calling", "\"first_number\"" },
        { "sending.sms_voice_routing", "\"sms_priority\"" },
        { "sending.allow_template_edit_on_compose", "false" },
        { "sending.default_send_to", "\"primary_contact\"" },
        { "sending.timetable_layout", "\"week_grid\"" },
        { "sending.report_warning_email", "false" },
        { "sending.include_translation_warning_link", "false" },
        { "sending.translation_warning_url", "\"\"" },
        { "sending.advanced_routing", "\"default\"" },
        { "sending.custom_priority",
          "[\"xpressions\",\"sms\",\"voice\",\"email\"]" },
        { "contacts.can_edit_imported_contacts", "false" },
        { "contacts.auto_sync_contacts", "true" },
        { "contacts.next_available_if_no_primary", "false" },
        { "contacts.show_registration_in_names", "false" },
        { "contacts.hide_staff_contact_details", "false" },
        { "security.enforce_password_change", "false" },
        { "security.password_strength", "\"any\"" },
        { "security.password_history", "\"previous\"" },
        { "school.name", "\"" MSGR_TEST_SCHOOL "\"" },
        { "school.address", "\"\"" },
        { "school.phone", "\"\"" },
        { "school.phone_country", "\"GB\"" },
        { "school.email", "\"\"" },
        { "school.website", "\"\"" },
        { "school.logo_url", "\"\"" },
        { "xpressions.backup_sms", "false" },
        { "xpressions.backup_sms_after_minutes", "30" },
        { "xpressions.incoming_enabled", "false" },
        { "mis.teachers_in_class_groups", "true" },
        { "mis.guest_students", "false" },
        { "mis.pre_admissions", "false" },
        { "mis.leavers_included", "false" },
        { "mis.attendance_by_reg_group", "false" },
        { "mis.leavers_persistence_days", "90" },
    };

    d = msgr_settings_resolve(NULL, MSGR_TEST_SCHOOL);
    msgr_test_ok(json_is_object(d), "resolve with no storage gives an object");

    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        v = msgr_test_get(d, defaults[i][0]);
        snprintf(desc, sizeof(desc), "default %s is %s", defaults[i][0],
                 defaults[i][1]);

        if (!msgr_test_ok(msgr_test_is(v, defaults[i][1]), desc)) {
            msgr_test_diag("got", v);
        }
    }

    /* exactly these tabs and fields, in this order */

    n = 0;
    keys[0] = '\0';

    json_object_foreach(d, tname, tab) {
        n += snprintf(keys + n, sizeof(keys) - n, "%s%s:", n ? ";" : "",
                      tname);
        i = 0;
        json_object_foreach(tab, name, v) {
            n += snprintf(keys + n, sizeof(keys) - n, "%s%s", i++ ? "," : "",
                          name);
        }
    }

    ok = strcmp(keys,
                "sending:pin_threshold,voice_calling,sms_voice_routing,"
                "allow_template_edit_on_compose,default_send_to,"
                "timetable_layout,report_warning_email,"
                "include_translation_warning_link,translation_warning_url,"
                "advanced_routing,"
                "custom_priority;"
                "contacts:can_edit_imported_contacts,auto_sync_contacts,"
                "next_available_if_no_primary,show_registration_in_names,"
                "hide_staff_contact_details;"
                "security:enforce_password_change,password_strength,"
                "password_history;"
                "school:name,address,phone,phone_country,email,website,"
                "logo_url;"
                "xpressions:backup_sms,backup_sms_after_minutes,"
                "incoming_enabled;"
                "mis:teachers_in_class_groups,guest_students,pre_admissions,"
                "leavers_included,attendance_by_reg_group,"
                "leavers_persistence_days")
         == 0;

    if (!msgr_test_ok(ok, "resolve has exactly the tabs and fields, in "
                      "table order"))
    {
        printf("# got: %s\n", keys);
    }

    e = json_object();
    v = msgr_settings_resolve(e, MSGR_TEST_SCHOOL);
    msgr_test_ok(json_equal(v, d), "resolve of {} equals resolve of NULL");
    json_decref(v);
    json_decref(e);

    e = msgr_test_raw_json("{\"school\":{\"name\":\"Beta Academy\"}}");
    v = msgr_settings_resolve(e, MSGR_TEST_SCHOOL);
    msgr_test_ok(msgr_test_is(msgr_test_get(v, "school.name"),
                              "\"Beta Academy\""),
                 "a stored school.name wins over school_name");
    json_decref(v);
    json_decref(e);

    v = msgr_settings_resolve(NULL, "Gamma \xc3\x89" "cole");
    msgr_test_ok(msgr_test_is(msgr_test_get(v, "school.name"),
                              "\"Gamma \xc3\x89" "cole\""),
                 "school.name defaults to the school_name given");
    json_decref(v);

    json_decref(d);

    msgr_test_ok(msgr_settings_tab_known("sending", 7)
                 && msgr_settings_tab_known("mis", 3)
                 && msgr_settings_tab_known("xpressions", 10)
                 && !msgr_settings_tab_known("sendingx", 8)
                 && !msgr_settings_tab_known("send", 4)
                 && msgr_settings_tab_known("schoolX", 6)
                 && !msgr_settings_tab_known("", 0),
                 "tab_known honours the length given");
}


static void
msgr_test_fields(void)
{
    size_t  i;

    static const msgr_test_case_t  cases[] = {

        { "sending.pin_threshold", "1", 1, NULL },
        { "sending.pin_threshold", "1000000", 1, NULL },
        { "sending.pin_threshold", "250", 1, NULL },
        { "sending.pin_threshold", "0", 0,
          "must be an integer from 1 to 1000000" },
        { "sending.pin_threshold", "1000001", 0,
          "must be an integer from 1 to 1000000" },
        { "sending.pin_threshold", "-5", 0, NULL },
        { "sending.pin_threshold", "1.0", 0, NULL },
        { "sending.pin_threshold", "\"5\"", 0, NULL },
        { "sending.pin_threshold", "true", 0, NULL },

        { "sending.voice_calling", "\"all_numbers\"", 1, NULL },
        { "sending.voice_calling", "\"first_number\"", 1, NULL },
        { "sending.voice_calling", "\"home\"", 0,
          "must be one of: first_number, all_numbers" },
        { "sending.voice_calling", "\"ALL_NUMBERS\"", 0, NULL },
        { "sending.voice_calling", "1", 0, NULL },

        { "sending.sms_voice_routing", "\"voice_priority\"", 1, NULL },
        { "sending.sms_voice_routing", "\"send_both\"", 1, NULL },
        { "sending.sms_voice_routing", "\"both\"", 0,
          "must be one of: sms_priority, voice_priority, send_both" },

        { "sending.allow_template_edit_on_compose", "true", 1, NULL },
        { "sending.allow_template_edit_on_compose", "1", 0,
          "must be a boolean" },
        { "sending.allow_template_edit_on_compose", "\"true\"", 0,
          "must be a boolean" },

        { "sending.default_send_to", "\"last_chosen\"", 1, NULL },
        { "sending.default_send_to", "\"everyone\"", 0,
          "must be one of: primary_contact, last_chosen" },

        { "sending.timetable_layout", "\"day_list\"", 1, NULL },
        { "sending.timetable_layout", "\"week_list\"", 1, NULL },
        { "sending.timetable_layout", "\"month_grid\"", 0,
          "must be one of: week_grid, week_list, day_list" },

        { "sending.report_warning_email", "true", 1, NULL },
        { "sending.report_warning_email", "0", 0, "must be a boolean" },

        { "sending.include_translation_warning_link", "true", 1, NULL },
        { "sending.include_translation_warning_link", "\"yes\"", 0,
          "must be a boolean" },

        { "sending.translation_warning_url",
          "\"https://school.example/translations\"", 1, NULL },
        { "sending.translation_warning_url", "\"\"", 1, NULL },
        { "sending.translation_warning_url", "\"school.example\"", 0, NULL },

        { "sending.advanced_routing", "\"least_cost\"", 1, NULL },
        { "sending.advanced_routing", "\"fastest\"", 1, NULL },
        { "sending.advanced_routing", "\"custom\"", 1, NULL },
        { "sending.advanced_routing", "\"cheapest\"", 0,
          "must be one of: default, least_cost, fastest, custom" },

        { "sending.custom_priority", "[\"email\",\"sms\"]", 1, NULL },
        { "sending.custom_priority", "[\"voice\"]", 1, NULL },
        { "sending.custom_priority",
          "[\"email\",\"voice\",\"sms\",\"xpressions\"]", 1, NULL },
        { "sending.custom_priority", "[]", 1, NULL },
        { "sending.custom_priority", "[\"sms\",\"email\",\"sms\"]", 0,
          "must not list a channel twice" },
        { "sending.custom_priority", "[\"sms\",\"fax\"]", 0,
          "must list only: xpressions, sms, voice, email" },
        { "sending.custom_priority", "[\"SMS\"]", 0, NULL },
        { "sending.custom_priority", "[1]", 0, NULL },
        { "sending.custom_priority", "[[\"sms\"]]", 0, NULL },
        { "sending.custom_priority", "\"sms\"", 0, NULL },
        { "sending.custom_priority", "{\"sms\":1}", 0, NULL },

        { "contacts.can_edit_imported_contacts", "true", 1, NULL },
        { "contacts.can_edit_imported_contacts", "1", 0,
          "must be a boolean" },
        { "contacts.auto_sync_contacts", "false", 1, NULL },
        { "contacts.auto_sync_contacts", "\"false\"", 0,
          "must be a boolean" },
        { "contacts.next_available_if_no_primary", "true", 1, NULL },
        { "contacts.next_available_if_no_primary", "0", 0, NULL },
        { "contacts.show_registration_in_names", "true", 1, NULL },
        { "contacts.show_registration_in_names", "[]", 0, NULL },
        { "contacts.hide_staff_contact_details", "true", 1, NULL },
        { "contacts.hide_staff_contact_details", "{}", 0, NULL },

        { "security.enforce_password_change", "true", 1, NULL },
        { "security.enforce_password_change", "1", 0,
          "must be a boolean" },
        { "security.password_strength", "\"very_strong\"", 1, NULL },
        { "security.password_strength", "\"medium\"", 1, NULL },
        { "security.password_strength", "\"strong\"", 1, NULL },
        { "security.password_strength", "\"weak\"", 0,
          "must be one of: any, medium, strong, very_strong" },
        { "security.password_history", "\"last_5\"", 1, NULL },
        { "security.password_history", "\"last_10\"", 0,
          "must be one of: previous, last_5" },

        { "school.name", "\"St Mary's C of E Primary\"", 1, NULL },
        { "school.name", "\"X\"", 1, NULL },
        { "school.name", "\" Leading and trailing \"", 1, NULL },
        { "school.name", "\"\"", 0, "must not be empty" },
        { "school.name", "\"   \"", 0, "must not be blank" },
        { "school.name", "null", 0, "must not be null" },
        { "school.name", "5", 0, "must be a string" },

        { "school.address", "\"1 High Street\\nLittle Town\\nAB1 2CD\"", 1,
          NULL },
        { "school.address", "\"\"", 1, NULL },
        { "school.address", "7", 0, "must be a string" },
        { "school.address", "[\"1 High Street\"]", 0, NULL },

        { "school.phone", "\"+44 (0)20 7946-0958\"", 1, NULL },
        { "school.phone", "\"01632 960123\"", 1, NULL },
        { "school.phone", "\"12345\"", 1, NULL },
        { "school.phone", "\"\"", 1, NULL },
        { "school.phone", "\"1234\"", 0, NULL },
        { "school.phone", "\"(01) 2-3\"", 0, NULL },
        { "school.phone", "\"01632 96O123\"", 0, NULL },
        { "school.phone", "\"44+ 1632 960123\"", 0, NULL },
        { "school.phone", "\"++44 1632 960123\"", 0, NULL },
        { "school.phone", "\" 01632 960123\"", 0, NULL },
        { "school.phone", "\"01632 960123 \"", 0, NULL },
        { "school.phone", "\"01632\\t960123\"", 0, NULL },
        { "school.phone", "\"01632 960123 ext 4\"", 0, NULL },
        { "school.phone", "1632960123", 0, "must be a string" },

        { "school.phone_country", "\"IE\"", 1, NULL },
        { "school.phone_country", "\"XX\"", 0, NULL },
        { "school.phone_country", "\"gb\"", 0, NULL },
        { "school.phone_country", "\"\"", 0, NULL },

        { "school.email", "\"office@school.example\"", 1, NULL },
        { "school.email", "\"first.last+tag@mail.school.example\"", 1,
          NULL },
        { "school.email", "\"\xc3\xa9l\xc3\xa8ve@\xc3\xa9" "cole.example\"",
          1, NULL },
        { "school.email", "\"\"", 1, NULL },
        { "school.email", "\"office\"", 0, NULL },
        { "school.email", "\"office@school\"", 0, NULL },
        { "school.email", "\"@school.example\"", 0, NULL },
        { "school.email", "\"office@\"", 0, NULL },
        { "school.email", "\"of fice@school.example\"", 0, NULL },
        { "school.email", "\" office@school.example\"", 0, NULL },
        { "school.email", "\"office@school.example \"", 0, NULL },
        { "school.email", "\"a@b@school.example\"", 0, NULL },
        { "school.email", "\"office@.school.example\"", 0, NULL },
        { "school.email", "\"office@school.example.\"", 0, NULL },
        { "school.email", "\"office@school..example\"", 0, NULL },
        { "school.email", "\"office@school.example\\n\"", 0, NULL },
        { "school.email", "true", 0, "must be a string" },

        { "school.website", "\"https://school.example/\"", 1, NULL },
        { "school.website", "\"http://school.example\"", 1, NULL },
        { "school.website", "\"HTTPS://school.example:8443/a?b=c#d\"", 1,
          NULL },
        { "school.website", "\"https://[2001:db8::1]/\"", 1, NULL },
        { "school.website", "\"https://\xc3\xa9" "cole.example/caf\xc3\xa9\"",
          1, NULL },
        { "school.website", "\"\"", 1, NULL },
        { "school.website", "\"ftp://school.example/\"", 0, NULL },
        { "school.website", "\"school.example\"", 0, NULL },
        { "school.website", "\"//school.example/\"", 0, NULL },
        { "school.website", "\"https://\"", 0, NULL },
        { "school.website", "\"https:///path\"", 0, NULL },
        { "school.website", "\"https://:443/\"", 0, NULL },
        { "school.website", "\"https://[]/\"", 0, NULL },
        { "school.website", "\"https://[::1/\"", 0, NULL },
        { "school.website", "\"https://user@/\"", 0, NULL },
        { "school.website", "\"https://school.example:port/\"", 0, NULL },
        { "school.website", "\"https://school.example/a b\"", 0, NULL },
        { "school.website", "\" https://school.example/\"", 0, NULL },
        { "school.website", "\"https://school.example/ \"", 0, NULL },
        { "school.website", "\"https://school.example/<script>\"", 0, NULL },
        { "school.website", "\"javascript:alert(1)\"", 0, NULL },
        { "school.website", "1", 0, "must be a string" },

        { "school.logo_url", "\"https://cdn.school.example/logo.png\"", 1,
          NULL },
        { "school.logo_url", "\"\"", 1, NULL },
        { "school.logo_url", "\"/logo.png\"", 0, NULL },
        { "school.logo_url", "\"data:image/png;base64,AAAA\"", 0, NULL },
        { "school.logo_url", "\"https://cdn.school.example/\\u0001.png\"", 0,
          NULL },

        { "xpressions.backup_sms", "true", 1, NULL },
        { "xpressions.backup_sms", "1", 0, "must be a boolean" },
        { "xpressions.backup_sms_after_minutes", "5", 1, NULL },
        { "xpressions.backup_sms_after_minutes", "120", 1, NULL },
        { "xpressions.backup_sms_after_minutes", "1440", 1, NULL },
        { "xpressions.backup_sms_after_minutes", "20", 0,
          "must be one of: 5, 10, 15, 30, 60, 120, 240, 480, 720, 1440" },
        { "xpressions.backup_sms_after_minutes", "-1", 0, NULL },
        { "xpressions.backup_sms_after_minutes", "\"30\"", 0, NULL },
        { "xpressions.backup_sms_after_minutes", "30.0", 0, NULL },
        { "xpressions.incoming_enabled", "true", 1, NULL },
        { "xpressions.incoming_enabled", "\"on\"", 0, "must be a boolean" },

        { "mis.teachers_in_class_groups", "false", 1, NULL },
        { "mis.teachers_in_class_groups", "0", 0, "must be a boolean" },
        { "mis.guest_students", "true", 1, NULL },
        { "mis.guest_students", "\"true\"", 0, "must be a boolean" },
        { "mis.pre_admissions", "true", 1, NULL },
        { "mis.pre_admissions", "1", 0, "must be a boolean" },
        { "mis.leavers_included", "true", 1, NULL },
        { "mis.leavers_included", "1", 0, "must be a boolean" },
        { "mis.attendance_by_reg_group", "true", 1, NULL },
        { "mis.attendance_by_reg_group", "[true]", 0, "must be a boolean" },
        { "mis.leavers_persistence_days", "1", 1, NULL },
        { "mis.leavers_persistence_days", "3650", 1, NULL },
        { "mis.leavers_persistence_days", "180", 1, NULL },
        { "mis.leavers_persistence_days", "0", 0,
          "must be an integer from 1 to 3650" },
        { "mis.leavers_persistence_days", "3651", 0,
          "must be an integer from 1 to 3650" },
        { "mis.leavers_persistence_days", "90.5", 0, NULL },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msgr_test_case(cases[i].field, cases[i].value, cases[i].good,
                       cases[i].message);
    }
}


/* length limits count characters, not bytes */

static void
msgr_test_lengths(void)
{
    size_t  i, n;
    char   *v;

    static const struct {
        const char  *field;
        const char  *prefix;
        const char  *unit;
        size_t       n;
        const char  *suffix;
        int          good;
    } cases[] = {
        /* 200 2-byte characters: 400 bytes */
        { "school.name", "", "\xc3\xa9", 200, "", 1 },
        { "school.name", "", "\xc3\xa9", 201, "", 0 },
        /* 200 4-byte characters: 800 bytes */
        { "school.name", "", "\xf0\x9f\x98\x80", 200, "", 1 },
        { "school.name", "", "a", 201, "", 0 },
        /* 500 3-byte characters: 1500 bytes */
        { "school.address", "", "\xe2\x82\xac", 500, "", 1 },
        { "school.address", "", "\xe2\x82\xac", 501, "", 0 },
        { "school.phone", "", "1", 32, "", 1 },
        { "school.phone", "", "1", 33, "", 0 },
        /* a local part of 64 2-byte characters: 128 bytes */
        { "school.email", "", "\xc3\xa9", 64, "@school.example", 1 },
        { "school.email", "", "a", 65, "@school.example", 0 },
        /* 64 + 1 + 181 + 8 = 254 characters, then 255 */
        { "school.email", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaa@", "b", 181, ".example", 1 },
        { "school.email", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaa@", "b", 182, ".example", 0 },
        /* 23 + 1977 = 2000 characters, 3977 bytes */
        { "school.website", "https://school.example/", "\xc3\xa9", 1977, "",
          1 },
        { "school.website", "https://school.example/", "a", 1978, "", 0 },
        { "school.logo_url", "https://school.example/", "a", 1977, "", 1 },
        { "school.logo_url", "https://school.example/", "a", 1978, "", 0 },
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        v = msgr_test_repeat(cases[i].prefix, cases[i].unit, cases[i].n,
                             cases[i].suffix);
        n = cases[i].n;

        printf("# %s: %zu x %zu-byte character(s)\n", cases[i].field, n,
               strlen(cases[i].unit));

        msgr_test_case(cases[i].field, v, cases[i].good, NULL);
        free(v);
    }

    v = msgr_test_repeat("", "\xc3\xa9", 201, "");
    msgr_test_case("school.name", v, 0, "must be at most 200 characters");
    free(v);
}


static void
msgr_test_structure(void)
{
    msgr_test_result_t  r;

    msgr_test_patch(&r, NULL, NULL, "{\"sendnig\":{\"pin_threshold\":5}}",
                    msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sendnig")
                 && strcmp(msgr_test_message(r.errors, "sendnig"),
                           "unknown tab; tabs are: sending, contacts, "
                           "security, school, xpressions, mis") == 0,
                 "an unknown tab is rejected, listing the tabs");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL, "{\"sending\":{\"pin_treshold\":5}}",
                    msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending.pin_treshold")
                 && strcmp(msgr_test_message(r.errors,
                                             "sending.pin_treshold"),
                           "unknown field") == 0,
                 "an unknown field is rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"contacts\":{\"pin_threshold\":5}}", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "contacts.pin_threshold"),
                 "a field under another tab is an unknown field");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"sending\":[1],\"contacts\":true,\"mis\":null}",
                    msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending,contacts,mis")
                 && strcmp(msgr_test_message(r.errors, "contacts"),
                           "must be an object") == 0,
                 "tabs given non-objects (array, boolean, null) are "
                 "rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL, "[]", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "")
                 && strcmp(msgr_test_message(r.errors, ""),
                           "must be an object") == 0,
                 "a whole patch that is not an object: field \"\"");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "security", "\"strong\"", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "security"),
                 "a tab patch that is not an object: field is the tab");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "billing", "{}", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "billing"),
                 "a tab patch to an unknown tab is rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "security",
                    "{\"password_strength\":\"strong\"}", msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(r.stored, "{\"security\":"
                                 "{\"password_strength\":\"strong\"}}")
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "security.password_strength"),
                                 "\"strong\""),
                 "a tab patch sets a field of that tab");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "security",
                    "{\"security\":{\"password_strength\":\"strong\"}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "security.security"),
                 "a tab patch is not a whole-object patch");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "sending",
                    "{\"pin_threshold\":0,\"voice_calling\":\"all_numbers\","
                    "\"bogus\":1}", msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors,
                                         "sending.pin_threshold,"
                                         "sending.bogus"),
                 "a tab patch names its bad fields as tab.field");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL, "{}", msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && json_array_size(r.changes) == 0
                 && json_object_size(r.stored) == 0,
                 "an empty patch succeeds and changes nothing");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL, "{\"school\":{}}", msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && json_array_size(r.changes) == 0
                 && json_object_size(r.stored) == 0,
                 "an empty tab succeeds and stores no empty tab");
    msgr_test_free(&r);
}


static void
msgr_test_null(void)
{
    json_t              *c;
    msgr_test_result_t   r;

    msgr_test_patch(&r,
                    "{\"sending\":{\"pin_threshold\":50,"
                    "\"voice_calling\":\"all_numbers\"},"
                    "\"school\":{\"phone\":\"01632 960123\"}}",
                    NULL,
                    "{\"sending\":{\"pin_threshold\":null},"
                    "\"school\":{\"phone\":null}}",
                    msgr_test_none);

    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(r.stored, "{\"sending\":"
                                 "{\"voice_calling\":\"all_numbers\"}}"),
                 "null removes the overrides (and the emptied tab)");

    msgr_test_ok(r.resolved != NULL
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "sending.pin_threshold"),
                                 "1000")
                 && msgr_test_is(msgr_test_get(r.resolved, "school.phone"),
                                 "\"\"")
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "sending.voice_calling"),
                                 "\"all_numbers\""),
                 "null resets to the default, other overrides stay");

    c = r.changes;
    msgr_test_ok(json_array_size(c) == 2
                 && msgr_test_is(json_array_get(c, 0),
                                 "{\"tab\":\"sending\","
                                 "\"field\":\"pin_threshold\","
                                 "\"old\":50,\"new\":1000}")
                 && msgr_test_is(json_array_get(c, 1),
                                 "{\"tab\":\"school\",\"field\":\"phone\","
                                 "\"old\":\"01632 960123\",\"new\":\"\"}"),
                 "a reset is a change from the override to the default");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL, "{\"sending\":{\"pin_threshold\":null}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && json_array_size(r.changes) == 0
                 && json_object_size(r.stored) == 0,
                 "null on a field never set changes nothing");
    msgr_test_free(&r);

    msgr_test_patch(&r, "{\"school\":{\"name\":\"Beta Academy\"}}", "school",
                    "{\"name\":null}", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "school.name"),
                 "school.name cannot be reset with null");
    msgr_test_free(&r);

    msgr_test_patch(&r, "{\"school\":{\"name\":\"Beta Academy\"}}", "school",
                    "{\"name\":\"\"}", msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "school.name"),
                 "school.name cannot be emptied");
    msgr_test_free(&r);
}


static void
msgr_test_forbidden(void)
{
    msgr_test_result_t  r;

    msgr_test_patch(&r, NULL, NULL,
                    "{\"mis\":{\"teachers_in_class_groups\":true,"
                    "\"guest_students\":true,\"pre_admissions\":true,"
                    "\"leavers_included\":true,"
                    "\"attendance_by_reg_group\":true,"
                    "\"leavers_persistence_days\":30}}",
                    msgr_test_enhanced);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_FORBIDDEN)
                 && msgr_test_errors_are(r.errors,
                                         "mis.guest_students,"
                                         "mis.pre_admissions,"
                                         "mis.leavers_included,"
                                         "mis.attendance_by_reg_group,"
                                         "mis.leavers_persistence_days")
                 && strcmp(msgr_test_message(r.errors, "mis.guest_students"),
                           "read-only: the MIS settings are changed by your "
                           "operator") == 0,
                 "every mis field is forbidden without operator; "
                 "sending its current value is no change");
    msgr_test_free(&r);

    {
        char    *whole;
        json_t  *all;

        /* a client may send back the whole object it read */
        all = msgr_settings_resolve(NULL, MSGR_TEST_SCHOOL);
        whole = json_dumps(all, JSON_COMPACT);
        json_decref(all);

        msgr_test_patch(&r, NULL, NULL, whole, msgr_test_none);
        msgr_test_ok(msgr_test_succeeded(&r)
                     && json_array_size(r.changes) == 0,
                     "the whole resolved object patched back: no change, "
                     "no 403 for read-only fields");
        msgr_test_free(&r);
        free(whole);
    }

    msgr_test_patch(&r, "{\"mis\":{\"guest_students\":true}}", "mis",
                    "{\"guest_students\":null}", msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_FORBIDDEN)
                 && msgr_test_errors_are(r.errors, "mis.guest_students"),
                 "a mis field cannot be reset with null without operator");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"mis\":{\"guest_students\":true,"
                    "\"leavers_persistence_days\":30}}",
                    msgr_test_operator);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "mis.guest_students"),
                                 "true")
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "mis.leavers_persistence_days"),
                                 "30")
                 && json_array_size(r.changes) == 2,
                 "mis fields may be written by an operator");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"sending\":{\"timetable_layout\":\"day_list\","
                    "\"report_warning_email\":true}}",
                    msgr_test_operator);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_FORBIDDEN)
                 && msgr_test_errors_are(r.errors,
                                         "sending.timetable_layout,"
                                         "sending.report_warning_email")
                 && strcmp(msgr_test_message(r.errors,
                                             "sending.timetable_layout"),
                           "needs Enhanced Messenger") == 0,
                 "enhanced fields are forbidden without Enhanced Messenger "
                 "(even to an operator)");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "sending",
                    "{\"timetable_layout\":\"day_list\","
                    "\"report_warning_email\":true}",
                    msgr_test_enhanced);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(r.stored,
                                 "{\"sending\":{\"timetable_layout\":"
                                 "\"day_list\",\"report_warning_email\":"
                                 "true}}"),
                 "enhanced fields are allowed with Enhanced Messenger");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"sending\":{\"pin_threshold\":0,"
                    "\"timetable_layout\":\"day_list\"},"
                    "\"bogus\":{},"
                    "\"mis\":{\"guest_students\":\"yes\"}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_FORBIDDEN)
                 && msgr_test_errors_are(r.errors,
                                         "sending.timetable_layout,"
                                         "mis.guest_students"),
                 "forbidden wins over invalid and names only the forbidden "
                 "fields");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"sending\":{\"enhanced_messenger\":true}}",
                    msgr_test_all);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_FORBIDDEN)
                 && msgr_test_errors_are(r.errors,
                                         "sending.enhanced_messenger"),
                 "sending.enhanced_messenger is never writable here");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"mis\":{\"guest_students\":1}}", msgr_test_operator);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "mis.guest_students"),
                 "an operator's bad mis value is invalid, not forbidden");
    msgr_test_free(&r);
}


static void
msgr_test_rules(void)
{
    msgr_test_result_t  r;

    msgr_test_patch(&r, NULL, "sending",
                    "{\"advanced_routing\":\"custom\","
                    "\"custom_priority\":[]}", msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending.custom_priority")
                 && strcmp(msgr_test_message(r.errors,
                                             "sending.custom_priority"),
                           "must not be empty when advanced_routing is "
                           "custom") == 0,
                 "custom routing with an empty custom_priority is rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, "{\"sending\":{\"custom_priority\":[]}}", NULL,
                    "{\"sending\":{\"advanced_routing\":\"custom\"}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending.custom_priority"),
                 "the rule holds on the result: custom over a stored "
                 "empty custom_priority is rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, "{\"sending\":{\"advanced_routing\":\"custom\"}}",
                    NULL, "{\"sending\":{\"custom_priority\":[]}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending.custom_priority"),
                 "emptying custom_priority under stored custom routing is "
                 "rejected");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "sending",
                    "{\"advanced_routing\":\"custom\","
                    "\"custom_priority\":[\"email\",\"xpressions\"]}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "sending.custom_priority"),
                                 "[\"email\",\"xpressions\"]"),
                 "custom routing with a non-empty custom_priority is "
                 "accepted, in its order");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "sending",
                    "{\"advanced_routing\":\"custom\"}", msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r),
                 "custom routing with the default custom_priority is "
                 "accepted");
    msgr_test_free(&r);

    msgr_test_patch(&r,
                    "{\"sending\":{\"advanced_routing\":\"custom\","
                    "\"custom_priority\":[]}}",
                    NULL, "{\"sending\":{\"advanced_routing\":\"fastest\"}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r),
                 "leaving custom routing makes an empty custom_priority "
                 "fine");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, "sending",
                    "{\"advanced_routing\":\"custom\","
                    "\"custom_priority\":[\"sms\",\"sms\"]}", msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors, "sending.custom_priority")
                 && strcmp(msgr_test_message(r.errors,
                                             "sending.custom_priority"),
                           "must not list a channel twice") == 0,
                 "a bad custom_priority is named once, for its own error");
    msgr_test_free(&r);
}


static void
msgr_test_all_or_nothing(void)
{
    char                *before, *after;
    json_t              *stored, *new_stored, *changes, *resolved, *errors;
    msgr_test_result_t   r;

    msgr_test_patch(&r, "{\"sending\":{\"pin_threshold\":50}}", NULL,
                    "{\"sending\":{\"voice_calling\":\"all_numbers\","
                    "\"sms_voice_routing\":\"both\"},"
                    "\"security\":{\"enforce_password_change\":true,"
                    "\"password_history\":5}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors,
                                         "sending.sms_voice_routing,"
                                         "security.password_history"),
                 "good and bad fields: INVALID naming exactly the bad ones, "
                 "no new_stored");
    msgr_test_free(&r);

    msgr_test_patch(&r, NULL, NULL,
                    "{\"sending\":{\"pin_threshold\":\"x\","
                    "\"voice_calling\":0,\"sms_voice_routing\":0,"
                    "\"allow_template_edit_on_compose\":0,"
                    "\"default_send_to\":0,"
                    "\"include_translation_warning_link\":0,"
                    "\"advanced_routing\":0,\"custom_priority\":0},"
                    "\"contacts\":{\"auto_sync_contacts\":0},"
                    "\"school\":{\"name\":0,\"email\":\"x\"},"
                    "\"nope\":{},"
                    "\"xpressions\":{\"backup_sms_after_minutes\":7}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_failed_cleanly(&r, MSGR_SETTINGS_INVALID)
                 && msgr_test_errors_are(r.errors,
                                         "sending.pin_threshold,"
                                         "sending.voice_calling,"
                                         "sending.sms_voice_routing,"
                                         "sending.allow_template_edit_on_"
                                         "compose,"
                                         "sending.default_send_to,"
                                         "sending.include_translation_"
                                         "warning_link,"
                                         "sending.advanced_routing,"
                                         "sending.custom_priority,"
                                         "contacts.auto_sync_contacts,"
                                         "school.name,school.email,nope,"
                                         "xpressions.backup_sms_after_"
                                         "minutes"),
                 "every bad field is named, in patch order");
    msgr_test_free(&r);

    /* stored is never modified, on success or failure */

    stored = msgr_test_raw_json("{\"sending\":{\"pin_threshold\":50},"
                            "\"contacts\":{\"auto_sync_contacts\":false}}");
    before = json_dumps(stored, JSON_COMPACT);

    resolved = msgr_test_raw_json("{\"sending\":{\"pin_threshold\":null},"
                              "\"contacts\":{\"hide_staff_contact_details\":"
                              "true}}");
    new_stored = changes = errors = NULL;

    (void) msgr_settings_patch(stored, MSGR_TEST_SCHOOL, NULL, resolved,
                               msgr_test_none, &new_stored, &changes, NULL,
                               &errors);
    json_decref(resolved);
    resolved = NULL;

    after = json_dumps(stored, JSON_COMPACT);

    msgr_test_ok(strcmp(before, after) == 0 && errors == NULL
                 && msgr_test_is(new_stored,
                                 "{\"contacts\":{\"auto_sync_contacts\":"
                                 "false,\"hide_staff_contact_details\":"
                                 "true}}"),
                 "a successful patch leaves stored as it was; NULL outputs "
                 "are allowed");

    json_decref(new_stored);
    json_decref(changes);
    free(after);

    resolved = msgr_test_raw_json("{\"sending\":{\"pin_threshold\":null,"
                              "\"voice_calling\":\"x\"}}");
    (void) msgr_settings_patch(stored, MSGR_TEST_SCHOOL, NULL, resolved,
                               msgr_test_none, NULL, NULL, NULL, &errors);
    json_decref(resolved);

    after = json_dumps(stored, JSON_COMPACT);
    msgr_test_ok(strcmp(before, after) == 0
                 && msgr_test_errors_are(errors, "sending.voice_calling"),
                 "a failed patch leaves stored as it was");

    json_decref(errors);
    json_decref(stored);
    free(before);
    free(after);
}


static void
msgr_test_changes(void)
{
    int                  ok;
    msgr_test_result_t   r;

    /* given in reverse table order; changes come in table order */

    msgr_test_patch(&r,
                    "{\"sending\":{\"pin_threshold\":50},"
                    "\"school\":{\"phone\":\"01632 960123\"}}",
                    NULL,
                    "{\"xpressions\":{\"backup_sms_after_minutes\":60,"
                    "\"backup_sms\":false},"
                    "\"school\":{\"name\":\"Alpha Academy\","
                    "\"phone\":\"01632 960123\"},"
                    "\"sending\":{\"custom_priority\":[\"sms\"],"
                    "\"pin_threshold\":50,\"voice_calling\":\"all_numbers\"}}",
                    msgr_test_none);

    ok = msgr_test_succeeded(&r)
         && msgr_test_is(r.changes,
                         "[{\"tab\":\"sending\","
                         "\"field\":\"voice_calling\","
                         "\"old\":\"first_number\","
                         "\"new\":\"all_numbers\"},"
                         "{\"tab\":\"sending\","
                         "\"field\":\"custom_priority\","
                         "\"old\":[\"xpressions\",\"sms\",\"voice\","
                         "\"email\"],\"new\":[\"sms\"]},"
                         "{\"tab\":\"school\",\"field\":\"name\","
                         "\"old\":\"" MSGR_TEST_SCHOOL "\","
                         "\"new\":\"Alpha Academy\"},"
                         "{\"tab\":\"xpressions\","
                         "\"field\":\"backup_sms_after_minutes\","
                         "\"old\":30,\"new\":60}]");

    if (!msgr_test_ok(ok, "changes list old and new of changed fields only, "
                      "in table order"))
    {
        msgr_test_diag("changes", r.changes);
    }

    msgr_test_ok(r.stored != NULL
                 && msgr_test_is(r.stored,
                                 "{\"sending\":{\"pin_threshold\":50,"
                                 "\"custom_priority\":[\"sms\"],"
                                 "\"voice_calling\":\"all_numbers\"},"
                                 "\"school\":{\"phone\":\"01632 960123\","
                                 "\"name\":\"Alpha Academy\"},"
                                 "\"xpressions\":"
                                 "{\"backup_sms_after_minutes\":60,"
                                 "\"backup_sms\":false}}"),
                 "new_stored holds the old and the new overrides");

    msgr_test_ok(r.resolved != NULL
                 && msgr_test_is(msgr_test_get(r.resolved, "school.name"),
                                 "\"Alpha Academy\"")
                 && msgr_test_is(msgr_test_get(r.resolved,
                                               "sending.pin_threshold"),
                                 "50"),
                 "resolved is the new full object");

    if (r.resolved != NULL) {
        json_t  *again = msgr_settings_resolve(r.stored, MSGR_TEST_SCHOOL);

        msgr_test_ok(json_equal(again, r.resolved),
                     "resolved equals resolve(new_stored)");
        json_decref(again);

    } else {
        msgr_test_ok(0, "resolved equals resolve(new_stored)");
    }

    msgr_test_free(&r);

    msgr_test_patch(&r, "{\"sending\":{\"pin_threshold\":50}}", NULL,
                    "{\"sending\":{\"pin_threshold\":50,"
                    "\"voice_calling\":\"first_number\"},"
                    "\"contacts\":{\"auto_sync_contacts\":true}}",
                    msgr_test_none);
    msgr_test_ok(msgr_test_succeeded(&r)
                 && json_array_size(r.changes) == 0,
                 "a no-op patch gives empty changes");
    msgr_test_free(&r);
}


static void
msgr_test_stale(void)
{
    json_t              *stored, *v, *d;
    msgr_test_result_t   r;

    stored = msgr_test_raw_json(
        "{\"sending\":{\"pin_threshold\":0,\"voice_calling\":\"bogus\","
        "\"allow_template_edit_on_compose\":1,"
        "\"custom_priority\":[\"sms\",\"fax\"],\"retired_field\":true,"
        "\"sms_voice_routing\":\"send_both\"},"
        "\"contacts\":[true],"
        "\"school\":{\"name\":\"\",\"email\":\"not an email\","
        "\"phone\":null},"
        "\"xpressions\":{\"backup_sms_after_minutes\":7},"
        "\"mis\":{\"leavers_persistence_days\":99999},"
        "\"retired_tab\":{\"x\":1}}");

    v = msgr_settings_resolve(stored, MSGR_TEST_SCHOOL);
    d = msgr_settings_resolve(NULL, MSGR_TEST_SCHOOL);

    msgr_test_ok(v != NULL
                 && msgr_test_is(msgr_test_get(v, "sending.pin_threshold"),
                                 "1000")
                 && msgr_test_is(msgr_test_get(v, "sending.voice_calling"),
                                 "\"first_number\"")
                 && msgr_test_is(msgr_test_get(v, "sending.custom_priority"),
                                 "[\"xpressions\",\"sms\",\"voice\","
                                 "\"email\"]")
                 && msgr_test_is(msgr_test_get(v, "school.name"),
                                 "\"" MSGR_TEST_SCHOOL "\"")
                 && msgr_test_is(msgr_test_get(v, "school.email"), "\"\"")
                 && msgr_test_is(msgr_test_get(
                                     v, "xpressions.backup_sms_after_minutes"),
                                 "30")
                 && msgr_test_is(msgr_test_get(
                                     v, "mis.leavers_persistence_days"),
                                 "90"),
                 "stored values that no longer validate give the default");

    msgr_test_ok(v != NULL
                 && msgr_test_is(msgr_test_get(v, "sending.sms_voice_routing"),
                                 "\"send_both\"")
                 && msgr_test_get(v, "sending.retired_field") == NULL
                 && json_object_get(v, "retired_tab") == NULL
                 && json_equal(json_object_get(v, "contacts"),
                               json_object_get(d, "contacts")),
                 "valid stored values are kept; unknown fields and tabs "
                 "are not shown");

    json_decref(v);
    json_decref(d);

    /* a patch over stale storage: untouched entries are kept as they are */

    memset(&r, 0, sizeof(r));
    v = msgr_test_raw_json("{\"contacts\":{\"auto_sync_contacts\":false},"
                       "\"sending\":{\"pin_threshold\":null}}");
    r.rc = msgr_settings_patch(stored, MSGR_TEST_SCHOOL, NULL, v,
                               msgr_test_none, &r.stored, &r.changes,
                               &r.resolved, &r.errors);
    json_decref(v);

    msgr_test_ok(msgr_test_succeeded(&r)
                 && msgr_test_is(json_object_get(r.stored, "contacts"),
                                 "{\"auto_sync_contacts\":false}")
                 && msgr_test_get(r.stored, "sending.pin_threshold") == NULL
                 && msgr_test_is(msgr_test_get(r.stored,
                                               "sending.voice_calling"),
                                 "\"bogus\"")
                 && json_object_get(r.stored, "retired_tab") != NULL,
                 "a patch over stale storage replaces a non-object tab and "
                 "keeps what it does not touch");

    msgr_test_ok(r.changes != NULL
                 && msgr_test_is(r.changes,
                                 "[{\"tab\":\"contacts\","
                                 "\"field\":\"auto_sync_contacts\","
                                 "\"old\":true,\"new\":false}]"),
                 "resetting an ignored stored value is not a change");

    msgr_test_free(&r);
    json_decref(stored);
}


static void
msgr_test_docs(void)
{
    char    *buf;
    FILE    *f;
    size_t   len;

    buf = NULL;
    len = 0;

    f = open_memstream(&buf, &len);
    if (f == NULL) {
        msgr_test_ok(0, "open_memstream");
        return;
    }

    msgr_settings_doc(f);
    fclose(f);

    msgr_test_ok(strncmp(buf, "<!-- Generated from src/msgr_settings.c by "
                         "`make docs`", 50) == 0,
                 "the docs say first that they are generated");

    msgr_test_ok(strstr(buf, "\n## sending\n") != NULL
                 && strstr(buf, "\n## mis\n") != NULL
                 && strstr(buf, "| `pin_threshold` | integer | 1 to 1000000 "
                           "| `1000` |") != NULL
                 && strstr(buf, "| `leavers_persistence_days` | integer | "
                           "1 to 3650 | `90` |") != NULL
                 && strstr(buf, "`first_number`, `all_numbers`") != NULL,
                 "the docs have a table per tab with bounds and defaults");

    free(buf);
}


int
main(void)
{
    printf("1..%d\n", MSGR_TEST_PLAN);

    msgr_test_defaults();
    msgr_test_fields();
    msgr_test_lengths();
    msgr_test_structure();
    msgr_test_null();
    msgr_test_forbidden();
    msgr_test_rules();
    msgr_test_all_or_nothing();
    msgr_test_changes();
    msgr_test_stale();
    msgr_test_docs();

    return msgr_test_end(MSGR_TEST_PLAN);
}

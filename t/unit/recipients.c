/*
 * Unit tests of src/msgr_recipients.c: who receives a message.  The
 * primary contact and the next available one, all contacts, siblings,
 * the status filter (guests, pre-admissions, leavers and their window),
 * class teachers, staff sends, channels (voice first or all numbers,
 * Xpressions), display names, order, counts and malformed data.  Prints
 * TAP.
 *
 * The fixtures are JSON with ' for " to keep them readable; the
 * expectations are written out here from the rules, not computed.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_settings.h"
#include "msgr_recipients.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN   134

#define MSGR_TEST_TODAY  "2026-04-10"


/*
 * The school: contacts, staff and students that the tests select from.
 *
 * 2026-01-10 is exactly 90 days before MSGR_TEST_TODAY, 2026-01-09 91.
 */

static const char  msgr_test_school[] =
    "{'contacts': {"
    "  '10': {'id': 10, 'title': 'Mrs', 'first_name': 'Jane',"
    "         'last_name': 'Jones', 'home_phone': '+442079460000',"
    "         'work_phone': null, 'mobile_phone': '+447700900123',"
    "         'email': 'jane@example.org', 'devices': 0},"
    "  '11': {'id': 11, 'title': 'Mr', 'first_name': 'John',"
    "         'last_name': 'Jones', 'home_phone': null,"
    "         'work_phone': '+442079460001', 'mobile_phone': null,"
    "         'email': null, 'devices': 0},"
    "  '12': {'id': 12, 'title': 'Ms', 'first_name': 'Kay',"
    "         'last_name': 'Lee', 'home_phone': null, 'work_phone': null,"
    "         'mobile_phone': '+447700900200', 'email': null,"
    "         'devices': 0},"
    "  '13': {'id': 13, 'title': null, 'first_name': 'Lou',"
    "         'last_name': 'Park', 'home_phone': null, 'work_phone': null,"
    "         'mobile_phone': null, 'email': null, 'devices': 0},"
    "  '14': {'id': 14, 'title': 'Dr', 'first_name': 'Max',"
    "         'last_name': 'Ray', 'home_phone': null, 'work_phone': null,"
    "         'mobile_phone': null, 'email': null, 'devices': 2},"
    "  '15': {'id': 15, 'title': 'Mrs', 'first_name': 'Nia',"
    "         'last_name': 'Cole', 'home_phone': '+441130000001',"
    "         'work_phone': '+441130000002',"
    "         'mobile_phone': '+447700900300', 'email': 'nia@example.org',"
    "         'devices': 1},"
    "  '16': {'id': 16, 'title': 'Mr', 'first_name': '',"
    "         'last_name': 'Shaw', 'home_phone': '+441130000009',"
    "         'work_phone': '+441130000009', 'mobile_phone': null,"
    "         'email': null, 'devices': 0}},"
    " 'staff': {"
    "  '7': {'id': 7, 'title': 'Mr', 'first_name': 'Tom',"
    "        'last_name': 'Smith', 'work_phone': null,"
    "        'mobile_phone': '+447700900456',"
    "        'email': 't.smith@school.example'},"
    "  '8': {'id': 8, 'title': 'Ms', 'first_name': 'Ann',"
    "        'last_name': 'Webb', 'work_phone': '+442079461000',"
    "        'mobile_phone': '+447700900457',"
    "        'email': 'a.webb@school.example'},"
    "  '9': {'id': 9, 'title': 'Mr', 'first_name': 'Ned',"
    "        'last_name': 'Null', 'work_phone': null,"
    "        'mobile_phone': null, 'email': null}},"
    " 'students': {"
    "  '1': {'id': 1, 'first_name': 'Amy', 'last_name': 'Jones',"
    "        'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "        'contacts': ["
    "          {'id': 10, 'priority': 1, 'correspondence': true,"
    "           'relationship': 'Mother'},"
    "          {'id': 11, 'priority': 2, 'correspondence': true,"
    "           'relationship': 'Father'}]},"
    "  '2': {'id': 2, 'first_name': 'Ben', 'last_name': 'Jones',"
    "        'reg_group': '8C', 'status': 'on_roll', 'leaving_date': null,"
    "        'contacts': ["
    "          {'id': 10, 'priority': 1, 'correspondence': true,"
    "           'relationship': 'Mother'},"
    "          {'id': 11, 'priority': 2, 'correspondence': true,"
    "           'relationship': 'Father'}]},"
    "  '3': {'id': 3, 'first_name': 'Cal', 'last_name': 'Brown',"
    "        'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "        'contacts': ["
    "          {'id': 13, 'priority': 1, 'correspondence': true,"
    "           'relationship': 'Mother'},"
    "          {'id': 12, 'priority': 2, 'correspondence': true,"
    "           'relationship': 'Aunt'}]},"
    "  '4': {'id': 4, 'first_name': 'Dee', 'last_name': 'Green',"
    "        'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "        'contacts': ["
    "          {'id': 11, 'priority': 2, 'correspondence': true,"
    "           'relationship': 'Father'},"
    "          {'id': 10, 'priority': 1, 'correspondence': false,"
    "           'relationship': 'Mother'}]},"
    "  '5': {'id': 5, 'first_name': 'Eve', 'last_name': 'Hall',"
    "        'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "        'contacts': []},"
    "  '6': {'id': 6, 'first_name': 'Fay', 'last_name': 'Iles',"
    "        'reg_group': '7B', 'status': 'guest', 'leaving_date': null,"
    "        'contacts': [{'id': 12, 'priority': 1,"
    "                      'correspondence': true,"
    "                      'relationship': 'Mother'}]},"
    "  '7': {'id': 7, 'first_name': 'Gus', 'last_name': 'Judd',"
    "        'reg_group': '7B', 'status': 'pre_admission',"
    "        'leaving_date': null,"
    "        'contacts': [{'id': 14, 'priority': 1,"
    "                      'correspondence': true,"
    "                      'relationship': 'Father'}]},"
    "  '8': {'id': 8, 'first_name': 'Hal', 'last_name': 'King',"
    "        'reg_group': '7B', 'status': 'leaver',"
    "        'leaving_date': '2026-01-10',"
    "        'contacts': [{'id': 15, 'priority': 1,"
    "                      'correspondence': true,"
    "                      'relationship': 'Mother'}]},"
    "  '9': {'id': 9, 'first_name': 'Ivy', 'last_name': 'Lamb',"
    "        'reg_group': '7B', 'status': 'leaver', 'leaving_date': null,"
    "        'contacts': [{'id': 15, 'priority': 1,"
    "                      'correspondence': true,"
    "                      'relationship': 'Mother'}]},"
    "  '10': {'id': 10, 'first_name': 'Jon', 'last_name': 'Mann',"
    "         'reg_group': '7B', 'status': 'leaver',"
    "         'leaving_date': '2026-05-01',"
    "         'contacts': [{'id': 16, 'priority': 1,"
    "                       'correspondence': true,"
    "                       'relationship': 'Father'}]},"
    "  '11': {'id': 11, 'first_name': 'Kim', 'last_name': 'Nash',"
    "         'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "         'contacts': ["
    "           {'id': 13, 'priority': 1, 'correspondence': true,"
    "            'relationship': 'Mother'},"
    "           {'id': 10, 'priority': 2, 'correspondence': false,"
    "            'relationship': 'Aunt'}]},"
    "  '12': {'id': 12, 'first_name': 'Lia', 'last_name': 'Ott',"
    "         'reg_group': null, 'status': 'on_roll', 'leaving_date': null,"
    "         'contacts': [{'id': 14, 'priority': 1,"
    "                       'correspondence': true}]},"
    "  '13': {'id': 13, 'first_name': 'Mo', 'last_name': 'Pike',"
    "         'reg_group': '7B', 'status': 'alumnus', 'leaving_date': null,"
    "         'contacts': [{'id': 10, 'priority': 1,"
    "                       'correspondence': true,"
    "                       'relationship': 'Mother'}]},"
    "  '14': {'id': 14, 'first_name': 'Ned', 'last_name': 'Quin',"
    "         'reg_group': '7B', 'status': 'leaver',"
    "         'leaving_date': '2026-01-09',"
    "         'contacts': [{'id': 15, 'priority': 1,"
    "                       'correspondence': true,"
    "                       'relationship': 'Mother'}]},"
    "  '15': {'id': 15, 'first_name': 'Ola', 'last_name': 'Reed',"
    "         'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "         'contacts': ["
    "           {'id': 11, 'priority': null, 'correspondence': true,"
    "            'relationship': 'Father'},"
    "           {'id': 10, 'priority': 3, 'correspondence': true,"
    "            'relationship': 'Mother'}]}}}";


/* a class, a year group and a second class */

#define MSGR_TEST_G3                                                         \
    "{'id': 3, 'name': '7B Maths', 'type': 'class', 'students': [1, 3],"     \
    " 'staff': [8], 'teachers': [7]}"

#define MSGR_TEST_G4                                                         \
    "{'id': 4, 'name': 'Year 8', 'type': 'year', 'students': [2],"           \
    " 'staff': [8], 'teachers': [9]}"

#define MSGR_TEST_G5                                                         \
    "{'id': 5, 'name': '7B Science', 'type': 'class', 'students': [1],"      \
    " 'staff': [], 'teachers': [7, 9]}"


#define MSGR_TEST_NEXT_OFF                                                   \
    " (contacts.next_available_if_no_primary is off)"


/* v equals the JSON text; the difference is shown when not */

static int
msgr_test_is(json_t *v, const char *text, const char *desc)
{
    int      eq;
    json_t  *want;

    want = msgr_test_json(text);
    eq = v != NULL && json_equal(v, want);

    msgr_test_ok(eq, desc);

    if (!eq) {
        msgr_test_diag("got", v);
        msgr_test_diag("expected", want);
    }

    json_decref(want);

    return eq;
}


static int
msgr_test_str(const char *got, const char *want, const char *desc)
{
    int  eq;

    eq = got != NULL && strcmp(got, want) == 0;

    msgr_test_ok(eq, desc);

    if (!eq) {
        printf("# got:      %s\n# expected: %s\n",
               got != NULL ? got : "NULL", want);
    }

    return eq;
}


/* the rules of a school that never changed its settings */

static msgr_recipient_rules_t
msgr_test_rules(void)
{
    msgr_recipient_rules_t  r;

    memset(&r, 0, sizeof(r));
    r.teachers_in_class_groups = 1;
    r.leavers_persistence_days = 90;

    return r;
}


/* the school with the selection (and any other members) of `selection` */

static json_t *
msgr_test_data(const char *selection)
{
    json_t  *data, *sel;

    data = msgr_test_json(msgr_test_school);
    sel = msgr_test_json(selection);

    json_object_update(data, sel);
    json_decref(sel);

    return data;
}


static json_t *
msgr_test_resolve(const char *selection, msgr_send_to_e send_to,
    const msgr_recipient_rules_t *rules)
{
    json_t      *data, *result;
    const char  *why;

    data = msgr_test_data(selection);

    why = "not set";
    result = msgr_recipients_resolve(data, send_to, rules, MSGR_TEST_TODAY,
                                     &why);

    if (result == NULL) {
        printf("# msgr_recipients_resolve: %s\n", why ? why : "NULL");

    } else if (why != NULL) {
        printf("# why is set on success: %s\n", why);
        json_decref(result);
        result = NULL;
    }

    json_decref(data);

    return result;
}


/*
 * The entries of result[list] in order, as "contact:10[1,2]" (a contact
 * with its students), "staff:7[3]" (a staff member with its groups) or
 * "student:5", separated by spaces.
 */

static int
msgr_test_list(json_t *result, const char *list, const char *want,
    const char *desc)
{
    char         buf[1024];
    size_t       i, j, n;
    json_t      *e, *sub, *x;
    const char  *type;

    buf[0] = '\0';
    n = 0;

    json_array_foreach(json_object_get(result, list), i, e) {
        type = json_string_value(json_object_get(e, "type"));

        n += snprintf(buf + n, sizeof(buf) - n, "%s%s:%lld", i ? " " : "",
                      type ? type : "?",
                      (long long) json_integer_value(
                          json_object_get(e, "id")));

        sub = json_object_get(e, "students");
        if (sub == NULL) {
            sub = json_object_get(e, "groups");
        }

        if (sub != NULL) {
            n += snprintf(buf + n, sizeof(buf) - n, "[");

            json_array_foreach(sub, j, x) {
                if (json_is_object(x)) {
                    x = json_object_get(x, "id");
                }

                n += snprintf(buf + n, sizeof(buf) - n, "%s%lld",
                              j ? "," : "",
                              (long long) json_integer_value(x));
            }

            n += snprintf(buf + n, sizeof(buf) - n, "]");
        }

        if (n >= sizeof(buf)) {
            break;
        }
    }

    if (result == NULL) {
        snprintf(buf, sizeof(buf), "(no result)");
    }

    return msgr_test_str(buf, want, desc);
}


/* the entry of result[list] of that type and id */

static json_t *
msgr_test_entry(json_t *result, const char *list, const char *type,
    json_int_t id)
{
    size_t       i;
    json_t      *e;
    const char  *t;

    json_array_foreach(json_object_get(result, list), i, e) {
        t = json_string_value(json_object_get(e, "type"));

        if (t != NULL && strcmp(t, type) == 0
            && json_integer_value(json_object_get(e, "id")) == id)
        {
            return e;
        }
    }

    return NULL;
}


static const char *
msgr_test_reason(json_t *result, const char *list, const char *type,
    json_int_t id)
{
    return json_string_value(
               json_object_get(msgr_test_entry(result, list, type, id),
                               "reason"));
}


static json_t *
msgr_test_channels(json_t *result, const char *type, json_int_t id)
{
    return json_object_get(msgr_test_entry(result, "recipients", type, id),
                           "channels");
}


static void
msgr_test_send_to(void)
{
    msgr_send_to_e  s;

    s = MSGR_SEND_STAFF;
    msgr_test_ok(msgr_send_to_parse("primary_contact", &s) == 0
                 && s == MSGR_SEND_PRIMARY_CONTACT,
                 "send_to primary_contact");

    s = MSGR_SEND_STAFF;
    msgr_test_ok(msgr_send_to_parse("all_contacts", &s) == 0
                 && s == MSGR_SEND_ALL_CONTACTS,
                 "send_to all_contacts");

    s = MSGR_SEND_PRIMARY_CONTACT;
    msgr_test_ok(msgr_send_to_parse("staff", &s) == 0
                 && s == MSGR_SEND_STAFF,
                 "send_to staff");

    s = MSGR_SEND_ALL_CONTACTS;
    msgr_test_ok(msgr_send_to_parse("Staff", &s) == -1
                 && msgr_send_to_parse("", &s) == -1
                 && msgr_send_to_parse("last_chosen", &s) == -1
                 && msgr_send_to_parse(NULL, &s) == -1
                 && s == MSGR_SEND_ALL_CONTACTS,
                 "send_to rejects other names and leaves *out alone");

    msgr_test_ok(strcmp(msgr_send_to_name(MSGR_SEND_PRIMARY_CONTACT),
                        "primary_contact") == 0
                 && strcmp(msgr_send_to_name(MSGR_SEND_ALL_CONTACTS),
                           "all_contacts") == 0
                 && strcmp(msgr_send_to_name(MSGR_SEND_STAFF), "staff") == 0
                 && msgr_send_to_name((msgr_send_to_e) 7) == NULL,
                 "send_to names");
}


static int
msgr_test_rules_are(msgr_recipient_rules_t *r, int next, int reg,
    int teachers, int guests, int pre, int leavers, int days, int all)
{
    int  ok;

    ok = r->next_available_if_no_primary == (unsigned) next
         && r->show_registration_in_names == (unsigned) reg
         && r->teachers_in_class_groups == (unsigned) teachers
         && r->guest_students == (unsigned) guests
         && r->pre_admissions == (unsigned) pre
         && r->leavers_included == (unsigned) leavers
         && r->leavers_persistence_days == days
         && r->voice_all_numbers == (unsigned) all;

    if (!ok) {
        printf("# rules: next %u reg %u teachers %u guests %u pre %u "
               "leavers %u days %d all %u\n",
               r->next_available_if_no_primary,
               r->show_registration_in_names, r->teachers_in_class_groups,
               r->guest_students, r->pre_admissions, r->leavers_included,
               r->leavers_persistence_days, r->voice_all_numbers);
    }

    return ok;
}


static void
msgr_test_rules_from_settings(void)
{
    json_t                  *stored, *settings;
    msgr_recipient_rules_t   r;

    memset(&r, 0xff, sizeof(r));
    msgr_recipient_rules_from_settings(NULL, &r);
    msgr_test_ok(msgr_test_rules_are(&r, 0, 0, 1, 0, 0, 0, 90, 0),
                 "rules without settings are the defaults");

    settings = msgr_settings_resolve(NULL, "Alpha School");
    memset(&r, 0xff, sizeof(r));
    msgr_recipient_rules_from_settings(settings, &r);
    msgr_test_ok(msgr_test_rules_are(&r, 0, 0, 1, 0, 0, 0, 90, 0),
                 "rules from default settings");
    json_decref(settings);

    stored = msgr_test_json(
        "{'sending': {'voice_calling': 'all_numbers'},"
        " 'contacts': {'next_available_if_no_primary': true,"
        "              'show_registration_in_names': true},"
        " 'mis': {'teachers_in_class_groups': false,"
        "         'guest_students': true, 'pre_admissions': true,"
        "         'leavers_included': true,"
        "         'leavers_persistence_days': 30}}");
    settings = msgr_settings_resolve(stored, "Alpha School");
    msgr_recipient_rules_from_settings(settings, &r);
    msgr_test_ok(msgr_test_rules_are(&r, 1, 1, 0, 1, 1, 1, 30, 1),
                 "rules from changed settings");
    json_decref(settings);
    json_decref(stored);

    settings = msgr_test_json(
        "{'sending': {'voice_calling': 'first_number'},"
        " 'mis': {'leavers_persistence_days': '30',"
        "         'guest_students': 1}}");
    msgr_recipient_rules_from_settings(settings, &r);
    msgr_test_ok(msgr_test_rules_are(&r, 0, 0, 1, 0, 0, 0, 90, 0),
                 "fields missing or of the wrong type take the defaults");
    json_decref(settings);
}


static void
msgr_test_display_names(void)
{
    char  *s;

    s = msgr_student_display_name("Amy", "Jones", "7B", 1);
    msgr_test_str(s, "Amy Jones (7B)", "display name with reg group");
    free(s);

    s = msgr_student_display_name("Amy", "Jones", "7B", 0);
    msgr_test_str(s, "Amy Jones", "display name without reg group");
    free(s);

    s = msgr_student_display_name("Amy", "Jones", "", 1);
    msgr_test_str(s, "Amy Jones", "display name, empty reg group");
    free(s);

    s = msgr_student_display_name("Amy", "Jones", NULL, 1);
    msgr_test_str(s, "Amy Jones", "display name, no reg group");
    free(s);

    s = msgr_student_display_name(NULL, "Jones", "7B", 1);
    msgr_test_str(s, "Jones (7B)", "display name without a first name");
    free(s);

    s = msgr_student_display_name("", NULL, NULL, 0);
    msgr_test_str(s, "", "display name of nothing is empty");
    free(s);
}


static void
msgr_test_primary(void)
{
    char                    *s;
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_groups': [],"
                            " 'selected_students': [1]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);

    msgr_test_is(res,
        "{'recipients': [{'type': 'contact', 'id': 10,"
        "  'name': 'Mrs Jane Jones',"
        "  'students': [{'id': 1, 'name': 'Amy Jones',"
        "                'relationship': 'Mother'}],"
        "  'channels': {'xpressions': false, 'sms': '+447700900123',"
        "               'voice': ['+442079460000'],"
        "               'email': 'jane@example.org'}}],"
        " 'unreachable': [], 'excluded': [],"
        " 'counts': {'students': 1, 'recipients': 1, 'contacts': 1,"
        "            'staff': 0, 'unreachable': 0, 'excluded': 0,"
        "            'by_channel': {'xpressions': 0, 'sms': 1, 'voice': 1,"
        "                           'email': 1}}}",
        "primary contact chosen: the whole result");

    s = res != NULL ? json_dumps(res, JSON_COMPACT) : NULL;
    msgr_test_str(s,
        "{\"recipients\":[{\"type\":\"contact\",\"id\":10,"
        "\"name\":\"Mrs Jane Jones\",\"students\":[{\"id\":1,"
        "\"name\":\"Amy Jones\",\"relationship\":\"Mother\"}],"
        "\"channels\":{\"xpressions\":false,\"sms\":\"+447700900123\","
        "\"voice\":[\"+442079460000\"],\"email\":\"jane@example.org\"}}],"
        "\"unreachable\":[],\"excluded\":[],\"counts\":{\"students\":1,"
        "\"recipients\":1,\"contacts\":1,\"staff\":0,\"unreachable\":0,"
        "\"excluded\":0,\"by_channel\":{\"xpressions\":0,\"sms\":1,"
        "\"voice\":1,\"email\":1}}}",
        "the result's members are in a fixed order");
    free(s);
    json_decref(res);

    /* the lowest priority number, wherever it is in the list */

    r.next_available_if_no_primary = 1;
    res = msgr_test_resolve("{'selected_students': [15]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[15]",
                   "a numbered priority comes before a null one");
    json_decref(res);

    /* the primary does not allow correspondence */

    r.next_available_if_no_primary = 0;
    res = msgr_test_resolve("{'selected_students': [4]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "",
                   "primary without correspondence, next available off: "
                   "no recipient");
    msgr_test_list(res, "unreachable", "student:4",
                   "... the student is unreachable");
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 4),
                  "the primary contact Jane Jones does not allow "
                  "correspondence" MSGR_TEST_NEXT_OFF,
                  "... the reason names the primary and the setting");
    msgr_test_is(json_object_get(msgr_test_entry(res, "unreachable",
                                                 "student", 4), "name"),
                 "'Dee Green'", "... with the student's name");
    json_decref(res);

    r.next_available_if_no_primary = 1;
    res = msgr_test_resolve("{'selected_students': [4]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:11[4]",
                   "primary without correspondence, next available on: "
                   "the next contact by priority");
    msgr_test_list(res, "unreachable", "", "... nobody unreachable");
    json_decref(res);

    /* the primary cannot be reached */

    r.next_available_if_no_primary = 0;
    res = msgr_test_resolve("{'selected_students': [3]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "unreachable", "student:3",
                   "primary without any channel, next available off: "
                   "unreachable");
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 3),
                  "the primary contact Lou Park has no Xpressions app, "
                  "phone number or email" MSGR_TEST_NEXT_OFF,
                  "... the reason names the primary and the setting");
    json_decref(res);

    r.next_available_if_no_primary = 1;
    res = msgr_test_resolve("{'selected_students': [3]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:12[3]",
                   "primary without any channel, next available on: "
                   "the next contact");
    json_decref(res);

    /* nobody left */

    res = msgr_test_resolve("{'selected_students': [11]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "unreachable", "student:11",
                   "next available on, no contact fit: unreachable");
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 11),
                  "no contact allows correspondence and can be reached",
                  "... with the reason");
    json_decref(res);

    r.next_available_if_no_primary = 0;
    res = msgr_test_resolve("{'selected_students': [11]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 11),
                  "the primary contact Lou Park has no Xpressions app, "
                  "phone number or email" MSGR_TEST_NEXT_OFF,
                  "next available off, no contact fit: the primary named");
    json_decref(res);

    /* no contacts at all */

    res = msgr_test_resolve("{'selected_students': [5]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 5),
                  "no contacts", "a student without contacts: no contacts");
    msgr_test_is(json_object_get(res, "counts"),
                 "{'students': 1, 'recipients': 0, 'contacts': 0,"
                 " 'staff': 0, 'unreachable': 1, 'excluded': 0,"
                 " 'by_channel': {'xpressions': 0, 'sms': 0, 'voice': 0,"
                 "                'email': 0}}",
                 "... counted as a student and as unreachable");
    json_decref(res);

    r.next_available_if_no_primary = 1;
    res = msgr_test_resolve("{'selected_students': [5]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 5),
                  "no contacts", "... also with next available on");
    json_decref(res);
}


static void
msgr_test_all_contacts(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_students': [1]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "recipients", "contact:10[1] contact:11[1]",
                   "all contacts: every contact that fits");
    msgr_test_is(json_object_get(msgr_test_entry(res, "recipients",
                                                 "contact", 11),
                                 "students"),
                 "[{'id': 1, 'name': 'Amy Jones',"
                 "  'relationship': 'Father'}]",
                 "... each with its own relationship");
    json_decref(res);

    res = msgr_test_resolve("{'selected_students': [4, 3]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "recipients", "contact:11[4] contact:12[3]",
                   "all contacts: not those without correspondence or "
                   "any channel");
    msgr_test_list(res, "unreachable", "", "... nobody unreachable");
    json_decref(res);

    res = msgr_test_resolve("{'selected_students': [1],"
                            " 'students': {'1': {'id': 1,"
                            "  'first_name': 'Amy', 'status': 'on_roll',"
                            "  'contacts': ["
                            "    {'id': 10, 'priority': 1,"
                            "     'correspondence': true,"
                            "     'relationship': 'Mother'},"
                            "    {'id': 10, 'priority': 2,"
                            "     'correspondence': true,"
                            "     'relationship': 'Guardian'}]}}}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_is(json_object_get(msgr_test_entry(res, "recipients",
                                                 "contact", 10),
                                 "students"),
                 "[{'id': 1, 'name': 'Amy', 'relationship': 'Mother'}]",
                 "all contacts: a contact linked twice to a student is "
                 "listed once, by its first link by priority");
    json_decref(res);

    res = msgr_test_resolve("{'selected_students': [11, 5]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "unreachable", "student:11 student:5",
                   "all contacts: students with none unreachable");
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 11),
                  "no contact allows correspondence and can be reached",
                  "... no contact fits");
    msgr_test_str(msgr_test_reason(res, "unreachable", "student", 5),
                  "no contacts", "... no contacts");
    json_decref(res);
}


static void
msgr_test_siblings(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.show_registration_in_names = 1;

    res = msgr_test_resolve("{'selected_students': [1, 2]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[1,2]",
                   "siblings: their parent is one recipient");
    msgr_test_is(json_object_get(msgr_test_entry(res, "recipients",
                                                 "contact", 10),
                                 "students"),
                 "[{'id': 1, 'name': 'Amy Jones (7B)',"
                 "  'relationship': 'Mother'},"
                 " {'id': 2, 'name': 'Ben Jones (8C)',"
                 "  'relationship': 'Mother'}]",
                 "... with both students");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "students"),
                 "2", "... two students");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "recipients"),
                 "1", "... one recipient");
    json_decref(res);

    res = msgr_test_resolve("{'selected_students': [1, 2]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "recipients", "contact:10[1,2] contact:11[1,2]",
                   "siblings, all contacts: each parent once");
    json_decref(res);
}


static void
msgr_test_status(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_students': [6, 7, 13]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "excluded", "student:6 student:7 student:13",
                   "guests, pre-admissions, unknown statuses excluded");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 6),
                  "guest students are not included "
                  "(mis.guest_students is off)",
                  "... a guest: the reason names the setting");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 7),
                  "pre-admission students are not included "
                  "(mis.pre_admissions is off)",
                  "... a pre-admission: the reason names the setting");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 13),
                  "unknown status \"alumnus\"",
                  "... an unknown status: the reason names it");
    msgr_test_is(json_object_get(msgr_test_entry(res, "excluded",
                                                 "student", 6), "name"),
                 "'Fay Iles'", "... excluded students are named");
    msgr_test_list(res, "recipients", "", "... no recipients");
    msgr_test_is(json_object_get(res, "counts"),
                 "{'students': 0, 'recipients': 0, 'contacts': 0,"
                 " 'staff': 0, 'unreachable': 0, 'excluded': 3,"
                 " 'by_channel': {'xpressions': 0, 'sms': 0, 'voice': 0,"
                 "                'email': 0}}",
                 "... excluded students are not counted as students");
    json_decref(res);

    r.guest_students = 1;
    res = msgr_test_resolve("{'selected_students': [6, 7]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:12[6]",
                   "guest students on: a guest is included");
    msgr_test_list(res, "excluded", "student:7",
                   "... pre-admissions still excluded");
    json_decref(res);

    r.guest_students = 0;
    r.pre_admissions = 1;
    res = msgr_test_resolve("{'selected_students': [6, 7]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:14[7]",
                   "pre-admissions on: a pre-admission is included");
    msgr_test_list(res, "excluded", "student:6",
                   "... guests still excluded");
    json_decref(res);
}


static void
msgr_test_leavers(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_students': [8, 10]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "excluded", "student:8 student:10",
                   "leavers included off: leavers excluded");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 8),
                  "leavers are not included (mis.leavers_included is off)",
                  "... the reason names the setting");
    json_decref(res);

    r.leavers_included = 1;
    res = msgr_test_resolve("{'selected_students': [8, 14, 10, 9]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:15[8] contact:16[10]",
                   "leavers on: left 90 days ago (the limit) and leaving "
                   "in the future are included");
    msgr_test_list(res, "excluded", "student:14 student:9",
                   "... left 91 days ago, and no leaving date, excluded");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 14),
                  "left on 2026-01-09, more than 90 days ago "
                  "(mis.leavers_persistence_days)",
                  "... outside the window: the date and the setting");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 9),
                  "a leaver without a leaving date "
                  "(mis.leavers_persistence_days)",
                  "... no leaving date: the reason says so");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "students"),
                 "2", "... two students included");
    json_decref(res);

    r.leavers_persistence_days = 1;
    res = msgr_test_resolve("{'selected_students': [8, 10]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:16[10]",
                   "a one-day window: the future leaver only");
    msgr_test_str(msgr_test_reason(res, "excluded", "student", 8),
                  "left on 2026-01-10, more than 1 day ago "
                  "(mis.leavers_persistence_days)",
                  "... the reason");
    json_decref(res);
}


static void
msgr_test_teachers(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 "]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[1] staff:7[3]",
                   "teachers in class groups on: the class teacher is "
                   "added, not the group's other staff");
    msgr_test_is(msgr_test_entry(res, "recipients", "staff", 7),
                 "{'type': 'staff', 'id': 7, 'name': 'Mr Tom Smith',"
                 " 'groups': [3],"
                 " 'channels': {'xpressions': false,"
                 "              'sms': '+447700900456',"
                 "              'voice': ['+447700900456'],"
                 "              'email': 't.smith@school.example'}}",
                 "... the teacher as a staff recipient");
    msgr_test_list(res, "unreachable", "student:3",
                   "... the group's students are resolved too");
    json_decref(res);

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G4 "]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "recipients", "contact:10[2] contact:11[2]",
                   "... teachers of a group that is not a class are not "
                   "added");
    json_decref(res);

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 ", "
                            MSGR_TEST_G5 "]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[1] staff:7[3,5]",
                   "a teacher of two classes is one recipient");
    msgr_test_list(res, "unreachable", "student:3 staff:9[5]",
                   "a teacher without channels is unreachable, after "
                   "the students");
    msgr_test_str(msgr_test_reason(res, "unreachable", "staff", 9),
                  "no mobile, work number or email",
                  "... with the reason");
    msgr_test_is(json_object_get(msgr_test_entry(res, "unreachable",
                                                 "staff", 9), "name"),
                 "'Mr Ned Null'", "... and the name");
    json_decref(res);

    r.teachers_in_class_groups = 0;
    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 ", "
                            MSGR_TEST_G5 "]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[1]",
                   "teachers in class groups off: no teachers");
    msgr_test_list(res, "unreachable", "student:3",
                   "... nor unreachable teachers");
    json_decref(res);
}


static void
msgr_test_staff(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 ", "
                            MSGR_TEST_G4 "], 'selected_students': [6, 5]}",
                            MSGR_SEND_STAFF, &r);
    msgr_test_list(res, "recipients", "staff:8[3,4] staff:7[3]",
                   "staff send: the groups' staff, then class teachers, "
                   "each once");
    msgr_test_list(res, "unreachable", "",
                   "... students are ignored: none unreachable");
    msgr_test_list(res, "excluded", "", "... nor excluded");
    msgr_test_is(json_object_get(res, "counts"),
                 "{'students': 0, 'recipients': 2, 'contacts': 0,"
                 " 'staff': 2, 'unreachable': 0, 'excluded': 0,"
                 " 'by_channel': {'xpressions': 0, 'sms': 2, 'voice': 2,"
                 "                'email': 2}}",
                 "... counts");
    json_decref(res);

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G5 "]}",
                            MSGR_SEND_STAFF, &r);
    msgr_test_list(res, "recipients", "staff:7[5]",
                   "staff send to a class: its teachers");
    msgr_test_list(res, "unreachable", "staff:9[5]",
                   "... a teacher without channels unreachable");
    json_decref(res);

    res = msgr_test_resolve("{'selected_groups': [{'id': 6,"
                            " 'type': 'class', 'staff': [7, 7],"
                            " 'teachers': [7]}]}",
                            MSGR_SEND_STAFF, &r);
    msgr_test_list(res, "recipients", "staff:7[6]",
                   "a member listed twice in a group: once, the group "
                   "once");
    json_decref(res);

    r.teachers_in_class_groups = 0;
    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 ", "
                            MSGR_TEST_G4 ", " MSGR_TEST_G5 "]}",
                            MSGR_SEND_STAFF, &r);
    msgr_test_list(res, "recipients", "staff:8[3,4]",
                   "staff send, teachers in class groups off: staff only");
    msgr_test_list(res, "unreachable", "", "... no teachers unreachable");
    json_decref(res);
}


static void
msgr_test_voice(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.leavers_included = 1;

#define MSGR_TEST_VOICE                                                      \
    "{'selected_students': [1, 3, 8, 10],"                                   \
    " 'selected_groups': [{'id': 3, 'type': 'class', 'students': [],"        \
    "                      'staff': [7, 8], 'teachers': []}]}"

    res = msgr_test_resolve(MSGR_TEST_VOICE, MSGR_SEND_ALL_CONTACTS, &r);

    msgr_test_is(msgr_test_channels(res, "contact", 10),
                 "{'xpressions': false, 'sms': '+447700900123',"
                 " 'voice': ['+442079460000'],"
                 " 'email': 'jane@example.org'}",
                 "first number: home");
    msgr_test_is(msgr_test_channels(res, "contact", 11),
                 "{'xpressions': false, 'sms': null,"
                 " 'voice': ['+442079460001'], 'email': null}",
                 "first number: work when there is no home number");
    msgr_test_is(msgr_test_channels(res, "contact", 12),
                 "{'xpressions': false, 'sms': '+447700900200',"
                 " 'voice': [], 'email': null}",
                 "first number: a mobile only gets no voice, still SMS");
    msgr_test_is(msgr_test_channels(res, "contact", 15),
                 "{'xpressions': true, 'sms': '+447700900300',"
                 " 'voice': ['+441130000001'], 'email': 'nia@example.org'}",
                 "first number: home, not work or mobile");
    msgr_test_list(res, "recipients",
                   "contact:10[1] contact:11[1] contact:12[3] contact:15[8] "
                   "contact:16[10]",
                   "first number: the contacts of the voice fixture");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "by_channel"),
                 "{'xpressions': 1, 'sms': 3, 'voice': 4, 'email': 2}",
                 "first number: counts by channel");
    json_decref(res);

    res = msgr_test_resolve(MSGR_TEST_VOICE, MSGR_SEND_STAFF, &r);
    msgr_test_is(msgr_test_channels(res, "staff", 7),
                 "{'xpressions': false, 'sms': '+447700900456',"
                 " 'voice': ['+447700900456'],"
                 " 'email': 't.smith@school.example'}",
                 "first number, staff: the mobile without a work number");
    msgr_test_is(msgr_test_channels(res, "staff", 8),
                 "{'xpressions': false, 'sms': '+447700900457',"
                 " 'voice': ['+442079461000'],"
                 " 'email': 'a.webb@school.example'}",
                 "first number, staff: the work number");
    json_decref(res);

    r.voice_all_numbers = 1;
    res = msgr_test_resolve(MSGR_TEST_VOICE, MSGR_SEND_ALL_CONTACTS, &r);

    msgr_test_is(json_object_get(msgr_test_channels(res, "contact", 10),
                                 "voice"),
                 "['+442079460000', '+447700900123']",
                 "all numbers: home and mobile");
    msgr_test_is(json_object_get(msgr_test_channels(res, "contact", 15),
                                 "voice"),
                 "['+441130000001', '+441130000002', '+447700900300']",
                 "all numbers: home, work, then mobile");
    msgr_test_is(json_object_get(msgr_test_channels(res, "contact", 12),
                                 "voice"),
                 "['+447700900200']", "all numbers: a mobile only");
    msgr_test_is(json_object_get(msgr_test_channels(res, "contact", 16),
                                 "voice"),
                 "['+441130000009']",
                 "all numbers: the same number once");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "by_channel"),
                 "{'xpressions': 1, 'sms': 3, 'voice': 5, 'email': 2}",
                 "all numbers: counts by channel");
    json_decref(res);

    res = msgr_test_resolve(MSGR_TEST_VOICE, MSGR_SEND_STAFF, &r);
    msgr_test_is(json_object_get(msgr_test_channels(res, "staff", 8),
                                 "voice"),
                 "['+442079461000', '+447700900457']",
                 "all numbers, staff: work then mobile");
    msgr_test_is(json_object_get(msgr_test_channels(res, "staff", 7),
                                 "voice"),
                 "['+447700900456']", "all numbers, staff: the mobile");
    json_decref(res);

#undef MSGR_TEST_VOICE
}


static void
msgr_test_xpressions(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_students': [12]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_is(msgr_test_entry(res, "recipients", "contact", 14),
                 "{'type': 'contact', 'id': 14, 'name': 'Dr Max Ray',"
                 " 'students': [{'id': 12, 'name': 'Lia Ott',"
                 "               'relationship': null}],"
                 " 'channels': {'xpressions': true, 'sms': null,"
                 "              'voice': [], 'email': null}}",
                 "a contact with app devices only is reached by "
                 "Xpressions; no relationship is null");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "by_channel"),
                 "{'xpressions': 1, 'sms': 0, 'voice': 0, 'email': 0}",
                 "... counted by channel");
    json_decref(res);
}


static void
msgr_test_names(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.show_registration_in_names = 1;
    r.leavers_included = 1;

    res = msgr_test_resolve("{'selected_students': [12, 10, 5, 6]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_is(json_object_get(msgr_test_entry(res, "recipients",
                                                 "contact", 14),
                                 "students"),
                 "[{'id': 12, 'name': 'Lia Ott', 'relationship': null}]",
                 "show registration on, no reg group: the name alone");
    msgr_test_is(msgr_test_entry(res, "recipients", "contact", 16),
                 "{'type': 'contact', 'id': 16, 'name': 'Mr Shaw',"
                 " 'students': [{'id': 10, 'name': 'Jon Mann (7B)',"
                 "               'relationship': 'Father'}],"
                 " 'channels': {'xpressions': false, 'sms': null,"
                 "              'voice': ['+441130000009'],"
                 "              'email': null}}",
                 "a contact's name leaves out empty parts; a student "
                 "with a reg group");
    msgr_test_is(json_object_get(msgr_test_entry(res, "unreachable",
                                                 "student", 5), "name"),
                 "'Eve Hall (7B)'", "unreachable students: the same name");
    msgr_test_is(json_object_get(msgr_test_entry(res, "excluded",
                                                 "student", 6), "name"),
                 "'Fay Iles (7B)'", "excluded students: the same name");
    json_decref(res);
}


static void
msgr_test_order(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.next_available_if_no_primary = 1;

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 "],"
                            " 'selected_students': [4, 1]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients",
                   "contact:11[4] contact:10[1] contact:12[3] staff:7[3]",
                   "order: selected students, then groups; staff last");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "students"),
                 "3", "a student selected and in a group counts once");
    msgr_test_is(json_object_get(msgr_test_entry(res, "recipients",
                                                 "contact", 10),
                                 "students"),
                 "[{'id': 1, 'name': 'Amy Jones',"
                 "  'relationship': 'Mother'}]",
                 "... and is listed once");
    json_decref(res);

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G4 ", "
                            MSGR_TEST_G3 "], 'selected_students': [3, 3]}",
                            MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_list(res, "recipients",
                   "contact:12[3] contact:10[2,1] contact:11[2,1] "
                   "staff:7[3]",
                   "order: contacts by first appearance");
    json_decref(res);
}


static void
msgr_test_counts(void)
{
    json_t                  *res;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    res = msgr_test_resolve("{'selected_groups': [" MSGR_TEST_G3 "],"
                            " 'selected_students': [5, 6, 1, 2]}",
                            MSGR_SEND_PRIMARY_CONTACT, &r);
    msgr_test_list(res, "recipients", "contact:10[1,2] staff:7[3]",
                   "counts fixture: recipients");
    msgr_test_list(res, "unreachable", "student:5 student:3",
                   "counts fixture: unreachable");
    msgr_test_list(res, "excluded", "student:6", "counts fixture: excluded");
    msgr_test_is(json_object_get(res, "counts"),
                 "{'students': 4, 'recipients': 2, 'contacts': 1,"
                 " 'staff': 1, 'unreachable': 2, 'excluded': 1,"
                 " 'by_channel': {'xpressions': 0, 'sms': 2, 'voice': 2,"
                 "                'email': 2}}",
                 "counts");
    json_decref(res);

    res = msgr_test_resolve("{}", MSGR_SEND_ALL_CONTACTS, &r);
    msgr_test_is(res,
                 "{'recipients': [], 'unreachable': [], 'excluded': [],"
                 " 'counts': {'students': 0, 'recipients': 0,"
                 "            'contacts': 0, 'staff': 0, 'unreachable': 0,"
                 "            'excluded': 0,"
                 "            'by_channel': {'xpressions': 0, 'sms': 0,"
                 "                           'voice': 0, 'email': 0}}}",
                 "nothing selected: an empty result");
    json_decref(res);
}


static void
msgr_test_unchanged(void)
{
    int                      same;
    char                    *a, *b;
    json_t                  *data, *copy, *r1, *r2;
    const char              *why;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.next_available_if_no_primary = 1;
    r.leavers_included = 1;

    data = msgr_test_data("{'selected_groups': [" MSGR_TEST_G3 ", "
                          MSGR_TEST_G4 ", " MSGR_TEST_G5 "],"
                          " 'selected_students': [15, 14, 13, 12, 11, 10,"
                          "                       9, 8, 7, 6, 5, 4]}");
    copy = json_deep_copy(data);

    r1 = msgr_recipients_resolve(data, MSGR_SEND_ALL_CONTACTS, &r,
                                 MSGR_TEST_TODAY, &why);
    r2 = msgr_recipients_resolve(data, MSGR_SEND_ALL_CONTACTS, &r,
                                 MSGR_TEST_TODAY, &why);

    msgr_test_ok(json_equal(data, copy), "the data is not modified");

    a = r1 != NULL ? json_dumps(r1, JSON_COMPACT) : NULL;
    b = r2 != NULL ? json_dumps(r2, JSON_COMPACT) : NULL;
    same = a != NULL && b != NULL && strcmp(a, b) == 0;
    msgr_test_ok(same, "the same data gives the same text");

    free(a);
    free(b);
    json_decref(r1);
    json_decref(r2);
    json_decref(data);
    json_decref(copy);
}


/* resolving the school with these members replaced fails, naming why */

static void
msgr_test_bad(const char *members, msgr_send_to_e send_to,
    const char *today, const char *want, const char *desc)
{
    int                      ok;
    json_t                  *data, *res;
    const char              *why;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();
    r.leavers_included = 1;

    data = msgr_test_data(members);

    why = NULL;
    res = msgr_recipients_resolve(data, send_to, &r, today, &why);

    ok = res == NULL && why != NULL
         && (want == NULL || strcmp(why, want) == 0);

    msgr_test_ok(ok, desc);

    if (!ok) {
        msgr_test_diag("result", res);
        printf("# why: %s\n", why != NULL ? why : "NULL");
    }

    json_decref(res);
    json_decref(data);
}


static void
msgr_test_malformed(void)
{
    json_t                  *data, *res;
    const char              *why;
    msgr_recipient_rules_t   r;

    r = msgr_test_rules();

    data = msgr_test_json("[]");
    why = NULL;
    res = msgr_recipients_resolve(data, MSGR_SEND_PRIMARY_CONTACT, &r,
                                  MSGR_TEST_TODAY, &why);
    msgr_test_ok(res == NULL && why != NULL
                 && strcmp(why, "data must be an object") == 0,
                 "malformed: data not an object");
    json_decref(res);

    res = msgr_recipients_resolve(NULL, MSGR_SEND_PRIMARY_CONTACT, &r,
                                  MSGR_TEST_TODAY, NULL);
    msgr_test_ok(res == NULL, "malformed: no data, why not wanted");
    json_decref(data);

    msgr_test_bad("{}", MSGR_SEND_STAFF, "2026-02-30",
                  "today must be a YYYY-MM-DD date",
                  "malformed: today not a real date");
    msgr_test_bad("{}", MSGR_SEND_STAFF, "2026-4-10",
                  "today must be a YYYY-MM-DD date",
                  "malformed: today not YYYY-MM-DD");
    msgr_test_bad("{}", MSGR_SEND_STAFF, NULL,
                  "today must be a YYYY-MM-DD date",
                  "malformed: no today");
    msgr_test_bad("{}", (msgr_send_to_e) 9, MSGR_TEST_TODAY, NULL,
                  "malformed: an unknown send_to");
    msgr_test_bad("{'selected_students': [99]}", MSGR_SEND_ALL_CONTACTS,
                  MSGR_TEST_TODAY, "a selected student is not in students",
                  "malformed: a selected student missing");
    msgr_test_bad("{'selected_students': ['1']}", MSGR_SEND_ALL_CONTACTS,
                  MSGR_TEST_TODAY, NULL,
                  "malformed: a student id not an integer");
    msgr_test_bad("{'selected_students': {}}", MSGR_SEND_ALL_CONTACTS,
                  MSGR_TEST_TODAY, NULL,
                  "malformed: selected_students not an array");
    msgr_test_bad("{'selected_students': [1], 'contacts': {}}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY,
                  "a student's contact is not in contacts",
                  "malformed: a student's contact missing");
    msgr_test_bad("{'selected_groups': [{'id': 3, 'type': 'class',"
                  " 'staff': [6]}]}",
                  MSGR_SEND_STAFF, MSGR_TEST_TODAY,
                  "a staff member of a selected group is not in staff",
                  "malformed: a group's staff member missing");
    msgr_test_bad("{'selected_groups': [{'id': '3', 'students': [1]}]}",
                  MSGR_SEND_STAFF, MSGR_TEST_TODAY, NULL,
                  "malformed: a group id not an integer");
    msgr_test_bad("{'selected_groups': [{'id': 3, 'students': 1}]}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY, NULL,
                  "malformed: a group's students not an array");
    msgr_test_bad("{'selected_students': [1],"
                  " 'students': {'1': {'id': 1, 'status': 'leaver',"
                  "   'leaving_date': '10/01/2026', 'contacts': []}}}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY,
                  "students: leaving_date must be a YYYY-MM-DD date or null",
                  "malformed: a leaving date not YYYY-MM-DD");
    msgr_test_bad("{'selected_students': [1],"
                  " 'students': {'1': {'id': 1, 'first_name': 'Amy',"
                  "   'contacts': []}}}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY,
                  "students: status must be a string",
                  "malformed: a student without a status");
    msgr_test_bad("{'selected_students': [1],"
                  " 'contacts': {'10': {'id': 10, 'email': 'a@b.c',"
                  "   'devices': 'many'},"
                  "              '11': {'id': 11}}}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY,
                  "contacts: devices must be an integer",
                  "malformed: devices not an integer");
    msgr_test_bad("{'selected_students': [1],"
                  " 'contacts': {'10': {'id': 10, 'email': 7},"
                  "              '11': {'id': 11}}}",
                  MSGR_SEND_ALL_CONTACTS, MSGR_TEST_TODAY, NULL,
                  "malformed: an email not a string");
}


int
main(void)
{
    printf("1..%d\n", MSGR_TEST_PLAN);

    msgr_test_send_to();
    msgr_test_rules_from_settings();
    msgr_test_display_names();
    msgr_test_primary();
    msgr_test_all_contacts();
    msgr_test_siblings();
    msgr_test_status();
    msgr_test_leavers();
    msgr_test_teachers();
    msgr_test_staff();
    msgr_test_voice();
    msgr_test_xpressions();
    msgr_test_names();
    msgr_test_order();
    msgr_test_counts();
    msgr_test_unchanged();
    msgr_test_malformed();

    return msgr_test_end(MSGR_TEST_PLAN);
}

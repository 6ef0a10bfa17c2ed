/*
 * Unit tests of the staff masking and person names of
 * src/msgr_recipients.c: msgr_mask_detail() on numbers and emails,
 * characters outside ASCII kept whole; msgr_staff_mask() on a record,
 * phone_problems included; msgr_person_display_name() of any length; a
 * staff send resolved with mask_staff_details.  Prints TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_recipients.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  21


static void
msgr_test_mask(const char *in, const char *want)
{
    int    ok;
    char  *m, desc[256];

    m = msgr_mask_detail(in);
    ok = m != NULL && strcmp(m, want) == 0;

    snprintf(desc, sizeof(desc), "mask \"%s\" is \"%s\"", in, want);

    if (!msgr_test_ok(ok, desc)) {
        printf("# got: %s\n", m ? m : "(null)");
    }

    free(m);
}


static void
msgr_test_is(json_t *got, const char *want, const char *desc)
{
    json_t  *w;

    w = json_loads(want, 0, NULL);

    if (!msgr_test_ok(w != NULL && json_equal(got, w), desc)) {
        msgr_test_diag("got", got);
    }

    json_decref(w);
}


int
main(void)
{
    char                    *s, *first, *last, *want;
    size_t                   i;
    json_t                  *rec, *data, *res;
    msgr_recipient_rules_t   rules;

    printf("1..%d\n", MSGR_TEST_PLAN);

    msgr_test_mask("+447700900401", "**********401");
    msgr_test_mask("12345", "**345");
    msgr_test_mask("123", "123");
    msgr_test_mask("", "");
    msgr_test_mask("t.smith@school.example", "t***@school.example");
    msgr_test_mask("\xc3\xa9mile@school.example",
                   "\xc3\xa9***@school.example");
    msgr_test_mask("\xe6\xbc\xa2\xe5\xad\x97@school.example",
                   "\xe6\xbc\xa2***@school.example");
    msgr_test_mask("\xf0\x9f\x98\x80x@example.org",
                   "\xf0\x9f\x98\x80***@example.org");
    msgr_test_mask("@example.org", "***@example.org");
    /* a raw number of the MIS in full-width digits: characters */
    msgr_test_mask("\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94",
                   "*\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94");

    rec = json_loads("{\"id\": 1, \"title\": \"Mr\", \"work_phone\": null,"
                     " \"mobile_phone\": \"+447700900401\","
                     " \"email\": \"\xc3\xa9mile@school.example\","
                     " \"phone_problems\": {\"work_phone\": \"12345\"}}",
                     0, NULL);

    msgr_test_ok(rec != NULL && msgr_staff_mask(rec) == 0,
                 "msgr_staff_mask of a record");
    msgr_test_is(rec, "{\"id\": 1, \"title\": \"Mr\", \"work_phone\": null,"
                      " \"mobile_phone\": \"**********401\","
                      " \"email\": \"\xc3\xa9***@school.example\","
                      " \"phone_problems\": {\"work_phone\": \"**345\"},"
                      " \"masked\": true}",
                 "numbers, email and phone_problems masked, masked: true");
    json_decref(rec);

    rec = json_loads("{\"id\": 2, \"email\": null, \"phone_problems\": {}}",
                     0, NULL);
    msgr_test_ok(msgr_staff_mask(rec) == 0, "msgr_staff_mask, no details");
    msgr_test_is(rec, "{\"id\": 2, \"email\": null, \"phone_problems\": {},"
                      " \"masked\": true}",
                 "null stays null");
    json_decref(rec);

    /* names longer than any buffer, in characters of three bytes */

    first = malloc(300 * 3 + 1);
    last = malloc(300 * 3 + 1);
    want = malloc(2 * 300 * 3 + 16);

    for (i = 0; i < 300; i++) {
        memcpy(first + i * 3, "\xe6\xbc\xa2", 3);
        memcpy(last + i * 3, "\xe5\xad\x97", 3);
    }

    first[900] = '\0';
    last[900] = '\0';
    sprintf(want, "Dr %s %s", first, last);

    s = msgr_person_display_name("Dr", first, last);
    msgr_test_ok(s != NULL && strcmp(s, want) == 0,
                 "a name of 603 characters is whole");
    free(s);

    s = msgr_person_display_name("", "Jane", NULL);
    msgr_test_ok(s != NULL && strcmp(s, "Jane") == 0,
                 "empty parts are left out");
    free(s);

    free(first);
    free(last);
    free(want);

    /* a staff send shown masked */

    data = json_loads("{\"selected_groups\": [{\"id\": 7, \"type\": \"custom\","
                      "  \"students\": [], \"staff\": [3, 4],"
                      "  \"teachers\": []}],"
                      " \"selected_students\": [], \"students\": {},"
                      " \"contacts\": {},"
                      " \"staff\": {\"3\": {\"id\": 3, \"title\": \"Mr\","
                      "  \"first_name\": \"Tom\", \"last_name\": \"Hill\","
                      "  \"work_phone\": \"+441174960001\","
                      "  \"mobile_phone\": \"+447700900401\","
                      "  \"email\": \"t.hill@school.example\"},"
                      " \"4\": {\"id\": 4, \"title\": \"\","
                      "  \"first_name\": \"Ann\", \"last_name\": \"Lee\","
                      "  \"work_phone\": null, \"mobile_phone\": null,"
                      "  \"email\": null}}}", 0, NULL);

    msgr_recipient_rules_from_settings(NULL, &rules);
    msgr_test_ok(!rules.mask_staff_details,
                 "the settings never ask for masking by themselves");

    rules.mask_staff_details = 1;
    res = msgr_recipients_resolve(data, MSGR_SEND_STAFF, &rules,
                                  "2026-04-10", NULL);

    msgr_test_is(json_array_get(json_object_get(res, "recipients"), 0),
                 "{\"type\": \"staff\", \"id\": 3, \"name\": \"Mr Tom Hill\","
                 " \"groups\": [7], \"masked\": true,"
                 " \"channels\": {\"xpressions\": false,"
                 "  \"sms\": \"**********401\","
                 "  \"voice\": [\"**********001\"],"
                 "  \"email\": \"t***@school.example\"}}",
                 "a staff recipient's channels masked");
    msgr_test_is(json_object_get(json_object_get(res, "counts"),
                                 "by_channel"),
                 "{\"xpressions\": 0, \"sms\": 1, \"voice\": 1, \"email\": 1}",
                 "counts as without masking");
    msgr_test_ok(json_is_true(json_object_get(
                     json_array_get(json_object_get(res, "unreachable"), 0),
                     "masked")),
                 "an unreachable staff member says masked too");
    json_decref(res);

    rules.mask_staff_details = 0;
    res = msgr_recipients_resolve(data, MSGR_SEND_STAFF, &rules,
                                  "2026-04-10", NULL);
    msgr_test_ok(strcmp(json_string_value(json_object_get(json_object_get(
                     json_array_get(json_object_get(res, "recipients"), 0),
                     "channels"), "sms")), "+447700900401") == 0,
                 "without mask_staff_details the number is whole");
    json_decref(res);
    json_decref(data);

    return msgr_test_end(MSGR_TEST_PLAN);
}

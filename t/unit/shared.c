/*
 * Unit tests of the rules written once and shared by the settings, the MIS
 * sync, recipient resolution, the module and msgrctl: lists of names and
 * calendar dates (src/msgr_text.c), reading a resolved settings object
 * with the table's defaults (src/msgr_settings.c), "Title First Last"
 * (src/msgr_recipients.c).  Prints TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_text.h"
#include "msgr_settings.h"
#include "msgr_recipients.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  38


static const char *const  msgr_test_colours[] = {
    "red", "green", "blue", NULL
};

static const int64_t  msgr_test_ints[] = { 5, 10, 15, -1 };


static int
msgr_test_date(const char *s, long want_days, int want)
{
    int   rc;
    long  days;

    days = -12345;
    rc = msgr_date_parse(s, strlen(s), &days);

    return rc == want && (rc != MSGR_DATE_OK || days == want_days);
}


static int
msgr_test_name(const char *title, const char *first, const char *last,
    const char *want)
{
    int    ok;
    char  *s;

    s = msgr_person_display_name(title, first, last);
    ok = s != NULL && strcmp(s, want) == 0;
    free(s);

    return ok;
}


int
main(void)
{
    char     buf[64];
    json_t  *settings, *resolved;

    printf("1..%d\n", MSGR_TEST_PLAN);

    /* lists of names */

    msgr_test_ok(msgr_text_choice(msgr_test_colours, "green", 5) == 1,
                 "choice: found");
    msgr_test_ok(msgr_text_choice(msgr_test_colours, "gree", 4) == -1,
                 "choice: a prefix is not a choice");
    msgr_test_ok(msgr_text_choice(msgr_test_colours, "greens", 5) == 1,
                 "choice: only len bytes count");
    msgr_test_ok(msgr_text_choice(msgr_test_colours, "Red", 3) == -1,
                 "choice: case counts");

    snprintf(buf, sizeof(buf), "one of: ");
    msgr_text_join(buf, sizeof(buf), msgr_test_colours, NULL);
    msgr_test_ok(strcmp(buf, "one of: red, green, blue") == 0,
                 "join: strings after the text");

    buf[0] = '\0';
    msgr_text_join(buf, sizeof(buf), NULL, msgr_test_ints);
    msgr_test_ok(strcmp(buf, "5, 10, 15") == 0, "join: integers");

    snprintf(buf, 12, "one of: ");
    msgr_text_join(buf, 12, msgr_test_colours, NULL);
    msgr_test_ok(strcmp(buf, "one of: red") == 0,
                 "join: cut short to the buffer");

    /* dates */

    msgr_test_ok(msgr_test_date("1970-01-01", 0, MSGR_DATE_OK),
                 "date: the epoch");
    msgr_test_ok(msgr_test_date("2024-02-29", 19782, MSGR_DATE_OK),
                 "date: a leap day");
    msgr_test_ok(msgr_test_date("1969-12-31", -1, MSGR_DATE_OK),
                 "date: before the epoch");
    msgr_test_ok(msgr_test_date("2000-02-29", 11016, MSGR_DATE_OK),
                 "date: 2000 is a leap year");
    msgr_test_ok(msgr_test_date("1900-02-29", 0, MSGR_DATE_DAY),
                 "date: 1900 is not a leap year");
    msgr_test_ok(msgr_test_date("2023-04-31", 0, MSGR_DATE_DAY),
                 "date: no 31st of April");
    msgr_test_ok(msgr_test_date("2023-13-01", 0, MSGR_DATE_DAY),
                 "date: no month 13");
    msgr_test_ok(msgr_test_date("2023-01-00", 0, MSGR_DATE_DAY),
                 "date: no day 0");
    msgr_test_ok(msgr_test_date("0000-01-01", 0, MSGR_DATE_DAY),
                 "date: no year 0000");
    msgr_test_ok(msgr_test_date("2023-1-01", 0, MSGR_DATE_FORMAT),
                 "date: one-digit month");
    msgr_test_ok(msgr_test_date("2023/01/01", 0, MSGR_DATE_FORMAT),
                 "date: slashes");
    msgr_test_ok(msgr_test_date("2023-01-01T", 0, MSGR_DATE_FORMAT),
                 "date: too long");
    msgr_test_ok(msgr_test_date("2023-0a-01", 0, MSGR_DATE_FORMAT),
                 "date: a letter");
    msgr_test_ok(msgr_date_parse("2023-01-01", 10, NULL) == MSGR_DATE_OK,
                 "date: days may be NULL");

    /* settings, with the table's defaults */

    settings = json_loads("{\"contacts\":{\"show_registration_in_names\":"
                          "true,\"next_available_if_no_primary\":1},"
                          "\"mis\":{\"leavers_persistence_days\":99999},"
                          "\"sending\":{\"voice_calling\":\"all_numbers\"},"
                          "\"school\":{\"phone_country\":\"IE\"}}",
                          0, NULL);
    resolved = msgr_settings_resolve(NULL, "Hill School");

    msgr_test_ok(settings != NULL && resolved != NULL, "settings parsed");

    msgr_test_ok(msgr_settings_bool(settings, "contacts",
                                    "show_registration_in_names") == 1,
                 "bool: a value set");
    msgr_test_ok(msgr_settings_bool(settings, "contacts",
                                    "next_available_if_no_primary")
                 == msgr_settings_bool(NULL, "contacts",
                                       "next_available_if_no_primary"),
                 "bool: a value of the wrong type takes the default");
    msgr_test_ok(msgr_settings_bool(NULL, "mis", "guest_students")
                 == msgr_settings_bool(resolved, "mis", "guest_students"),
                 "bool: the default is the resolved default");
    msgr_test_ok(msgr_settings_bool(settings, "nope", "nothing") == 0,
                 "bool: an unknown field is false");

    msgr_test_ok(msgr_settings_int(settings, "mis",
                                   "leavers_persistence_days")
                 == msgr_settings_int(resolved, "mis",
                                      "leavers_persistence_days"),
                 "int: out of bounds takes the default");
    msgr_test_ok(msgr_settings_int(NULL, "mis", "leavers_persistence_days")
                 == json_integer_value(json_object_get(
                        json_object_get(resolved, "mis"),
                        "leavers_persistence_days")),
                 "int: the default is the resolved default");

    msgr_test_ok(msgr_settings_is(settings, "sending", "voice_calling",
                                  "all_numbers"),
                 "is: a value set");
    msgr_test_ok(!msgr_settings_is(settings, "sending", "voice_calling",
                                   "all_number"),
                 "is: another value");
    msgr_test_ok(msgr_settings_is(NULL, "sending", "voice_calling",
                                  json_string_value(json_object_get(
                                      json_object_get(resolved, "sending"),
                                      "voice_calling"))),
                 "is: the default is the resolved default");

    msgr_test_ok(msgr_settings_string(settings, "school", "phone_country")
                 != NULL
                 && strcmp(msgr_settings_string(settings, "school",
                                                "phone_country"), "IE") == 0,
                 "string: a value set");
    msgr_test_ok(strcmp(msgr_settings_string(resolved, "school", "name"),
                        "Hill School") == 0,
                 "string: the school's name");
    msgr_test_ok(msgr_settings_string(settings, "school", "name") == NULL,
                 "string: NULL when missing");

    json_decref(settings);
    json_decref(resolved);

    /* "Title First Last" */

    msgr_test_ok(msgr_test_name("Mrs", "Jane", "Jones", "Mrs Jane Jones"),
                 "name: title, first, last");
    msgr_test_ok(msgr_test_name(NULL, "Jane", "Jones", "Jane Jones"),
                 "name: no title");
    msgr_test_ok(msgr_test_name("", "", "Jones", "Jones"),
                 "name: empty parts left out");
    msgr_test_ok(msgr_test_name(NULL, NULL, NULL, ""), "name: nothing");

    return msgr_test_end(MSGR_TEST_PLAN);
}

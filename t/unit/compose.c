/*
 * Unit tests of src/msgr_compose.c: a message made ready to send.  Each
 * recipient's texts rendered with their own merge tokens, in their
 * language with the warning line when the school asks for it; SMS costs
 * counted on the rendered text; outbox rows that are exactly the routed
 * deliveries; unknown tokens refused field by field; the PIN threshold;
 * a message's own routing; staff masked for display only.  Prints TAP.
 *
 * Fixtures are JSON with ' for "; the expectations are written out here.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_compose.h"
#include "msgr_tap.h"


#define MSGR_TEST_PLAN  38


/* Amy (mother Jane, English) and Dee (mother Ewa, Polish); teacher Tom */

static const char  msgr_test_data[] =
    "{'records': {"
    "  'selected_groups': [{'id': 3, 'name': '7B', 'type': 'class',"
    "     'students': [1, 2], 'staff': [], 'teachers': [7]}],"
    "  'selected_students': [],"
    "  'students': {"
    "   '1': {'id': 1, 'first_name': 'Amy', 'last_name': 'Jones',"
    "         'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "         'contacts': [{'id': 10, 'priority': 1,"
    "                       'correspondence': true,"
    "                       'relationship': 'Mother'}]},"
    "   '2': {'id': 2, 'first_name': 'Dee', 'last_name': 'Nowak',"
    "         'reg_group': '7B', 'status': 'on_roll', 'leaving_date': null,"
    "         'contacts': [{'id': 11, 'priority': 1,"
    "                       'correspondence': true,"
    "                       'relationship': 'Mother'}]}},"
    "  'contacts': {"
    "   '10': {'id': 10, 'title': 'Mrs', 'first_name': 'Jane',"
    "          'last_name': 'Jones', 'home_phone': null,"
    "          'work_phone': null, 'mobile_phone': '+447700900101',"
    "          'email': 'jane@example.org', 'language': 'en',"
    "          'devices': 0},"
    "   '11': {'id': 11, 'title': 'Pani', 'first_name': 'Ewa',"
    "          'last_name': 'Nowak', 'home_phone': null,"
    "          'work_phone': null, 'mobile_phone': '+447700900104',"
    "          'email': 'ewa@example.org', 'language': 'pl-PL',"
    "          'devices': 0}},"
    "  'staff': {"
    "   '7': {'id': 7, 'title': 'Mr', 'first_name': 'Tom',"
    "         'last_name': 'Smith', 'work_phone': null,"
    "         'mobile_phone': '+447700900401',"
    "         'email': 't.smith@school.example'}},"
    "  'missing_groups': [], 'missing_students': []},"
    " 'attributes': {'Head of Year': 'Miss Smith'},"
    " 'contact_tokens': {"
    "   '10': {'students': [{'id': 1, 'first_name': 'Amy',"
    "          'last_name': 'Jones', 'reg_group': '7B'}],"
    "          'attributes': {'Head of Year': 'Mr Hall'}},"
    "   '11': {'students': [{'id': 2, 'first_name': 'Dee',"
    "          'last_name': 'Nowak', 'reg_group': '7B'}],"
    "          'attributes': {'Head of Year': 'Miss Smith'}}},"
    " 'prices': {}}";

static const char  msgr_test_settings[] =
    "{'sending': {'pin_threshold': 1000,"
    "             'include_translation_warning_link': false},"
    " 'school': {'name': 'Alpha Academy', 'phone': '+442079460999'},"
    " 'contacts': {}, 'mis': {}, 'xpressions': {}}";


typedef struct {
    json_t              *data;
    json_t              *settings;
    msgr_compose_in_t    in;
    msgr_compose_out_t   out;
} msgr_test_t;


static void
msgr_test_run(msgr_test_t *t, const char *message, unsigned rows)
{
    memset(t, 0, sizeof(msgr_test_t));

    t->data = msgr_test_json(msgr_test_data);
    t->settings = msgr_test_json(msgr_test_settings);

    t->in.message = msgr_test_json(message);
    t->in.data = t->data;
    t->in.settings = t->settings;
    t->in.send_to = MSGR_SEND_PRIMARY_CONTACT;
    t->in.today = "2026-04-10";
    t->in.warning_url = "https://msgr.example/v1/translation-warning";
    t->in.deliveries = rows;
}


static void
msgr_test_done(msgr_test_t *t)
{
    msgr_compose_free(&t->out);
    json_decref(t->in.message);
    json_decref(t->data);
    json_decref(t->settings);
}


/* the row of a recipient and channel, or NULL */

static json_t *
msgr_test_row(msgr_test_t *t, const char *type, int id, const char *channel)
{
    size_t   i;
    json_t  *row;

    for (i = 0; i < json_array_size(t->out.deliveries); i++) {
        row = json_array_get(t->out.deliveries, i);

        if (strcmp(json_string_value(json_object_get(row, "recipient_type")),
                   type) == 0
            && json_integer_value(json_object_get(row, "recipient_id")) == id
            && strcmp(json_string_value(json_object_get(row, "channel")),
                      channel) == 0
            && strcmp(json_string_value(json_object_get(row, "purpose")),
                      "primary") == 0)
        {
            return row;
        }
    }

    return NULL;
}


static const char *
msgr_test_text(msgr_test_t *t, const char *type, int id, const char *channel,
    const char *field)
{
    const char  *s;

    s = json_string_value(json_object_get(msgr_test_row(t, type, id,
                                                         channel),
                                          field));

    return s ? s : "(none)";
}


static int
msgr_test_is(const char *got, const char *want, const char *desc)
{
    if (!msgr_test_ok(strcmp(got, want) == 0, desc)) {
        printf("#   got:  %s\n#   want: %s\n", got, want);
        return 0;
    }

    return 1;
}


/* the rows are the routed deliveries, one for one */

static void
msgr_test_rows_match(msgr_test_t *t, const char *desc)
{
    char     buf[256];
    size_t   i, j, n;
    json_t  *recs, *rec, *d, *row;
    int      same;

    recs = json_object_get(t->out.result, "recipients");
    n = 0;
    same = 1;

    for (i = 0; i < json_array_size(recs); i++) {
        rec = json_array_get(recs, i);

        json_array_foreach(json_object_get(rec, "deliveries"), j, d) {
            row = json_array_get(t->out.deliveries, n++);

            if (!json_equal(json_object_get(row, "recipient_id"),
                            json_object_get(rec, "id"))
                || !json_equal(json_object_get(row, "channel"),
                               json_object_get(d, "channel"))
                || !json_equal(json_object_get(row, "address"),
                               json_object_get(d, "address"))
                || !json_equal(json_object_get(row, "cost"),
                               json_object_get(d, "cost")))
            {
                same = 0;
            }
        }
    }

    snprintf(buf, sizeof(buf), "%s: one row per delivery, in order", desc);
    msgr_test_ok(same && n == json_array_size(t->out.deliveries)
                 && (json_int_t) n
                    == json_integer_value(json_object_get(
                           json_object_get(t->out.result, "counts"),
                           "deliveries")), buf);
}


int
main(void)
{
    char          *long_sms;
    size_t         i;
    json_t        *e, *teacher;
    msgr_test_t    t;
    const char    *field;

    printf("1..%d\n", MSGR_TEST_PLAN);

    /* merge tokens, each recipient's own */

    msgr_test_run(&t,
        "{'channels': ['sms', 'email'], 'subject': 'Trip for {first_name}',"
        " 'body': 'Dear {name}, {student_first_names} goes on Friday."
        " {Head of Year}, {school_name} {{ok}}'}", 1);
    msgr_compose(&t.in, &t.out);

    msgr_test_ok(t.out.rc == 0, "sms + email: composed");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "sms", "body"),
                 "Dear Mrs Jane Jones, Amy goes on Friday. Mr Hall,"
                 " Alpha Academy {ok}", "Jane's SMS: her tokens");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "email", "subject"),
                 "Trip for Jane", "Jane's email subject");
    msgr_test_is(msgr_test_text(&t, "staff", 7, "sms", "body"),
                 "Dear Mr Tom Smith,  goes on Friday. Miss Smith,"
                 " Alpha Academy {ok}",
                 "the teacher: his own name, no students, the default");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "sms", "subject"),
                 "(none)", "an SMS has no subject");
    msgr_test_rows_match(&t, "sms + email");
    msgr_test_ok(t.out.pin_counted == 6 && !t.out.pin_required,
                 "pin_counted 6, below 1000");
    msgr_test_ok(json_is_false(json_object_get(t.out.result,
                                               "pin_required")),
                 "the result says pin_required false");
    msgr_test_done(&t);

    /* translations: Ewa's pl-PL takes pl; the warning line when asked */

    msgr_test_run(&t,
        "{'channels': ['sms', 'email', 'voice'], 'subject': 'Trip',"
        " 'body': 'Dear {first_name}', 'voice_body': 'Hello {first_name}',"
        " 'translations': {'pl': {'body': 'Droga {first_name}',"
        "                         'voice_body': 'Witaj {first_name}'}}}", 1);
    msgr_compose(&t.in, &t.out);

    msgr_test_ok(t.out.rc == 0, "translations: composed");
    msgr_test_is(msgr_test_text(&t, "contact", 11, "sms", "body"),
                 "Droga Ewa", "Ewa's SMS in Polish");
    msgr_test_is(msgr_test_text(&t, "contact", 11, "email", "subject"),
                 "Trip", "a translation without a subject keeps the subject");
    msgr_test_is(msgr_test_text(&t, "contact", 11, "email", "language"),
                 "pl", "the translation's language is recorded");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "sms", "body"),
                 "Dear Jane", "Jane's SMS in English");
    msgr_test_ok(json_is_null(json_object_get(msgr_test_row(&t, "contact",
                                                            10, "sms"),
                                              "language")),
                 "no language for the original");
    msgr_test_done(&t);

    msgr_test_run(&t,
        "{'channels': ['sms', 'email'], 'subject': 'Trip',"
        " 'body': 'Dear {first_name}',"
        " 'translations': {'pl': {'body': 'Droga {first_name}',"
        "                         'sms_body': 'Hej {first_name}'}}}", 1);
    json_object_set_new(json_object_get(t.settings, "sending"),
                        "include_translation_warning_link", json_true());
    msgr_compose(&t.in, &t.out);

    msgr_test_is(msgr_test_text(&t, "contact", 11, "sms", "body"),
                 "Hej Ewa\n\nThis message was translated automatically:"
                 " https://msgr.example/v1/translation-warning",
                 "the translated SMS ends with the warning and msgr's page");
    msgr_test_is(msgr_test_text(&t, "contact", 11, "email", "body"),
                 "Droga Ewa\n\nThis message was translated automatically:"
                 " https://msgr.example/v1/translation-warning",
                 "so does the email");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "sms", "body"),
                 "Dear Jane", "the original has no warning");
    msgr_test_done(&t);

    msgr_test_run(&t,
        "{'channels': ['sms'], 'body': 'x',"
        " 'translations': {'pl': {'body': 'y'}}}", 1);
    json_object_set_new(json_object_get(t.settings, "sending"),
                        "include_translation_warning_link", json_true());
    json_object_set_new(json_object_get(t.settings, "sending"),
                        "translation_warning_url",
                        json_string("https://school.example/t"));
    msgr_compose(&t.in, &t.out);
    msgr_test_is(msgr_test_text(&t, "contact", 11, "sms", "body"),
                 "y\n\nThis message was translated automatically:"
                 " https://school.example/t",
                 "sending.translation_warning_url wins over msgr's page");
    msgr_test_done(&t);

    /*
     * a contact without tokens of its own (none in contact_tokens): no
     * students, the school's attributes, and nothing leaked (make
     * test-asan checks)
     */

    msgr_test_run(&t,
        "{'channels': ['sms'],"
        " 'body': '{first_name}: {student_first_names}; {Head of Year}'}",
        1);
    json_object_del(json_object_get(t.data, "contact_tokens"), "10");
    msgr_compose(&t.in, &t.out);

    msgr_test_ok(t.out.rc == 0, "a contact without tokens: composed");
    msgr_test_is(msgr_test_text(&t, "contact", 10, "sms", "body"),
                 "Jane: ; Miss Smith",
                 "no students, the school's attribute");
    msgr_test_done(&t);

    /* unknown merge tokens: every field named, nothing routed */

    msgr_test_run(&t,
        "{'channels': ['sms', 'email'], 'subject': 'Hi {nope}',"
        " 'body': 'Dear {first_name}', 'sms_body': '{also_nope}',"
        " 'translations': {'pl': {'body': '{brak}'}}}", 1);
    msgr_compose(&t.in, &t.out);

    msgr_test_ok(t.out.rc == 1, "unknown tokens: invalid");
    msgr_test_ok(json_array_size(t.out.errors) == 3, "three fields named");

    for (i = 0; i < json_array_size(t.out.errors); i++) {
        e = json_array_get(t.out.errors, i);
        field = json_string_value(json_object_get(e, "field"));

        if (strcmp(field, "translations.pl.body") == 0) {
            msgr_test_ok(strstr(json_string_value(json_object_get(e,
                                                               "message")),
                                "{brak}") != NULL,
                         "translations.pl.body names {brak}");
        }
    }

    msgr_test_ok(t.out.result == NULL && t.out.deliveries == NULL,
                 "nothing routed or written");
    msgr_test_done(&t);

    /* an SMS costs what its rendered text needs */

    long_sms = malloc(200);
    if (long_sms == NULL) {
        return 1;
    }

    /* 150 characters and a token: Jane's fits one part, a longer name not */
    memset(long_sms, 'a', 150);
    strcpy(long_sms + 150, "{last_name}");

    {
        char  msg[400];

        snprintf(msg, sizeof(msg), "{'channels': ['sms'], 'body': '%s'}",
                 long_sms);
        msgr_test_run(&t, msg, 1);
    }

    json_object_set_new(json_object_get(json_object_get(json_object_get(
                            t.data, "records"), "contacts"), "11"),
                        "last_name", json_string("Nowakowska-Wisniewska"));
    msgr_compose(&t.in, &t.out);

    msgr_test_ok(json_integer_value(json_object_get(
                     msgr_test_row(&t, "contact", 10, "sms"), "cost")) == 35,
                 "160 characters: one part");
    msgr_test_ok(json_integer_value(json_object_get(
                     msgr_test_row(&t, "contact", 11, "sms"), "cost")) == 70,
                 "171 characters: two parts");
    msgr_test_done(&t);
    free(long_sms);

    /* the PIN threshold */

    msgr_test_run(&t, "{'channels': ['sms', 'email'], 'subject': 's',"
                      " 'body': 'b'}", 0);
    json_object_set_new(json_object_get(t.settings, "sending"),
                        "pin_threshold", json_integer(5));
    msgr_compose(&t.in, &t.out);
    msgr_test_ok(t.out.pin_counted == 6 && t.out.pin_required,
                 "6 over a threshold of 5: the PIN is needed");
    msgr_test_ok(t.out.deliveries == NULL, "a preview makes no rows");
    msgr_test_done(&t);

    msgr_test_run(&t, "{'channels': ['sms', 'email'], 'subject': 's',"
                      " 'body': 'b'}", 0);
    json_object_set_new(json_object_get(t.settings, "sending"),
                        "pin_threshold", json_integer(6));
    msgr_compose(&t.in, &t.out);
    msgr_test_ok(!t.out.pin_required, "6 at a threshold of 6: not needed");
    msgr_test_done(&t);

    /* a message's own routing */

    msgr_test_run(&t, "{'channels': ['sms', 'email'], 'subject': 's',"
                      " 'body': 'b', 'routing': 'fastest'}", 1);
    msgr_compose(&t.in, &t.out);
    msgr_test_is(json_string_value(json_object_get(t.out.result, "routing")),
                 "fastest", "routing: the message's own");
    msgr_test_ok(json_array_size(t.out.deliveries) == 3,
                 "fastest: one delivery each");
    msgr_test_ok(msgr_test_row(&t, "contact", 10, "email") == NULL,
                 "fastest: SMS before email");
    msgr_test_rows_match(&t, "fastest");
    msgr_test_done(&t);

    /* staff masked for display; the rows keep the real address */

    msgr_test_run(&t, "{'channels': ['sms'], 'body': 'b'}", 1);
    t.in.mask_staff = 1;
    msgr_compose(&t.in, &t.out);

    teacher = NULL;

    for (i = 0; i < json_array_size(json_object_get(t.out.result,
                                                    "recipients")); i++)
    {
        e = json_array_get(json_object_get(t.out.result, "recipients"), i);

        if (strcmp(json_string_value(json_object_get(e, "type")), "staff")
            == 0)
        {
            teacher = e;
        }
    }

    msgr_test_ok(json_is_true(json_object_get(teacher, "masked")),
                 "the teacher is masked in the result");
    msgr_test_is(json_string_value(json_object_get(json_array_get(
                     json_object_get(teacher, "deliveries"), 0), "address")),
                 "**********401", "and so is his delivery's address");
    msgr_test_is(msgr_test_text(&t, "staff", 7, "sms", "address"),
                 "+447700900401", "the row keeps the real number");
    msgr_test_done(&t);

    /* voice only: the parents have mobiles only, the teacher is called */

    msgr_test_run(&t, "{'channels': ['voice'], 'body': 'b',"
                      " 'voice_body': 'Hello {first_name}'}", 1);
    msgr_compose(&t.in, &t.out);
    msgr_test_ok(t.out.rc == 0
                 && json_array_size(json_object_get(t.out.result,
                                                    "recipients")) == 1
                 && json_array_size(json_object_get(t.out.result,
                                                    "unreachable")) == 2,
                 "voice: the two mothers unreachable, the teacher called");
    msgr_test_is(msgr_test_text(&t, "staff", 7, "voice", "body"),
                 "Hello Tom", "the spoken text is voice_body");
    msgr_test_done(&t);

    return msgr_test_end(MSGR_TEST_PLAN);
}

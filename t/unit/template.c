/*
 * Unit tests of src/msgr_template.c (merge tokens and translations),
 * printing TAP.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_settings.h"
#include "msgr_template.h"
#include "msgr_tap.h"


/* a contact as GET /v1/contacts/{id}/tokens reads it from SQL */

static json_t *
msgr_test_contact(const char *title, int students)
{
    json_t  *c, *s;

    c = json_pack("{s:i, s:s?, s:s, s:s, s:s, s:[]}", "id", 7,
                  "title", title, "first_name", "Jane", "last_name", "Jones",
                  "language", "pl", "students");
    s = json_object_get(c, "students");

    if (students > 0) {
        json_array_append_new(s, json_pack("{s:s, s:s}", "first_name", "Amy",
                                           "last_name", "Jones"));
    }

    if (students > 1) {
        json_array_append_new(s, json_pack("{s:s, s:s}", "first_name", "Ben",
                                           "last_name", "Jones"));
    }

    if (students > 2) {
        json_array_append_new(s, json_pack("{s:s, s:s}", "first_name", "Cal",
                                           "last_name", "Smith"));
    }

    return c;
}


/* compares and frees got (NULL reads "(null)") */

static int
msgr_test_is(char *got, const char *want, const char *desc)
{
    int  ok;

    ok = (got == NULL && want == NULL)
         || (got != NULL && want != NULL && strcmp(got, want) == 0);

    msgr_test_ok(ok, desc);

    if (!ok) {
        printf("# got \"%s\"\n# want \"%s\"\n", got ? got : "(null)",
               want ? want : "(null)");
    }

    free(got);
    return ok;
}


static char *
msgr_test_render(const char *text, json_t *tokens)
{
    char    *s;
    size_t   len;

    len = (size_t) -1;
    s = msgr_template_render(text, strlen(text), tokens, &len);

    if (s != NULL && len != strlen(s)) {
        printf("# out_len %zu, strlen %zu\n", len, strlen(s));
        free(s);
        return strdup("(wrong out_len)");
    }

    return s;
}


static char *
msgr_test_check(const char *text, json_t *names)
{
    return msgr_template_check(text, strlen(text), names);
}


static void
msgr_test_tokens(json_t *contact, json_t *attributes, json_t *school)
{
    char    *s;
    json_t  *tokens, *staff;

    /* what GET /v1/contacts/{id}/tokens shows, in its order */

    tokens = msgr_template_contact_tokens(contact, attributes, NULL);
    s = json_dumps(tokens, JSON_COMPACT);
    msgr_test_is(s,
        "{\"Head of Year 7\":\"Mr Jones\",\"Trip date\":\"\","
        "\"Ann\xc3\xa9" "e 7\":\"Mme Lef\xc3\xa8vre\","
        "\"title\":\"Mrs\",\"first_name\":\"Jane\",\"last_name\":\"Jones\","
        "\"name\":\"Mrs Jane Jones\","
        "\"student_names\":\"Amy Jones, Ben Jones and Cal Smith\","
        "\"student_first_names\":\"Amy, Ben and Cal\"}",
        "contact tokens: the attributes, then the built-in ones, no more");

    msgr_test_is(msgr_test_render(
        "{title}|{first_name}|{last_name}|{name}|{student_names}|"
        "{student_first_names}", tokens),
        "Mrs|Jane|Jones|Mrs Jane Jones|Amy Jones, Ben Jones and Cal Smith|"
        "Amy, Ben and Cal",
        "every built-in token renders");
    json_decref(tokens);

    tokens = msgr_template_contact_tokens(contact, attributes, school);
    msgr_test_ok(json_object_size(tokens) == 14,
                 "with the school: 3 attributes, 6 built-in, 5 school tokens");

    msgr_test_is(msgr_test_render(
        "{school_name}|{school_phone}|{school_email}|{school_address}|"
        "{school_website}", tokens),
        "Hill School|01632 960000|office@hill.example|1 Hill Road, Leeds|"
        "https://hill.example",
        "every school token renders");

    msgr_test_is(msgr_test_render("{head OF year 7} / {TRIP DATE}.", tokens),
                 "Mr Jones / .", "attributes with spaces, in another case");

    msgr_test_is(msgr_test_render("{ANN\xc3\x89" "E 7}", tokens),
                 "Mme Lef\xc3\xa8vre", "an accented name in capitals");

    msgr_test_is(msgr_test_render("{  first_name\t}", tokens), "Jane",
                 "white space inside the braces is ignored");

    msgr_test_is(msgr_test_render("{First_Name}{LAST_NAME}", tokens),
                 "JaneJones", "adjacent tokens");

    msgr_test_is(msgr_test_check("{School_Name} {head of year 7} {name}",
                                 tokens),
                 NULL, "check: known tokens in any case");
    json_decref(tokens);

    /* staff */

    staff = json_pack("{s:s, s:s, s:s, s:s}", "title", "Mr",
                      "first_name", "Sam", "last_name", "Lee",
                      "email", "sam@hill.example");
    tokens = msgr_template_staff_tokens(staff, attributes, school);
    s = json_dumps(tokens, JSON_COMPACT);
    msgr_test_is(s,
        "{\"Head of Year 7\":\"Mr Jones\",\"Trip date\":\"\","
        "\"Ann\xc3\xa9" "e 7\":\"Mme Lef\xc3\xa8vre\","
        "\"title\":\"Mr\",\"first_name\":\"Sam\",\"last_name\":\"Lee\","
        "\"name\":\"Mr Sam Lee\","
        "\"student_names\":\"\",\"student_first_names\":\"\","
        "\"school_name\":\"Hill School\",\"school_phone\":\"01632 960000\","
        "\"school_email\":\"office@hill.example\","
        "\"school_address\":\"1 Hill Road, Leeds\","
        "\"school_website\":\"https://hill.example\"}",
        "staff tokens: own names, attributes, empty students, the school");
    json_decref(tokens);
    json_decref(staff);
}


static void
msgr_test_students(json_t *attributes)
{
    json_t  *c, *t;

    c = msgr_test_contact(NULL, 0);
    t = msgr_template_contact_tokens(c, attributes, NULL);
    msgr_test_is(msgr_test_render("[{title}] [{name}] [{student_names}] "
                                  "[{student_first_names}]", t),
                 "[] [Jane Jones] [] []",
                 "no title, no students: empty tokens");
    json_decref(t);
    json_decref(c);

    c = msgr_test_contact("Dr", 1);
    t = msgr_template_contact_tokens(c, NULL, NULL);
    msgr_test_is(msgr_test_render("{name}: {student_names} "
                                  "({student_first_names})", t),
                 "Dr Jane Jones: Amy Jones (Amy)", "one student");
    msgr_test_ok(json_object_size(t) == 6, "no attributes: 6 tokens");
    json_decref(t);
    json_decref(c);

    c = msgr_test_contact("Dr", 2);
    t = msgr_template_contact_tokens(c, NULL, NULL);
    msgr_test_is(msgr_test_render("{student_names} ({student_first_names})",
                                  t),
                 "Amy Jones and Ben Jones (Amy and Ben)", "two students");
    json_decref(t);
    json_decref(c);
}


static void
msgr_test_braces(json_t *tokens)
{
    msgr_test_is(msgr_test_render("{{first_name}}", tokens), "{first_name}",
                 "{{ and }} are braces, not a token");
    msgr_test_is(msgr_test_render("{{{first_name}}}", tokens), "{Jane}",
                 "a token in braces");
    msgr_test_is(msgr_test_render("a }} b {{ c", tokens), "a } b { c",
                 "lone doubled braces");
    msgr_test_is(msgr_test_check("{{ nothing }} here", tokens), NULL,
                 "check: doubled braces are good");

    msgr_test_is(msgr_test_check("Hello {first_name", tokens),
                 "{ at character 7 is not closed (write {{ for a brace)",
                 "an unclosed {");
    msgr_test_is(msgr_test_check("Za\xc5\xbc\xc3\xb3\xc5\x82\xc4\x87 {x",
                                 tokens),
                 "{ at character 8 is not closed (write {{ for a brace)",
                 "an unclosed { after Polish letters: counted in characters");
    msgr_test_is(msgr_test_check("{first_name {last_name}", tokens),
                 "{ at character 1 is not closed (write {{ for a brace)",
                 "a { before the } is not closed");
    msgr_test_is(msgr_test_check("ab}", tokens),
                 "} at character 3 has no opening { (write }} for a brace)",
                 "a lone }");
    msgr_test_is(msgr_test_check("\xc4\x85\xc4\x99 {name} \xe2\x82\xac}",
                                 tokens),
                 "} at character 12 has no opening { (write }} for a brace)",
                 "a } after a token, a 3-byte character");
    msgr_test_is(msgr_test_check("\xf0\x9f\x98\x80{}", tokens),
                 "empty merge token {} at character 2", "an empty token");
    msgr_test_is(msgr_test_check("x { \xc2\xa0}", tokens),
                 "empty merge token {} at character 3",
                 "a token of white space is empty");
    msgr_test_is(msgr_test_check("{nosuch} }", tokens),
                 "} at character 10 has no opening { (write }} for a brace)",
                 "a brace problem is told before unknown tokens");

    msgr_test_is(msgr_test_render("Hello {first_name", tokens), NULL,
                 "render refuses an unclosed {");
    msgr_test_is(msgr_test_render("}", tokens), NULL,
                 "render refuses a lone }");
    msgr_test_is(msgr_test_render("{}", tokens), NULL,
                 "render refuses an empty token");
}


static void
msgr_test_unknown(json_t *tokens)
{
    msgr_test_is(msgr_test_check("Dear {frist_name},", tokens),
                 "unknown merge token {frist_name}", "one unknown token");
    msgr_test_is(msgr_test_check("{foo} {name} {Bar} {FOO} {bar baz}",
                                 tokens),
                 "unknown merge tokens {foo}, {Bar}, {bar baz}",
                 "every unknown token once, in order");
    msgr_test_is(msgr_test_check("{ Head of Year 8 }", tokens),
                 "unknown merge token {Head of Year 8}",
                 "an unknown name with spaces, trimmed");
    msgr_test_is(msgr_test_check("", tokens), NULL, "an empty text is good");
    msgr_test_is(msgr_test_check("{name}", NULL), "unknown merge token {name}",
                 "no names: every token is unknown");

    msgr_test_is(msgr_test_render("[{nosuch}]", tokens), "[]",
                 "render: a token with no value renders empty");
}


static void
msgr_test_values(void)
{
    char     *big, *text, *want, *s;
    size_t    n, len;
    json_t   *t;

    t = json_pack("{s:s, s:n, s:i, s:s}", "empty", "", "null", "number", 5,
                  "first_name", "\xc5\x81ucja");

    msgr_test_is(msgr_test_render("<{empty}><{null}><{number}>", t),
                 "<><><>", "empty, null and non-string values render empty");

    msgr_test_is(msgr_test_render("Cze\xc5\x9b\xc4\x87 {first_name} \xe2\x80"
                                  "\x94 dzi\xc4\x99kujemy \xf0\x9f\x98\x80",
                                  t),
                 "Cze\xc5\x9b\xc4\x87 \xc5\x81ucja \xe2\x80\x94 "
                 "dzi\xc4\x99kujemy \xf0\x9f\x98\x80",
                 "multi-byte text around a multi-byte value");

    /* a value of 100000 bytes, four times, in a text of 50000 bytes */
    n = 100000;
    big = malloc(n + 1);
    memset(big, 'v', n);
    big[n] = '\0';
    json_object_set_new(t, "big", json_string(big));

    text = malloc(50000 + 64);
    memset(text, 't', 50000);
    strcpy(text + 50000, "{big}{big}|{big}{big}");

    len = 0;
    s = msgr_template_render(text, strlen(text), t, &len);
    want = malloc(50000 + 4 * n + 2);
    memset(want, 't', 50000);
    memset(want + 50000, 'v', 2 * n);
    want[50000 + 2 * n] = '|';
    memset(want + 50001 + 2 * n, 'v', 2 * n);
    want[50001 + 4 * n] = '\0';

    msgr_test_ok(s != NULL && len == 50001 + 4 * n && strcmp(s, want) == 0,
                 "long values in a long text: nothing cut");

    free(s);
    free(want);
    free(text);
    free(big);

    s = msgr_template_render("a\0{empty}b", 10, t, &len);
    msgr_test_ok(s != NULL && len == 3 && memcmp(s, "a\0b", 4) == 0,
                 "the text's length is used, not its NUL");
    free(s);

    json_decref(t);
}


static void
msgr_test_translations(void)
{
    json_t  *tr, *pl, *pt, *zh;

    tr = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:s}",
                   "pl", "body", "Dzie\xc5\x84 dobry",
                   "PT-br", "body", "Bom dia",
                   "zh", "body", "\xe4\xbd\xa0\xe5\xa5\xbd",
                   "fr", "Bonjour");
    pl = json_object_get(tr, "pl");
    pt = json_object_get(tr, "PT-br");
    zh = json_object_get(tr, "zh");

    msgr_test_ok(msgr_template_translation(tr, "pl") == pl,
                 "translation: the language itself");
    msgr_test_ok(msgr_template_translation(tr, "PL") == pl,
                 "translation: without case");
    msgr_test_ok(msgr_template_translation(tr, "pl-PL") == pl,
                 "translation: pl-PL falls back to pl");
    msgr_test_ok(msgr_template_translation(tr, "pt-BR") == pt,
                 "translation: pt-BR is PT-br");
    msgr_test_ok(msgr_template_translation(tr, "pt") == NULL,
                 "translation: pt does not take pt-BR's");
    msgr_test_ok(msgr_template_translation(tr, "zh-Hant-TW") == zh,
                 "translation: zh-Hant-TW falls back to zh");
    msgr_test_ok(msgr_template_translation(tr, "de") == NULL,
                 "translation: none for de");
    msgr_test_ok(msgr_template_translation(tr, "plx") == NULL,
                 "translation: plx is not pl");
    msgr_test_ok(msgr_template_translation(tr, "fr") == NULL,
                 "translation: one that is not an object does not count");
    msgr_test_ok(msgr_template_translation(tr, NULL) == NULL,
                 "translation: none without a language");
    msgr_test_ok(msgr_template_translation(NULL, "pl") == NULL,
                 "translation: none without translations");

    json_decref(tr);

    msgr_test_is(msgr_template_translation_warning(
                     "https://hill.example/translations"),
                 "\n\nThis message was translated automatically: "
                 "https://hill.example/translations",
                 "the warning line with its link");
    msgr_test_is(msgr_template_translation_warning(""),
                 "\n\nThis message was translated automatically",
                 "the warning line without a link");
}


/* msgr_template_library_check(): the message, or NULL when good */

static void
msgr_test_library_one(const char *lib, const char *want, const char *desc)
{
    char    *why;
    json_t  *doc;

    doc = msgr_test_json(lib);
    why = msgr_template_library_check(doc);

    if (!msgr_test_ok(want == NULL ? why == NULL
                                   : why != NULL && strcmp(why, want) == 0,
                      desc))
    {
        printf("#   got: %s\n#  want: %s\n", why ? why : "(good)",
               want ? want : "(good)");
    }

    free(why);
    json_decref(doc);
}


static void
msgr_test_library(void)
{
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'snow', "
        "'version': 1, 'kind': 'letter', 'name': 'Snow', 'category': 'C', "
        "'channels': ['sms', 'email'], 'subject': '{school_name}', "
        "'body': 'Dear {Name}', 'sms_body': null, 'voice_body': null}]}",
        NULL, "library: a good one");
    msgr_test_library_one("{'templates': []}",
        "the library must be {\"version\": N, \"templates\": [...]}",
        "library: without a version");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'Snow!', "
        "'version': 1, 'kind': 'letter', 'name': 'S', 'body': 'x'}]}",
        "template \"Snow!\": key must be a-z, 0-9 and -",
        "library: a bad key");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 1, 'kind': 'memo', 'name': 'S', 'body': 'x'}]}",
        "template \"a\": kind must be saved_message or letter",
        "library: a bad kind");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 1, 'kind': 'letter', 'name': 'S', 'body': 'x', "
        "'channels': ['fax']}]}",
        "template \"a\": channels names an unknown channel",
        "library: an unknown channel");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 1, 'kind': 'letter', 'name': 'S', "
        "'body': 'Dear {Head of Year 7}'}]}",
        "template \"a\": body unknown merge token {Head of Year 7}",
        "library: no school's attribute");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 1, 'kind': 'letter', 'name': 'Snow', 'body': 'x'}, "
        "{'key': 'b', 'version': 2, 'kind': 'letter', 'name': 'SNOW', "
        "'body': 'y'}]}",
        "template \"b\": name is used twice",
        "library: a name twice, without case");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 1, 'kind': 'letter', 'name': 'S', 'body': 'x', "
        "'colour': 'red'}]}",
        "template \"a\": colour is not a field",
        "library: an unknown field");
    msgr_test_library_one("{'version': 1, 'templates': [{'key': 'a', "
        "'version': 0, 'kind': 'letter', 'name': 'S', 'body': 'x'}]}",
        "template \"a\": version must be a positive integer",
        "library: version 0");
}


int
main(void)
{
    json_t  *contact, *attributes, *settings, *school, *tokens;

    printf("1..69\n");

    settings = json_pack("{s:{s:s, s:s, s:s, s:s, s:s, s:s}}", "school",
                         "name", "Hill School", "phone", "01632 960000",
                         "email", "office@hill.example",
                         "address", "1 Hill Road, Leeds",
                         "website", "https://hill.example",
                         "logo_url", "https://hill.example/logo.png");
    school = msgr_template_school_tokens(settings);

    attributes = json_pack("{s:s, s:s, s:s}", "Head of Year 7", "Mr Jones",
                           "Trip date", "", "Ann\xc3\xa9" "e 7",
                           "Mme Lef\xc3\xa8vre");
    contact = msgr_test_contact("Mrs", 3);

    msgr_test_tokens(contact, attributes, school);
    json_decref(school);
    json_decref(settings);

    /* the school's tokens from msgr_settings_resolve(), and none at all */

    settings = msgr_settings_resolve(NULL, "Dale Academy");
    school = msgr_template_school_tokens(settings);
    msgr_test_is(msgr_test_render("{school_name}|{school_phone}|"
                                  "{school_email}|{school_website}", school),
                 "Dale Academy|||", "school tokens of default settings");
    json_decref(school);
    json_decref(settings);

    school = msgr_template_school_tokens(NULL);
    msgr_test_ok(json_object_size(school) == 5
                 && strcmp(json_string_value(json_object_get(school,
                                                 "school_address")), "")
                    == 0,
                 "school tokens without settings: five, empty");
    json_decref(school);

    msgr_test_students(attributes);

    tokens = msgr_template_contact_tokens(contact, attributes, NULL);
    msgr_test_braces(tokens);
    msgr_test_unknown(tokens);
    json_decref(tokens);

    msgr_test_values();
    msgr_test_translations();

    /* the names a contact attribute may not take */

    msgr_test_ok(msgr_template_reserved("First_Name", 10),
                 "reserved: First_Name");
    msgr_test_ok(msgr_template_reserved("STUDENT_FIRST_NAMES", 19),
                 "reserved: STUDENT_FIRST_NAMES");
    msgr_test_ok(msgr_template_reserved("School_Website", 14),
                 "reserved: School_Website");
    msgr_test_ok(!msgr_template_reserved("names", 5), "not reserved: names");
    msgr_test_ok(!msgr_template_reserved("Head of Year 7", 14),
                 "not reserved: Head of Year 7");
    msgr_test_ok(!msgr_template_reserved("school_logo", 11),
                 "not reserved: school_logo");

    json_decref(contact);
    json_decref(attributes);

    msgr_test_library();

    return msgr_test_end(69);
}

/*
 * Fuzz target: the body of a parent's message from the app (POST
 * /v1/app/messages), {"topic", "body", "student_id"}: parsed as the
 * module parses a body, each text field put through the text rule with
 * the flags the route uses (the topic single-line, the body multi-line,
 * both required).  What the module itself does with the request is
 * exercised by t/xpressions.t, under the sanitizers by `make test-asan`.
 */

#include "msgr_fuzz.h"
#include "msgr_text.h"


static void
msgr_fuzz_field(json_t *body, const char *name, size_t max, unsigned flags)
{
    char         buf[48];
    size_t       len;
    json_t      *v;
    const char  *s, *start;

    v = json_object_get(body, name);
    if (!json_is_string(v)) {
        return;
    }

    s = json_string_value(v);
    len = json_string_length(v);
    start = s;

    if (msgr_text_check(&s, &len, max, flags, buf, sizeof(buf)) == NULL) {
        msgr_fuzz_assert(msgr_utf8_chars(s, len) <= max);
        msgr_fuzz_assert(s >= start
                         && s + len <= start + json_string_length(v));
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t  *body;

    body = msgr_fuzz_json(data, size);
    if (body == NULL) {
        return 0;
    }

    msgr_fuzz_field(body, "topic", 100, MSGR_TEXT_REQUIRED);
    msgr_fuzz_field(body, "body", 2000,
                    MSGR_TEXT_REQUIRED|MSGR_TEXT_MULTILINE);

    json_decref(body);

    return 0;
}

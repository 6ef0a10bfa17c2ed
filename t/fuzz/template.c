/*
 * Fuzz target: a message's text with merge tokens ({first_name}, {{ and
 * }} for braces), checked as the API checks it and rendered as a send
 * renders it, and a message's translations picked for a contact's
 * language.  Properties: a text the check accepts renders; a text it
 * refuses does not; the rendering is NUL-terminated at its length.
 */

#include <stdlib.h>
#include <string.h>

#include "msgr_fuzz.h"
#include "msgr_template.h"


static const char *const  msgr_fuzz_languages[] = {
    NULL, "", "en", "pl-PL", "zh-Hant-TW", "pt-", "-", "x-y-z-w"
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          *msg, *out;
    size_t         out_len;
    json_t        *tokens, *in;
    uint32_t       mix;
    const char    *s;

    tokens = json_pack("{s:s, s:s, s:s, s:n, s:i, s:s}",
                       "first_name", "Amy", "Head of Year", "Mr Hall",
                       "ÉCOLE", "École", "empty", "number", 3,
                       "braces", "{x}}");
    if (tokens == NULL) {
        return 0;
    }

    s = (const char *) data;
    mix = msgr_fuzz_mix(data, size);

    (void) msgr_template_reserved(s, size);
    (void) msgr_template_token(tokens, s, size);

    msg = msgr_template_check(s, size, tokens);
    out = msgr_template_render(s, size, tokens, &out_len);

    if (msg == NULL) {
        msgr_fuzz_assert(out != NULL);

    } else if (strcmp(msg, "out of memory") != 0
               && strstr(msg, "unknown merge token") == NULL)
    {
        msgr_fuzz_assert(out == NULL);
    }

    if (out != NULL) {
        msgr_fuzz_assert(out[out_len] == '\0');
    }

    free(msg);
    free(out);

    in = msgr_fuzz_json(data, size);
    if (in != NULL) {
        (void) msgr_template_translation(in, msgr_fuzz_languages[mix % 8]);
        json_decref(in);
    }

    json_decref(tokens);

    return 0;
}

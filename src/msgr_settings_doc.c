/*
 * msgr account settings: the reference, docs/settings.md, written from the
 * tables of msgr_settings.c.  Pure C; linked into build/msgr-settings-doc
 * (`make docs`) and unit tests, never into the module or msgrctl.
 */

#include <stdio.h>
#include <string.h>

#include "msgr_settings.h"


typedef struct {
    const char             *tab;
    const char             *doc;
} msgr_settings_tab_doc_t;


static const msgr_settings_tab_doc_t  msgr_settings_tab_docs[] = {
    { "sending", "How messages are sent." },
    { "contacts", "How contacts from the MIS are used." },
    { "security", "Password policy for the school's users." },
    { "school", "The school's details, as parents see them on messages." },
    { "xpressions", "The Xpressions parent app." },
    { "mis", "How data from the MIS is used: read-only, changed by your "
             "operator." },
    { NULL, NULL }
};


/* markdown table cells: '|' would end the cell */

static void
msgr_settings_doc_text(FILE *f, const char *s)
{
    for ( /* void */ ; *s != '\0'; s++) {
        if (*s == '|') {
            fputc('\\', f);
        }

        fputc(*s, f);
    }
}


static void
msgr_settings_doc_list(FILE *f, const char *const *choices,
    const int64_t *ints)
{
    int  i;

    for (i = 0; choices != NULL ? choices[i] != NULL : ints[i] != -1; i++) {
        if (choices != NULL) {
            fprintf(f, "%s`%s`", i ? ", " : "", choices[i]);

        } else {
            fprintf(f, "%s`%lld`", i ? ", " : "", (long long) ints[i]);
        }
    }
}


static void
msgr_settings_doc_values(FILE *f, const msgr_setting_t *s)
{
    const msgr_settings_format_t  *fmt;

    switch (s->type) {

    case MSGR_SETTING_BOOL:
        fprintf(f, "`true`, `false`");
        break;

    case MSGR_SETTING_INT:
        fprintf(f, "%lld to %lld", (long long) s->min, (long long) s->max);
        break;

    case MSGR_SETTING_CHOICE:
        msgr_settings_doc_list(f, s->choices, NULL);
        break;

    case MSGR_SETTING_INT_CHOICE:
        msgr_settings_doc_list(f, NULL, s->int_choices);
        break;

    case MSGR_SETTING_CHANNELS:
        fprintf(f, "an ordered list of distinct channels from ");
        msgr_settings_doc_list(f, s->choices, NULL);
        break;

    case MSGR_SETTING_STRING:
        fmt = msgr_settings_format(s);

        if (fmt != NULL) {
            fprintf(f, "%s", s->min > 0 ? "" : "`\"\"` or ");
            msgr_settings_doc_text(f, fmt->doc);
            fprintf(f, "; at most %lld characters", (long long) s->max);

        } else if (s->min > 0) {
            fprintf(f, "%lld to %lld characters", (long long) s->min,
                    (long long) s->max);

        } else {
            fprintf(f, "at most %lld characters", (long long) s->max);
        }

        if (s->flags & MSGR_SETTING_REQUIRED) {
            fprintf(f, ", not blank");
        }

        break;
    }
}


static void
msgr_settings_doc_notes(FILE *f, const msgr_setting_t *s)
{
    int                          n;
    const msgr_settings_rule_t  *r;

    n = 0;

    if (s->flags & MSGR_SETTING_READONLY) {
        fprintf(f, "%sread-only: changed by your operator", n++ ? "; " : "");
    }

    if (s->flags & MSGR_SETTING_ENHANCED) {
        fprintf(f, "%sneeds Enhanced Messenger", n++ ? "; " : "");
    }

    if (s->flags & MSGR_SETTING_REQUIRED) {
        fprintf(f, "%srequired: cannot be null", n++ ? "; " : "");
    }

    for (r = msgr_settings_rules; r->tab != NULL; r++) {
        if (strcmp(r->tab, s->tab) == 0 && strcmp(r->field, s->name) == 0) {
            fprintf(f, "%s", n++ ? "; " : "");
            msgr_settings_doc_text(f, r->message);
        }
    }
}


static const char *
msgr_settings_doc_type(const msgr_setting_t *s)
{
    switch (s->type) {
    case MSGR_SETTING_BOOL:
        return "boolean";
    case MSGR_SETTING_INT:
    case MSGR_SETTING_INT_CHOICE:
        return "integer";
    case MSGR_SETTING_CHOICE:
    case MSGR_SETTING_STRING:
        return "string";
    case MSGR_SETTING_CHANNELS:
        return "array of strings";
    }

    return "?";
}


void
msgr_settings_doc(FILE *f)
{
    const char *const              *t;
    const msgr_setting_t           *s;
    const msgr_settings_fixed_t    *x;
    const msgr_settings_tab_doc_t  *d;

    fprintf(f,
        "<!-- Generated from src/msgr_settings.c by `make docs`: "
        "do not edit by hand. -->\n"
        "\n"
        "# Account settings\n"
        "\n"
        "A school's settings are one JSON object with a member per tab, "
        "each an object of\n"
        "the fields below; a field never set has its default. The tabs "
        "are ");

    for (t = msgr_settings_tabs; *t != NULL; t++) {
        fprintf(f, "%s`%s`", t == msgr_settings_tabs ? "" : ", ", *t);
    }

    fprintf(f,
        ".\n"
        "\n"
        "Changes are JSON merge patches (RFC 7396), of the whole object or "
        "of one tab:\n"
        "the fields given are set, a field set to `null` goes back to its "
        "default, and\n"
        "the fields not given are left as they are. A patch is applied "
        "whole or not at\n"
        "all. Every bad field is named in the `errors` list of the answer "
        "(422): unknown\n"
        "tabs and fields, wrong types (booleans must be `true` or `false`, "
        "integers JSON\n"
        "integers), values not allowed. Changing a read-only field, or a "
        "field that needs\n"
        "Enhanced Messenger when the school does not have it, is refused "
        "(403).\n"
        "\n"
        "Lengths are counted in characters (Unicode code points), not "
        "bytes. Strings are\n"
        "kept as given; email addresses, URLs and phone numbers must not "
        "start or end\n"
        "with a space.\n");

    for (t = msgr_settings_tabs; *t != NULL; t++) {
        fprintf(f, "\n## %s\n\n", *t);

        for (d = msgr_settings_tab_docs; d->tab != NULL; d++) {
            if (strcmp(d->tab, *t) == 0) {
                fprintf(f, "%s\n\n", d->doc);
            }
        }

        fprintf(f,
            "| Field | Type | Allowed values | Default | Description "
            "| Notes |\n"
            "|---|---|---|---|---|---|\n");

        for (s = msgr_settings; s->tab != NULL; s++) {
            if (strcmp(s->tab, *t) != 0) {
                continue;
            }

            fprintf(f, "| `%s` | %s | ", s->name, msgr_settings_doc_type(s));
            msgr_settings_doc_values(f, s);
            fprintf(f, " | ");

            if (s->default_json != NULL) {
                fprintf(f, "`");
                msgr_settings_doc_text(f, s->default_json);
                fprintf(f, "`");

            } else {
                fprintf(f, "the school's name when it was created");
            }

            fprintf(f, " | ");
            msgr_settings_doc_text(f, s->description);
            fprintf(f, " | ");
            msgr_settings_doc_notes(f, s);
            fprintf(f, " |\n");
        }

        for (x = msgr_settings_fixed; x->tab != NULL; x++) {
            if (strcmp(x->tab, *t) == 0) {
                fprintf(f, "\n`%s` belongs with this tab but is not a "
                        "setting: %s\n", x->name, x->doc);
            }
        }
    }
}

/*
 * msgr account settings: pure C, shared by the module, msgrctl, the docs
 * generator and unit tests.
 *
 * One declarative table (msgr_settings[] in msgr_settings.c) names every
 * setting with its tab, type, allowed values, default and description.
 * Defaults, validation, merge patches and docs/settings.md all come from it.
 *
 * The database keeps only sparse overrides, {"tab":{"field":value}}; the
 * settings a client sees are the defaults overlaid with them.
 */

#ifndef _MSGR_SETTINGS_H_INCLUDED_
#define _MSGR_SETTINGS_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>


typedef enum {
    MSGR_SETTING_BOOL,
    MSGR_SETTING_INT,        /* min..max */
    MSGR_SETTING_CHOICE,     /* one of a list of strings */
    MSGR_SETTING_INT_CHOICE, /* one of a list of integers */
    MSGR_SETTING_STRING,     /* min..max characters, with a format flag */
    MSGR_SETTING_CHANNELS    /* ordered distinct subset of a list of strings */
} msgr_setting_type_e;

#define MSGR_SETTING_READONLY  0x01   /* operators only */
#define MSGR_SETTING_ENHANCED  0x02   /* needs Enhanced Messenger */
#define MSGR_SETTING_REQUIRED  0x04   /* cannot be null: no reset, not blank */

/* formats of non-empty strings; "" is always allowed when min is 0 */
#define MSGR_SETTING_EMAIL     0x10
#define MSGR_SETTING_URL       0x20   /* absolute http:// or https:// */
#define MSGR_SETTING_PHONE     0x40
#define MSGR_SETTING_COUNTRY   0x80   /* a country msgr_phone knows */


typedef struct {
    const char             *tab;
    const char             *name;
    msgr_setting_type_e     type;
    unsigned                flags;
    int64_t                 min, max;       /* INT bounds; STRING lengths */
    const char *const      *choices;        /* CHOICE / CHANNELS, NULL-ended */
    const int64_t          *int_choices;    /* INT_CHOICE, ended by -1 */
    const char             *default_json;   /* JSON text; NULL: school name */
    const char             *description;    /* one line for the docs */
} msgr_setting_t;


/* the table, ended by an entry whose tab is NULL */
extern const msgr_setting_t  msgr_settings[];

/* sending, contacts, security, school, xpressions, mis; NULL-terminated */
extern const char *const     msgr_settings_tabs[];


/* 1 when tab (len bytes, not NUL-terminated) names a tab, 0 otherwise */
int msgr_settings_tab_known(const char *tab, size_t len);

/* The table entry of tab.name, or NULL */
const msgr_setting_t *msgr_settings_find(const char *tab, const char *name);

/*
 * The full settings object {"sending":{...},...,"mis":{...}}, tabs and
 * fields in table order: defaults overlaid with `stored`, the sparse
 * overrides {"tab":{"field":value}} kept in the database (may be NULL or
 * {}); school.name defaults to school_name.  Stored values that no longer
 * validate (and unknown stored fields) are ignored in favour of the default.
 * New reference; NULL on out of memory.
 */
json_t *msgr_settings_resolve(json_t *stored, const char *school_name);

/*
 * One field of a resolved settings object (as msgr_settings_resolve() and
 * GET /v1/settings give it), the one way to read a setting: a field
 * missing or of the wrong type (or settings NULL) takes the table's
 * default (so does an integer out of its bounds or not one of its
 * choices).  msgr_settings_is() says whether a string field is value;
 * msgr_settings_string() gives a string field as it is, NULL when missing
 * (only the resolved object knows the school's name).
 */
int msgr_settings_bool(json_t *settings, const char *tab, const char *name);
int64_t msgr_settings_int(json_t *settings, const char *tab,
    const char *name);
int msgr_settings_is(json_t *settings, const char *tab, const char *name,
    const char *value);
const char *msgr_settings_string(json_t *settings, const char *tab,
    const char *name);


typedef struct {
    unsigned   enhanced:1;   /* the school has Enhanced Messenger */
    unsigned   operator:1;   /* msgrctl: READONLY fields may be written */
} msgr_settings_caps_t;

#define MSGR_SETTINGS_OK         0
#define MSGR_SETTINGS_INVALID    1   /* HTTP 422 */
#define MSGR_SETTINGS_FORBIDDEN  2   /* HTTP 403 */
#define MSGR_SETTINGS_ERROR     -1   /* out of memory */

/*
 * Applies an RFC 7396 JSON merge patch to the stored overrides.
 *
 * tab == NULL: patch is {"tab":{"field":value,...},...}; otherwise patch is
 * the named tab's object {"field":value,...}.  A field set to null goes back
 * to its default (its override is removed); school.name cannot be null.
 *
 * All or nothing.  On failure *errors is a new array of
 * {"field":"tab.field","message":"..."} naming every bad field, in patch
 * order, then the fields that break a cross-field rule on the result.
 * FORBIDDEN (a READONLY field without caps.operator, an ENHANCED field
 * without caps.enhanced, sending.enhanced_messenger) wins over INVALID, and
 * then the errors name only the forbidden fields.
 *
 * On success: *new_stored is the new sparse overrides (`stored` itself is
 * never modified; stored entries the patch does not touch are kept as they
 * are, even those resolve() ignores); *changes is an array of
 * {"tab","field","old","new"} for every field whose resolved value changed,
 * in table order; *resolved is the new full object, as from
 * msgr_settings_resolve().
 *
 * Outputs not set are NULL; any output pointer may itself be NULL when the
 * caller does not want that output.
 */
int msgr_settings_patch(json_t *stored, const char *school_name,
    const char *tab, json_t *patch, msgr_settings_caps_t caps,
    json_t **new_stored, json_t **changes, json_t **resolved,
    json_t **errors);


/*
 * What the tables say besides msgr_settings[], for validation and for the
 * reference alike.
 */

/* a format of strings (MSGR_SETTING_EMAIL ...) */

typedef struct {
    unsigned                flag;
    int                   (*valid)(const char *s, size_t len);
    const char             *message;   /* the error */
    const char             *doc;       /* "allowed values" in the docs */
} msgr_settings_format_t;

/* tab.field must not be empty when tab.when is the string value */

typedef struct {
    const char             *tab;
    const char             *field;
    const char             *when;
    const char             *value;
    const char             *message;
} msgr_settings_rule_t;

/* fields shown with a tab but not stored here: never writable */

typedef struct {
    const char             *tab;
    const char             *name;
    const char             *message;
    const char             *doc;
} msgr_settings_fixed_t;


/* both ended by an entry whose tab is NULL */
extern const msgr_settings_rule_t   msgr_settings_rules[];
extern const msgr_settings_fixed_t  msgr_settings_fixed[];

/* the format of a STRING entry, NULL when it has none */
const msgr_settings_format_t *msgr_settings_format(const msgr_setting_t *s);


/*
 * Writes docs/settings.md (markdown, one table per tab) to f.  In
 * msgr_settings_doc.c, which only the docs generator (and unit tests)
 * link, not the module or msgrctl.
 */
void msgr_settings_doc(FILE *f);


#endif /* _MSGR_SETTINGS_H_INCLUDED_ */

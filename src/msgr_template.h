/*
 * msgr merge tokens and translations: pure C, shared by the module (GET
 * /v1/contacts/{id}/tokens, checking messages), the sender (rendering
 * each delivery) and unit tests.  The rules are in docs/templates.md.
 *
 * A message's text holds merge tokens such as {first_name}: names matched
 * without case (Latin, Greek and Cyrillic letters, msgr_utf8_casecmp()),
 * white space inside the braces ignored.  A literal brace is written twice,
 * {{ or }}.  Token objects map a name to a string.
 */

#ifndef _MSGR_TEMPLATE_H_INCLUDED_
#define _MSGR_TEMPLATE_H_INCLUDED_


#include <stddef.h>
#include <jansson.h>


/*
 * The tokens every contact has, besides the school's: title, first_name,
 * last_name, name, student_names, student_first_names; NULL-ended.
 */
extern const char *const  msgr_template_builtin_tokens[];

/*
 * 1 when name (len bytes of UTF-8) is, in any case, a built-in token or
 * one of the school's: a contact attribute may not take it.
 */
int msgr_template_reserved(const char *name, size_t len);


/*
 * The school's tokens from resolved settings (msgr_settings_resolve()):
 * school_name, school_phone, school_email, school_address, school_website
 * from the "school" tab ("" when unset or settings is NULL).  New object;
 * NULL on out of memory.
 */
json_t *msgr_template_school_tokens(json_t *settings);

/*
 * A contact's tokens, the object GET /v1/contacts/{id}/tokens shows when
 * school is NULL.  contact: the msgr_contact_json() object with
 * "students" [{first_name, last_name}, ...]; attributes: the school's
 * contact attributes {name: the contact's value or the default}; school:
 * msgr_template_school_tokens() or NULL.  Attributes come first, then
 * title, first_name, last_name, name, student_names, student_first_names,
 * then the school's.  New object of strings; NULL on out of memory.
 */
json_t *msgr_template_contact_tokens(json_t *contact, json_t *attributes,
    json_t *school);

/*
 * A staff recipient's tokens: their own title, first_name, last_name and
 * name, student_names and student_first_names "", the attributes {name:
 * default}, the school's (school may be NULL).  New object of strings;
 * NULL on out of memory.
 */
json_t *msgr_template_staff_tokens(json_t *staff, json_t *attributes,
    json_t *school);

/*
 * The value of the token name (len bytes) in tokens: the key spelled so,
 * else the first key equal to it without case; NULL when there is none.
 * Borrowed.
 */
json_t *msgr_template_token(json_t *tokens, const char *name, size_t len);


/*
 * Checks a text (len bytes of UTF-8) against names, an object whose keys
 * are the tokens allowed.  NULL when the text is good; otherwise a
 * malloc'd message (the caller frees it) naming the first brace problem,
 * characters counted from 1:
 *
 *   "{ at character 12 is not closed (write {{ for a brace)"
 *   "} at character 3 has no opening { (write }} for a brace)"
 *   "empty merge token {} at character 5"
 *
 * or, when the braces are right, every unknown token once, in order:
 *
 *   "unknown merge token {foo}"
 *   "unknown merge tokens {foo}, {bar}"
 *
 * Out of memory while checking gives the message "out of memory".
 */
char *msgr_template_check(const char *text, size_t len, json_t *names);

/*
 * Renders a text with tokens (name -> string; a token missing, null or
 * not a string renders "", so a text checked when it was written still
 * sends after an attribute is deleted).  malloc'd and NUL-terminated,
 * *out_len its length; NULL on out of memory or when the braces are
 * wrong (msgr_template_check() says how).
 */
char *msgr_template_render(const char *text, size_t len, json_t *tokens,
    size_t *out_len);


/*
 * The translation of a message for a contact: translations is {"pl":
 * {"body": ..., "subject": ...}, ...}, language the contact's language
 * tag (may be NULL).  The entry whose tag equals language without case,
 * else the one of its shorter forms ("zh-Hant-TW", then "zh-Hant", then
 * "zh"); only objects count.  Borrowed; NULL when there is none (the
 * original is sent).
 */
json_t *msgr_template_translation(json_t *translations,
    const char *language);

/*
 * The line a translated text ends with when
 * sending.include_translation_warning_link is on:
 * "\n\nThis message was translated automatically: <url>", or without
 * ": <url>" when url is NULL or "".  malloc'd; NULL on out of memory.
 */
char *msgr_template_translation_warning(const char *url);

#define MSGR_TEMPLATE_WARNING  "This message was translated automatically"


/*
 * Checks msgr's standard library of templates (share/library/library.json,
 * docs/templates.md): {"version": N, "templates": [{"key", "version",
 * "kind", "name", "category", "channels", "subject", "body", "sms_body",
 * "voice_body"}, ...]}.  Keys are unique, of a-z, 0-9 and -; names are
 * unique without case; kind is saved_message or letter; channels are
 * msgr's; texts use only the built-in and school tokens.  NULL when good;
 * otherwise a malloc'd message naming the template and the field.
 */
char *msgr_template_library_check(json_t *library);


#endif /* _MSGR_TEMPLATE_H_INCLUDED_ */

/*
 * msgr: composing a message, pure C, shared by the module (preview and
 * send) and unit tests.
 *
 * From a message, the records of its send, the school's settings and its
 * price list: who receives it (src/msgr_recipients.c), each recipient's
 * texts with their merge tokens and translation (src/msgr_template.c), and
 * the deliveries the school's routing makes (src/msgr_routing.c).  A big
 * school's send is thousands of deliveries, so the module runs this in
 * nginx's thread pool: it touches nothing but its arguments and malloc.
 */

#ifndef _MSGR_COMPOSE_H_INCLUDED_
#define _MSGR_COMPOSE_H_INCLUDED_


#include <stdint.h>
#include <jansson.h>

#include "msgr_recipients.h"


typedef struct {
    /*
     * The message as the API takes it, already checked field by field:
     * "channels", "subject", "body", "sms_body", "voice_body",
     * "translations", "routing" (what is absent takes the school's)
     */
    json_t           *message;
    /*
     * {"records": msgr_send_records(), "attributes": {name: default},
     *  "contact_tokens": {"<contact id>": {"students": [...],
     *  "attributes": {name: value}}}, "prices": {...}}
     */
    json_t           *data;
    /* the school's resolved settings */
    json_t           *settings;
    msgr_send_to_e    send_to;
    const char       *today;          /* the school's date, YYYY-MM-DD */
    /*
     * where a translated text's warning links to when
     * sending.translation_warning_url is empty: msgr's own page
     */
    const char       *warning_url;
    /* the result is for display to a key that sees staff masked */
    unsigned          mask_staff:1;
    /* build the outbox rows too */
    unsigned          deliveries:1;
    /*
     * only check the texts' merge tokens (the message has other bad
     * fields): errors, nothing routed
     */
    unsigned          check_only:1;
} msgr_compose_in_t;


typedef struct {
    /* 0; 1 the message is invalid (errors); -1 a failure (why) */
    int               rc;
    const char       *why;
    json_t           *errors;        /* [{"field", "message"}] */
    /*
     * the routed result (msgr_route()) with "pin_required"; the preview's
     * answer
     */
    json_t           *result;
    /*
     * one row per delivery: {"recipient_type", "recipient_id", "channel",
     * "address", "purpose", "language", "subject", "body", "cost",
     * "after_minutes"}, as msgr_message_send() (sql/0013) takes them
     */
    json_t           *deliveries;
    int64_t           pin_counted;
    unsigned          pin_required:1;
} msgr_compose_out_t;


void msgr_compose(const msgr_compose_in_t *in, msgr_compose_out_t *out);

/* releases what msgr_compose() made */
void msgr_compose_free(msgr_compose_out_t *out);


#endif /* _MSGR_COMPOSE_H_INCLUDED_ */

/*
 * msgr: reading what a request brings (ngx_http_msgr_request.c).
 */

#ifndef _NGX_HTTP_MSGR_REQUEST_H_INCLUDED_
#define _NGX_HTTP_MSGR_REQUEST_H_INCLUDED_


#include "ngx_http_msgr.h"
#include "msgr_twilio.h"


/* the most ids ngx_http_msgr_ids_arg() takes */
#define NGX_HTTP_MSGR_IDS_MAX  500


extern ngx_str_t  ngx_http_msgr_merge_patch_type;
extern ngx_str_t  ngx_http_msgr_form_type;


/* a decoded name=value of a form body */
typedef struct {
    ngx_str_t                     name;
    ngx_str_t                     value;
} ngx_http_msgr_pair_t;


/* NGX_DECLINED: a parameter or header is not text, the client has its 400 */
ngx_int_t ngx_http_msgr_check_input(ngx_http_request_t *r);
json_t *ngx_http_msgr_read_json(ngx_http_request_t *r);
json_t *ngx_http_msgr_read_json_as(ngx_http_request_t *r,
    ngx_uint_t merge_patch);
ngx_int_t ngx_http_msgr_read_body(ngx_http_request_t *r,
    ngx_uint_t merge_patch, ngx_str_t *body);
ngx_int_t ngx_http_msgr_read_form(ngx_http_request_t *r,
    ngx_array_t **pairs);
ngx_int_t ngx_http_msgr_body_bytes(ngx_http_request_t *r, ngx_str_t *body);
#define NGX_HTTP_MSGR_TODAY_LEN  16
void ngx_http_msgr_today(u_char today[NGX_HTTP_MSGR_TODAY_LEN]);
ngx_int_t ngx_http_msgr_twilio_form(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, msgr_twilio_form_t *form);
void ngx_http_msgr_bad_json(ngx_http_request_t *r, json_error_t *err);
json_t *ngx_http_msgr_read_fields(ngx_http_request_t *r,
    const char *const *allowed, json_t **errors);
json_t *ngx_http_msgr_read_fields_as(ngx_http_request_t *r,
    ngx_uint_t merge_patch, const char *const *allowed, json_t **errors);
void ngx_http_msgr_field_error(json_t *errors, const char *field,
    const char *message);
void ngx_http_msgr_invalid(ngx_http_request_t *r, json_t *errors);
void ngx_http_msgr_bad_args(ngx_http_request_t *r, json_t *errors);
void ngx_http_msgr_bad_arg(ngx_http_request_t *r, const char *field,
    const char *message);
const char *ngx_http_msgr_limit_arg(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx);
ngx_int_t ngx_http_msgr_page_args(ngx_http_request_t *r,
    ngx_http_msgr_ctx_t *ctx, int64_t *before);
ngx_int_t ngx_http_msgr_json_keep(ngx_http_request_t *r, json_t *json);
ngx_uint_t ngx_http_msgr_media_type(ngx_str_t *header, ngx_str_t *type);
int64_t ngx_http_msgr_id(ngx_str_t *s);
ngx_int_t ngx_http_msgr_ids_arg(ngx_http_request_t *r, ngx_str_t *name,
    ngx_array_t *ids, json_t *errors);
ngx_int_t ngx_http_msgr_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_msgr_text_field(json_t *v, const char *field, size_t max,
    unsigned flags, json_t *errors);
ngx_int_t ngx_http_msgr_header_in(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);


#endif /* _NGX_HTTP_MSGR_REQUEST_H_INCLUDED_ */

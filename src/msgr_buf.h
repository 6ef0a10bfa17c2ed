/*
 * msgr: a string that grows to any length (pure C), for text built from
 * pieces: rendered templates, provider requests and answers.
 */

#ifndef _MSGR_BUF_H_INCLUDED_
#define _MSGR_BUF_H_INCLUDED_


#include <stddef.h>


typedef struct {
    char                *data;     /* NUL-terminated; NULL while empty */
    size_t               len;
    size_t               size;
    int                  failed;   /* out of memory once: stays failed */
} msgr_buf_t;


/* appends len bytes; 0, or -1 (and failed set) on out of memory */
int msgr_buf_add(msgr_buf_t *b, const void *data, size_t len);


#endif /* _MSGR_BUF_H_INCLUDED_ */

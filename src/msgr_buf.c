/*
 * msgr: a string that grows to any length.
 */

#include <stdlib.h>
#include <string.h>

#include "msgr_buf.h"


int
msgr_buf_add(msgr_buf_t *b, const void *data, size_t len)
{
    char    *p;
    size_t   size;

    if (b->failed) {
        return -1;
    }

    if (b->len + len + 1 > b->size) {
        size = b->size ? b->size : 64;

        while (size < b->len + len + 1) {
            size *= 2;
        }

        p = realloc(b->data, size);
        if (p == NULL) {
            b->failed = 1;
            return -1;
        }

        b->data = p;
        b->size = size;
    }

    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';

    return 0;
}

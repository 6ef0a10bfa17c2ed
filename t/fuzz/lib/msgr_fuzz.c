/*
 * msgr fuzz targets: the helpers of msgr_fuzz.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_fuzz.h"


json_t *
msgr_fuzz_json(const uint8_t *data, size_t size)
{
    return json_loadb((const char *) data, size,
                      JSON_REJECT_DUPLICATES|JSON_DECODE_ANY, NULL);
}


uint32_t
msgr_fuzz_mix(const uint8_t *data, size_t size)
{
    size_t    i;
    uint32_t  h;

    /* FNV-1a */
    h = 2166136261u;

    for (i = 0; i < size; i++) {
        h ^= data[i];
        h *= 16777619u;
    }

    return h;
}


char *
msgr_fuzz_string(const uint8_t *data, size_t size)
{
    char    *s;
    size_t   len;

    len = 0;

    while (len < size && data[len] != '\0') {
        len++;
    }

    s = malloc(len + 1);
    if (s == NULL) {
        return NULL;
    }

    memcpy(s, data, len);
    s[len] = '\0';

    return s;
}


void
msgr_fuzz_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "%s:%d: property does not hold: %s\n", file, line, what);
    abort();
}

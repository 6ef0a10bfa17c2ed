/*
 * msgr fuzz targets: what they share.  Each t/fuzz/<target>.c defines
 * LLVMFuzzerTestOneInput(); it is linked with libFuzzer by `make fuzz`
 * (clang) and with lib/replay.c by `make fuzz-replay` (the compiler of
 * the other tests), which t/fuzz.t runs on t/fuzz/corpus/<target>/.
 *
 * A target aborts when a property it checks does not hold; the sanitizers
 * report the rest.
 */

#ifndef _MSGR_FUZZ_H_INCLUDED_
#define _MSGR_FUZZ_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <jansson.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input as JSON, parsed as the module parses a request's body
 * (duplicate keys refused), any value at the top; NULL when it is not
 * JSON.
 */
json_t *msgr_fuzz_json(const uint8_t *data, size_t size);

/*
 * A number made from every byte of the input: the targets take their
 * switches (a send_to, a tab, flags) from it, so that a corpus file is
 * plain JSON or text and a mutation of it may flip them.
 */
uint32_t msgr_fuzz_mix(const uint8_t *data, size_t size);

/* a malloc'd NUL-terminated copy of the input (cut at its first NUL) */
char *msgr_fuzz_string(const uint8_t *data, size_t size);

/* the check of a property: aborts, naming it, when it does not hold */
#define msgr_fuzz_assert(cond)                                             \
    ((cond) ? (void) 0 : msgr_fuzz_fail(#cond, __FILE__, __LINE__))

void msgr_fuzz_fail(const char *what, const char *file, int line)
    __attribute__((noreturn));


#endif /* _MSGR_FUZZ_H_INCLUDED_ */

/* check: the few macros the unit tests share. Each test binary prints one line per failed
 * check and a closing "N passed, N failed", and exits non-zero on any failure. */
#pragma once

#include <stdio.h>
#include <string.h>

static int checks_passed, checks_failed;

#define CHECK(cond)                                                                       \
        do {                                                                              \
                if (cond)                                                                 \
                        checks_passed++;                                                  \
                else {                                                                    \
                        checks_failed++;                                                  \
                        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                                #cond);                                                   \
                }                                                                         \
        } while (0)

#define CHECK_STR(a, b)                                                                   \
        do {                                                                              \
                const char *a_ = (a), *b_ = (b);                                          \
                if (a_ && b_ && strcmp(a_, b_) == 0)                                      \
                        checks_passed++;                                                  \
                else {                                                                    \
                        checks_failed++;                                                  \
                        fprintf(stderr, "%s:%d: CHECK failed: %s == %s ('%s' vs '%s')\n", \
                                __FILE__, __LINE__, #a, #b, a_ ? a_ : "(null)",           \
                                b_ ? b_ : "(null)");                                      \
                }                                                                         \
        } while (0)

static inline int check_summary(void) {
        printf("%d passed, %d failed\n", checks_passed, checks_failed);
        return checks_failed ? 1 : 0;
}

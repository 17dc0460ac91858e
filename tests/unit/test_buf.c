/* Unit tests for buf: growth, the bound, stealing. */
#include "buf.h"

#include <errno.h>
#include <stdlib.h>

#include "check.h"

int main(void) {
        struct buf b;
        char *p;

        buf_init(&b, 10);
        CHECK(b.data == NULL && b.len == 0);
        CHECK(buf_puts(&b, "hello") == 0);
        CHECK_STR(b.data, "hello");
        CHECK(buf_append(&b, "world", 5) == 0);
        CHECK(b.len == 10);
        CHECK_STR(b.data, "helloworld");
        CHECK(buf_append(&b, "!", 1) == -E2BIG);      /* one byte over the bound */
        CHECK(b.len == 10);                              /* and nothing changed */
        CHECK(buf_append(&b, "", 0) == 0);
        p = buf_steal(&b);
        CHECK_STR(p, "helloworld");
        CHECK(b.data == NULL && b.len == 0);
        free(p);
        buf_free(&b);

        /* Growth across many small appends keeps the bytes and the NUL. */
        buf_init(&b, 100000);
        for (int i = 0; i < 10000; i++)
                CHECK(buf_append(&b, "0123456789", 10) == 0);
        CHECK(b.len == 100000 && b.data[b.len] == '\0' && b.data[99999] == '9');
        CHECK(buf_append(&b, "x", 1) == -E2BIG);
        buf_free(&b);
        return check_summary();
}

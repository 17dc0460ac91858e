/* arena: a bump allocator under jansson. The open scope is per thread (json_set_alloc_funcs
 * is process-wide, so the allocator must find the caller's scope by itself: the one
 * thread-local here is why lib/ holds a global at all). */
#include "arena.h"

#include <assert.h>
#include <jansson.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif

#define ALIGN alignof(max_align_t)
#define BLOCK_MIN 4096

#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
/* Under ASan each allocation gets a poisoned header before it (holding its size, so that
 * arena_free can poison it again) and poisoned padding after it: an overflow into the next
 * value, a use after arena_free and any use after arena_end are all reported, as with malloc. */
#define HEADER ALIGN
#define REDZONE ALIGN
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define HEADER 0
#define REDZONE 0
#define POISON(p, n) ((void) (p), (void) (n))
#define UNPOISON(p, n) ((void) (p), (void) (n))
#endif

struct arena_block {
        struct arena_block *next;
        size_t size, used;
        max_align_t data[];     /* size bytes, so every bump is aligned for any type */
};

static _Thread_local struct arena *current;

void arena_install(void) {
        json_set_alloc_funcs(arena_malloc, arena_free);
}

void arena_begin(struct arena *a, size_t first_block, size_t cap) {
        if (cap > ARENA_CAP_MAX)
                cap = ARENA_CAP_MAX;
        if (first_block < BLOCK_MIN)
                first_block = BLOCK_MIN;
        /* Blocks come on the first allocation: a scope in which jansson allocates nothing
         * costs nothing. */
        *a = (struct arena) { .next_block = first_block, .cap = cap, .outer = current };
        current = a;
}

void arena_end(struct arena *a) {
        struct arena_block *b = a->blocks;

        assert(current == a); /* scopes close innermost first, on the thread that opened them */
        current = a->outer;
        while (b) {
                struct arena_block *next = b->next;

                UNPOISON(b->data, b->size);
                free(b);
                b = next;
        }
        *a = (struct arena) { 0 };
}

/* A new block of at least need bytes, within the cap; NULL when the cap (or malloc) says no. */
static struct arena_block *grow(struct arena *a, size_t need) {
        size_t room = a->cap - a->total, size = a->next_block;
        struct arena_block *b;

        if (size < need)
                size = need;
        if (size > room)
                size = room;
        if (size < need)
                return NULL;
        b = malloc(sizeof(*b) + size);
        if (!b)
                return NULL;
        *b = (struct arena_block) { .next = a->blocks, .size = size };
        POISON(b->data, size);
        a->blocks = b;
        a->total += size;
        a->next_block = size <= SIZE_MAX / 2 ? size * 2 : size;
        return b;
}

#ifdef ARENA_ASAN
/* An allocation's size lives in its poisoned header, for arena_free to poison it again. */
__attribute__((no_sanitize("address"))) static void set_stored_size(char *p, size_t n) {
        *(size_t *) (p - HEADER) = n;
}

__attribute__((no_sanitize("address"))) static size_t stored_size(const char *p) {
        return *(const size_t *) (p - HEADER);
}
#endif

void *arena_malloc(size_t n) {
        struct arena *a = current;
        struct arena_block *b;
        size_t need;
        char *p;

        if (!a)
                return malloc(n);
        if (n > a->cap)
                goto spill;
        if (n == 0)
                n = 1; /* a distinct pointer, as malloc(0) may give */
        need = HEADER + (n + ALIGN - 1) / ALIGN * ALIGN + REDZONE;
        b = a->blocks;
        if (!b || b->size - b->used < need) {
                b = grow(a, need);
                if (!b)
                        goto spill;
        }
        p = (char *) b->data + b->used + HEADER;
        b->used += need;
#ifdef ARENA_ASAN
        set_stored_size(p, n);
#endif
        UNPOISON(p, n);
        return p;
spill:
        a->spilled++;
        return malloc(n);
}

/* The open scope of this thread whose blocks hold p, or NULL: the address tells an arena
 * value from a malloc'd one. */
static struct arena *owner(const void *p) {
        uintptr_t u = (uintptr_t) p;

        for (struct arena *a = current; a; a = a->outer)
                for (struct arena_block *b = a->blocks; b; b = b->next)
                        if (u >= (uintptr_t) b->data && u < (uintptr_t) b->data + b->size)
                                return a;
        return NULL;
}

void arena_free(void *p) {
        if (!p)
                return;
        if (!owner(p)) {
                free(p);
                return;
        }
        /* The scope's end frees it; until then, under ASan, touching it is an error. */
#ifdef ARENA_ASAN
        assert(!__asan_address_is_poisoned(p)); /* freed twice */
        POISON(p, stored_size(p));
#endif
}

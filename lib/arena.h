/* arena: a bump allocator under jansson, so that one delivery's JSON tree costs a few block
 * allocations instead of a malloc and a free per value (DESIGN.md, "Dependencies"). */
#pragma once

#include <stddef.h>

struct arena_block;

/* One scope of bump allocation, usually on the caller's stack. Fields are private. */
struct arena {
        struct arena_block *blocks;     /* newest first */
        size_t total;                   /* bytes of blocks held */
        size_t next_block;              /* size of the next block to allocate */
        size_t cap;                     /* total never exceeds it; past it, malloc serves */
        size_t spilled;                 /* allocations malloc served because of the cap */
        struct arena *outer;            /* the scope this one nests in, on this thread */
};

/* The largest arena scope, whatever the caller asks: bodies may be up to max_body_bytes
 * (256 MiB at most), and a tree takes ~4x its text, or ~224 bytes a value for the densest
 * text (empty objects), which max_json_elements bounds (lib/doc.h: ~11 MB at the default);
 * beyond this malloc serves the rest. */
#define ARENA_CAP_MAX (4u << 20)

/* Makes jansson allocate through arena_malloc/arena_free, process-wide. Call once, before
 * any thread uses jansson (json_set_alloc_funcs is not thread-safe). Without it, scopes are
 * harmless no-ops and jansson uses malloc. */
void arena_install(void);

/* Opens a scope on the calling thread: until arena_end(a), every jansson allocation on this
 * thread bumps from a's blocks (the first one of about first_block bytes, later ones
 * doubling), up to cap bytes in all (at most ARENA_CAP_MAX); past that, malloc serves. Scopes
 * nest. Other threads are unaffected: they keep malloc, or their own scope. */
void arena_begin(struct arena *a, size_t first_block, size_t cap);

/* Closes the innermost scope a and frees its blocks: every value jansson allocated in it is
 * gone, so the caller must have dropped every reference first (json_decref the tree, copy out
 * the strings it keeps) and must not have kept text from json_dumps() made inside. */
void arena_end(struct arena *a);

/* jansson's allocator pair (also callable directly, e.g. in tests): from the calling
 * thread's innermost scope when one is open, else malloc. arena_free of a pointer in an open
 * scope of this thread is a no-op (the scope's end frees it); any other pointer goes to
 * free(). Thread-safe: the state is per thread. */
void *arena_malloc(size_t n);
void arena_free(void *p);

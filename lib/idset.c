/* idset: a chained hash set of "source\0id" keys. */
#include "idset.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct entry {
        struct entry *next;
        size_t len;
        char key[];     /* source, NUL, id, NUL */
};

struct idset {
        struct entry **buckets;
        size_t n_buckets, size;
};

/* FNV-1a: spreads short ASCII keys well; not a security boundary (keys come from
 * authenticated deliveries). */
static uint64_t hash(const char *a, const char *b) {
        uint64_t h = 1469598103934665603ULL;

        for (const char *p = a; *p; p++)
                h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        h = (h ^ 0) * 1099511628211ULL;
        for (const char *p = b; *p; p++)
                h = (h ^ (unsigned char) *p) * 1099511628211ULL;
        return h;
}

struct idset *idset_new(void) {
        struct idset *s = calloc(1, sizeof(*s));

        if (!s)
                return NULL;
        s->n_buckets = 256;
        s->buckets = calloc(s->n_buckets, sizeof(*s->buckets));
        if (!s->buckets) {
                free(s);
                return NULL;
        }
        return s;
}

void idset_clear(struct idset *s) {
        for (size_t i = 0; i < s->n_buckets; i++) {
                struct entry *e = s->buckets[i];

                while (e) {
                        struct entry *next = e->next;
                        free(e);
                        e = next;
                }
                s->buckets[i] = NULL;
        }
        s->size = 0;
}

struct idset *idset_free(struct idset *s) {
        if (!s)
                return NULL;
        idset_clear(s);
        free(s->buckets);
        free(s);
        return NULL;
}

static struct entry *find(const struct idset *s, const char *source, const char *id,
                          uint64_t h) {
        size_t slen = strlen(source);

        for (struct entry *e = s->buckets[h % s->n_buckets]; e; e = e->next)
                if (strcmp(e->key, source) == 0 && strcmp(e->key + slen + 1, id) == 0)
                        return e;
        return NULL;
}

static void grow(struct idset *s) {
        size_t n = s->n_buckets * 2;
        struct entry **b = calloc(n, sizeof(*b));

        if (!b)
                return; /* keep the longer chains; still correct */
        for (size_t i = 0; i < s->n_buckets; i++) {
                struct entry *e = s->buckets[i];

                while (e) {
                        struct entry *next = e->next;
                        uint64_t h = hash(e->key, e->key + strlen(e->key) + 1);

                        e->next = b[h % n];
                        b[h % n] = e;
                        e = next;
                }
        }
        free(s->buckets);
        s->buckets = b;
        s->n_buckets = n;
}

int idset_add(struct idset *s, const char *source, const char *id) {
        uint64_t h = hash(source, id);
        size_t slen = strlen(source), ilen = strlen(id);
        struct entry *e;

        if (find(s, source, id, h))
                return 0;
        e = malloc(sizeof(*e) + slen + ilen + 2);
        if (!e)
                return -ENOMEM;
        memcpy(e->key, source, slen + 1);
        memcpy(e->key + slen + 1, id, ilen + 1);
        e->len = slen + ilen + 2;
        e->next = s->buckets[h % s->n_buckets];
        s->buckets[h % s->n_buckets] = e;
        if (++s->size > 2 * s->n_buckets)
                grow(s);
        return 1;
}

void idset_remove(struct idset *s, const char *source, const char *id) {
        uint64_t h = hash(source, id);
        size_t slen = strlen(source);

        for (struct entry **pe = &s->buckets[h % s->n_buckets]; *pe; pe = &(*pe)->next) {
                struct entry *e = *pe;

                if (strcmp(e->key, source) == 0 && strcmp(e->key + slen + 1, id) == 0) {
                        *pe = e->next;
                        free(e);
                        s->size--;
                        return;
                }
        }
}

bool idset_contains(const struct idset *s, const char *source, const char *id) {
        return find(s, source, id, hash(source, id)) != NULL;
}

size_t idset_size(const struct idset *s) {
        return s->size;
}

/* confkey: one configuration key's row (type, default, range, validator, help, reload or
 * restart) and how its text becomes a value. daemon/config.c holds the core rows; the
 * shared normalization keys (lib/normalize.c) and each source (lib/sources/) bring their
 * own, so that a source's keys live beside the code that reads them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

enum confkey_type {
        KEY_STRING,
        KEY_SECRET,     /* a string never shown; may come from $CREDENTIALS_DIRECTORY */
        KEY_SIZE,       /* bytes (size_t), with an optional k/M/G (binary) suffix */
        KEY_LONG,
        KEY_BOOL,
};

struct confkey {
        const char *name;
        enum confkey_type type;
        const char *def;        /* default as text; NULL: unset */
        size_t offset;          /* of the value in the struct its group stores keys in; a
                                 * string is a char * there (const char * in lib/) */
        long min, max;          /* for KEY_LONG and KEY_SIZE */
        const char *(*check)(const char *value); /* extra validation: NULL or a problem */
        const char *help;
        bool restart;           /* read only at start: a reload keeps the running value */
};

#define CONFKEY_RESTART true    /* a reload keeps the running value */
#define CONFKEY_LIVE false      /* a reload applies it to requests that start after it */

/* Parses v into the value of a KEY_SIZE, KEY_LONG or KEY_BOOL key at field, then runs its
 * check. Returns NULL, or the problem in words ("is out of range"). Strings are the
 * caller's to store (copied or borrowed); for them only the check runs. */
const char *confkey_parse(const struct confkey *k, const char *v, void *field);

/* Stores every key's default in storage (a struct of the group's type), strings borrowed
 * from the rows (an unset default: NULL). Returns NULL, or the first problem found. */
const char *confkey_defaults(const struct confkey *keys, size_t n, void *storage);

/* args: a command's arguments: its options (each with a value, or a flag), its positional
 * arguments, and the global options, which may come after the command too. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "ctl.h"

struct args_option {
        const char *name;       /* "--service" */
        const char **value;     /* set to the next argument; NULL for a flag */
        bool *flag;             /* set when present; NULL for an option with a value */
};

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_USAGE = -1 };

/* Parses argv[1..] (argv[0] is the command) into opts (NULL-name terminated) and up to
 * max_pos positional arguments (at least min_pos) into pos; --json, --url and --token-file
 * update c. Prints usage (to stdout for --help, else stderr with what is wrong). Returns
 * ARGS_OK, ARGS_HELP or ARGS_USAGE. */
int args_parse(struct ctl *c, int argc, char **argv, const struct args_option *opts,
               const char **pos, size_t min_pos, size_t max_pos, const char *usage);

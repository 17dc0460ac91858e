/* args: one parser for every command's arguments (args.h). */
#include "args.h"

#include <stdio.h>
#include <string.h>

static int usage_error(const char *usage, const char *cmd, const char *what, const char *arg) {
        ctl_error("%s: %s%s%s", cmd, what, arg ? " " : "", arg ? arg : "");
        fputs(usage, stderr);
        return ARGS_USAGE;
}

int args_parse(struct ctl *c, int argc, char **argv, const struct args_option *opts,
               const char **pos, size_t min_pos, size_t max_pos, const char *usage) {
        size_t n_pos = 0;
        bool only_pos = false;

        for (int i = 1; i < argc; i++) {
                const char *a = argv[i];
                const struct args_option *o = NULL;

                if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
                        if (n_pos == max_pos)
                                return usage_error(usage, argv[0], "unexpected argument", a);
                        pos[n_pos++] = a;
                        continue;
                }
                if (strcmp(a, "--") == 0) {
                        only_pos = true;
                        continue;
                }
                if (ctl_is_help(a)) {
                        fputs(usage, stdout);
                        return ARGS_HELP;
                }
                if (strcmp(a, "--json") == 0) {
                        c->json = true;
                        continue;
                }
                for (size_t k = 0; opts && opts[k].name; k++)
                        if (strcmp(a, opts[k].name) == 0)
                                o = &opts[k];
                if (o && o->flag) {
                        *o->flag = true;
                        continue;
                }
                if (i + 1 == argc && (o || strcmp(a, "--url") == 0 ||
                                      strcmp(a, "--token-file") == 0))
                        return usage_error(usage, argv[0], "a value is missing after", a);
                if (o)
                        *o->value = argv[++i];
                else if (strcmp(a, "--url") == 0)
                        c->url = argv[++i];
                else if (strcmp(a, "--token-file") == 0)
                        c->token_file = argv[++i];
                else
                        return usage_error(usage, argv[0], "unknown option", a);
        }
        if (n_pos < min_pos)
                return usage_error(usage, argv[0], "missing argument", NULL);
        return ARGS_OK;
}

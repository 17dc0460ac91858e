/* doraloopctl: the command line of doraloop (API.md, "Import and the command line"): global
 * options, then one command; each command lives in its own file. */
#include "ctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
        "Usage: doraloopctl [--url URL] [--token-file FILE] [--json] COMMAND [ARGS...]\n"
        "\n"
        "Commands:\n"
        "  import FILE|-              load NDJSON history (--fourkeys: a Four Keys events_raw export)\n"
        "  import-git REPO --service S [--branch main] [--tags GLOB] [--since 90d]\n"
        "                             a local clone's commits as changes, its tags as deployments\n"
        "  gate KEY --service S [--environment E]\n"
        "                             may a pipeline deploy now? exit 0 yes, 1 no, 2 error\n"
        "  replay                     re-derive everything from the stored deliveries\n"
        "  status                     readiness, queue, spool and the last delivery per source\n"
        "  insights [--service S]     the ranked insights\n"
        "  decide ID accept|dismiss --reason R\n"
        "  review [--window 7d]       the review agenda\n"
        "\n"
        "Options:\n"
        "  --url URL          the daemon (DORALOOP_URL; default http://127.0.0.1:8080)\n"
        "  --token-file FILE  the token to present (else DORALOOP_API_TOKEN for reads,\n"
        "                     DORALOOP_ADMIN_TOKEN for import and replay, DORALOOP_TRIAGE_TOKEN\n"
        "                     or the admin token for decide)\n"
        "  --json             print the API's JSON instead of text\n"
        "  --help             this help; COMMAND --help for a command's\n"
        "  --version          the version\n"
        "\n"
        "Exit status: 0 done, 1 the answer is no (gate refused, not ready, lines refused),\n"
        "2 any error, the daemon unreachable included. See doraloopctl(1).\n";

struct command {
        const char *name;
        int (*run)(const struct ctl *c, int argc, char **argv);
};

static const struct command commands[] = {
        { "import", cmd_import },       { "import-git", cmd_import_git },
        { "gate", cmd_gate },           { "replay", cmd_replay },
        { "status", cmd_status },       { "insights", cmd_insights },
        { "decide", cmd_decide },       { "review", cmd_review },
};

void ctl_error(const char *fmt, ...) {
        va_list ap;

        fputs("doraloopctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

bool ctl_is_help(const char *arg) {
        return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int main(int argc, char **argv) {
        struct ctl c = { .url = getenv("DORALOOP_URL"), .tty = isatty(STDERR_FILENO) };
        int i = 1;

        if (!c.url || !*c.url)
                c.url = "http://127.0.0.1:8080";
        for (; i < argc && argv[i][0] == '-'; i++) {
                if (ctl_is_help(argv[i])) {
                        fputs(usage, stdout);
                        return CTL_OK;
                } else if (strcmp(argv[i], "--version") == 0) {
                        printf("doraloopctl %s\n", DORALOOP_VERSION);
                        return CTL_OK;
                } else if (strcmp(argv[i], "--json") == 0) {
                        c.json = true;
                } else if (strcmp(argv[i], "--url") == 0 && i + 1 < argc) {
                        c.url = argv[++i];
                } else if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
                        c.token_file = argv[++i];
                } else {
                        ctl_error("unknown option '%s' (see doraloopctl --help)", argv[i]);
                        return CTL_ERROR;
                }
        }
        if (i == argc) {
                fputs(usage, stderr);
                return CTL_ERROR;
        }
        for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
                if (strcmp(argv[i], commands[k].name) == 0)
                        return commands[k].run(&c, argc - i, argv + i);
        ctl_error("unknown command '%s' (see doraloopctl --help)", argv[i]);
        return CTL_ERROR;
}

/* ctl: what every doraloopctl command shares: the global options, the token each command
 * presents, and the way results and errors are printed (text, or the API's JSON). */
#pragma once

#include <stdbool.h>

/* Exit statuses: 0 done (gate: allowed), 1 the answer is "no" (gate refused, status not
 * ready, an import with refused lines), 2 any error (usage, I/O, HTTP, daemon unreachable). */
enum { CTL_OK = 0, CTL_NO = 1, CTL_ERROR = 2 };

enum ctl_token {
        CTL_TOKEN_API,          /* DORALOOP_API_TOKEN: reads */
        CTL_TOKEN_ADMIN,        /* DORALOOP_ADMIN_TOKEN: import, replay */
        CTL_TOKEN_TRIAGE,       /* DORALOOP_TRIAGE_TOKEN, else the admin token: decide */
};

struct ctl {
        const char *url;        /* --url, DORALOOP_URL, else http://127.0.0.1:8080 */
        const char *token_file; /* --token-file: one token, for whatever the command needs */
        bool json;              /* --json: print the API's JSON instead of text */
        bool tty;               /* stderr is a terminal: progress bars instead of lines */
};

/* Prints "doraloopctl: <fmt>" and a newline on stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether arg is -h or --help. */
bool ctl_is_help(const char *arg);

/* The commands: argv[0] is the command's name; each returns an exit status. */
int cmd_import(const struct ctl *c, int argc, char **argv);
int cmd_import_git(const struct ctl *c, int argc, char **argv);
int cmd_gate(const struct ctl *c, int argc, char **argv);
int cmd_replay(const struct ctl *c, int argc, char **argv);
int cmd_status(const struct ctl *c, int argc, char **argv);
int cmd_insights(const struct ctl *c, int argc, char **argv);
int cmd_decide(const struct ctl *c, int argc, char **argv);
int cmd_review(const struct ctl *c, int argc, char **argv);

/* notify: the listening connection that tells the mirror at once when another daemon on
 * the same database committed rows (LISTEN/NOTIFY), so its answers show them within a
 * second and not only at the next poll (mirror_poll_ms). Whatever goes wrong (a lost
 * connection, LISTEN refused, a pooler that drops notifications), polling still runs. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct mirror;
struct notify;

/* Starts the thread listening on conninfo (db, the primary), telling m. NULL on OOM or
 * when no thread could start (then polling alone keeps m up to date). */
struct notify *notify_start(const char *conninfo, struct mirror *m);

/* Stops the thread and frees n; NULL-safe, returns NULL. */
struct notify *notify_stop(struct notify *n);

/* Whether LISTEN is in place now, and how many notifications came in. Lock-free. */
bool notify_listening(const struct notify *n);
uint64_t notify_received(const struct notify *n);

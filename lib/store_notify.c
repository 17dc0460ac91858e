/* store_notify: LISTEN and the wait for NOTIFYs, over libpq. */
#include "store_notify.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>

#include "error.h"
#include "store.h"

int store_listen(struct store *s, struct error *err) {
        PGconn *conn = store_pgconn(s);
        PGresult *res = PQexec(conn, "LISTEN " STORE_NOTIFY_CHANNEL);
        int r = 0;

        if (PQresultStatus(res) != PGRES_COMMAND_OK)
                r = error_set(err, EIO, "unavailable", NULL, "LISTEN: %s",
                              PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                      ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                                      : "no answer");
        PQclear(res);
        return r;
}

/* Takes every notification libpq has read so far. */
static int drain(PGconn *conn) {
        PGnotify *n;
        int got = 0;

        while ((n = PQnotifies(conn))) {
                PQfreemem(n);
                got++;
        }
        return got;
}

int store_wait_notify(struct store *s, int wake_fd, int timeout_ms, struct error *err) {
        PGconn *conn = store_pgconn(s);
        struct pollfd fds[2] = { { .fd = PQsocket(conn), .events = POLLIN },
                                 { .fd = wake_fd, .events = POLLIN } };
        int got = drain(conn), r;

        if (got)
                return got;
        if (fds[0].fd < 0)
                return error_set(err, EIO, "unavailable", NULL, "Not connected");
        r = poll(fds, wake_fd >= 0 ? 2 : 1, timeout_ms);
        if (r < 0)
                return errno == EINTR ? 0 : error_set(err, EIO, "unavailable", NULL, "poll failed");
        if (r == 0 || !(fds[0].revents & (POLLIN | POLLERR | POLLHUP)))
                return 0;
        if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
                return error_set(err, EIO, "unavailable", NULL, "The listening connection "
                                 "was lost: %s", PQerrorMessage(conn));
        return drain(conn);
}

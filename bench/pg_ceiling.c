/* pg_ceiling: the storage ceiling for bench/ingest. A bare libpq client inserts the same
 * body with fresh delivery ids into events_raw, in 100-row transactions, one connection per
 * thread, for a fixed time, and reports rows/s and per-transaction commit latency.
 * usage: pg_ceiling CONNINFO BODY_FILE [SECONDS=20] [THREADS=2] [ROWS_PER_TXN=100] */
#define _POSIX_C_SOURCE 200809L
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 16
#define MAX_TXNS 1000000 /* latency samples kept per thread; enough for hours at this rate */

static const char *conninfo, *body;
static double seconds = 20;
static long rows_per_txn = 100;

/* The headers a GitHub delivery carries, stored the way a receiver would (JSON text). */
static const char headers_json[] =
	"{\"Host\":\"127.0.0.1\",\"User-Agent\":\"GitHub-Hookshot/044aadd\","
	"\"Content-Type\":\"application/json\",\"Content-Length\":\"8827\","
	"\"X-Github-Event\":\"push\",\"X-Github-Hook-Id\":\"292430182\"}";

struct worker {
	pthread_t thread;
	int id;
	long rows;
	long txns;
	double *lat_ms; /* commit latency of each transaction */
	int failed;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int exec_ok(PGconn *c, PGresult *r, const char *what)
{
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "pg_ceiling: %s: %s", what, PQerrorMessage(c));
	PQclear(r);
	return ok;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_ceiling: connect: %s", PQerrorMessage(c));
		w->failed = 1;
		goto out;
	}
	/* Prepared once, like any serious client; one round trip per row. */
	if (!exec_ok(c, PQprepare(c, "ins",
			"INSERT INTO events_raw (source, delivery_id, event, headers, body) "
			"VALUES ('github', $1, 'push', $2, $3) "
			"ON CONFLICT (source, delivery_id) DO NOTHING", 3, NULL), "prepare")) {
		w->failed = 1;
		goto out;
	}
	char id[64];
	const char *params[3] = {id, headers_json, body};
	double end = now_s() + seconds;
	while (now_s() < end) {
		double t0 = now_s();
		if (!exec_ok(c, PQexec(c, "BEGIN"), "BEGIN")) {
			w->failed = 1;
			break;
		}
		for (long i = 0; i < rows_per_txn; i++) {
			snprintf(id, sizeof id, "ceiling-%d-%ld", w->id, w->rows + i);
			if (!exec_ok(c, PQexecPrepared(c, "ins", 3, params, NULL, NULL, 0), "INSERT")) {
				w->failed = 1;
				goto out;
			}
		}
		if (!exec_ok(c, PQexec(c, "COMMIT"), "COMMIT")) {
			w->failed = 1;
			break;
		}
		w->rows += rows_per_txn;
		if (w->txns < MAX_TXNS)
			w->lat_ms[w->txns] = (now_s() - t0) * 1000;
		w->txns++;
	}
out:
	PQfinish(c);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(1 << 20); /* fixtures are a few KB; 1 MiB is the daemon's body limit */
	size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (buf)
		buf[n] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: pg_ceiling CONNINFO BODY_FILE [SECONDS] [THREADS] [ROWS_PER_TXN]\n");
		return 2;
	}
	conninfo = argv[1];
	char *text = slurp(argv[2]);
	if (!text) {
		perror(argv[2]);
		return 1;
	}
	body = text;
	int nthreads = 2;
	if (argc > 3)
		seconds = strtod(argv[3], NULL);
	if (argc > 4)
		nthreads = (int) strtol(argv[4], NULL, 10);
	if (argc > 5)
		rows_per_txn = strtol(argv[5], NULL, 10);
	if (seconds <= 0 || nthreads < 1 || nthreads > MAX_THREADS || rows_per_txn < 1) {
		fprintf(stderr, "pg_ceiling: bad arguments\n");
		return 2;
	}

	struct worker w[MAX_THREADS] = {0};
	double t0 = now_s();
	for (int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].lat_ms = malloc(MAX_TXNS * sizeof(double));
		if (!w[i].lat_ms || pthread_create(&w[i].thread, NULL, run, &w[i]) != 0) {
			fprintf(stderr, "pg_ceiling: cannot start thread\n");
			return 1;
		}
	}
	long rows = 0, txns = 0, kept = 0;
	int failed = 0;
	for (int i = 0; i < nthreads; i++) {
		pthread_join(w[i].thread, NULL);
		rows += w[i].rows;
		txns += w[i].txns;
		failed |= w[i].failed;
	}
	double elapsed = now_s() - t0;

	/* Pool the latency samples for the percentiles. */
	double *all = malloc((size_t) nthreads * MAX_TXNS * sizeof(double));
	if (!all)
		return 1;
	for (int i = 0; i < nthreads; i++) {
		long n = w[i].txns < MAX_TXNS ? w[i].txns : MAX_TXNS;
		memcpy(all + kept, w[i].lat_ms, n * sizeof(double));
		kept += n;
		free(w[i].lat_ms);
	}
	qsort(all, kept, sizeof(double), cmp_double);
	double p50 = kept ? all[(long) (0.50 * (kept - 1))] : 0;
	double p99 = kept ? all[(long) (0.99 * (kept - 1))] : 0;
	printf("BENCH rows=%ld txns=%ld rows_per_s=%.1f txn_p50_ms=%.2f txn_p99_ms=%.2f "
	       "duration_s=%.2f threads=%d rows_per_txn=%ld failed=%d\n",
	       rows, txns, rows / elapsed, p50, p99, elapsed, nthreads, rows_per_txn, failed);
	free(all);
	free(text);
	return failed;
}

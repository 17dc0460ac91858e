/* readpool: the read threads and their bounded queue. */
#include "readpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

/* How much nicer than the rest of the process the read threads run (Linux: per thread). */
#define READ_NICENESS 5

struct readpool {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct readpool_job *head, *tail;       /* under lock */
        size_t queued, queue_max;
        bool stopping;
        unsigned n_threads;
        pthread_t threads[];
};

static void lower_priority(void) {
        pid_t tid = (pid_t) syscall(SYS_gettid);
        int prio;

        errno = 0;
        prio = getpriority(PRIO_PROCESS, (id_t) tid);
        if (errno == 0) /* best effort: at nice 19 already, it stays there */
                (void) setpriority(PRIO_PROCESS, (id_t) tid, prio + READ_NICENESS);
}

static void *worker(void *arg) {
        struct readpool *p = arg;

        lower_priority();
        pthread_mutex_lock(&p->lock);
        for (;;) {
                struct readpool_job *job;
                bool stopping;

                while (!p->head && !p->stopping)
                        pthread_cond_wait(&p->wake, &p->lock);
                job = p->head;
                if (!job)
                        break; /* stopping, and nothing left */
                p->head = job->next;
                if (!p->head)
                        p->tail = NULL;
                p->queued--;
                stopping = p->stopping;
                pthread_mutex_unlock(&p->lock);
                job->run(job, stopping);        /* job may be freed by now */
                pthread_mutex_lock(&p->lock);
        }
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

int readpool_new(unsigned threads, size_t queue_max, struct readpool **ret_pool) {
        struct readpool *p = calloc(1, sizeof(*p) + threads * sizeof(pthread_t));

        if (!p)
                return -ENOMEM;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->wake, NULL);
        p->queue_max = queue_max;
        for (; p->n_threads < threads; p->n_threads++)
                if (pthread_create(&p->threads[p->n_threads], NULL, worker, p) != 0) {
                        readpool_free(p);
                        return -EAGAIN;
                }
        *ret_pool = p;
        return 0;
}

int readpool_submit(struct readpool *p, struct readpool_job *job) {
        int r = 0;

        pthread_mutex_lock(&p->lock);
        if (p->stopping)
                r = -ESHUTDOWN;
        else if (p->queued >= p->queue_max)
                r = -EAGAIN;
        if (r == 0) {
                job->next = NULL;
                if (p->tail)
                        p->tail->next = job;
                else
                        p->head = job;
                p->tail = job;
                p->queued++;
                pthread_cond_signal(&p->wake);
        }
        pthread_mutex_unlock(&p->lock);
        return r;
}

struct readpool *readpool_free(struct readpool *p) {
        if (!p)
                return NULL;
        pthread_mutex_lock(&p->lock);
        p->stopping = true;
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->lock);
        for (unsigned i = 0; i < p->n_threads; i++)
                pthread_join(p->threads[i], NULL);
        pthread_mutex_destroy(&p->lock);
        pthread_cond_destroy(&p->wake);
        free(p);
        return NULL;
}

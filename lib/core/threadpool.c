/*
 * Persistent pthread pool. Workers 1..n-1 wait for a new "generation" (spin briefly, then
 * sleep on a condition variable); the caller bumps the generation, runs part 0 itself and
 * waits until the pending count drops to zero.
 *
 * Memory ordering: fn/arg are plain fields written by the caller before the release
 * increment of `gen`; workers read them after an acquire load of `gen`, so they see them.
 * A worker's writes made inside fn are published by its release decrement of `pending`,
 * which the caller reads with acquire before returning.
 */
#include "lib/core/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "include/loom.h"

/* Spin iterations before sleeping: long enough to catch back-to-back matvecs in a decode
 * step, short enough not to burn a shared core. */
#define LM_POOL_SPIN 4000

typedef struct lm_worker {
    struct lm_pool *pool;
    int             ith;
    pthread_t       thread;
} lm_worker;

struct lm_pool {
    int             n;          /* threads including the caller                   */
    lm_worker      *workers;    /* [n-1], owned                                   */
    int             n_started;  /* workers actually created                       */
    pthread_mutex_t mu;
    pthread_cond_t  cv_start;   /* workers sleep here waiting for a new gen        */
    pthread_cond_t  cv_done;    /* the caller sleeps here waiting for pending == 0 */
    atomic_uint     gen;        /* bumped once per lm_pool_run (and by free)       */
    atomic_int      pending;    /* workers still running the current task          */
    atomic_int      stop;
    lm_task_fn      fn;         /* current task, valid while gen is current        */
    void           *arg;
    int             matmul_bf16; /* lm_pool_set_matmul_bf16                         */
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *vp)
{
    lm_worker *w = vp;
    lm_pool   *p = w->pool;
    unsigned   seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < LM_POOL_SPIN; i++) {
            cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen)
                pthread_cond_wait(&p->cv_start, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
        p->fn(p->arg, w->ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            /* Take the mutex so the signal cannot fall between the caller's check and
             * its wait. */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void pool_stop_and_join(lm_pool *p)
{
    atomic_store_explicit(&p->stop, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->workers[i].thread, NULL);
    p->n_started = 0;
}

lm_pool *lm_pool_create(int n_threads)
{
    if (n_threads <= 0) n_threads = loom_cpu_count();
    if (n_threads > 1024) n_threads = 1024;
    lm_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, 0);
    if (pthread_mutex_init(&p->mu, NULL)) { free(p); return NULL; }
    if (pthread_cond_init(&p->cv_start, NULL)) goto fail_mu;
    if (pthread_cond_init(&p->cv_done, NULL)) goto fail_cv1;
    if (n_threads > 1) {
        p->workers = calloc((size_t)n_threads - 1, sizeof *p->workers);
        if (!p->workers) goto fail_cv2;
        for (int i = 0; i < n_threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].ith = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
                pool_stop_and_join(p);
                free(p->workers);
                goto fail_cv2;
            }
            p->n_started++;
        }
    }
    return p;

fail_cv2:
    pthread_cond_destroy(&p->cv_done);
fail_cv1:
    pthread_cond_destroy(&p->cv_start);
fail_mu:
    pthread_mutex_destroy(&p->mu);
    free(p);
    return NULL;
}

void lm_pool_free(lm_pool **pp)
{
    if (!pp || !*pp) return;
    lm_pool *p = *pp;
    pool_stop_and_join(p);
    pthread_cond_destroy(&p->cv_done);
    pthread_cond_destroy(&p->cv_start);
    pthread_mutex_destroy(&p->mu);
    free(p->workers);
    free(p);
    *pp = NULL;
}

int lm_pool_size(const lm_pool *p) { return p ? p->n : 1; }

void lm_pool_run(lm_pool *p, lm_task_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_start);
    pthread_mutex_unlock(&p->mu);

    fn(arg, 0, p->n);

    for (int i = 0; i < LM_POOL_SPIN; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        pthread_cond_wait(&p->cv_done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void lm_pool_set_matmul_bf16(lm_pool *p, int on)
{
    if (p) p->matmul_bf16 = on != 0;
}

int lm_pool_matmul_bf16(const lm_pool *p) { return p ? p->matmul_bf16 : 0; }

typedef struct range_task { lm_range_fn fn; void *arg; long long n; } range_task;

static void range_part(void *arg, int ith, int nth)
{
    const range_task *t = arg;
    long long lo, hi;
    lm_split(t->n, ith, nth, &lo, &hi);
    if (lo < hi) t->fn(t->arg, lo, hi);
}

void lm_pool_for(lm_pool *p, long long n, long long grain, lm_range_fn fn, void *arg)
{
    if (n <= 0) return;
    if (!p || p->n == 1 || n < 2 * grain) {
        fn(arg, 0, n);
        return;
    }
    range_task t = {.fn = fn, .arg = arg, .n = n};
    lm_pool_run(p, range_part, &t);
}

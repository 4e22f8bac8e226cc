/*
 * A small pthread pool. lm_pool_run() calls fn(arg, ith, nth) once on each of nth threads
 * (the caller is thread 0) and returns when all are done; work is split by thread index.
 * One pool serves one caller at a time.
 */
#ifndef LM_THREADPOOL_H
#define LM_THREADPOOL_H

typedef struct lm_pool lm_pool;
typedef void (*lm_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0 means loom_cpu_count(). NULL on failure. */
lm_pool *lm_pool_create(int n_threads);
void     lm_pool_free(lm_pool **p);
int      lm_pool_size(const lm_pool *p);   /* 1 for a NULL pool */
/* p may be NULL: then fn(arg, 0, 1) runs on the caller. */
void     lm_pool_run(lm_pool *p, lm_task_fn fn, void *arg);

/* The precision of lm_matmul's large products for work run on this pool (its owner's
 * choice, e.g. a session's): 0 (default) f32, 1 bf16 on AMX (kernels.h, lm_matmul_bf16). */
void     lm_pool_set_matmul_bf16(lm_pool *p, int on);
int      lm_pool_matmul_bf16(const lm_pool *p);   /* 0 for a NULL pool */

/* fn(arg, lo, hi) over near-equal shares of [0, n), one per thread; on the caller alone
 * when n < 2·grain (too little work to be worth waking the others). */
typedef void (*lm_range_fn)(void *arg, long long lo, long long hi);
void     lm_pool_for(lm_pool *p, long long n, long long grain, lm_range_fn fn, void *arg);

/* Split [0, n) into nth near-equal parts; part ith is [*lo, *hi). */
static inline void lm_split(long long n, int ith, int nth, long long *lo, long long *hi)
{
    long long per = (n + nth - 1) / nth;
    *lo = per * ith < n ? per * ith : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* The same in whole blocks of blk (the last may be short): [*lo, *hi) starts on a multiple
 * of blk. */
static inline void lm_split_blocks(long long n, long long blk, int ith, int nth, long long *lo, long long *hi)
{
    lm_split((n + blk - 1) / blk, ith, nth, lo, hi);
    *lo *= blk;
    *hi = *hi * blk < n ? *hi * blk : n;
    if (*lo > n) *lo = n;
}

#endif

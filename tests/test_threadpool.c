/* Thread pool: every index of a split range runs exactly once per run, every thread index
 * is called once per run, across many back-to-back runs; NULL pool runs on the caller.
 * lm_split_blocks cuts on block edges; lm_pool_for covers its range once and keeps a range
 * under two grains on the caller. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "include/loom.h"
#include "lib/core/threadpool.h"
#include "tests/check.h"

#define N_ITEMS 1001

typedef struct {
    atomic_int hits[N_ITEMS];
    atomic_int calls[8];
    atomic_int bad_nth;
    int        expect_nth;
} task_state;

static void mark(void *arg, int ith, int nth)
{
    task_state *s = arg;
    if (nth != s->expect_nth || ith < 0 || ith >= nth) atomic_fetch_add(&s->bad_nth, 1);
    else atomic_fetch_add(&s->calls[ith], 1);
    long long lo, hi;
    lm_split(N_ITEMS, ith, nth, &lo, &hi);
    for (long long i = lo; i < hi; i++) atomic_fetch_add(&s->hits[i], 1);
}

static task_state g_state;

static void reset(int nth)
{
    for (int i = 0; i < N_ITEMS; i++) atomic_store(&g_state.hits[i], 0);
    for (int i = 0; i < 8; i++) atomic_store(&g_state.calls[i], 0);
    atomic_store(&g_state.bad_nth, 0);
    g_state.expect_nth = nth;
}

/* Run `runs` times, then check each item was hit exactly `runs` times and each thread
 * index called `runs` times. */
static void run_and_check(lm_pool *p, int nth, int runs)
{
    reset(nth);
    for (int r = 0; r < runs; r++) lm_pool_run(p, mark, &g_state);
    int wrong_items = 0;
    for (int i = 0; i < N_ITEMS; i++) wrong_items += atomic_load(&g_state.hits[i]) != runs;
    int wrong_calls = 0;
    for (int i = 0; i < nth; i++) wrong_calls += atomic_load(&g_state.calls[i]) != runs;
    CHECK(wrong_items == 0, "nth=%d: %d items not hit exactly %d times", nth, wrong_items, runs);
    CHECK(wrong_calls == 0, "nth=%d: %d thread indices not called exactly %d times", nth, wrong_calls, runs);
    CHECK(atomic_load(&g_state.bad_nth) == 0, "nth=%d: fn saw a wrong (ith, nth)", nth);
}

static void test_split(void)
{
    int bad = 0;
    for (long long n = 0; n < 50; n++)
        for (int nth = 1; nth <= 9; nth++) {
            long long next = 0;
            for (int ith = 0; ith < nth; ith++) {
                long long lo, hi;
                lm_split(n, ith, nth, &lo, &hi);
                if (lo != next || hi < lo) bad++;
                next = hi;
            }
            if (next != n) bad++;
        }
    CHECK(bad == 0, "lm_split: %d partitions not contiguous/covering", bad);
}

static void test_split_blocks(void)
{
    int bad = 0;
    for (long long n = 0; n < 70; n++)
        for (long long blk = 1; blk <= 17; blk += 4)
            for (int nth = 1; nth <= 5; nth++) {
                long long next = 0;
                for (int ith = 0; ith < nth; ith++) {
                    long long lo, hi;
                    lm_split_blocks(n, blk, ith, nth, &lo, &hi);
                    if (lo != next || hi < lo || (lo < n && lo % blk) || (hi < n && hi % blk)) bad++;
                    next = hi;
                }
                if (next != n) bad++;
            }
    CHECK(bad == 0, "lm_split_blocks: %d partitions not contiguous, covering and on block edges", bad);
}

typedef struct { atomic_int hits[N_ITEMS]; atomic_int calls; pthread_t caller; atomic_int off_caller; } for_state;

static void for_range(void *arg, long long lo, long long hi)
{
    for_state *s = arg;
    atomic_fetch_add(&s->calls, 1);
    if (!pthread_equal(pthread_self(), s->caller)) atomic_fetch_add(&s->off_caller, 1);
    for (long long i = lo; i < hi; i++) atomic_fetch_add(&s->hits[i], 1);
}

static void test_pool_for(void)
{
    lm_pool *p = lm_pool_create(3);
    CHECK(p != NULL, "lm_pool_create(3) failed");
    static for_state s;
    const long long ns[] = {0, 1, 5, 199, N_ITEMS};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        memset(&s, 0, sizeof s);
        s.caller = pthread_self();
        lm_pool_for(p, ns[k], 100, for_range, &s);
        int wrong = 0;
        for (long long i = 0; i < N_ITEMS; i++) wrong += atomic_load(&s.hits[i]) != (i < ns[k]);
        CHECK(wrong == 0, "lm_pool_for n=%lld: %d items not hit exactly once", ns[k], wrong);
        const int small = ns[k] < 200;   /* under two grains: one call, on the caller */
        if (small) CHECK(atomic_load(&s.calls) == (ns[k] > 0) && atomic_load(&s.off_caller) == 0,
                         "lm_pool_for n=%lld: %d calls, %d off the caller", ns[k], atomic_load(&s.calls),
                         atomic_load(&s.off_caller));
        else CHECK(atomic_load(&s.calls) == 3, "lm_pool_for n=%lld: %d calls, want 3", ns[k], atomic_load(&s.calls));
    }
    lm_pool_free(&p);
}

int main(void)
{
    test_split();
    test_split_blocks();
    test_pool_for();

    CHECK(lm_pool_size(NULL) == 1, "NULL pool size %d", lm_pool_size(NULL));
    run_and_check(NULL, 1, 3);

    for (int nth = 1; nth <= 4; nth++) {
        lm_pool *p = lm_pool_create(nth);
        CHECK(p != NULL, "lm_pool_create(%d) failed", nth);
        if (!p) continue;
        CHECK(lm_pool_size(p) == nth, "size %d != %d", lm_pool_size(p), nth);
        run_and_check(p, nth, 2000);
        lm_pool_free(&p);
        CHECK(p == NULL, "lm_pool_free did not clear the handle");
    }

    /* Many short-lived pools: creation and teardown do not leak or hang. */
    int ok = 1;
    for (int i = 0; i < 50 && ok; i++) {
        lm_pool *p = lm_pool_create(1 + i % 4);
        ok = p != NULL;
        if (p) run_and_check(p, 1 + i % 4, 3);
        lm_pool_free(&p);
    }
    CHECK(ok, "repeated create/free failed");

    lm_pool *def = lm_pool_create(0);
    CHECK(def && lm_pool_size(def) == loom_cpu_count(), "default size %d != cpu count %d",
          def ? lm_pool_size(def) : -1, loom_cpu_count());
    lm_pool_free(&def);
    lm_pool_free(&def);  /* freeing NULL is a no-op */
    lm_pool_free(NULL);

    return finish();
}

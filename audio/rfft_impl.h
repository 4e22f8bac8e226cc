/* Plan of lm_rfft, shared by rfft.c and rfft_avx512.c (not part of rfft.h's interface). */
#ifndef LM_RFFT_IMPL_H
#define LM_RFFT_IMPL_H

#define MAX_FACTORS 32
#define MAX_RADIX   64   /* larger prime factors use the (slow) direct path in chunks */

typedef struct cpx {
    float re, im;
} cpx;

struct lm_rfft {
    int    n, h;                 /* real size, complex size n/2                          */
    int    nf, f[MAX_FACTORS];   /* factors of h                                          */
    cpx   *tw;                   /* [h]  e^{-2πik/h}                                      */
    cpx   *split;                /* [h]  e^{-2πik/n} for the split step                   */
    cpx   *z, *Z;                /* [h]  work                                             */
    cpx   *tmp;                  /* [h]  generic-radix scratch                            */
    float *lanes;                /* [3h + 2][2][LM_RFFT_LANES] work of lm_rfft_*_many (64-byte aligned) */
};

#endif

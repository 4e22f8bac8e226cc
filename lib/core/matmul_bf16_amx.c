/*
 * lm_matmul in bfloat16 on AMX tiles (kernels.h: lm_matmul_bf16). Compiled with the AMX and
 * AVX-512 flags; called only when lm_cpu_caps_get()->amx_bf16 (which also means the kernel
 * granted this process the tile state).
 *
 * X is first rounded to bf16 once, by all threads (A [Mp][Kp], zero-padded to multiples of
 * 32). Then each thread takes its units of work, (LM_BF16_NC-column block of Y, share of the
 * rows): it packs the block's weight rows into the tiles' pair-interleaved layout (B: per 32
 * columns and 32-wide k step, two 16×16-pair tiles) and runs its 32-row blocks of A through
 * 2×2 accumulator tiles per 32 columns:
 *
 *     tiles 0..3  C  [16 rows][16 f32]    (rows m0/m0+16 × columns n0/n0+16)
 *     tiles 4, 5  A  [16 rows][32 bf16]   (rows m0.. and m0+16.., k0..k0+31)
 *     tiles 6, 7  B  [16 pairs][16 × 2 bf16]   (k0+2p, k0+2p+1 of columns n0.., n0+16..)
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "lib/core/kernels.h"
#include "lib/core/kernels_impl.h"

typedef struct tile_config {
    uint8_t  palette, start_row;
    uint8_t  reserved[14];
    uint16_t colsb[16];
    uint8_t  rows[16];
} tile_config;

static void tiles_start(void)
{
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette = 1;
    for (int t = 0; t < 8; t++) {
        c.rows[t] = 16;
        c.colsb[t] = 64;
    }
    _tile_loadconfig(&c);
}

/* n floats → bf16, rounded to nearest even as lm_f32_to_bf16 does. */
static void to_bf16(uint16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    for (; i < n; i++) dst[i] = lm_f32_to_bf16(src[i]);
}

/* Rows [lo, hi) of X as bf16 rows of kp values, zero-padded; rows up to a multiple of 32. */
void lm_matmul_bf16_amx_round_x(const lm_bf16_task *t, uint16_t *A, int64_t lo, int64_t hi)
{
    const int64_t M = t->n_tok, K = t->W->n_in, Kp = (K + 31) / 32 * 32;
    for (int64_t m = lo; m < hi; m++) {
        uint16_t *a = A + m * Kp;
        if (m < M) to_bf16(a, t->X + m * K, K);
        memset(a + (m < M ? K : 0), 0, (size_t)(m < M ? Kp - K : Kp) * sizeof *a);
    }
}

/* Weight rows [n0, n0 + nn) (nn <= LM_BF16_NC, the rest zero) into B: per 32-column block
 * and 32-wide k step, two tiles of 16 rows (k pairs) × 16 columns × 2. A pair of one
 * row is one 32-bit word, so a tile is a 16×16 transpose of words. */
static void pack_b(const lm_bf16_task *t, int64_t n0, int64_t nn, uint16_t *B, float *row, uint16_t *wb)
{
    const int64_t K = t->W->n_in, Kp = (K + 31) / 32 * 32;
    for (int64_t r = 0; r < LM_BF16_NC; r++) {
        uint16_t *w = wb + r * Kp;
        if (r < nn) {
            t->to_f32((const uint8_t *)t->W->data + (size_t)(n0 + r) * t->W->row_bytes, row, K);
            to_bf16(w, row, K);
            memset(w + K, 0, (size_t)(Kp - K) * sizeof *w);
        } else {
            memset(w, 0, (size_t)Kp * sizeof *w);
        }
    }
    for (int64_t cb = 0; cb < LM_BF16_NC / 16; cb++)          /* 16-column tile columns */
        for (int64_t kb = 0; kb < Kp / 32; kb++) {
            uint16_t *tile = B + ((cb / 2) * (Kp / 32) * 2 + kb * 2 + cb % 2) * 512;
            for (int p = 0; p < 16; p++)
                for (int c = 0; c < 16; c++)   /* one pair: 4 bytes (memcpy: no type punning) */
                    memcpy(tile + 2 * (p * 16 + c), wb + (cb * 16 + c) * Kp + kb * 32 + 2 * p, 4);
        }
}

void lm_matmul_bf16_amx_part(const lm_bf16_task *t, const uint16_t *A, float *scratch, int ith, int nth)
{
    const int64_t M = t->n_tok, N = t->W->n_out, K = t->W->n_in;
    const int64_t Mp = (M + 31) / 32 * 32, Kp = (K + 31) / 32 * 32;
    /* Units of work: (column block, share of the rows). With fewer column blocks than
     * threads the rows are shared too, and each thread packs the blocks it needs. */
    const int64_t n_sb = (N + LM_BF16_NC - 1) / LM_BF16_NC, m_blocks = Mp / 32;
    int64_t m_parts = (nth + n_sb - 1) / n_sb;
    if (m_parts > m_blocks) m_parts = m_blocks;
    long long u0, u1;
    lm_split(n_sb * m_parts, ith, nth, &u0, &u1);
    if (u0 >= u1) return;
    uint16_t *B = (uint16_t *)scratch;                /* [NC/32][Kp/32][2][16][32] bf16 */
    uint16_t *wb = B + LM_BF16_NC * Kp;               /* [NC][Kp] the weight rows, bf16 */
    float *row = (float *)(wb + LM_BF16_NC * Kp);     /* [K] one row as floats          */
    float *ctmp = row + K;                            /* [32][32] an edge block of Y    */
    tiles_start();
    int64_t packed = -1;
    for (int64_t u = u0; u < u1; u++) {
        const int64_t sb = u / m_parts, n00 = sb * LM_BF16_NC, nsb = N - n00 < LM_BF16_NC ? N - n00 : LM_BF16_NC;
        if (sb != packed) pack_b(t, n00, nsb, B, row, wb);
        packed = sb;
        long long mb0, mb1;
        lm_split(m_blocks, (int)(u % m_parts), (int)m_parts, &mb0, &mb1);
        for (int64_t m0 = mb0 * 32; m0 < mb1 * 32; m0 += 32)   /* A's 32 rows stay in cache for the blocks */
            for (int64_t nb = 0; nb < (nsb + 31) / 32; nb++) {
                const uint16_t *b = B + nb * (Kp / 32) * 2 * 512;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int64_t kb = 0; kb < Kp / 32; kb++) {
                    _tile_loadd(4, A + m0 * Kp + kb * 32, Kp * 2);
                    _tile_loadd(5, A + (m0 + 16) * Kp + kb * 32, Kp * 2);
                    _tile_loadd(6, b + kb * 2 * 512, 64);
                    _tile_loadd(7, b + (kb * 2 + 1) * 512, 64);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                const int64_t n0 = n00 + nb * 32, nn = N - n0 < 32 ? N - n0 : 32, mm = M - m0 < 32 ? M - m0 : 32;
                if (mm == 32 && nn == 32) {   /* the whole block lands in Y */
                    float *y = t->Y + m0 * N + n0;
                    _tile_stored(0, y, N * 4);
                    _tile_stored(1, y + 16, N * 4);
                    _tile_stored(2, y + 16 * N, N * 4);
                    _tile_stored(3, y + 16 * N + 16, N * 4);
                    continue;
                }
                _tile_stored(0, ctmp, 128);
                _tile_stored(1, ctmp + 16, 128);
                _tile_stored(2, ctmp + 16 * 32, 128);
                _tile_stored(3, ctmp + 16 * 32 + 16, 128);
                for (int64_t r = 0; r < mm; r++)
                    memcpy(t->Y + (m0 + r) * N + n0, ctmp + r * 32, (size_t)nn * sizeof(float));
            }
    }
    _tile_release();
}

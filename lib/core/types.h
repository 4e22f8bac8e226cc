/* Tensor element types: sizes, block layouts and conversions (ggml-compatible). */
#ifndef LM_TYPES_H
#define LM_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "include/loom.h"

typedef loom_type lm_type;

#define LM_QK8_0 32
/* ggml's block_q8_0: value i = d * qs[i]. 34 bytes per 32 values. */
typedef struct {
    uint16_t d;           /* f16 scale */
    int8_t   qs[LM_QK8_0];
} lm_block_q8_0;

/* 1 if loom computes with this type id (F32, F16, BF16, Q8_0). */
int lm_type_supported(int type);
/* Values per block (1 for float types, 32 for Q8_0); 0 if unsupported. */
int64_t lm_type_block_len(int type);
/* Bytes per block; 0 if unsupported. */
size_t lm_type_block_bytes(int type);
/* Bytes of a row of n values; 0 if the type is unsupported or n is not a whole number of
 * blocks. Callers check overflow of n against their own limits first. */
size_t lm_row_bytes(int type, int64_t n);

float    lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);      /* round to nearest even, like ggml */
float    lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f);     /* round to nearest even, NaN kept quiet */

/* Convert n values (n a multiple of the block length) between a typed row and floats. */
void lm_row_to_f32(int type, const void *src, float *dst, int64_t n);
void lm_row_from_f32(int type, const float *src, void *dst, int64_t n);

#endif

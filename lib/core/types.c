/* Element types: sizes and conversions, bit-compatible with ggml. */
#include "lib/core/types.h"

#include <math.h>
#include <string.h>

const char *loom_type_name(int type)
{
    switch (type) {
    case LOOM_TYPE_F32:  return "f32";
    case LOOM_TYPE_F16:  return "f16";
    case LOOM_TYPE_Q8_0: return "q8_0";
    case LOOM_TYPE_BF16: return "bf16";
    default:             return "?";
    }
}

int lm_type_supported(int type)
{
    return type == LOOM_TYPE_F32 || type == LOOM_TYPE_F16 || type == LOOM_TYPE_Q8_0 ||
           type == LOOM_TYPE_BF16;
}

int64_t lm_type_block_len(int type)
{
    if (!lm_type_supported(type)) return 0;
    return type == LOOM_TYPE_Q8_0 ? LM_QK8_0 : 1;
}

size_t lm_type_block_bytes(int type)
{
    switch (type) {
    case LOOM_TYPE_F32:  return 4;
    case LOOM_TYPE_F16:
    case LOOM_TYPE_BF16: return 2;
    case LOOM_TYPE_Q8_0: return sizeof(lm_block_q8_0);
    default:             return 0;
    }
}

size_t lm_row_bytes(int type, int64_t n)
{
    int64_t bl = lm_type_block_len(type);
    if (bl == 0 || n < 0 || n % bl) return 0;
    return (size_t)(n / bl) * lm_type_block_bytes(type);
}

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float lm_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0) {                      /* zero or subnormal: man · 2^-24 */
        float f = (float)man * 5.9604644775390625e-8f;
        return sign ? -f : f;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t lm_f32_to_f16(float f)
{
    /* Round to nearest even via float arithmetic (the method ggml's scalar path uses). */
    const float scale_to_inf = 0x1.0p+112f, scale_to_zero = 0x1.0p-110f;
    float base = (fabsf(f) * scale_to_inf) * scale_to_zero;
    uint32_t w = f32_bits(f), shl1_w = w + w, sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xff000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = bits_f32((bias >> 1) + 0x07800000u) + base;
    uint32_t bits = f32_bits(base);
    uint32_t exp_bits = (bits >> 13) & 0x00007c00u, man_bits = bits & 0x00000fffu;
    uint32_t nonsign = exp_bits + man_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xff000000u ? 0x7e00u : nonsign));
}

float lm_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t lm_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64); /* quiet NaN */
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

void lm_row_to_f32(int type, const void *src, float *dst, int64_t n)
{
    switch (type) {
    case LOOM_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case LOOM_TYPE_F16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = lm_f16_to_f32(s[i]);
        break;
    }
    case LOOM_TYPE_BF16: {
        const uint16_t *s = src;
        for (int64_t i = 0; i < n; i++) dst[i] = lm_bf16_to_f32(s[i]);
        break;
    }
    case LOOM_TYPE_Q8_0: {
        const lm_block_q8_0 *b = src;
        for (int64_t i = 0; i < n / LM_QK8_0; i++) {
            float d = lm_f16_to_f32(b[i].d);
            for (int j = 0; j < LM_QK8_0; j++) dst[i * LM_QK8_0 + j] = d * b[i].qs[j];
        }
        break;
    }
    default:
        break;
    }
}

/* (int8_t)roundf(v), as ggml computes it on x86, inline: ties go away from zero, as roundf
 * rounds them (v − trunc(v) is exact here); values past int8 wrap to their low byte and NaN
 * or |v| >= 2^31 (an inf or NaN weight, or 1/d overflowing for a subnormal block) give 0, as
 * x86's float-to-int conversion does, without the cast's undefined behaviour. In a sane block
 * |v| <= 127. */
static inline int8_t round_q8(float v)
{
    if (!(fabsf(v) < 2147483648.0f)) return 0;
    int i = (int)v;
    const float f = v - (float)i;
    i += (f >= 0.5f) - (f <= -0.5f);
    return (int8_t)(uint8_t)(unsigned)i;
}

void lm_row_from_f32(int type, const float *src, void *dst, int64_t n)
{
    switch (type) {
    case LOOM_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        break;
    case LOOM_TYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = lm_f32_to_f16(src[i]);
        break;
    }
    case LOOM_TYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = lm_f32_to_bf16(src[i]);
        break;
    }
    case LOOM_TYPE_Q8_0: {  /* ggml's quantize_row_q8_0_ref */
        lm_block_q8_0 *b = dst;
        for (int64_t i = 0; i < n / LM_QK8_0; i++) {
            const float *x = src + i * LM_QK8_0;
            float amax = 0.0f;
            for (int j = 0; j < LM_QK8_0; j++) {   /* fmaxf(amax, |x|): NaNs are skipped */
                const float a = fabsf(x[j]);
                if (a > amax) amax = a;
            }
            float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
            b[i].d = lm_f32_to_f16(d);
            for (int j = 0; j < LM_QK8_0; j++) b[i].qs[j] = round_q8(x[j] * id);
        }
        break;
    }
    default:
        break;
    }
}

/*
 * loom.h — unified multimodal Mixture-of-Experts models in C.
 *
 * This is loom's only public header. Everything else in the tree is internal.
 *
 * Usage (inspect a model file):
 *
 *     loom_file *f = NULL;
 *     char err[256];
 *     if (loom_file_open("model.gguf", &f, err, sizeof err) < 0) {
 *         fprintf(stderr, "%s\n", err);
 *         return 1;
 *     }
 *     for (int64_t i = 0; i < loom_file_n_tensors(f); i++) {
 *         loom_tensor_info t;
 *         loom_file_tensor(f, i, &t);
 *         printf("%s %s\n", t.name, loom_type_name(t.type));
 *     }
 *     loom_file_close(&f);            // sets f to NULL
 *
 * Conventions (the same everywhere in this header):
 *   - Fallible calls return an int: 0 (LOOM_OK) or a negative loom_status.
 *     loom_status_str() names a status; handles keep their last error message.
 *   - Objects come in create/free pairs; free(&p) releases and sets p to NULL;
 *     freeing NULL is a no-op.
 *   - Parameters are plain structs passed by value, filled from *_default_params().
 *   - The library never prints, exits or aborts: it logs through loom_log_set().
 *   - Returned `const char *` strings are owned by the object that returned them and stay
 *     valid until it is freed, unless documented otherwise.
 */
#ifndef LOOM_H
#define LOOM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LOOM_VERSION_MAJOR 0
#define LOOM_VERSION_MINOR 1
#define LOOM_VERSION_PATCH 0

/* "0.1.0" */
const char *loom_version(void);

/* ---------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------- */
typedef enum loom_status {
    LOOM_OK                = 0,
    LOOM_ERR_INVALID_ARG   = -1,  /* a parameter or option is out of range              */
    LOOM_ERR_NO_MEMORY     = -2,  /* an allocation failed                                */
    LOOM_ERR_IO            = -3,  /* open/read/write/mmap failed                         */
    LOOM_ERR_FORMAT        = -4,  /* a file is malformed (bad magic, truncated, …)       */
    LOOM_ERR_UNSUPPORTED   = -5,  /* well-formed, but a feature loom does not implement   */
    LOOM_ERR_NOT_FOUND     = -6,  /* a required key or tensor is missing                 */
    LOOM_ERR_TYPE          = -7,  /* a key or tensor has the wrong type or shape         */
    LOOM_ERR_LIMIT         = -8,  /* input exceeds a configured limit                    */
    LOOM_ERR_CONTEXT_FULL  = -9,  /* the session's context has no room left              */
    LOOM_ERR_ABORTED       = -10, /* a callback asked to stop                            */
} loom_status;

/* "invalid argument", "malformed file", …; never NULL. */
const char *loom_status_str(int status);

/* ---------------------------------------------------------------------------------------
 * Logging: the library's only channel to the outside. Default: no output.
 * ------------------------------------------------------------------------------------- */
typedef enum loom_log_level {
    LOOM_LOG_ERROR = 0,
    LOOM_LOG_WARN  = 1,
    LOOM_LOG_INFO  = 2,
    LOOM_LOG_DEBUG = 3,
} loom_log_level;

typedef void (*loom_log_fn)(loom_log_level level, const char *message, void *user_data);

/* Install a process-wide log callback (NULL silences). Messages have no trailing newline. */
void loom_log_set(loom_log_fn fn, void *user_data);

/* ---------------------------------------------------------------------------------------
 * Tensor element types. The numbers are ggml's, so GGUF files interchange with llama.cpp.
 * ------------------------------------------------------------------------------------- */
typedef enum loom_type {
    LOOM_TYPE_F32  = 0,
    LOOM_TYPE_F16  = 1,
    LOOM_TYPE_Q8_0 = 8,   /* blocks of 32: one f16 scale + 32 int8 */
    LOOM_TYPE_BF16 = 30,
} loom_type;

/* "f32", "f16", "q8_0", "bf16"; "?" for an unknown id. */
const char *loom_type_name(int type);

/* ---------------------------------------------------------------------------------------
 * Model files (GGUF v3): read-only inspection. Used by `loom info`.
 * The file is mmapped; nothing is trusted: every count, length, dimension and offset is
 * checked against the file size before use, so a malformed file is an error, not a crash.
 * ------------------------------------------------------------------------------------- */
typedef struct loom_file loom_file;

typedef struct loom_tensor_info {
    const char *name;     /* owned by the loom_file                                  */
    int         type;     /* loom_type, or another ggml id loom cannot compute with  */
    int         n_dims;   /* 1..4                                                     */
    int64_t     ne[4];    /* ggml order: ne[0] is the fastest-varying dimension      */
    uint64_t    offset;   /* byte offset from the start of the data section           */
    uint64_t    n_bytes;  /* size of the tensor's data; 0 for a type loom cannot size  */
} loom_tensor_info;

/* Open and validate `path`. On failure *out is NULL and `err` (if given) holds a message
 * that names the problem. */
int  loom_file_open(const char *path, loom_file **out, char *err, size_t err_size);
void loom_file_close(loom_file **f);

uint32_t    loom_file_version(const loom_file *f);
uint32_t    loom_file_alignment(const loom_file *f);
int64_t     loom_file_n_kv(const loom_file *f);
const char *loom_file_kv_key(const loom_file *f, int64_t i);
/* Value type of entry i: "u8" … "f64", "bool", "string", "array"; "?" if i is out of range. */
const char *loom_file_kv_type(const loom_file *f, int64_t i);
/* The value of entry i rendered as text (arrays show their type, count and first items)
 * into buf; returns buf. */
const char *loom_file_kv_str(const loom_file *f, int64_t i, char *buf, size_t buf_size);
int64_t     loom_file_n_tensors(const loom_file *f);
/* Fill *out for tensor i (0 ≤ i < loom_file_n_tensors); LOOM_ERR_INVALID_ARG otherwise. */
int         loom_file_tensor(const loom_file *f, int64_t i, loom_tensor_info *out);

/* ---------------------------------------------------------------------------------------
 * Decoder: models, tokens and sessions (issue: MoE decoder)
 * ------------------------------------------------------------------------------------- */

/* (decoder API goes here) */


/* ---------------------------------------------------------------------------------------
 * Images (issue: vision)
 * ------------------------------------------------------------------------------------- */

/* (image API goes here) */


/* ---------------------------------------------------------------------------------------
 * Audio (issue: audio)
 * ------------------------------------------------------------------------------------- */

/* (audio API goes here) */


/* ---------------------------------------------------------------------------------------
 * Media codecs (issue: generation): the VQ image codec and the audio codec that turn image /
 * audio tokens into pixels / PCM and back. File layouts: docs/FORMAT.md. A codec handle
 * serves one caller at a time; its scratch is planned when it is opened (audio: grown to the
 * longest input seen), so decode/encode calls do not allocate.
 * ------------------------------------------------------------------------------------- */
typedef struct loom_codec_params {
    int n_threads;   /* worker threads; <= 0 means loom_cpu_count() */
} loom_codec_params;

loom_codec_params loom_codec_default_params(void);

/* VQ image codec: a square RGB image of image_size² pixels ↔ a grid² array of codes. */
typedef struct loom_vq loom_vq;

/* Load a "loom-vq" GGUF. Every key and tensor is checked; on failure *out is NULL and `err`
 * (if given) names the offending key or tensor. */
int  loom_vq_open(const char *path, loom_codec_params params, loom_vq **out, char *err, size_t err_size);
void loom_vq_free(loom_vq **vq);
int  loom_vq_image_size(const loom_vq *vq);      /* pixels per side (0 for NULL)   */
int  loom_vq_grid(const loom_vq *vq);            /* codes per side                  */
int  loom_vq_codebook_size(const loom_vq *vq);   /* codes are in [0, codebook_size) */
/* codes [grid][grid] → rgb [image_size][image_size][3] (8-bit, row-major, RGB). */
int  loom_vq_decode(loom_vq *vq, const int32_t *codes, uint8_t *rgb);
/* The same, stopping before the pixel mapping: x [3][image_size][image_size], ≈ [-1, 1]. */
int  loom_vq_decode_f32(loom_vq *vq, const int32_t *codes, float *x);
/* rgb [image_size][image_size][3] → codes [grid][grid]. */
int  loom_vq_encode(loom_vq *vq, const uint8_t *rgb, int32_t *codes);
/* Message for the last failed call on this handle ("" if none). */
const char *loom_vq_error(const loom_vq *vq);

/* Audio codec: mono float PCM at loom_audio_codec_sample_rate() (16 kHz) ↔ 1-D codes. */
typedef struct loom_audio_codec loom_audio_codec;

int   loom_audio_codec_open(const char *path, loom_codec_params params, loom_audio_codec **out, char *err,
                            size_t err_size);
void  loom_audio_codec_free(loom_audio_codec **ac);
int   loom_audio_codec_sample_rate(const loom_audio_codec *ac);
int   loom_audio_codec_samples_per_code(const loom_audio_codec *ac);   /* 640 in loom-tiny */
float loom_audio_codec_codes_per_second(const loom_audio_codec *ac);   /* 25 in loom-tiny  */
int   loom_audio_codec_codebook_size(const loom_audio_codec *ac);      /* codes are in [0, K) */
/* codes [n_codes] → pcm [n_codes · samples_per_code], peak at most 0.9. */
int   loom_audio_codec_decode(loom_audio_codec *ac, const int32_t *codes, int64_t n_codes, float *pcm);
/* Codes that n_samples of PCM encode to (0 for NULL). */
int64_t loom_audio_codec_n_codes(const loom_audio_codec *ac, int64_t n_samples);
/* pcm [n_samples] (more than 200 samples) → codes [loom_audio_codec_n_codes(ac, n_samples)]. */
int   loom_audio_codec_encode(loom_audio_codec *ac, const float *pcm, int64_t n_samples, int32_t *codes);
const char *loom_audio_codec_error(const loom_audio_codec *ac);


/* ---------------------------------------------------------------------------------------
 * Threads and CPU
 * ------------------------------------------------------------------------------------- */
/* Number of CPUs available to this process (>= 1). */
int loom_cpu_count(void);
/* Instruction sets the kernels use on this CPU, e.g. "avx512 avx512_bf16 avx512_vnni avx2 fma f16c". */
const char *loom_cpu_features(void);

#ifdef __cplusplus
}
#endif
#endif /* LOOM_H */

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

/* An RGB8 image. Pixels are row-major [height][width][3], tightly packed, owned by the image;
 * loom_image_free(&img) releases them and zeroes the struct (a zeroed struct is "empty"). */
typedef struct loom_image {
    int      width;
    int      height;
    uint8_t *rgb;         /* [height][width][3], owned */
} loom_image;

/* How transparency is turned into RGB. */
typedef enum loom_alpha_mode {
    LOOM_ALPHA_COMPOSITE = 0, /* blend over `background` (what a viewer shows; default)     */
    LOOM_ALPHA_DROP      = 1, /* keep the stored colour, ignore alpha (PIL's convert("RGB")) */
} loom_alpha_mode;

typedef struct loom_image_params {
    int64_t max_pixels;       /* width*height above this is refused (LOOM_ERR_LIMIT) before
                                 any pixel memory is allocated. Default (and 0) 64 Mi pixels;
                                 files larger than max_pixels*8 + 16 MiB are refused too.   */
    int     alpha;            /* loom_alpha_mode                                             */
    uint8_t background[3];    /* RGB under transparent pixels; default white                 */
    int     apply_orientation;/* 1: rotate/flip JPEGs by their EXIF orientation (default)    */
} loom_image_params;

loom_image_params loom_image_default_params(void);

/* Decode a PNG or JPEG (format from the magic bytes, never the file name) to RGB8.
 * PNG: gray, gray+alpha, palette (+tRNS), RGB, RGBA, 1..16 bits, interlaced.
 * JPEG: baseline, progressive, grayscale, CMYK/YCCK (Adobe-inverted convention), EXIF
 * orientation 1..8. Any libjpeg warning (e.g. a truncated file) is an error.
 * On failure *out is empty and err names the problem. */
int loom_image_load(const char *path, loom_image_params params, loom_image *out,
                    char *err, size_t err_size);
int loom_image_decode(const void *data, size_t size, loom_image_params params, loom_image *out,
                      char *err, size_t err_size);
/* Copy an RGB8 buffer (`stride` bytes between rows; 0 = width*3) into a new image. */
int loom_image_from_rgb(const uint8_t *rgb, int width, int height, size_t stride,
                        loom_image *out, char *err, size_t err_size);
/* Write an 8-bit RGB PNG with tEXt chunks from `text`, a NULL-terminated list of
 * key, value, key, value, …, NULL (may be NULL). Keys: 1..79 Latin-1 characters.
 * Written to a temporary file in the same directory, then renamed over `path`, so readers
 * never see a partial file. */
int loom_image_save_png(const loom_image *img, const char *path, const char *const *text,
                        char *err, size_t err_size);
/* Read the tEXt/zTXt/iTXt chunks of a PNG file: *text becomes a NULL-terminated
 * key, value, … list in one allocation (free with free()); *n_pairs their count. */
int loom_png_read_text(const char *path, char ***text, int *n_pairs, char *err, size_t err_size);
void loom_image_free(loom_image *img);


/* ---------------------------------------------------------------------------------------
 * Audio (issue: audio)
 * ------------------------------------------------------------------------------------- */

/* Decoding reads anything FFmpeg reads (WAV, FLAC, MP3, Ogg/Opus, M4A/AAC, the audio track
 * of a video file, …) and yields mono float samples in [-1, 1] at params.sample_rate (the
 * channel mean after resampling). "-" reads standard input. Long inputs stream through in
 * bounded memory with loom_audio_reader; loom_audio_load is the whole-file shortcut.
 *
 *     float *pcm = NULL; size_t n = 0; char err[256];
 *     loom_audio_params ap = loom_audio_default_params();
 *     if (loom_audio_load("talk.mp3", &ap, &pcm, &n, err, sizeof err) < 0) { puts(err); … }
 *     …
 *     loom_audio_pcm_free(&pcm);
 */
typedef struct loom_audio_params {
    int    sample_rate;   /* output rate in Hz (default 16000, the encoders' rate)          */
    double max_seconds;   /* longer input is an error, LOOM_ERR_LIMIT (default 4 h)          */
    int    max_channels;  /* inputs with more channels are refused (default 32)             */
} loom_audio_params;      /* input sample rates outside 1000..768000 Hz are always refused */

loom_audio_params loom_audio_default_params(void);

/* Decode a whole file ("-" = stdin). *pcm (n_samples floats) is owned by the caller and
 * released with loom_audio_pcm_free(). An input without samples is an error. params may be
 * NULL for the defaults. */
int  loom_audio_load(const char *path, const loom_audio_params *params, float **pcm,
                     size_t *n_samples, char *err, size_t err_size);
void loom_audio_pcm_free(float **pcm);

/* Streaming: read in chunks; *got == 0 marks the end. */
typedef struct loom_audio_reader loom_audio_reader;
int  loom_audio_reader_open(const char *path, const loom_audio_params *params,
                            loom_audio_reader **out, char *err, size_t err_size);
/* 0 or a negative status; the message is kept by the reader (loom_audio_reader_error). */
int  loom_audio_reader_read(loom_audio_reader *r, float *buf, size_t n, size_t *got);
const char *loom_audio_reader_error(const loom_audio_reader *r);   /* "" if none */
/* Input sample rate, channel count and codec name as found in the file. */
int  loom_audio_reader_input(const loom_audio_reader *r, int *rate, int *channels,
                             const char **codec);
void loom_audio_reader_close(loom_audio_reader **r);

/* Write interleaved pcm [n_frames][channels] as WAV (16-bit PCM, clipped to [-1, 1], or
 * 32-bit float). The file appears atomically: written under a temporary name, renamed. */
typedef enum loom_wav_format { LOOM_WAV_PCM16 = 0, LOOM_WAV_F32 = 1 } loom_wav_format;
int loom_audio_save_wav(const char *path, const float *pcm, size_t n_frames, int channels,
                        int sample_rate, loom_wav_format format, char *err, size_t err_size);


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

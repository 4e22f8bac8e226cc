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
 * A complete program that captions a picture (model, media encoders, prompt, session,
 * generation) is examples/simple_caption.c, about 60 lines.
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

/* Progress: `done` units (sampled codes, converted tensors) of at most `total`. */
typedef void (*loom_progress_fn)(int64_t done, int64_t total, void *user_data);

/* ---------------------------------------------------------------------------------------
 * Model files (GGUF v3): read-only inspection (`loom info`) and type conversion
 * (`loom quantize`).
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

/* Write a copy of a model file (decoder, media encoders, codecs) with its weight matrices
 * in another type:
 *
 *     loom_quantize_params qp = loom_quantize_default_params();   // q8_0
 *     if (loom_quantize("model-f16.gguf", "model-q8_0.gguf", qp, NULL, err, sizeof err) < 0) …
 *
 * A tensor is converted, by llama-quantize's rules, when it is a `…weight` of 2 or more
 * dimensions whose rows are whole blocks of the new type, and not a norm, a position embedding
 * or a MoE router (`…ffn_gate_inp.weight`: its expert choices flip on small roundings); the
 * rest (biases, convolution kernels with short rows) are copied byte for byte. Q8_0 rounding is ggml's
 * quantize_row_q8_0_ref. Every key is copied as it is, except `general.file_type`, set to
 * llama.cpp's number for the type (0 f32, 1 f16, 7 q8_0, 32 bf16), and
 * `general.quantization_version` (2), as llama-quantize sets them: its outputs of the same
 * files have the same tensors, byte for byte (tools/parity/quantize). The output is written
 * atomically (a failure leaves no partial file); it may not be the input file itself.
 * Memory: the mapped input plus the largest converted tensor. The same output at any thread
 * count. Inputs with types loom cannot
 * read (llama.cpp's k-quants, …) are LOOM_ERR_UNSUPPORTED, naming the tensor. */
typedef struct loom_quantize_params {
    int32_t          type;          /* LOOM_TYPE_Q8_0 (default), _F16, _BF16 or _F32       */
    int32_t          n_threads;     /* 0 = all CPUs                                        */
    loom_progress_fn on_progress;   /* after each converted tensor; may be NULL            */
    void            *user_data;
} loom_quantize_params;

typedef struct loom_quantize_stats {
    int64_t  n_tensors, n_converted;
    uint64_t bytes_in, bytes_out;   /* tensor data, without metadata and padding             */
} loom_quantize_stats;

loom_quantize_params loom_quantize_default_params(void);
/* stats may be NULL. */
int loom_quantize(const char *in_path, const char *out_path, loom_quantize_params params,
                  loom_quantize_stats *stats, char *err, size_t err_size);

/* ---------------------------------------------------------------------------------------
 * Decoder: models, tokens and sessions (issue: MoE decoder)
 * ------------------------------------------------------------------------------------- */

/* A decoder model (llama.cpp `deepseek2` GGUF: DeepSeek-V2/V3-style MoE with multi-head
 * latent attention) plus its tokenizer when the file has a `gpt2` one. Read-only after
 * load: one model can serve many sessions, also from several threads (one thread per
 * session at a time). Weights stay in the file's mapping; nothing is copied.
 *
 *     loom_model *m = NULL;
 *     if (loom_model_load("model.gguf", loom_model_default_params(), &m, err, sizeof err) < 0) …
 *     loom_session *s = NULL;
 *     loom_session_create(m, loom_session_default_params(), &s, err, sizeof err);
 *     int32_t toks[256];
 *     int64_t n = loom_tokenize(m, "Hello", 5, 1, 0, toks, 256);
 *     loom_generate_params gp = loom_generate_default_params();
 *     gp.on_token = print_piece;                      // streams text
 *     loom_session_generate(s, toks, n, gp, NULL);
 *     loom_session_free(&s);
 *     loom_model_free(&m);
 */
typedef struct loom_model   loom_model;
typedef struct loom_session loom_session;

typedef struct loom_model_params {
    int32_t n_threads;     /* threads for work at load time; 0 = all CPUs               */
    int32_t load_tokenizer;/* 1: load the file's gpt2 tokenizer if present (default)    */
} loom_model_params;

loom_model_params loom_model_default_params(void);

/* Load `path`. On failure *out is NULL and err (if given) names the missing key, the
 * tensor with the wrong shape, … */
int  loom_model_load(const char *path, loom_model_params params, loom_model **out,
                     char *err, size_t err_size);
void loom_model_free(loom_model **m);

int32_t loom_model_n_vocab(const loom_model *m);
int32_t loom_model_n_embd(const loom_model *m);     /* width of loom_session_append_embd rows */
int32_t loom_model_n_layer(const loom_model *m);
int32_t loom_model_n_ctx_train(const loom_model *m);
/* Bytes of weights one decode step reads (shared weights + the used experts). */
uint64_t loom_model_active_bytes(const loom_model *m);
/* "deepseek2 · 12 layers · 64 experts (top 6) · q8_0" — owned by the model. */
const char *loom_model_desc(const loom_model *m);

/* --- tokens (need the file's tokenizer; otherwise LOOM_ERR_UNSUPPORTED) --------------- */
int     loom_model_has_tokenizer(const loom_model *m);
int32_t loom_token_bos(const loom_model *m);   /* -1 if none */
int32_t loom_token_eos(const loom_model *m);   /* -1 if none */
int32_t loom_token_find(const loom_model *m, const char *text);   /* exact token text, or -1 */
/* Encode UTF-8 text (invalid bytes become byte tokens). add_bos: prepend BOS when the
 * vocabulary wants one; parse_special: control-token texts become those tokens. Writes up
 * to max_tokens ids and returns how many the whole text needs (call again with a larger
 * buffer if that is more), or a negative loom_status. */
int64_t loom_tokenize(const loom_model *m, const char *text, size_t len, int add_bos,
                      int parse_special, int32_t *out, int64_t max_tokens);
/* The bytes of one token; returns the byte count (may exceed size: nothing is written past
 * size; not NUL-terminated) or a negative status. Control tokens print only if special. */
int     loom_token_to_piece(const loom_model *m, int32_t token, int special, char *buf, size_t size);
/* Decode n tokens into buf (NUL-terminated, truncated to size); returns the full length. */
int64_t loom_detokenize(const loom_model *m, const int32_t *tokens, int64_t n, int special,
                        char *buf, size_t size);

/* --- sessions: a KV cache, the token history and sampler state ------------------------ */
typedef struct loom_sampler_params {
    float    temperature;       /* <= 0: greedy                                           */
    int32_t  top_k;             /* <= 0: off                                              */
    float    top_p;             /* >= 1: off                                              */
    float    min_p;             /* <= 0: off                                              */
    float    repeat_penalty;    /* 1: off (divides positive logits, multiplies negative)  */
    float    presence_penalty;  /* 0: off                                                 */
    float    frequency_penalty; /* 0: off                                                 */
    int32_t  penalty_last_n;    /* how many recent tokens the penalties see               */
    uint64_t seed;              /* same seed, same output                                 */
} loom_sampler_params;

/* How the large matrix products (a prompt's prefill, the media encoders; not the token-by-
 * token decode, which memory bandwidth bounds) are computed. */
typedef enum loom_matmul_precision {
    LOOM_MATMUL_F32  = 0,   /* float32 (default; what the parity tests hold to)              */
    LOOM_MATMUL_BF16 = 1,   /* inputs rounded to bfloat16, exact products summed in float32,
                               on AMX tiles: ~3x F32's rate on CPUs with AMX (loom_cpu_features
                               lists amx_bf16; elsewhere F32 is used). Values differ from F32's
                               from about the third significant digit                         */
} loom_matmul_precision;

typedef struct loom_session_params {
    int32_t n_ctx;              /* positions the KV cache holds (0 = min(4096, n_ctx_train)) */
    int32_t n_batch;            /* most tokens one forward pass processes (prefill chunk) */
    int32_t n_threads;          /* 0 = all CPUs                                           */
    int32_t matmul;             /* loom_matmul_precision of the prefill (default F32)     */
    loom_sampler_params sampler;
} loom_session_params;

loom_session_params loom_session_default_params(void);  /* greedy sampling, 512-token batches */

/* Plan and allocate everything the session will need (cache for n_ctx, buffers for n_batch). */
int  loom_session_create(const loom_model *m, loom_session_params params, loom_session **out,
                         char *err, size_t err_size);
void loom_session_free(loom_session **s);
/* Message of the last failed call on this session ("" if none). Owned by the session. */
const char *loom_session_error(const loom_session *s);
int32_t loom_session_n_ctx(const loom_session *s);
int32_t loom_session_n_past(const loom_session *s);     /* positions in the cache */

/* Polled between steps; nonzero aborts with LOOM_ERR_ABORTED. */
typedef int (*loom_abort_fn)(void *user_data);
/* Abort hooks for every forward pass of this session (prompt, append, decode, and the
 * prompt and steps of generate): fn(user_data) and *flag (either may be NULL) are polled
 * before each n_batch chunk and between decoder layers; nonzero stops the call with
 * LOOM_ERR_ABORTED. The cache then keeps the chunks computed in full (so repeating the
 * same loom_session_prompt resumes where it stopped), their rows of all_logits are
 * written, and loom_session_logits is NULL until the next successful call. */
void loom_session_set_abort(loom_session *s, loom_abort_fn fn, const volatile int *flag, void *user_data);

/* Make the context exactly prompt[0..n): the longest prefix shared with the cached tokens
 * is kept and only the rest is computed (at least the last token, for its logits).
 * all_logits: NULL, or [n][n_vocab] to receive every position's logits (then nothing is
 * reused). Too long → LOOM_ERR_CONTEXT_FULL, with the session unchanged. */
int loom_session_prompt(loom_session *s, const int32_t *prompt, int64_t n, float *all_logits);
/* Append tokens / embeddings after the cached context. embd is [n][n_embd] (what media
 * encoders produce). all_logits as above, for the appended positions. */
int loom_session_append(loom_session *s, const int32_t *tokens, int64_t n, float *all_logits);
int loom_session_append_embd(loom_session *s, const float *embd, int64_t n, float *all_logits);
/* Append one token and compute the next-token logits. */
int loom_session_decode(loom_session *s, int32_t token);
/* loom_session_decode on two sessions of the same model in one decoder step (e.g. the
 * conditional and unconditional sequences of classifier-free guidance): both rows go
 * through the decoder as one batch of two, so each weight matrix is read once for both;
 * each session keeps its own cache (lengths may differ), history and logits, which equal
 * what two loom_session_decode calls give. The stacked rows use the scratch of a session
 * created with n_batch >= 2 (if neither was, it runs the two loom_session_decode calls).
 * Either session's abort hooks stop the step (LOOM_ERR_ABORTED: neither advances, no
 * logits); other errors of the batched step leave both unchanged. The error message is
 * on both sessions. */
int loom_session_decode_pair(loom_session *a, int32_t ta, loom_session *b, int32_t tb);
/* Logits after the last computed position [n_vocab]; owned by the session, valid until
 * its next call. NULL before anything was computed. */
const float *loom_session_logits(const loom_session *s);
/* How likely the model finds tokens[0..n) as the continuation of the cached context
 * (teacher forcing): *logprob = sum over i of log p(tokens[i] | context, tokens[0..i)),
 * natural log, from the raw logits (no temperature, penalties, bias or mask). The tokens
 * are appended to the session. Needs logits after the context (a prompt, append or decode
 * call first), else LOOM_ERR_INVALID_ARG. Used to rank answers or generated media (e.g.
 * `loom imagine --best-of N` scores the prompt as the caption of each candidate). */
int loom_session_score(loom_session *s, const int32_t *tokens, int64_t n, double *logprob);

/* Perplexity of text, as llama.cpp's `llama-perplexity` measures it, so the two numbers
 * compare directly (and a quantized file can be compared with its original): tokens[0..n)
 * is cut into consecutive chunks of n_ctx tokens (a shorter rest is left out); each chunk is
 * computed from an empty cache with its first token replaced by BOS (when add_bos and the
 * model has one), and its second half is scored: positions j in [n_ctx/2, n_ctx − 1)
 * predicting token j + 1. ppl = exp(mean negative log-likelihood) over every scored token.
 * Uses the session's cache (cleared first and after) and abort hooks. */
typedef struct loom_perplexity_params {
    int32_t n_ctx;      /* tokens per chunk: 4 .. the session's n_ctx (default 512)        */
    int32_t n_chunks;   /* compute at most this many chunks (0, the default: all of them)   */
    int32_t add_bos;    /* 1 (default): each chunk starts with BOS, as llama.cpp's tool does */
    /* After each chunk: chunk (1-based) of n_chunks and the estimate so far. Nonzero stops
     * with LOOM_ERR_ABORTED (the result then holds the chunks computed). May be NULL. */
    int   (*on_chunk)(int32_t chunk, int32_t n_chunks, double ppl, void *user_data);
    void   *user_data;
    /* NULL (default), or a session of another model with the same vocabulary (e.g. the
     * original of a quantized file): each chunk also runs through it, and the result says
     * how far this model's next-token distributions are from base's (llama.cpp's
     * --kl-divergence numbers). Its cache is cleared too. */
    loom_session *base;
} loom_perplexity_params;
typedef struct loom_perplexity_result {
    double  ppl;        /* exp(nll)                                                          */
    double  ppl_err;    /* standard error of ppl: ppl · sqrt(var(NLL per token) / (n_scored − 1)) */
    double  nll;        /* mean negative log-likelihood per scored token, natural log         */
    int64_t n_scored;   /* tokens scored: n_chunks · (n_ctx − 1 − n_ctx/2)                   */
    int32_t n_chunks;   /* chunks computed                                                  */
    /* with params.base, over the same scored positions (else 0): */
    double  base_ppl;   /* base's perplexity                                                */
    double  kl_mean;    /* mean KL(base ‖ this) of the next-token distributions, nats       */
    double  kl_max;     /* the largest one                                                  */
    double  same_top;   /* fraction of positions where both rank the same token first       */
} loom_perplexity_result;
loom_perplexity_params loom_perplexity_default_params(void);
/* 0, or LOOM_ERR_INVALID_ARG (fewer than n_ctx tokens, n_ctx out of range, a token outside
 * the vocabulary: nothing computed), LOOM_ERR_ABORTED, LOOM_ERR_NO_MEMORY, the decoder's
 * errors; the message is loom_session_error's. `out` always holds the chunks completed. */
int loom_perplexity(loom_session *s, const int32_t *tokens, int64_t n, loom_perplexity_params params,
                    loom_perplexity_result *out);
/* Sample the next token from loom_session_logits with the session's sampler (the token is
 * remembered for the penalties). Negative status on error. */
int32_t loom_session_sample(loom_session *s);
/* Drop cached positions >= n_past (0 clears) and reset the sampler history if 0. */
void loom_session_truncate(loom_session *s, int32_t n_past);
/* Only tokens in [lo, hi) may be sampled until loom_session_mask_clear (media blocks). */
void loom_session_mask_range(loom_session *s, int32_t lo, int32_t hi);
void loom_session_mask_clear(loom_session *s);
/* Add `bias` (finite) to token's logit before each loom_session_sample until set back to 0
 * (llama.cpp's logit bias; applied before the penalties and the mask). Up to 64 tokens;
 * LOOM_ERR_INVALID_ARG for a token out of range or a non-finite bias, LOOM_ERR_LIMIT past 64. */
int  loom_session_logit_bias(loom_session *s, int32_t token, float bias);

/* --- generation ---------------------------------------------------------------------- */
/* Media kinds a unified model writes (see "Media generation" below). */
typedef enum loom_media_kind {
    LOOM_MEDIA_IMAGE = 0,   /* <|image|> grid² codes <|/image|>                              */
    LOOM_MEDIA_AUDIO = 1,   /* <|audio|> codes until the model closes it or the limit <|/audio|> */
    LOOM_MEDIA_VIDEO = 2,   /* <|video|> frames × (<|frame|> grid² codes) <|/video|>           */
    LOOM_MEDIA_KIND_COUNT = 3
} loom_media_kind;


typedef struct loom_media_params {
    int32_t  kind;              /* loom_media_kind                                          */
    float    cfg_scale;         /* s in l_u + s·(l_c − l_u); 0 or 1: off, no second session  */
    float    temperature;       /* <= 0: greedy (default 1)                                  */
    int32_t  top_k;             /* <= 0: off (default 0)                                     */
    uint64_t seed;              /* same seed, same codes                                     */
    int32_t  max_audio_codes;   /* audio: the block is closed after this many (default 250)   */
    int32_t  n_frames;          /* video: frames; 0 = the model's loom.video.gen_frames       */
    const char *words;          /* audio on a model with loom.audio.words: the text spoken,
                                   spelt into the block one word at a time (" word" tokens),
                                   codes drawn between them, the close only after the last
                                   word (docs/FORMAT.md); NULL: codes only. Not copied: it
                                   must outlive the call. Other models and media ignore it. */
    loom_progress_fn    on_progress;  /* may be NULL                                         */
    loom_abort_fn       should_abort; /* may be NULL; polled before each step                */
    const volatile int *abort_flag;   /* may be NULL; nonzero aborts (e.g. set by SIGINT)    */
    void               *user_data;
} loom_media_params;

/* cfg 3, temperature 1 (audio: cfg 2, temperature 0.6), top-k off, seed 0, 250 audio codes
 * (10 s at 25 codes/s). */
loom_media_params loom_media_default_params(int kind);

/* Called for each generated token with its text piece (not NUL-terminated; empty for control
 * tokens and media codes). Return nonzero to stop (not an error). */
typedef int (*loom_token_fn)(int32_t token, const char *piece, size_t piece_len, void *user_data);

/* A media block in generated text (loom_session_generate with media_blocks on). */
typedef enum loom_media_event {
    LOOM_MEDIA_BEGIN = 0,   /* after on_token got the block's open token (before any token
                               when the prompt ends inside the block); codes NULL, n_codes 0 */
    LOOM_MEDIA_END   = 1,   /* after on_token got its close token; codes: the block's codes    */
} loom_media_event;
/* kind: loom_media_kind. codes: the block's codes with the range offset removed (image and
 * video [frames][grid][grid] row-major), valid during the call only. */
typedef void (*loom_media_fn)(int event, int kind, const int32_t *codes, int64_t n_codes, void *user_data);

typedef struct loom_generate_params {
    int32_t       n_predict;    /* most tokens to generate (default 128; a media block that
                                   has opened is finished past it)                        */
    int32_t       stop_at_eos;  /* 1: stop after the end-of-sequence token (default)       */
    loom_token_fn on_token;     /* may be NULL                                             */
    loom_abort_fn should_abort; /* may be NULL                                             */
    const volatile int *abort_flag; /* may be NULL; nonzero aborts (e.g. set by SIGINT)   */
    void         *user_data;
    /* Media blocks the model opens (a model with loom.vocab.* ranges; see loom_session_generate) */
    int32_t       media_blocks; /* 1 (default): constrain them; 0: raw sampling            */
    loom_media_params media[LOOM_MEDIA_KIND_COUNT];
                                /* indexed by loom_media_kind: how that medium's codes are
                                   drawn (cfg_scale, temperature, top_k, seed,
                                   max_audio_codes, n_frames, on_progress, its own abort
                                   hooks); kind is ignored. Default
                                   loom_media_default_params(kind) for each              */
    loom_session *media_uncond; /* NULL: no guidance; else a second session of the model:
                                   for a block whose media[kind].cfg_scale is not 0 or 1
                                   it is reset to the unconditional turn and guides the
                                   codes                                                  */
    loom_media_fn on_media;     /* may be NULL; called with user_data (above)              */
    /* Beam search (text answers: transcripts, captions, descriptions) */
    int32_t       n_beams;      /* 0 or 1 (default 0): sample token by token; 2..8: keep the
                                   n_beams most probable answers at each step and return the
                                   best (below)                                           */
    /* Joint CTC / attention beam search (transcripts; below) */
    const float  *ctc_logprobs; /* NULL (default): off; else [ctc_frames][ctc_classes] from
                                   loom_mmproj_audio_ctc for the prompt's audio, read during
                                   the call only                                           */
    int64_t       ctc_frames;
    int32_t       ctc_classes;  /* text tokens + blank (last), at most n_vocab + 1          */
    float         ctc_weight;   /* λ in 0..1 (default 0.3)                                  */
    /* Two views of one question (test-time augmentation; below) */
    loom_session *view2;        /* NULL (default); else a second session of the model whose
                                   context asks the same question of another view (loom
                                   caption's mirror image)                                 */
    const int32_t *view2_tokens;/* NULL (default): view2 reads the same tokens; else [n_vocab]:
                                   token t of the answer is token view2_tokens[t] in view2's
                                   (loom_model_mirror_tokens: " left" is " right" in the
                                   mirror image), read during the call only                */
    /* An opening the answer takes (below) */
    const int32_t *opening;     /* NULL (default); else [n_opening] tokens, read during the call */
    int32_t       n_opening;    /* 0 (default) or 1..4096                                   */
} loom_generate_params;

typedef struct loom_generate_stats {
    int64_t n_prompt;           /* prompt tokens                                          */
    int64_t n_reused;           /* of those, taken from the cache                         */
    int64_t n_generated;        /* tokens generated                                       */
    double  prompt_ms;          /* time computing the prompt                              */
    double  decode_ms;          /* time generating                                        */
} loom_generate_stats;

loom_generate_params loom_generate_default_params(void);

/* Prompt (with prefix reuse), then sample and decode up to n_predict tokens, streaming
 * each through on_token. With n_prompt 0 (prompt may be NULL) generation continues from
 * what the session holds (e.g. after loom_session_append_prompt). Stops after EOS or the
 * end-of-turn token when stop_at_eos (neither is streamed). Returns the number generated
 * or a negative status; stats may be NULL. Running out of context is LOOM_ERR_CONTEXT_FULL.
 * The abort hooks in params (and the session's) are polled during the prompt's prefill too,
 * between chunks and layers, with the outcome described at loom_session_set_abort.
 *
 * Media blocks (media_blocks 1, the default): when the model samples the open token of a
 * medium it can generate (<|image|>, <|audio|>, <|video|>; loom_model_can_generate), or the
 * cached context ends inside one (a prompt that ends with the open token, perhaps followed
 * by some of the block's codes and <|frame|> markers: the block goes on from there, and
 * END's codes include the prompt's), the block is written as
 * loom_generate_media writes one: codes are drawn from that medium's range only with
 * media[kind] (the k-th block of the call, from 0 over all media, with seed
 * media[kind].seed + k), <|frame|> markers and the close token are forced, the length is
 * the model's (image grid² codes; video frames × (<|frame|> + grid² codes); audio until the
 * model samples <|/audio|> or media[LOOM_MEDIA_AUDIO].max_audio_codes), then text
 * generation goes on. on_token gets every token of the
 * block (codes have empty pieces); on_media (if set) gets LOOM_MEDIA_BEGIN and LOOM_MEDIA_END
 * with the codes. The whole block, close token included, is appended to the cache. A block
 * that would not fit the context fails with LOOM_ERR_CONTEXT_FULL before its open token is
 * streamed; a prompt whose unfinished block holds what the block cannot (another medium's
 * code, a misplaced <|frame|>, more codes than it has) is LOOM_ERR_INVALID_ARG. on_token
 * asking to stop inside a block leaves it unfinished (no END). Every
 * token counts in the return value. With media_blocks 0 an open token is sampled like any
 * other and nothing is constrained.
 *
 *     static void got_media(int event, int kind, const int32_t *codes, int64_t n, void *u) {
 *         if (event == LOOM_MEDIA_END && kind == LOOM_MEDIA_IMAGE) loom_vq_decode(vq, codes, rgb);
 *     }
 *     gp.on_media = got_media;
 *     gp.media_uncond = s2;               // guidance (cfg_scale 3, speech 1 = off, by default)
 *     loom_session_generate(s, NULL, 0, gp, NULL);
 *
 * Beam search (n_beams 2..8, else LOOM_ERR_INVALID_ARG): each step extends every kept answer
 * by its n_beams most probable tokens and keeps the n_beams answers of highest total
 * log-probability (the sampler's temperature, penalties, biases and mask play no part);
 * an answer ends at EOS or end-of-turn (with stop_at_eos) or after n_predict tokens. The
 * best ended answer is returned (the search stops once no open one can beat it), else the
 * best one cut off at n_predict. Its tokens are streamed through on_token at the end, and
 * the session is left as sampling them would leave it. Beams never open a media block
 * (with media_blocks 1); a prompt that ends inside one is LOOM_ERR_INVALID_ARG. The beams
 * run as one stacked decode step (loom_session_decode_pair's batching), so n_beams answers
 * cost far less than n_beams times one; each call allocates 2·n_beams + 1 caches of the
 * prompt's length + n_predict positions.
 *
 * With ctc_logprobs (needs n_beams 2..8, else LOOM_ERR_INVALID_ARG) an answer's score is
 * (1 − λ)·its log-probability + λ·log p_CTC(its tokens as a prefix of the audio's transcript),
 * and an ended answer's CTC term is the probability of exactly its tokens (Watanabe et al.
 * 2017, "Hybrid CTC/attention"). The CTC term ties the answer to the sound: a decoder sure of
 * a sentence the audio does not hold loses to one the audio supports. Each open answer is
 * extended by its 2·n_beams most probable text tokens (ids < ctc_classes − 1) and stop
 * tokens; no other token is chosen. loom transcribe turns it on with the bundled model
 * (docs/CLI.md).
 *
 * With view2 each step takes the token t of highest log p(t | this context) + log p(t' |
 * view2's context), t' = view2_tokens[t] (t without view2_tokens), from the raw logits (the
 * sampler's temperature, penalties, biases and mask play no part; with media_blocks 1 a media
 * open token is never chosen), and appends t to this session and t' to view2 in one stacked
 * step (loom_session_decode_pair); on_token and stats follow this session. Needs view2 != s, of the same model, with logits after its context,
 * view2_tokens (if any) in 0..n_vocab-1, and no beams (else LOOM_ERR_INVALID_ARG, nothing
 * generated).
 *
 * With opening the answer opens with opening[0], then takes more of opening's tokens in order,
 * each step the likeliest (raw logits; with view2 the summed log-probabilities above) of the
 * tokens after the one it took last, until it takes opening[n_opening - 1]; then it goes on as
 * it would without. So it may skip any token between the first and the last, never reorder
 * them: loom describe opens a description with the words of the object that changes
 * (loom_video_mover: "a large red star") and the model says "a red star" where its
 * descriptions leave the size out. The opening's tokens are chosen, not sampled; they are
 * streamed, counted and appended like the rest. Needs n_opening 1..4096 tokens in
 * 0..n_vocab-1 (with media_blocks 1 no media open token), no beams and a prompt that does not
 * end inside a media block (else LOOM_ERR_INVALID_ARG, nothing generated).
 */
int64_t loom_session_generate(loom_session *s, const int32_t *prompt, int64_t n_prompt,
                              loom_generate_params params, loom_generate_stats *stats);


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
/* Mirror the image left to right in place (what a picture looks like in a mirror). */
void loom_image_mirror(loom_image *img);
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
 * FFmpeg is not linked: the first audio or video read (or MP4 writer) loads it (dlopen of
 * libavformat.so.59 etc., the sonames loom was built against); when that fails, each call
 * that reads audio or video or opens an MP4 writer returns LOOM_ERR_UNSUPPORTED with a
 * message naming the library and why (WAV writing never needs FFmpeg).
 * The first audio or video read routes FFmpeg's log to loom's and caps any one FFmpeg
 * allocation at 256 MiB (av_max_alloc, process-wide: FFmpeg trusts some header sizes).
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

/* Pieces of a recording to transcribe one by one, for an audio encoder that takes at most
 * max_len samples (loom_mmproj_audio_max_samples). Digital silence at either end (samples
 * under one 16-bit step) is left out first; a recording that then fits is one piece, whole
 * (none when nothing is left).
 * A longer one is cut in the middle of its pauses (0.25 s or more without speech; speech is
 * 14 dB or more above the recording's quietest tenth of 10 ms frames averaged over 0.1 s, or
 * at most 6 dB below its loudest tenth when that is lower: a steady sound has no pauses),
 * a stretch of speech longer than max_len also at the quietest 0.1 s of its window's last
 * 40 %; each piece keeps 0.1 s of quiet before its speech and 0.4 s after it (the margins of
 * loom-tiny's training clips) and pieces without speech are left out, so the pieces need not
 * touch. One sentence per piece is what a model trained on single sentences can transcribe:
 * loom-tiny wrote the first sentence of each blind 10 s window and stopped (docs/MODEL.md).
 * *spans (*n_spans entries, sample offsets) is owned by the caller: loom_audio_spans_free.
 *
 *     loom_audio_span *sp = NULL; size_t k = 0;
 *     if (loom_audio_split(pcm, n, 16000, loom_mmproj_audio_max_samples(mp), &sp, &k, err, sizeof err) == 0)
 *         for (size_t i = 0; i < k; i++) … transcribe pcm[sp[i].start, sp[i].end) …
 *     loom_audio_spans_free(&sp);
 */
typedef struct loom_audio_span { int64_t start, end; } loom_audio_span;
/* Scale pcm[0, n) in place so that its largest finite |sample| is peak (> 0); digital silence is
 * left as it is. Returns the gain applied. loom-tiny's training recordings peak at 0.70 (sox's
 * -3 dB normalisation): `loom transcribe` and `loom chat` give each piece that peak
 * (LOOM_SPEECH_PEAK), which took loom-tiny v34's WER on recordings 20 dB quieter than the
 * data's from 58.8 to 16.3 % (test) and from 40.7 to 1.9 % (val; `run_eval.py --jobs robust`). */
#define LOOM_SPEECH_PEAK 0.708f
float loom_audio_normalize(float *pcm, size_t n, float peak);
int  loom_audio_split(const float *pcm, size_t n, int sample_rate, int64_t max_len,
                      loom_audio_span **spans, size_t *n_spans, char *err, size_t err_size);
void loom_audio_spans_free(loom_audio_span **spans);

/* Text to say, as a speech model trained on transcripts reads it, one sentence per piece:
 * words lowercased (ASCII; other UTF-8 kept) and separated by single spaces, inner
 * apostrophes kept, numbers in English words ("1,204.5" → "one thousand two hundred four
 * point five"; a leading zero or more than 12 digits, digit by digit), % & + said as
 * "percent", "and", "plus", other punctuation dropped. Pieces end at . ! ? ; : … and line
 * breaks; a sentence longer than max_chars (16 or more) is cut at its last comma that fits,
 * else its last space. loom-tiny's speech was transcribed that way: given "Maria caught the
 * box." it said "go forward", given "maria caught the box" what was asked, and one clip holds
 * what it was trained on (utterances of up to 10 s). `loom speak` says each piece and joins
 * the codes. Text longer than 1 MiB is LOOM_ERR_LIMIT; text without words or numbers,
 * LOOM_ERR_INVALID_ARG. *pieces (*n_pieces NUL-terminated strings) is owned by the caller:
 * loom_speech_pieces_free. */
int  loom_speech_pieces(const char *text, size_t max_chars, char ***pieces, size_t *n_pieces,
                        char *err, size_t err_size);
void loom_speech_pieces_free(char ***pieces, size_t n_pieces);

/* Write interleaved pcm [n_frames][channels] as WAV (16-bit PCM, clipped to [-1, 1], or
 * 32-bit float). The file appears atomically: written under a temporary name, renamed. */
typedef enum loom_wav_format { LOOM_WAV_PCM16 = 0, LOOM_WAV_F32 = 1 } loom_wav_format;
int loom_audio_save_wav(const char *path, const float *pcm, size_t n_frames, int channels,
                        int sample_rate, loom_wav_format format, char *err, size_t err_size);


/* ---------------------------------------------------------------------------------------
 * Video (issue: video): decode + frame sampling, MP4 writing. Through FFmpeg's libraries
 * (libavformat, libavcodec, libswscale): every container and codec the installed FFmpeg
 * decodes (MP4, MKV, WebM, AVI, MOV; H.264, HEVC, VP8, VP9, AV1, MPEG-4, …).
 *
 *     loom_video_params p = loom_video_default_params();
 *     p.n_frames = 8;  p.width = 224;  p.height = 224;
 *     loom_video *v = NULL;
 *     if (loom_video_sample("clip.mkv", p, &v, err, sizeof err) < 0) { … }
 *     for (int i = 0; i < loom_video_n_frames(v); i++)
 *         use(loom_video_frame(v, i), loom_video_frame_time(v, i));
 *     loom_video_free(&v);
 *
 * Sampling rule. Times are seconds from the video stream's first frame. With n_frames = N
 * the samples are at t_i = (i + 0.5) * duration / N; with fps = F (and n_frames = 0) at
 * t_i = (i + 0.5) / F for every t_i < duration (at least one). Each sample is the source
 * frame on screen at t_i: the last frame whose presentation time is <= t_i (the first
 * frame if t_i precedes it). So N = the frame count, or F = the frame rate, returns every
 * frame once. A time past the last frame shows the last frame, unless the video data ends
 * too early (by more than the larger of 5 % of the duration and 3 frames, or 1.5 frames
 * after a read error): that is reported as a truncated file. Far targets are reached by
 * seeking (to the keyframe before, then decoding forward), so 8 frames of a 10-hour file
 * cost 8 short decodes; memory holds only the sampled frames and the decoder's state.
 * ------------------------------------------------------------------------------------- */
typedef struct loom_video loom_video;

typedef struct loom_video_params {
    int    n_frames;    /* > 0: sample this many frames uniformly over the duration      */
    double fps;         /* used when n_frames == 0: sample at this rate (frames/s)        */
    int    width;       /* output size; 0 x 0 keeps the source's; one 0 keeps its aspect   */
    int    height;
    int    max_frames;  /* more samples than this is LOOM_ERR_LIMIT (default 256)         */
    int    max_width;   /* a larger source or output is LOOM_ERR_LIMIT, checked before     */
    int    max_height;  /*   any frame is decoded (defaults 8192 x 8192)                   */
    int    n_threads;   /* decoder threads; 0 lets FFmpeg choose                          */
} loom_video_params;

/* n_frames 8, native size, max_frames 256, max 8192 x 8192. */
loom_video_params loom_video_default_params(void);

typedef struct loom_video_info {
    double      duration;   /* seconds (video stream's, else the container's)             */
    double      fps;        /* the stream's frame rate (guessed when not stored); 0 unknown*/
    int64_t     n_frames;   /* as stored, else round(duration * fps); 0 unknown            */
    int         width;      /* coded picture size                                          */
    int         height;
    const char *codec;      /* "h264", "vp9", …; owned by the info's producer (see below) */
    const char *container;  /* "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", …              */
} loom_video_info;

/* Read the header of `path` (no frame is decoded). `out->codec` / `container` point to
 * static strings. Limits (max_width / max_height) from `p` are checked. */
int loom_video_probe(const char *path, loom_video_params p, loom_video_info *out,
                     char *err, size_t err_size);

/* Decode `path` and sample frames as `p` says. On failure *out is NULL and `err` names the
 * problem: no video stream (LOOM_ERR_NOT_FOUND), no frames or a damaged/truncated file
 * (LOOM_ERR_FORMAT), over a limit (LOOM_ERR_LIMIT), no decoder (LOOM_ERR_UNSUPPORTED). */
int  loom_video_sample(const char *path, loom_video_params p, loom_video **out,
                       char *err, size_t err_size);
void loom_video_free(loom_video **v);

int  loom_video_n_frames(const loom_video *v);
int  loom_video_width(const loom_video *v);
int  loom_video_height(const loom_video *v);
/* Frame i as RGB8, [height][width][3], owned by v. */
const uint8_t *loom_video_frame(const loom_video *v, int i);
/* A video from frames the caller already has: rgb [n_frames][height][width][3] (copied),
 * frame i shown at i / fps. For encoders and tests that do not go through a file. */
int  loom_video_from_rgb(const uint8_t *rgb, int n_frames, int width, int height, double fps,
                         loom_video **out, char *err, size_t err_size);
/* Sample time t_i of frame i, and the presentation time of the source frame shown then. */
double loom_video_frame_time(const loom_video *v, int i);
double loom_video_frame_pts(const loom_video *v, int i);
/* The probed source; strings owned by v. */
const loom_video_info *loom_video_source(const loom_video *v);
/* Mirror every frame left to right in place (loom_image_mirror's, frame by frame). */
void loom_video_mirror(loom_video *v);

/* MP4 writing: RGB8 frames -> H.264 (libx264 when the installed FFmpeg has it, else
 * MPEG-4 Part 2), yuv420p (BT.601, limited range), constant frame rate, `+faststart`;
 * optionally an AAC audio track from float samples.
 * Written to a temporary file in the target's folder and renamed on success, so a failure
 * or an abandoned writer leaves nothing behind. Width and height must be even. */
typedef struct loom_mp4_params {
    double      fps;        /* frames per second (default 24)                             */
    int         crf;        /* quality, x264 CRF 0..51, lower is better (default 18); for
                               MPEG-4 it maps to qscale clamp(1 + crf / 8, 2, 31)          */
    const char *codec;      /* NULL: "libx264" if available, else "mpeg4"; or name one    */
    const char *preset;     /* x264 preset (NULL: "medium")                               */
    int         n_threads;  /* encoder threads; 0 lets FFmpeg choose. x264's bitstream
                               depends on it: 1 gives the same file on every machine      */
    int         audio_rate;     /* > 0: add an AAC audio track at this rate (Hz); 0: none */
    int         audio_channels; /* 1..8 (default 1)                                       */
    int         audio_bitrate;  /* bits/s; 0: 64000 per channel                           */
} loom_mp4_params;

loom_mp4_params loom_mp4_default_params(void);

typedef struct loom_mp4_writer loom_mp4_writer;

/* Start writing `path` (width x height). On failure *out is NULL and `err` names why. */
int  loom_mp4_writer_open(const char *path, int width, int height, loom_mp4_params p,
                          loom_mp4_writer **out, char *err, size_t err_size);
/* Append one frame, RGB8 [height][width][3]. */
int  loom_mp4_writer_add_frame(loom_mp4_writer *w, const uint8_t *rgb);
/* Append n audio samples per channel, interleaved floats in [-1, 1] ([n][channels]);
 * needs audio_rate > 0. Video and audio may come in any order (for long files, add them
 * in step: the muxer holds what it cannot interleave yet in memory). */
int  loom_mp4_writer_add_audio(loom_mp4_writer *w, const float *samples, int64_t n);
/* Flush, write the index (moved to the front) and rename into place. At least 1 frame. */
int  loom_mp4_writer_finish(loom_mp4_writer *w);
/* Release; if finish() did not succeed, the partial file is deleted. */
void loom_mp4_writer_free(loom_mp4_writer **w);
/* The last error's message ("" if none); owned by w. */
const char *loom_mp4_writer_error(const loom_mp4_writer *w);

/* One call: n_frames frames, contiguous RGB8 [n_frames][height][width][3], and (when
 * p.audio_rate > 0) n_audio samples per channel of interleaved float audio (may be 0). */
int loom_video_write_mp4(const char *path, const uint8_t *rgb, int n_frames, int width,
                         int height, const float *audio, int64_t n_audio, loom_mp4_params p,
                         char *err, size_t err_size);


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
/* The same with loom_image (see Images): decode into a new image the caller frees with
 * loom_image_free; encode needs an image_size × image_size image (resize it first). */
int  loom_vq_decode_image(loom_vq *vq, const int32_t *codes, loom_image *out);
int  loom_vq_encode_image(loom_vq *vq, const loom_image *img, int32_t *codes);
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
 * Media in prompts (issues: vision, audio, video): the media encoders of a unified model
 * (`<stem>-mmproj.gguf`: a ViT and/or a Whisper-style audio encoder with their projectors)
 * turn pictures, sound and video into rows of the decoder's embedding width; a loom_prompt
 * strings control tokens, text and those rows together in order and a session reads it.
 * The sequences loom's models are trained on are in docs/FORMAT.md ("Unified model").
 *
 *     loom_mmproj *mp = NULL;
 *     loom_mmproj_load("loom-tiny-mmproj.gguf", loom_mmproj_default_params(), &mp, err, sizeof err);
 *     loom_prompt *p = NULL;
 *     loom_prompt_create(model, &p);
 *     loom_prompt_add_special(p, "<|bos|>");  loom_prompt_add_special(p, "<|user|>");
 *     loom_prompt_add_image(p, mp, &img);     // <|image|> rows <|/image|>
 *     loom_prompt_add_text(p, "Describe the image.");
 *     loom_prompt_add_special(p, "<|end|>");  loom_prompt_add_special(p, "<|assistant|>");
 *     loom_session_truncate(s, 0);
 *     loom_session_append_prompt(s, p);
 *     loom_session_generate(s, NULL, 0, gp, NULL);   // n_prompt 0: continue from the cache
 *     loom_prompt_free(&p);  loom_mmproj_free(&mp);
 * ------------------------------------------------------------------------------------- */
typedef struct loom_mmproj loom_mmproj;

typedef struct loom_mmproj_params {
    int32_t n_threads;        /* 0 = all CPUs                                                */
    int32_t max_images;       /* images (or video frames) one encode call takes (default 8) */
    int32_t matmul;           /* loom_matmul_precision of the encoders (default F32)         */
} loom_mmproj_params;

loom_mmproj_params loom_mmproj_default_params(void);

/* Load a media-encoder file. Either encoder may be absent (clip.has_vision_encoder /
 * clip.has_audio_encoder); a file with neither is an error. */
int  loom_mmproj_load(const char *path, loom_mmproj_params params, loom_mmproj **out,
                      char *err, size_t err_size);
void loom_mmproj_free(loom_mmproj **mp);
const char *loom_mmproj_error(const loom_mmproj *mp);   /* last failure ("" if none) */
int  loom_mmproj_has_vision(const loom_mmproj *mp);
int  loom_mmproj_has_audio(const loom_mmproj *mp);
int  loom_mmproj_n_embd(const loom_mmproj *mp);          /* width of every output row      */
int  loom_mmproj_image_rows(const loom_mmproj *mp);      /* rows per image                 */
/* Rows for n_samples of 16 kHz audio; LOOM_ERR_LIMIT past the encoder's longest input. */
int64_t loom_mmproj_audio_rows(const loom_mmproj *mp, int64_t n_samples);
/* Longest audio the encoder takes in one piece, in samples. */
int64_t loom_mmproj_audio_max_samples(const loom_mmproj *mp);
/* One image of any size (fitted as the file says) → out[image_rows][n_embd]. */
int  loom_mmproj_encode_image(loom_mmproj *mp, const loom_image *img, float *out);
/* Mono 16 kHz pcm → out[audio_rows(n_samples)][n_embd]. */
int  loom_mmproj_encode_audio(loom_mmproj *mp, const float *pcm, int64_t n_samples, float *out);
/* A CTC head on the audio rows (mm.a.ctc.*; loom-tiny has one) reads each row as a
 * distribution over the decoder's text tokens plus blank, the last class. Its classes
 * (text tokens + 1), or 0 when the file has none. */
int32_t loom_mmproj_ctc_classes(const loom_mmproj *mp);
/* rows[n_rows][n_embd] from loom_mmproj_encode_audio → out[n_rows][ctc_classes], each row's
 * log-probabilities: what loom_generate_params.ctc_logprobs takes. */
int  loom_mmproj_audio_ctc(loom_mmproj *mp, const float *rows, int64_t n_rows, float *out);

/* A prompt: token ids and embedding rows in order. Owns copies of everything added. */
typedef struct loom_prompt loom_prompt;

int  loom_prompt_create(const loom_model *m, loom_prompt **out);
void loom_prompt_free(loom_prompt **p);
void loom_prompt_clear(loom_prompt *p);
int64_t loom_prompt_n(const loom_prompt *p);               /* positions (tokens + rows)   */
const char *loom_prompt_error(const loom_prompt *p);       /* last failure ("" if none)   */
int  loom_prompt_add_token(loom_prompt *p, int32_t token);
/* A control token by its text, e.g. "<|image|>"; LOOM_ERR_NOT_FOUND if the vocabulary
 * has no such token. */
int  loom_prompt_add_special(loom_prompt *p, const char *name);
/* UTF-8 text, tokenized without special parsing (a "<|end|>" in it stays text). */
int  loom_prompt_add_text(loom_prompt *p, const char *text);
int  loom_prompt_add_rows(loom_prompt *p, const float *rows, int64_t n_rows);  /* [n][n_embd] */
/* <|image|> rows <|/image|>. The encoder's width must equal the decoder's. */
int  loom_prompt_add_image(loom_prompt *p, loom_mmproj *mp, const loom_image *img);
/* <|audio|> rows <|/audio|> for the whole clip (at most loom_mmproj_audio_max_samples). */
int  loom_prompt_add_audio(loom_prompt *p, loom_mmproj *mp, const float *pcm, int64_t n_samples);
/* <|video|>, then per group of `temporal_merge` frames (the model file's loom.video.*
 * keys; 1 if absent) <|frame|> + the mean of their image rows, then <|/video|>. */
int  loom_prompt_add_video(loom_prompt *p, loom_mmproj *mp, const loom_video *v);
/* Frames the model wants sampled from a video (loom.video.n_frames; 8 if absent). */
int  loom_model_video_frames(const loom_model *m);

/* Append the whole prompt after the session's cache. */
int  loom_session_append_prompt(loom_session *s, const loom_prompt *p);
/* The end-of-turn token (tokenizer.ggml.eot_token_id), or -1. Generation stops at it too. */
int32_t loom_token_eot(const loom_model *m);


/* ---------------------------------------------------------------------------------------
 * Media generation (issue: generation): a unified decoder (docs/FORMAT.md "Unified model")
 * writes image, audio and video blocks whose codes the codecs above render. Inside a block
 * only that medium's code range may be sampled and the block has the model-defined length;
 * classifier-free guidance (CFG) runs a second session on the unconditional sequence.
 *
 *     int32_t cond[512], unc[64];
 *     int64_t nc = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 0, cond, 512);
 *     int64_t nu = loom_media_prompt(m, LOOM_MEDIA_IMAGE, "a red circle", 1, unc, 64);
 *     loom_media_params p = loom_media_default_params(LOOM_MEDIA_IMAGE);
 *     p.seed = 42;
 *     int32_t codes[256];                            // loom_media_max_codes(m, p)
 *     int64_t n = loom_generate_media(m, s, cond, nc, s2, unc, nu, p, codes, 256, err, sizeof err);
 *     if (n > 0) loom_vq_decode(vq, codes, rgb);      // n == grid²
 * ------------------------------------------------------------------------------------- */

/* The decoder file's vocabulary ranges and media shapes (loom.vocab.*, loom.image.grid,
 * loom.video.*). Loading checks them: every range lies inside n_vocab, the ranges do not
 * overlap, counts are > 0. A field is 0 when its key is absent. */
typedef struct loom_media_vocab {
    int32_t text_end, control_end;     /* [0, text_end) text | [text_end, control_end) control */
    int32_t image_start, image_count;  /* image code c <-> token image_start + c               */
    int32_t audio_start, audio_count;  /* audio code c <-> token audio_start + c               */
    int32_t image_grid;                /* codes per side of a generated image                  */
    int32_t video_n_frames;            /* frames sampled from an input video                   */
    int32_t video_temporal_merge;      /* consecutive input frames merged into one group       */
    int32_t video_gen_frames;          /* frames of a generated video                          */
    int32_t audio_words;               /* 1: speech blocks spell each word before its codes
                                          (loom.audio.words; see loom_media_params.words)      */
} loom_media_vocab;

/* Fill *out (all zeros for a plain decoder). */
int loom_model_media_vocab(const loom_model *m, loom_media_vocab *out);

/* Captions by region (loom.caption.regions, .region_question, .region_empty; docs/FORMAT.md
 * "Captions by region"): a model trained to answer one question about one region of the
 * picture ("what is in the top left?" → "a small green cross", or "nothing") is captioned by
 * asking every region in its own answer, so that what it wrote about one region cannot sway
 * the next. `loom caption` does this when the model has the keys.
 *
 *     loom_caption_regions r;
 *     loom_model_caption_regions(m, &r);
 *     for (int i = 0; i < r.n_regions; i++) {
 *         loom_caption_region_question(m, i, q, sizeof q);   // "what is in the top left?"
 *         ... answers[i] = the greedy answer to the picture and q ...
 *     }
 *     loom_caption_compose(m, answers, caption, sizeof caption);
 *
 * Two views (loom.caption.region_mirror, optional): a model whose pictures look as right
 * mirrored left to right (its world has no writing and no shape that is not its own mirror
 * image) says where region i of the picture lands in the mirror image. `loom caption` then
 * asks each region twice, of the picture and of its mirror image (loom_image_mirror), and
 * takes the token the two find likeliest together (loom_generate_params.view2): test-time
 * augmentation, which lets two readings outvote a slip of one.
 *
 *     if (r.mirror) {                      // s2: a second session, its turn the mirror image's
 *         loom_caption_region_question(m, r.mirror[i], q2, sizeof q2);
 *         ... s holds the picture and q, s2 the mirror image and q2 ...
 *         gp.view2 = s2;                   // one answer, read from both
 *     }
 *
 * Loading checks the keys: all three or none, 1..64 regions of 1..128 bytes, a question with
 * exactly one "{}"; the mirror (only with them) has n_regions entries in 0..n_regions-1, each
 * region the mirror of its mirror. The strings are owned by m. */
typedef struct loom_caption_regions {
    int32_t            n_regions;   /* 0: the model captions in one answer                 */
    const char *const *phrases;     /* [n_regions] "in the top left", "at the top", …      */
    const char        *question;    /* "what is {}?": {} stands for a phrase               */
    const char        *empty;       /* the answer about an empty region: "nothing"         */
    const int32_t     *mirror;      /* [n_regions] region i of the picture is region mirror[i]
                                       of its mirror image ("in the top left" → "in the top
                                       right"); NULL when the model has no such key         */
    int32_t            describe_mover; /* 1: loom.describe.mover, its video descriptions open
                                       with the object that changes, in its region answers'
                                       words (loom_video_mover)                               */
} loom_caption_regions;

int loom_model_caption_regions(const loom_model *m, loom_caption_regions *out);

/* The vocabulary's mirror (loom.mirror.token_pairs, optional; docs/FORMAT.md): [n_vocab],
 * token t of an answer about a picture or video is token mirror[t] in the answer about its
 * mirror image (" left" ↔ " right"; most tokens are their own mirror). `loom describe` reads
 * a clip and its mirror image (loom_video_mirror) together with it as view2_tokens. Loading
 * checks pairs of two different ids in range, no id in two pairs. NULL when absent; owned
 * by m. */
const int32_t *loom_model_mirror_tokens(const loom_model *m);
/* The question about region i into buf (NUL-terminated); returns its length, or a negative
 * status (INVALID_ARG for i out of range, LIMIT when size is too small). */
int loom_caption_region_question(const loom_model *m, int32_t i, char *buf, size_t size);
/* The caption made of the regions' answers, in region order: "ANSWER PHRASE" for each answer
 * that is not the empty one, joined by ", " and a last " and " ("a small red star in the top
 * left and a large blue ring at the bottom"); the empty answer when every region is empty.
 * answers has n_regions entries. Returns the length, or a negative status (LIMIT: too small). */
int64_t loom_caption_compose(const loom_model *m, const char *const *answers, char *buf, size_t size);
/* Read a picture region by region, as loom caption does: <|bos|><|user|> and the picture run
 * once in s, then each region's question after them (the cache cut back to the picture) →
 * its greedy answer into answers[i] (n_regions of them, malloc'ed: free each; all NULL on
 * failure). s2 NULL: the picture alone; else, where the model has a region mirror, the
 * mirror image runs in s2 and each answer is read from both views (view2, with the model's
 * mirror tokens). n_predict: most tokens per answer. The sessions' caches are replaced; their
 * abort hooks are polled. stats (may be NULL) gets the summed times and tokens. Returns 0 or
 * a negative status that err names (INVALID_ARG: a model without caption regions). */
int loom_caption_read_regions(const loom_model *m, loom_mmproj *mp, loom_session *s, loom_session *s2,
                              const loom_image *img, int32_t n_predict, char **answers, loom_generate_stats *stats,
                              char *err, size_t err_size);

/* The object that changes in a clip (loom.describe.mover; docs/FORMAT.md): the clip's first
 * and last frames read by region (loom_caption_read_regions, s2 as there); the first region
 * whose two answers differ gives its answer in the first frame, or in the last where the
 * first frame's is the empty answer (the object appeared). *out: that answer ("a large red
 * star"; malloc'ed, free it), or NULL where no region changed (or the clip has one frame). loom describe opens the
 * description with its tokens (loom_generate_params.opening): a model that reads a still
 * picture better than a moving one then names the right object even beside a second one
 * that stays still. Returns 0 or a negative status that err names. */
int loom_video_mover(const loom_model *m, loom_mmproj *mp, loom_session *s, loom_session *s2, const loom_video *v,
                     int32_t n_predict, char **out, char *err, size_t err_size);

/* 0 if m can generate `kind`; else LOOM_ERR_UNSUPPORTED (or INVALID_ARG for an unknown kind)
 * and err names what is missing (a loom.vocab.* / loom.image.grid key, a control token, the
 * tokenizer). */
int loom_model_can_generate(const loom_model *m, int kind, char *err, size_t err_size);

/* The job's chat turn as token ids: <|bos|><|user|>{Draw: |Say: |Animate: }text<|end|><|assistant|>
 * (text tokenized with special parsing off). unconditional: the same turn with empty user
 * content, <|bos|><|user|><|end|><|assistant|> (the CFG sequence). Writes up to max_tokens
 * ids and returns how many the turn needs, or a negative status. */
int64_t loom_media_prompt(const loom_model *m, int kind, const char *text, int unconditional,
                          int32_t *out, int64_t max_tokens);

/* loom_media_kind, loom_media_params and loom_media_default_params are declared with the
 * generation parameters (Decoder section) that use them too. */

/* Most codes a block with these params produces (image grid², video frames·grid², audio
 * max_audio_codes): the size of `codes` below. Negative status if m cannot generate it. */
int64_t loom_media_max_codes(const loom_model *m, loom_media_params p);
/* Most tokens the block takes in a session after its prompt: open, codes, frame markers,
 * p.words' tokens (loom.audio.words models), close; what n_ctx must leave room for.
 * Negative status if m cannot generate it or p.words cannot be tokenized. */
int64_t loom_media_block_len(const loom_model *m, loom_media_params p);

/* Generate one media block after prompt[0..n_prompt) (a chat turn ending with
 * <|assistant|>, e.g. from loom_media_prompt; n_prompt 0 continues after what s holds).
 * The block's open token (and <|frame|> markers) are forced, codes are sampled from the
 * medium's range only, the close token is forced (audio: the model may close earlier), and
 * all of it is appended to s, so text can follow. With guidance (cfg_scale not 0 or 1),
 * `uncond` (another session on the same model) gets uncond_prompt and the same tokens, and
 * codes are drawn from l_u + s·(l_c − l_u) over the allowed ids. codes receives the codes
 * with the range offset removed (image/video: [frames][grid][grid] row-major). Returns the
 * number of codes, or a negative status with err filled: LOOM_ERR_UNSUPPORTED (the model
 * lacks the medium), LOOM_ERR_CONTEXT_FULL (checked before any work), LOOM_ERR_LIMIT
 * (max_codes too small), LOOM_ERR_ABORTED. Nothing is allocated per step. Inside the block
 * each step computes only the logits the next token may take (the medium's codes and its
 * close token, or the forced token), the others -INFINITY, so a progress or abort callback
 * that reads loom_session_logits sees only those; after the close token they are whole. */
int64_t loom_generate_media(const loom_model *m, loom_session *s, const int32_t *prompt, int64_t n_prompt,
                            loom_session *uncond, const int32_t *uncond_prompt, int64_t n_uncond,
                            loom_media_params p, int32_t *codes, int64_t max_codes,
                            char *err, size_t err_size);


/* ---------------------------------------------------------------------------------------
 * Threads and CPU
 * ------------------------------------------------------------------------------------- */
/* Number of CPUs available to this process (>= 1). */
int loom_cpu_count(void);
/* Instruction sets the kernels use on this CPU, e.g. "avx512 avx512_bf16 avx512_vnni avx2 fma f16c". */
const char *loom_cpu_features(void);
/* What runs the large matrix products: "OpenBLAS <core>" or "reference" (OpenBLAS could not
 * be loaded; correct but slow). loom loads OpenBLAS at the first product (or this call) and,
 * when OPENBLAS_CORETYPE is unset, sets it for the load to the core that fits this CPU
 * (AVX-512: SkylakeX, AVX2: Haswell), then unsets it; a value set by the user is kept.
 * OpenBLAS runs each product on the calling thread only (loom loads it with
 * OPENBLAS_NUM_THREADS=1 and keeps it there): loom shares products out across the threads of
 * the model or session that runs them itself. */
const char *loom_blas_name(void);

#ifdef __cplusplus
}
#endif
#endif /* LOOM_H */

/* Internals of loom_mmproj shared by mmproj.c and prompt.c (not public). */
#ifndef LOOM_MMPROJ_H
#define LOOM_MMPROJ_H

#include "audio/audio_encoder.h"
#include "audio/mel.h"
#include "lib/core/gguf.h"
#include "lib/core/kernels.h"
#include "lib/core/threadpool.h"
#include "vision/preprocess.h"
#include "vision/vit.h"

struct loom_mmproj {
    lm_gguf          *gguf;      /* the mapped file; weights point into it, owned        */
    lm_vit           *vit;       /* NULL without a vision encoder, owned                 */
    lm_vit_ctx       *vit_ctx;   /* activations for max_images, owned                    */
    lm_preprocess     pre;       /* what the vision encoder wants                         */
    float            *chw;       /* [max_images][3][S][S] preprocessed pixels, owned      */
    int               max_images;
    lm_audio_encoder *aud;       /* NULL without an audio encoder, owned                  */
    lm_mel           *mel;       /* owned                                                 */
    float            *melbuf;    /* [n_mel][mel_cap], grown to the longest clip seen      */
    int64_t           mel_cap;
    int               n_embd;    /* output row width (both encoders agree)                */
    lm_matrix         ctc;       /* [n_embd → ctc_classes] CTC head on audio rows
                                    (mm.a.ctc.weight); data NULL without one               */
    float            *ctc_bias;  /* [ctc_classes] (mm.a.ctc.bias), owned                   */
    int32_t           ctc_classes; /* text tokens + blank (last); 0 without a head          */
    lm_pool          *pool;      /* owned                                                 */
    lm_error          err;
};

/* n images (n <= max_images) → out[n][image_rows][n_embd]. */
int lm_mmproj_encode_images(loom_mmproj *mp, const loom_image *const *imgs, int n, float *out);

#endif

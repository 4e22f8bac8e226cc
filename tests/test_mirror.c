/* Mirror images (what `loom describe` reads as its second view): loom.mirror.token_pairs read
 * and checked at load, and loom_video_mirror. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "include/loom.h"
#include "lib/core/gguf.h"
#include "lib/model.h"
#include "tests/decoder_test_util.h"

/* Write a key-only GGUF holding n pairs' ids as loom.mirror.token_pairs (none when n < 0; type
 * I32, else U32) and run the loader on it for a vocabulary of V tokens. */
static int load_pairs(const char *path, const int32_t *ids, int n, int as_i32, int32_t V, int32_t **map, lm_error *e)
{
    lm_gguf_writer *w = lm_gguf_writer_create();
    if (n >= 0) lm_gguf_set_arr(w, "loom.mirror.token_pairs", as_i32 ? LM_GGUF_I32 : LM_GGUF_U32, ids, (uint64_t)n);
    lm_gguf_set_u32(w, "loom.image.grid", 16);   /* so a file without the key is not empty */
    lm_gguf *g = NULL;
    int rc = write_and_open(&w, path, &g);
    if (rc < 0) return rc;
    lm_error_clear(e);
    rc = lm_mirror_tokens_load(g, V, map, e);
    lm_gguf_close(&g);   /* the map is a copy: it outlives the file */
    return rc;
}

static void test_token_pairs(const char *path)
{
    int32_t *map = NULL;
    lm_error e;
    const int32_t two[] = {3, 7, 1, 2}, same[] = {4, 4}, twice[] = {3, 7, 7, 5}, past[] = {3, 10}, neg[] = {-1, 3};
    CHECK(load_pairs(path, two, 4, 1, 10, &map, &e) == 0 && map, "two pairs read: %s", e.msg);
    if (map) {
        const int32_t want[10] = {0, 2, 1, 7, 4, 5, 6, 3, 8, 9};
        CHECK(!memcmp(map, want, sizeof want), "the map: each pair swapped, every other token itself");
        free(map);
    }
    CHECK(load_pairs(path, NULL, -1, 1, 10, &map, &e) == 0 && !map, "no key: NULL");
    CHECK(load_pairs(path, two, 3, 1, 10, &map, &e) == LOOM_ERR_FORMAT && !map &&
          strstr(e.msg, "loom.mirror.token_pairs must be pairs"), "an odd count: %s", e.msg);
    CHECK(load_pairs(path, two, 0, 1, 10, &map, &e) == LOOM_ERR_FORMAT && !map, "no pair: %s", e.msg);
    CHECK(load_pairs(path, two, 4, 0, 10, &map, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "int32"), "uint32 ids: %s", e.msg);
    CHECK(load_pairs(path, same, 2, 1, 10, &map, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "pair 0 (4, 4)"),
          "a token paired with itself: %s", e.msg);
    CHECK(load_pairs(path, twice, 4, 1, 10, &map, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "pair 1 (7, 5)") && !map,
          "a token in two pairs: %s", e.msg);
    CHECK(load_pairs(path, past, 2, 1, 10, &map, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "0..9"),
          "an id past the vocabulary: %s", e.msg);
    CHECK(load_pairs(path, neg, 2, 1, 10, &map, &e) == LOOM_ERR_FORMAT && strstr(e.msg, "(-1, 3)"), "a negative id: %s",
          e.msg);
}

/* loom_video_mirror: every frame mirrored on its own (no pixel crosses into another frame),
 * twice gives the clip back. */
static void test_video(void)
{
    enum { F = 3, H = 2, W = 5 };
    uint8_t rgb[F][H][W][3];
    for (int f = 0; f < F; f++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) rgb[f][y][x][c] = (uint8_t)(80 * f + 30 * y + 5 * x + c);
    loom_video *v = NULL;
    char err[256];
    CHECK(loom_video_from_rgb(&rgb[0][0][0][0], F, W, H, 8.0, &v, err, sizeof err) == 0, "%s", err);
    if (!v) return;
    loom_video_mirror(v);
    int ok = 1;
    for (int f = 0; f < F; f++) {
        const uint8_t *fr = loom_video_frame(v, f);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++) ok &= fr[(y * W + x) * 3 + c] == rgb[f][y][W - 1 - x][c];
    }
    CHECK(ok, "frame f's pixel (x, y) is the clip's frame f pixel (width-1-x, y)");
    loom_video_mirror(v);
    ok = 1;
    for (int f = 0; f < F; f++) ok &= !memcmp(loom_video_frame(v, f), rgb[f], sizeof rgb[f]);
    CHECK(ok, "mirrored twice: the clip");
    loom_video_free(&v);
    loom_video_mirror(NULL);
}

int main(void)
{
    char path[256];
    tmp_model_path(path, sizeof path, "mirror");
    test_token_pairs(path);
    test_video();
    unlink(path);
    return finish();
}

/* Image I/O: every PNG/JPEG variant decodes to the pattern its generator
 * (tools/fixtures/make_image_fixtures.py) drew; bad input fails with a status and a message
 * that names the problem; PNG write → read round trip keeps pixels and tEXt. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "include/loom.h"
#include "vision/image.h"
#include "tests/check.h"
#include "tests/read_file.h"

#define W 13
#define H 7
#define D "data/images/"

/* The generator's patterns. */
static void pat_rgb(int x, int y, int c[3])
{
    c[0] = (x * 19 + y * 7) & 255;
    c[1] = (x * 5 + y * 31) & 255;
    c[2] = (x * x + y * 3) & 255;
}
static int pat_alpha(int x, int y) { return (x * 17 + y * 37) & 255; }
static int pat_gray(int x, int y) { return (x * 20 + y * 9) & 255; }
static void pal(int i, int c[3])
{
    c[0] = i * 16;
    c[1] = 255 - i * 16;
    c[2] = (i * i) & 255;
}

static const uint8_t BG[3] = {0, 128, 255};

static int blend(int c, int a, int bg) { return (c * a + bg * (255 - a) + 127) / 255; }

typedef void (*expect_fn)(int x, int y, int alpha_mode, int out[3]);

static void exp_rgb(int x, int y, int m, int o[3]) { pat_rgb(x, y, o); }
static void exp_gray(int x, int y, int m, int o[3]) { o[0] = o[1] = o[2] = pat_gray(x, y); }
static void exp_gray1(int x, int y, int m, int o[3]) { o[0] = o[1] = o[2] = ((x + y) & 1) * 255; }
static void exp_rgba(int x, int y, int m, int o[3])
{
    pat_rgb(x, y, o);
    if (m == LOOM_ALPHA_COMPOSITE)
        for (int c = 0; c < 3; c++) o[c] = blend(o[c], pat_alpha(x, y), BG[c]);
}
static void exp_gray_alpha(int x, int y, int m, int o[3])
{
    exp_gray(x, y, m, o);
    if (m == LOOM_ALPHA_COMPOSITE)
        for (int c = 0; c < 3; c++) o[c] = blend(o[c], pat_alpha(x, y), BG[c]);
}
static void exp_palette(int x, int y, int m, int o[3]) { pal((x + 2 * y) % 16, o); }
static void exp_palette_trns(int x, int y, int m, int o[3])
{
    int i = (x + 2 * y) % 16;
    pal(i, o);
    if (m == LOOM_ALPHA_COMPOSITE)
        for (int c = 0; c < 3; c++) o[c] = blend(o[c], i * 17, BG[c]);
}
static void exp_rgb_trns(int x, int y, int m, int o[3])
{
    if ((x + y) % 5 == 0) {
        int key[3] = {10, 20, 30};
        for (int c = 0; c < 3; c++) o[c] = m == LOOM_ALPHA_COMPOSITE ? BG[c] : key[c];
    } else pat_rgb(x, y, o);
}

static void exp_gray_trns(int x, int y, int m, int o[3])
{
    if ((x + 2 * y) % 4 == 0) {
        for (int c = 0; c < 3; c++) o[c] = m == LOOM_ALPHA_COMPOSITE ? BG[c] : 0;
    } else {
        int g = pat_gray(x, y);
        o[0] = o[1] = o[2] = g > 1 ? g : 1;
    }
}

static void check_png(const char *name, expect_fn fn)
{
    for (int mode = 0; mode < 2; mode++) {
        loom_image_params p = loom_image_default_params();
        p.alpha = mode;
        memcpy(p.background, BG, 3);
        loom_image img;
        char err[256], path[256];
        snprintf(path, sizeof path, D "%s", name);
        int rc = loom_image_load(path, p, &img, err, sizeof err);
        CHECK(rc == 0, "%s: %s", name, err);
        if (rc) continue;
        CHECK(img.width == W && img.height == H, "%s: size %dx%d", name, img.width, img.height);
        int bad = 0, worst = 0;
        for (int y = 0; y < H && img.width == W; y++)
            for (int x = 0; x < W; x++) {
                int e[3];
                fn(x, y, mode, e);
                for (int c = 0; c < 3; c++) {
                    int d = abs(e[c] - img.rgb[(y * W + x) * 3 + c]);
                    if (d > worst) worst = d;
                    if (d > 0) bad++;
                }
            }
        CHECK(bad == 0, "%s (alpha mode %d): %d samples differ, worst by %d", name, mode, bad, worst);
        loom_image_free(&img);
        CHECK(img.rgb == NULL && img.width == 0, "%s: free zeroes the image", name);
    }
}

/* JPEG test card: red | green over blue | white, 32x16 upright. */
static void check_card(const char *name, const loom_image *img, int gray, int tol)
{
    static const int col[4][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {255, 255, 255}};
    CHECK(img->width == 32 && img->height == 16, "%s: size %dx%d, want 32x16", name, img->width, img->height);
    if (img->width != 32 || img->height != 16) return;
    int worst = 0;
    for (int q = 0; q < 4; q++) {
        int cx = (q % 2) * 16 + 8, cy = (q / 2) * 8 + 4;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -2; dx <= 2; dx++)
                for (int c = 0; c < 3; c++) {
                    int want = col[q][c];
                    if (gray) want = (col[q][0] + col[q][1] + col[q][2]) / 3;
                    int d = abs(want - img->rgb[((cy + dy) * 32 + cx + dx) * 3 + c]);
                    if (d > worst) worst = d;
                }
    }
    CHECK(worst <= tol, "%s: quadrant colours off by %d (tolerance %d)", name, worst, tol);
}

static void check_jpeg(const char *name, int gray, int tol)
{
    char path[256], err[256];
    snprintf(path, sizeof path, D "%s", name);
    loom_image img;
    int rc = loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
    CHECK(rc == 0, "%s: %s", name, err);
    if (rc == 0) check_card(name, &img, gray, tol);
    loom_image_free(&img);
}

static void check_bad(const char *name, loom_image_params p, int want_status, const char *want_text)
{
    char path[256], err[256] = "";
    snprintf(path, sizeof path, D "%s", name);
    loom_image img = {1, 1, (uint8_t *)1};   /* garbage: must be cleared on failure */
    int rc = loom_image_load(path, p, &img, err, sizeof err);
    CHECK(rc == want_status, "%s: status %d (%s), want %d; message: %s", name, rc, loom_status_str(rc),
          want_status, err);
    CHECK(img.rgb == NULL && img.width == 0, "%s: output not cleared on failure", name);
    const char *msg = strncmp(err, path, strlen(path)) == 0 ? err + strlen(path) : err;
    CHECK(strstr(msg, want_text) != NULL, "%s: message '%s' lacks '%s'", name, err, want_text);
    CHECK(strstr(err, name) != NULL, "%s: message '%s' does not name the file", name, err);
}

/* Every proper prefix of a valid file must fail cleanly (no crash, no leak, no success). */
static void check_prefixes(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, D "%s", name);
    size_t n = 0;
    uint8_t *b = read_file(path, &n);
    CHECK(b && n > 0, "%s: cannot read fixture", name);
    if (!b) return;
    int ok = 0;
    loom_image_params p = loom_image_default_params();
    for (size_t k = 0; k < n; k++) {
        loom_image img;
        lm_error e = {0};
        if (lm_image_decode(b, k, &p, &img, &e) == 0) {
            ok++;
            loom_image_free(&img);
        }
    }
    CHECK(ok == 0, "%s: %d truncated prefixes decoded without error", name, ok);
    loom_image img;
    lm_error e = {0};
    CHECK(lm_image_decode(b, n, &p, &img, &e) == 0, "%s: full file: %s", name, e.msg);
    loom_image_free(&img);
    free(b);
}

static void test_orientation(void)
{
    char path[256], err[256];
    for (int o = 1; o <= 8; o++) {
        snprintf(path, sizeof path, D "exif_orient%d.jpg", o);
        size_t n = 0;
        uint8_t *b = read_file(path, &n);
        CHECK(b != NULL, "%s missing", path);
        if (!b) continue;
        CHECK(lm_jpeg_exif_orientation(b, n) == o, "%s: parsed orientation %d", path, lm_jpeg_exif_orientation(b, n));
        free(b);
        loom_image img;
        int rc = loom_image_load(path, loom_image_default_params(), &img, err, sizeof err);
        CHECK(rc == 0, "%s: %s", path, err);
        if (rc == 0) check_card(path, &img, 0, 6);
        loom_image_free(&img);
        /* without applying it, the stored (sideways for 5..8) size comes back */
        loom_image_params p = loom_image_default_params();
        p.apply_orientation = 0;
        rc = loom_image_load(path, p, &img, err, sizeof err);
        CHECK(rc == 0 && img.width == (o >= 5 ? 16 : 32), "%s unoriented: %dx%d", path, img.width, img.height);
        loom_image_free(&img);
    }
    loom_image img;
    int rc = loom_image_load(D "exif_bogus_offset.jpg", loom_image_default_params(), &img, err, sizeof err);
    CHECK(rc == 0, "exif_bogus_offset.jpg: %s", err);
    if (rc == 0) check_card("exif_bogus_offset.jpg", &img, 0, 8);
    loom_image_free(&img);
    /* hand-built APP1 segments with lengths/offsets that lie */
    uint8_t seg[] = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x40 /* claims 64 bytes, has 20 */, 'E', 'x', 'i', 'f', 0, 0,
                     'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0};
    CHECK(lm_jpeg_exif_orientation(seg, sizeof seg) == 1, "lying APP1 length must be ignored");
    uint8_t seg2[] = {0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x16, 'E', 'x', 'i', 'f', 0, 0,
                      'M', 'M', 0, 42, 0, 0, 0, 8, 0xFF, 0xFF /* 65535 entries */, 0x01, 0x12};
    CHECK(lm_jpeg_exif_orientation(seg2, sizeof seg2) == 1, "IFD count past the end must be ignored");
}

static void test_bad_input(void)
{
    loom_image_params p = loom_image_default_params();
    check_bad("bad_truncated.png", p, LOOM_ERR_FORMAT, "truncated");
    check_bad("bad_crc.png", p, LOOM_ERR_FORMAT, "CRC");
    check_bad("bad_idat.png", p, LOOM_ERR_FORMAT, "IDAT");
    check_bad("bad_zlib.png", p, LOOM_ERR_FORMAT, "PNG");
    check_bad("not_an_image.png", p, LOOM_ERR_FORMAT, "not a PNG or JPEG");
    check_bad("empty.png", p, LOOM_ERR_FORMAT, "empty");
    check_bad("zero_width.png", p, LOOM_ERR_FORMAT, "IHDR");
    check_bad("huge.png", p, LOOM_ERR_LIMIT, "max_pixels");
    check_bad("huge.png", p, LOOM_ERR_LIMIT, "100000x100000");
    check_bad("bad_truncated.jpg", p, LOOM_ERR_FORMAT, "JPEG");
    check_bad("bad_data.jpg", p, LOOM_ERR_FORMAT, "JPEG");
    check_bad("bad_scan.jpg", p, LOOM_ERR_FORMAT, "JPEG");
    check_bad("huge.jpg", p, LOOM_ERR_LIMIT, "max_pixels");
    check_bad("no_such_file.png", p, LOOM_ERR_IO, "No such file");
    loom_image_params small = p;
    small.max_pixels = W * H - 1;
    check_bad("rgb8.png", small, LOOM_ERR_LIMIT, "max_pixels");
    small.max_pixels = 32 * 16 - 1;
    check_bad("baseline420.jpg", small, LOOM_ERR_LIMIT, "max_pixels");
    /* a zeroed params struct still has the default limit (0 means default, not unlimited) */
    loom_image_params zero;
    memset(&zero, 0, sizeof zero);
    check_bad("huge.png", zero, LOOM_ERR_LIMIT, "67108864");
    /* other formats are named */
    loom_image img;
    char err[256];
    CHECK(loom_image_decode("GIF89a....", 10, p, &img, err, sizeof err) == LOOM_ERR_UNSUPPORTED &&
          strstr(err, "GIF"), "GIF: %s", err);
    check_prefixes("rgb8.png");
    check_prefixes("rgba8_interlaced.png");
    check_prefixes("baseline420.jpg");
    check_prefixes("progressive.jpg");
}

static int count_dir(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void test_write_roundtrip(void)
{
    char dir[] = "/tmp/loom_test_image_XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char path[300], err[256];
    snprintf(path, sizeof path, "%s/out.png", dir);
    uint8_t buf[5 * 40];   /* 9x5 pixels with a 40-byte stride */
    for (int i = 0; i < (int)sizeof buf; i++) buf[i] = (uint8_t)(i * 7 + 3);
    loom_image img, back;
    CHECK(loom_image_from_rgb(buf, 9, 5, 40, &img, err, sizeof err) == 0, "from_rgb: %s", err);
    CHECK(loom_image_from_rgb(buf, 9, 5, 20, &back, err, sizeof err) == LOOM_ERR_INVALID_ARG,
          "stride < width*3 must fail");
    const char *text[] = {"prompt", "a red square on a blue field", "seed", "42", "model", "loom-tiny", NULL};
    CHECK(loom_image_save_png(&img, path, text, err, sizeof err) == 0, "save: %s", err);
    CHECK(count_dir(dir) == 1, "temporary file left behind (%d entries)", count_dir(dir));
    /* overwrite in place (rename over an existing file) */
    CHECK(loom_image_save_png(&img, path, text, err, sizeof err) == 0, "save again: %s", err);
    CHECK(count_dir(dir) == 1, "after overwrite: %d entries", count_dir(dir));
    int rc = loom_image_load(path, loom_image_default_params(), &back, err, sizeof err);
    CHECK(rc == 0, "load back: %s", err);
    if (rc == 0) {
        int same = back.width == 9 && back.height == 5;
        for (int y = 0; same && y < 5; y++) same = memcmp(back.rgb + y * 27, buf + y * 40, 27) == 0;
        CHECK(same, "round trip pixels differ");
    }
    char **t = NULL;
    int n = 0;
    CHECK(loom_png_read_text(path, &t, &n, err, sizeof err) == 0, "read text: %s", err);
    CHECK(n == 3, "text pairs: %d", n);
    for (int i = 0; t && i < 3 && i < n; i++)
        CHECK(strcmp(t[2 * i], text[2 * i]) == 0 && strcmp(t[2 * i + 1], text[2 * i + 1]) == 0,
              "text %d: %s=%s", i, t[2 * i], t[2 * i + 1]);
    CHECK(t && t[2 * n] == NULL, "text list not NULL-terminated");
    free(t);
    /* text from broken PNGs: an error, no leak (ASan), no partial list */
    const char *broken[] = {D "bad_truncated.png", D "bad_idat.png", D "bad_crc.png", D "not_an_image.png"};
    for (int i = 0; i < 4; i++) {
        t = (char **)1;
        CHECK(loom_png_read_text(broken[i], &t, &n, err, sizeof err) < 0 && t == NULL && n == 0,
              "text from %s: %s", broken[i], err);
    }
    loom_image_free(&back);
    /* errors: a missing directory, a bad key, an empty image */
    CHECK(loom_image_save_png(&img, "/nonexistent_dir_loom/x.png", NULL, err, sizeof err) == LOOM_ERR_IO &&
          strstr(err, "/nonexistent_dir_loom/x.png"), "missing dir: %s", err);
    const char *badkey[] = {"", "v", NULL};
    CHECK(loom_image_save_png(&img, path, badkey, err, sizeof err) == LOOM_ERR_INVALID_ARG, "empty key: %s", err);
    loom_image empty = {0};
    CHECK(loom_image_save_png(&empty, path, NULL, err, sizeof err) == LOOM_ERR_INVALID_ARG, "empty image: %s", err);
    CHECK(count_dir(dir) == 1, "failed writes left files (%d entries)", count_dir(dir));
    loom_image_free(&img);
    loom_image_free(&img);   /* twice is fine */
    loom_image_free(NULL);
    unlink(path);
    rmdir(dir);
}

/* loom_image_mirror: left and right swapped in every row, the middle column of an odd width
 * kept; twice gives the picture back; an empty image is left alone. */
static void test_mirror(void)
{
    uint8_t rgb[2][3][3];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++) rgb[y][x][c] = (uint8_t)(100 * y + 10 * x + c);
    loom_image img = {0};
    char err[256];
    CHECK(loom_image_from_rgb(&rgb[0][0][0], 3, 2, 0, &img, err, sizeof err) == 0, "%s", err);
    if (!img.rgb) return;
    loom_image_mirror(&img);
    int ok = 1;
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 3; x++)
            for (int c = 0; c < 3; c++) ok &= img.rgb[(y * 3 + x) * 3 + c] == rgb[y][2 - x][c];
    CHECK(ok, "mirror: pixel (x, y) is the picture's (width-1-x, y)");
    loom_image_mirror(&img);
    CHECK(!memcmp(img.rgb, rgb, sizeof rgb), "mirror twice: the picture");
    loom_image_free(&img);
    loom_image_mirror(&img);
    loom_image_mirror(NULL);
    CHECK(img.rgb == NULL, "mirror of an empty image");
}

int main(void)
{
    test_mirror();
    check_png("rgb8.png", exp_rgb);
    check_png("rgb16.png", exp_rgb);
    check_png("rgb8_interlaced.png", exp_rgb);
    check_png("gray8.png", exp_gray);
    check_png("gray16.png", exp_gray);
    check_png("gray1.png", exp_gray1);
    check_png("gray_alpha8.png", exp_gray_alpha);
    check_png("rgba8.png", exp_rgba);
    check_png("rgba16.png", exp_rgba);
    check_png("rgba8_interlaced.png", exp_rgba);
    check_png("palette8.png", exp_palette);
    check_png("palette4_trns.png", exp_palette_trns);
    check_png("rgb8_trns.png", exp_rgb_trns);
    check_png("rgb16_trns.png", exp_rgb_trns);
    check_png("gray8_trns.png", exp_gray_trns);
    check_jpeg("baseline420.jpg", 0, 8);
    check_jpeg("baseline444.jpg", 0, 3);
    check_jpeg("progressive.jpg", 0, 8);
    check_jpeg("gray.jpg", 1, 3);
    check_jpeg("cmyk.jpg", 0, 6);
    test_orientation();
    test_bad_input();
    test_write_roundtrip();
    return finish();
}

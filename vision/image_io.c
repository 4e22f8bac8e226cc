/*
 * PNG and JPEG decoding to RGB8, PNG writing with tEXt metadata.
 *
 * Transparency (PNG alpha channel or tRNS): composited over params.background (default)
 * or dropped (params.alpha = LOOM_ALPHA_DROP). 16-bit samples are scaled to 8 bits with
 * rounding (png_set_scale_16). JPEG CMYK/YCCK follows the Adobe convention used by
 * Photoshop and every common decoder: with an Adobe APP14 marker the samples are stored
 * inverted, so R = C·K/255; without it R = (255−C)(255−K)/255.
 */
#include <errno.h>
#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "lib/core/outfile.h"
#include "vision/image.h"

#define PNG_SIG_LEN 8

loom_image_params loom_image_default_params(void)
{
    loom_image_params p;
    memset(&p, 0, sizeof p);
    p.max_pixels        = (int64_t)64 << 20;
    p.alpha             = LOOM_ALPHA_COMPOSITE;
    p.background[0]     = p.background[1] = p.background[2] = 255;
    p.apply_orientation = 1;
    return p;
}

lm_image_format lm_image_sniff(const uint8_t *b, size_t n)
{
    static const uint8_t png_sig[PNG_SIG_LEN] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= PNG_SIG_LEN && memcmp(b, png_sig, PNG_SIG_LEN) == 0) return LM_IMAGE_PNG;
    if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return LM_IMAGE_JPEG;
    if (n >= 6 && (memcmp(b, "GIF87a", 6) == 0 || memcmp(b, "GIF89a", 6) == 0)) return LM_IMAGE_GIF;
    if (n >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0) return LM_IMAGE_WEBP;
    if (n >= 2 && b[0] == 'B' && b[1] == 'M') return LM_IMAGE_BMP;
    return LM_IMAGE_UNKNOWN;
}

int lm_image_alloc(loom_image *out, int w, int h, lm_error *err)
{
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0) return lm_fail(err, LOOM_ERR_INVALID_ARG, "image size %dx%d is empty", w, h);
    if ((size_t)w > SIZE_MAX / 3 / (size_t)h)
        return lm_fail(err, LOOM_ERR_LIMIT, "image size %dx%d needs more than the %zu bytes a buffer can hold", w, h, SIZE_MAX);
    out->rgb = malloc((size_t)w * (size_t)h * 3);
    if (!out->rgb) return lm_fail(err, LOOM_ERR_NO_MEMORY, "no memory for a %dx%d image", w, h);
    out->width  = w;
    out->height = h;
    return 0;
}

void loom_image_free(loom_image *img)
{
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

void loom_image_mirror(loom_image *img)
{
    if (!img || !img->rgb) return;
    for (int y = 0; y < img->height; y++) {
        uint8_t *row = img->rgb + (size_t)y * (size_t)img->width * 3;
        for (int a = 0, b = img->width - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                const uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

/* params.max_pixels, with 0 (or less: a zeroed struct) meaning the default. */
static uint64_t pixel_limit(const loom_image_params *p)
{
    return p->max_pixels > 0 ? (uint64_t)p->max_pixels : (uint64_t)64 << 20;
}

static int check_pixels(const char *fmt, uint64_t w, uint64_t h, const loom_image_params *p,
                        lm_error *err)
{
    if (w == 0 || h == 0)
        return lm_fail(err, LOOM_ERR_FORMAT, "%s header says the image is %llux%llu (empty)", fmt,
                       (unsigned long long)w, (unsigned long long)h);
    if (w > INT_MAX || h > INT_MAX || w * h > pixel_limit(p))
        return lm_fail(err, LOOM_ERR_LIMIT,
                       "%s image is %llux%llu = %llu pixels, over the limit of %lld "
                       "(loom_image_params.max_pixels)", fmt,
                       (unsigned long long)w, (unsigned long long)h, (unsigned long long)(w * h),
                       (long long)pixel_limit(p));
    return 0;
}

/* Blend n pixels of RGBA (4 bytes each) into RGB (3 bytes each); dst may equal src
 * (forward in-place compaction is safe since dst never runs ahead of src). */
static void rgba_to_rgb(uint8_t *dst, const uint8_t *src, size_t n, const loom_image_params *p)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src + 4 * i;
        uint8_t r = s[0], g = s[1], b = s[2], a = s[3];
        if (p->alpha == LOOM_ALPHA_COMPOSITE && a != 255) {
            unsigned ia = 255u - a;
            r = (uint8_t)((r * a + p->background[0] * ia + 127) / 255);
            g = (uint8_t)((g * a + p->background[1] * ia + 127) / 255);
            b = (uint8_t)((b * a + p->background[2] * ia + 127) / 255);
        }
        dst[3 * i] = r; dst[3 * i + 1] = g; dst[3 * i + 2] = b;
    }
}

/* ---------------------------------------------------------------------------------------
 * PNG decode. All state lives in png_ctx (owned by the caller of png_decode_body, so it is
 * not a local of the function that calls setjmp and survives longjmp intact).
 * ------------------------------------------------------------------------------------- */
typedef struct png_ctx {
    const uint8_t *buf;
    size_t         size, pos;
    char           msg[200];     /* libpng's error text                          */
    uint8_t       *pix;          /* [h][w][ch] decoded rows, owned until handed off */
    png_bytep     *rows;         /* [h] pointers into pix                        */
    int            w, h, ch;     /* ch: 3 (RGB) or 4 (RGBA)                      */
    int            status;       /* set before a non-libpng failure return       */
} png_ctx;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg)
{
    lm_log(LOOM_LOG_DEBUG, "libpng warning: %s", msg);
}

static void png_read_mem(png_structp png, png_bytep out, png_size_t n)
{
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->size - c->pos) png_error(png, "file is truncated");
    memcpy(out, c->buf + c->pos, n);
    c->pos += n;
}

static int png_decode_body(png_ctx *c, png_structp png, png_infop info,
                           const loom_image_params *p, lm_error *err)
{
    if (setjmp(png_jmpbuf(png)))
        return lm_fail(err, LOOM_ERR_FORMAT, "PNG: %s", c->msg[0] ? c->msg : "decode error");

    png_set_read_fn(png, c, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int rc = check_pixels("PNG", w, h, p, err);
    if (rc < 0) return rc;

    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (depth == 16) png_set_scale_16(png);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    c->ch = png_get_channels(png, info);
    if (png_get_bit_depth(png, info) != 8 || (c->ch != 3 && c->ch != 4))
        return lm_fail(err, LOOM_ERR_UNSUPPORTED, "PNG: unexpected layout after conversion "
                       "(%d channels, %d bits)", c->ch, png_get_bit_depth(png, info));
    c->w = (int)w;
    c->h = (int)h;
    size_t stride = (size_t)w * (size_t)c->ch;   /* fits: w*h <= max_pixels, w,h <= INT_MAX */
    if (png_get_rowbytes(png, info) != stride)
        return lm_fail(err, LOOM_ERR_FORMAT, "PNG: unexpected row size");
    if (stride > SIZE_MAX / h) return lm_fail(err, LOOM_ERR_LIMIT, "PNG: %ux%u image of %zu-byte rows needs more than "
                                                 "the %zu bytes a buffer can hold", (unsigned)w, (unsigned)h, stride, SIZE_MAX);
    c->pix  = malloc(stride * h);
    c->rows = malloc(sizeof *c->rows * h);
    if (!c->pix || !c->rows)
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG: no memory for %ux%u pixels", w, h);
    for (png_uint_32 y = 0; y < h; y++) c->rows[y] = c->pix + stride * y;
    png_read_image(png, c->rows);
    png_read_end(png, NULL);   /* checks the CRC of the chunks after IDAT too */
    return 0;
}

static int png_decode(const uint8_t *buf, size_t size, const loom_image_params *p,
                      loom_image *out, lm_error *err)
{
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.buf  = buf;
    c.size = size;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_error, png_on_warning);
    png_infop info  = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG: no memory for the decoder");
    }
    int rc = png_decode_body(&c, png, info, p, err);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    if (rc < 0) {
        free(c.pix);
        return rc;
    }
    size_t n = (size_t)c.w * (size_t)c.h;
    if (c.ch == 4) {
        rgba_to_rgb(c.pix, c.pix, n, p);
        uint8_t *shrunk = realloc(c.pix, n * 3);
        if (shrunk) c.pix = shrunk;
    }
    out->width  = c.w;
    out->height = c.h;
    out->rgb    = c.pix;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * JPEG: marker scan for EXIF orientation and the Adobe marker, then TurboJPEG.
 * ------------------------------------------------------------------------------------- */
typedef struct jpeg_markers {
    int orientation;  /* EXIF 1..8, 1 when absent  */
    int adobe;        /* an APP14 "Adobe" segment  */
} jpeg_markers;

static unsigned rd16(const uint8_t *b, int le) { return le ? b[0] | b[1] << 8 : b[0] << 8 | b[1]; }
static uint32_t rd32(const uint8_t *b, int le)
{
    return le ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
              : (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* Orientation tag (0x0112) from IFD0 of a TIFF block t[0..n). Every offset is checked. */
static int exif_orientation(const uint8_t *t, size_t n)
{
    if (n < 8) return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I') le = 1;
    else if (t[0] == 'M' && t[1] == 'M') le = 0;
    else return 1;
    if (rd16(t + 2, le) != 42) return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd > n || n - ifd < 2) return 1;
    unsigned count = rd16(t + ifd, le);
    size_t   pos   = (size_t)ifd + 2;
    for (unsigned i = 0; i < count; i++, pos += 12) {
        if (pos > n || n - pos < 12) return 1;
        const uint8_t *e = t + pos;
        if (rd16(e, le) != 0x0112) continue;
        unsigned type = rd16(e + 2, le);
        uint32_t cnt  = rd32(e + 4, le);
        if (type != 3 /* SHORT */ || cnt < 1) return 1;
        unsigned v = rd16(e + 8, le);   /* a SHORT is left-justified in the value field */
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

/* Walk the segments between SOI and SOS. Stops quietly at anything malformed: TurboJPEG
 * will report the real error. */
static jpeg_markers jpeg_scan_markers(const uint8_t *b, size_t n)
{
    jpeg_markers m = {1, 0};
    size_t pos = 2;
    int found_exif = 0;
    while (pos + 4 <= n) {
        if (b[pos] != 0xFF) break;
        uint8_t marker = b[pos + 1];
        if (marker == 0xFF) { pos++; continue; }               /* fill byte */
        if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
            pos += 2;
            continue;
        }
        if (marker == 0xDA || marker == 0xD9) break;           /* start of scan / end */
        size_t len = rd16(b + pos + 2, 0);                     /* includes the 2 length bytes */
        if (len < 2 || len > n - pos - 2) break;
        const uint8_t *seg = b + pos + 4;
        size_t slen = len - 2;
        if (marker == 0xE1 && !found_exif && slen >= 6 && memcmp(seg, "Exif\0\0", 6) == 0) {
            m.orientation = exif_orientation(seg + 6, slen - 6);
            found_exif = 1;
        } else if (marker == 0xEE && slen >= 5 && memcmp(seg, "Adobe", 5) == 0) {
            m.adobe = 1;
        }
        pos += 2 + len;
    }
    return m;
}

int lm_jpeg_exif_orientation(const uint8_t *buf, size_t size)
{
    if (size < 4 || buf[0] != 0xFF || buf[1] != 0xD8) return 1;
    return jpeg_scan_markers(buf, size).orientation;
}

static int jpeg_decode(const uint8_t *buf, size_t size, const loom_image_params *p,
                       loom_image *out, lm_error *err)
{
    jpeg_markers mk = jpeg_scan_markers(buf, size);
    tjhandle tj = tjInitDecompress();
    if (!tj) return lm_fail(err, LOOM_ERR_NO_MEMORY, "JPEG: cannot create a TurboJPEG decoder");
    int rc = 0, w = 0, h = 0, subsamp = 0, cs = 0;
    uint8_t *cmyk = NULL;
    if (tjDecompressHeader3(tj, buf, (unsigned long)size, &w, &h, &subsamp, &cs) < 0) {
        rc = lm_fail(err, LOOM_ERR_FORMAT, "JPEG: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if ((rc = check_pixels("JPEG", (uint64_t)(w > 0 ? w : 0), (uint64_t)(h > 0 ? h : 0), p, err)) < 0)
        goto done;
    if ((rc = lm_image_alloc(out, w, h, err)) < 0) goto done;
    /* Strict: a warning (premature end of data, corrupt entropy data) is an error, and
     * progressive files with absurd scan counts are refused. */
    int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
    int is_cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    uint8_t *dst = out->rgb;
    if (is_cmyk) {
        cmyk = malloc((size_t)w * (size_t)h * 4);
        if (!cmyk) { rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "JPEG: no memory for CMYK"); goto done; }
        dst = cmyk;
    }
    if (tjDecompress2(tj, buf, (unsigned long)size, dst, w, 0, h, is_cmyk ? TJPF_CMYK : TJPF_RGB,
                      flags) < 0) {
        rc = lm_fail(err, LOOM_ERR_FORMAT, "JPEG: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if (is_cmyk) {
        size_t np = (size_t)w * (size_t)h;
        for (size_t i = 0; i < np; i++) {
            unsigned c = cmyk[4 * i], m = cmyk[4 * i + 1], y = cmyk[4 * i + 2], k = cmyk[4 * i + 3];
            if (!mk.adobe) { c = 255 - c; m = 255 - m; y = 255 - y; k = 255 - k; }
            out->rgb[3 * i]     = (uint8_t)((c * k + 127) / 255);
            out->rgb[3 * i + 1] = (uint8_t)((m * k + 127) / 255);
            out->rgb[3 * i + 2] = (uint8_t)((y * k + 127) / 255);
        }
    }
    if (p->apply_orientation && mk.orientation != 1)
        rc = lm_image_orient(out, mk.orientation, err);
done:
    free(cmyk);
    tjDestroy(tj);
    if (rc < 0) loom_image_free(out);
    return rc;
}

int lm_image_orient(loom_image *img, int o, lm_error *err)
{
    if (o < 1 || o > 8) return lm_fail(err, LOOM_ERR_INVALID_ARG, "EXIF orientation %d not in 1..8", o);
    if (o == 1) return 0;
    const int w = img->width, h = img->height;
    const int swap = o >= 5;               /* 5..8 transpose the axes */
    loom_image t;
    int rc = lm_image_alloc(&t, swap ? h : w, swap ? w : h, err);
    if (rc < 0) return rc;
    /* Source pixel (x, y) goes to (dx, dy) in the upright image. */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int dx, dy;
            switch (o) {
            case 2:  dx = w - 1 - x; dy = y;         break; /* mirror horizontal */
            case 3:  dx = w - 1 - x; dy = h - 1 - y; break; /* rotate 180        */
            case 4:  dx = x;         dy = h - 1 - y; break; /* mirror vertical   */
            case 5:  dx = y;         dy = x;         break; /* transpose         */
            case 6:  dx = h - 1 - y; dy = x;         break; /* rotate 90 CW      */
            case 7:  dx = h - 1 - y; dy = w - 1 - x; break; /* transverse        */
            default: dx = y;         dy = w - 1 - x; break; /* 8: rotate 90 CCW  */
            }
            memcpy(t.rgb + ((size_t)dy * t.width + dx) * 3, img->rgb + ((size_t)y * w + x) * 3, 3);
        }
    }
    loom_image_free(img);
    *img = t;
    return 0;
}

/* --------------------------------------------------------------------------------------- */

int lm_image_decode(const uint8_t *buf, size_t size, const loom_image_params *p,
                    loom_image *out, lm_error *err)
{
    memset(out, 0, sizeof *out);
    if (!buf && size) return lm_fail(err, LOOM_ERR_INVALID_ARG, "image data is NULL");
    if (size == 0) return lm_fail(err, LOOM_ERR_FORMAT, "image data is empty (0 bytes)");
    switch (lm_image_sniff(buf, size)) {
    case LM_IMAGE_PNG:  return png_decode(buf, size, p, out, err);
    case LM_IMAGE_JPEG: return jpeg_decode(buf, size, p, out, err);
    case LM_IMAGE_GIF:  return lm_fail(err, LOOM_ERR_UNSUPPORTED, "GIF images are not supported (PNG or JPEG only)");
    case LM_IMAGE_WEBP: return lm_fail(err, LOOM_ERR_UNSUPPORTED, "WebP images are not supported (PNG or JPEG only)");
    case LM_IMAGE_BMP:  return lm_fail(err, LOOM_ERR_UNSUPPORTED, "BMP images are not supported (PNG or JPEG only)");
    default: break;
    }
    char shown[9] = {0};
    for (size_t i = 0; i < 8 && i < size; i++) shown[i] = buf[i] >= 32 && buf[i] < 127 ? (char)buf[i] : '.';
    return lm_fail(err, LOOM_ERR_FORMAT, "not a PNG or JPEG image (starts with \"%s\")", shown);
}

int lm_image_load(const char *path, const loom_image_params *p, loom_image *out, lm_error *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return lm_fail(err, LOOM_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return lm_fail(err, LOOM_ERR_IO, "%s: not a regular file", path);
    }
    const uint64_t lim = pixel_limit(p);
    const uint64_t max_bytes = lim > (UINT64_MAX >> 4) ? UINT64_MAX : lim * 8 + ((uint64_t)16 << 20);
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return lm_fail(err, LOOM_ERR_LIMIT, "%s: file is %lld bytes, more than an image within "
                       "the pixel limit can need (%llu)", path, (long long)st.st_size,
                       (unsigned long long)max_bytes);
    }
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return lm_fail(err, LOOM_ERR_NO_MEMORY, "%s: no memory to read %zu bytes", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int ferr = ferror(f);
    fclose(f);
    if (got != n || ferr) {
        free(buf);
        return lm_fail(err, LOOM_ERR_IO, "%s: read failed", path);
    }
    int rc = lm_image_decode(buf, n, p, out, err);
    free(buf);
    if (rc < 0 && err) {   /* prefix the path so the message says which file */
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        lm_fail(err, rc, "%s: %s", path, tmp);
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * PNG write (atomic) and text readback.
 * ------------------------------------------------------------------------------------- */
typedef struct png_wctx {
    char msg[200];
} png_wctx;

static void png_on_werror(png_structp png, png_const_charp msg)
{
    png_wctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg);
    png_longjmp(png, 1);
}

static int png_write_body(png_wctx *c, png_structp png, png_infop info, FILE *f,
                          const loom_image *img, png_textp text, int n_text, lm_error *err)
{
    if (setjmp(png_jmpbuf(png)))
        return lm_fail(err, LOOM_ERR_IO, "PNG write: %s", c->msg);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (n_text > 0) png_set_text(png, info, text, n_text);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * 3;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->rgb + stride * (size_t)y);
    png_write_end(png, info);
    return 0;
}

int lm_png_write(const loom_image *img, const char *path, const char *const *text, lm_error *err)
{
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0)
        return lm_fail(err, LOOM_ERR_INVALID_ARG, "PNG write %s: the image is empty", path);
    int n_text = 0;
    if (text) {
        while (text[2 * n_text]) {
            const char *k = text[2 * n_text], *v = text[2 * n_text + 1];
            size_t kl = strlen(k);
            if (!v) return lm_fail(err, LOOM_ERR_INVALID_ARG, "PNG text key '%s' has no value (NULL)", k);
            if (kl < 1 || kl > 79)
                return lm_fail(err, LOOM_ERR_INVALID_ARG, "PNG text key '%s' must be 1..79 bytes", k);
            n_text++;
        }
    }
    png_textp tx = NULL;
    if (n_text) {
        tx = calloc((size_t)n_text, sizeof *tx);
        if (!tx) return lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG write: no memory");
        for (int i = 0; i < n_text; i++) {
            tx[i].compression = PNG_TEXT_COMPRESSION_NONE;
            tx[i].key         = (png_charp)text[2 * i];
            tx[i].text        = (png_charp)text[2 * i + 1];
            tx[i].text_length = strlen(text[2 * i + 1]);
        }
    }
    lm_outfile o;
    int rc = lm_outfile_open(&o, path, err);
    if (rc < 0) { free(tx); return rc; }
    png_wctx c;
    memset(&c, 0, sizeof c);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, png_on_werror, png_on_warning);
    png_infop info  = png ? png_create_info_struct(png) : NULL;
    if (!info) rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG write: no memory for the encoder");
    else rc = png_write_body(&c, png, info, o.f, img, tx, n_text, err);
    png_destroy_write_struct(&png, &info);
    if (rc < 0) lm_outfile_abort(&o);
    else rc = lm_outfile_commit(&o, 1, err);
    free(tx);
    return rc;
}

typedef struct png_tctx {
    char        msg[200];
    FILE       *f;
    png_textp   text;   /* owned by libpng's info */
    int         n;
    png_bytep   row;    /* one image row, owned here (freed even after a longjmp) */
} png_tctx;

static int png_text_body(png_tctx *c, png_structp png, png_infop info, lm_error *err)
{
    if (setjmp(png_jmpbuf(png))) return lm_fail(err, LOOM_ERR_FORMAT, "PNG: %s", c->msg);
    png_init_io(png, c->f);
    png_read_info(png, info);
    /* text may also follow the image data: skip the rows to reach it */
    png_uint_32 h = png_get_image_height(png, info);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rb = png_get_rowbytes(png, info);
    c->row = malloc(rb ? rb : 1);
    if (!c->row) return lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG: no memory for a row of %zu bytes", rb);
    for (int pass = 0; pass < passes; pass++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, c->row, NULL);
    png_read_end(png, info);
    c->n = png_get_text(png, info, &c->text, NULL);
    return 0;
}

int lm_png_read_text(const char *path, char ***out, int *n_pairs, lm_error *err)
{
    *out = NULL;
    *n_pairs = 0;
    png_tctx c;
    memset(&c, 0, sizeof c);
    c.f = fopen(path, "rb");
    if (!c.f) return lm_fail(err, LOOM_ERR_IO, "%s: %s", path, strerror(errno));
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, png_on_werror, png_on_warning);
    png_infop info  = png ? png_create_info_struct(png) : NULL;
    int rc;
    if (!info) rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG: no memory");
    else rc = png_text_body(&c, png, info, err);
    if (rc == 0) {
        /* one allocation: pointer table, then the strings */
        size_t bytes = sizeof(char *) * (2 * (size_t)c.n + 1);
        for (int i = 0; i < c.n; i++)
            bytes += strlen(c.text[i].key) + 1 + (c.text[i].text ? strlen(c.text[i].text) : 0) + 1;
        char **t = malloc(bytes);
        if (!t) rc = lm_fail(err, LOOM_ERR_NO_MEMORY, "PNG: no memory for text");
        else {
            char *s = (char *)(t + 2 * c.n + 1);
            for (int i = 0; i < c.n; i++) {
                const char *parts[2] = {c.text[i].key, c.text[i].text ? c.text[i].text : ""};
                for (int j = 0; j < 2; j++) {
                    size_t l = strlen(parts[j]) + 1;
                    memcpy(s, parts[j], l);
                    t[2 * i + j] = s;
                    s += l;
                }
            }
            t[2 * c.n] = NULL;
            *out = t;
            *n_pairs = c.n;
        }
    }
    png_destroy_read_struct(&png, &info, NULL);
    free(c.row);
    fclose(c.f);
    if (rc < 0 && err) {
        char tmp[sizeof err->msg];
        snprintf(tmp, sizeof tmp, "%s", err->msg);
        lm_fail(err, rc, "%s: %s", path, tmp);
    }
    return rc;
}

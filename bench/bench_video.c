/* Video decode + sample + convert to RGB: loom against the `ffmpeg` tool doing the same work,
 * measured in the same run on a 60 s 1280x720 30 fps H.264 clip made here with ffmpeg.
 *
 *   bench_video [CLIP]     (default: makes /tmp/loom_bench_720p.mp4 if it is missing)
 *
 * Workloads, all to 224x224 RGB8 (a vision encoder's input):
 *   all frames  every frame (1800)      ffmpeg: -vf scale -f rawvideo rgb24, read by us
 *   2 fps       120 samples             ffmpeg: -vf fps=2,scale …
 *   8 frames    uniform over 60 s       ffmpeg: 8 runs of -ss T -i CLIP -frames:v 1 (input seeking)
 * The ffmpeg runs write raw RGB to a pipe that this program reads and counts, so both sides
 * produce the same bytes in memory. Ratio = ffmpeg time / loom time (> 1: loom is faster). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "include/loom.h"

#define SIDE 224

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Run `cmd`, read its stdout to the end; returns bytes read or -1. */
static long long run_pipe(const char *cmd)
{
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    static char buf[1 << 16];
    long long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) total += (long long)n;
    return pclose(f) == 0 ? total : -1;
}

static double loom_run(const char *clip, int n_frames, double fps, int *got)
{
    loom_video_params p = loom_video_default_params();
    p.n_frames = n_frames;
    p.fps = fps;
    p.width = p.height = SIDE;
    p.max_frames = 4000;
    char err[512];
    loom_video *v = NULL;
    double t0 = now_s();
    int rc = loom_video_sample(clip, p, &v, err, sizeof err);
    double dt = now_s() - t0;
    if (rc) { fprintf(stderr, "loom: %s\n", err); exit(1); }
    *got = loom_video_n_frames(v);
    loom_video_free(&v);
    return dt;
}

static void report(const char *name, int n_loom, double t_loom, long long n_ff, double t_ff)
{
    printf("%-12s loom %5d frames %7.3f s %8.1f frames/s | ffmpeg %5lld frames %7.3f s %8.1f frames/s | ratio %.2fx\n",
           name, n_loom, t_loom, n_loom / t_loom, n_ff, t_ff, n_ff / t_ff, t_ff / t_loom);
}

int main(int argc, char **argv)
{
    const char *clip = argc > 1 ? argv[1] : "/tmp/loom_bench_720p.mp4";
    struct stat st;
    if (stat(clip, &st) != 0) {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -hide_banner -loglevel error -nostdin -y -f lavfi -i testsrc2=s=1280x720:r=30:d=60 "
                 "-c:v libx264 -preset veryfast -g 60 -pix_fmt yuv420p '%s'", clip);
        printf("making %s (60 s, 1280x720, 30 fps, H.264, GOP 60) ...\n", clip);
        fflush(stdout);
        if (system(cmd) != 0) { fprintf(stderr, "ffmpeg failed: %s\n", cmd); return 1; }
    }
    loom_video_info info;
    char err[512];
    if (loom_video_probe(clip, loom_video_default_params(), &info, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    printf("clip: %s, %dx%d, %.3f fps, %.2f s, %lld frames, %s; output %dx%d RGB8; cpus %d\n", clip, info.width,
           info.height, info.fps, info.duration, (long long)info.n_frames, info.codec, SIDE, SIDE, loom_cpu_count());
    const long long frame_bytes = (long long)SIDE * SIDE * 3;
    char cmd[2048];
    int n;
    double tl, tf;
    long long bytes;

    /* all frames */
    tl = loom_run(clip, (int)info.n_frames, 0, &n);
    snprintf(cmd, sizeof cmd, "ffmpeg -hide_banner -loglevel error -nostdin -i '%s' -vf scale=%d:%d -f rawvideo -pix_fmt rgb24 -",
             clip, SIDE, SIDE);
    double t0 = now_s();
    bytes = run_pipe(cmd);
    tf = now_s() - t0;
    if (bytes < 0) { fprintf(stderr, "ffmpeg failed\n"); return 1; }
    report("all frames", n, tl, bytes / frame_bytes, tf);

    /* 2 fps */
    tl = loom_run(clip, 0, 2, &n);
    snprintf(cmd, sizeof cmd,
             "ffmpeg -hide_banner -loglevel error -nostdin -i '%s' -vf fps=2,scale=%d:%d -f rawvideo -pix_fmt rgb24 -",
             clip, SIDE, SIDE);
    t0 = now_s();
    bytes = run_pipe(cmd);
    tf = now_s() - t0;
    if (bytes < 0) { fprintf(stderr, "ffmpeg failed\n"); return 1; }
    report("2 fps", n, tl, bytes / frame_bytes, tf);

    /* 8 frames, uniform: ffmpeg's fastest way is one input-seeking run per frame */
    tl = loom_run(clip, 8, 0, &n);
    t0 = now_s();
    bytes = 0;
    for (int i = 0; i < 8; i++) {
        snprintf(cmd, sizeof cmd,
                 "ffmpeg -hide_banner -loglevel error -nostdin -ss %.6f -i '%s' -frames:v 1 -vf scale=%d:%d -f rawvideo -pix_fmt rgb24 -",
                 (i + 0.5) * info.duration / 8, clip, SIDE, SIDE);
        long long b = run_pipe(cmd);
        if (b < 0) { fprintf(stderr, "ffmpeg failed\n"); return 1; }
        bytes += b;
    }
    tf = now_s() - t0;
    report("8 frames", n, tl, bytes / frame_bytes, tf);
    return 0;
}

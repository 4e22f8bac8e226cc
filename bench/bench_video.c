/* Video decode + sample + convert to RGB: loom against the `ffmpeg` tool doing the same work,
 * measured in the same run on a 60 s 1280x720 30 fps H.264 clip made here with ffmpeg.
 *
 *   bench_video [CLIP [REPS]]   (default: makes /tmp/loom_bench_720p.mp4 if missing; REPS 2)
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "include/loom.h"

#define SIDE 224

/* CPU seconds (user + system) of this process, or of its waited-for children. The machine
 * may be shared, so CPU time is reported next to wall time. */
static double cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

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

typedef struct timing { double wall, cpu; long long frames; } timing;

static timing loom_run(const char *clip, int n_frames, double fps)
{
    loom_video_params p = loom_video_default_params();
    p.n_frames = n_frames;
    p.fps = fps;
    p.width = p.height = SIDE;
    p.max_frames = 4000;
    char err[512];
    loom_video *v = NULL;
    double t0 = now_s(), c0 = cpu_s(RUSAGE_SELF);
    int rc = loom_video_sample(clip, p, &v, err, sizeof err);
    timing t = {now_s() - t0, cpu_s(RUSAGE_SELF) - c0, loom_video_n_frames(v)};
    if (rc) { fprintf(stderr, "loom: %s\n", err); exit(1); }
    loom_video_free(&v);
    return t;
}

/* Run the ffmpeg command lines (one per frame for the seeking case), counting RGB frames. */
static timing ffmpeg_run(char cmds[][1024], int n_cmds)
{
    double t0 = now_s(), c0 = cpu_s(RUSAGE_CHILDREN);
    long long bytes = 0;
    for (int i = 0; i < n_cmds; i++) {
        long long b = run_pipe(cmds[i]);
        if (b < 0) { fprintf(stderr, "ffmpeg failed: %s\n", cmds[i]); exit(1); }
        bytes += b;
    }
    return (timing){now_s() - t0, cpu_s(RUSAGE_CHILDREN) - c0, bytes / ((long long)SIDE * SIDE * 3)};
}

static timing best(timing a, timing b)
{
    return (timing){fmin(a.wall, b.wall), fmin(a.cpu, b.cpu), a.frames};
}

/* Alternate loom and ffmpeg `reps` times and keep each side's best wall and CPU time: the
 * machine may be shared, and alternation spreads the others' load over both sides. */
static void compare(const char *name, int reps, const char *clip, int n_frames, double fps, char cmds[][1024], int n_cmds);

static void report(const char *name, timing l, timing f)
{
    printf("%-10s loom %4lld fr %6.2f s wall %6.2f s cpu %6.1f fr/s | ffmpeg %4lld fr %6.2f s wall %6.2f s cpu %6.1f fr/s"
           " | ratio wall %.2fx cpu %.2fx\n",
           name, l.frames, l.wall, l.cpu, l.frames / l.wall, f.frames, f.wall, f.cpu, f.frames / f.wall, f.wall / l.wall,
           f.cpu / l.cpu);
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
    static char cmds[8][1024];
    const char *ff = "ffmpeg -hide_banner -loglevel error -nostdin";

    snprintf(cmds[0], sizeof cmds[0], "%s -i '%s' -vf scale=%d:%d -f rawvideo -pix_fmt rgb24 -", ff, clip, SIDE, SIDE);
    int reps = argc > 2 ? atoi(argv[2]) : 2;
    if (reps < 1) reps = 1;
    compare("all frames", reps, clip, (int)info.n_frames, 0, cmds, 1);

    snprintf(cmds[0], sizeof cmds[0], "%s -i '%s' -vf fps=2,scale=%d:%d -f rawvideo -pix_fmt rgb24 -", ff, clip, SIDE, SIDE);
    compare("2 fps", reps, clip, 0, 2, cmds, 1);

    /* ffmpeg's fastest way to 8 spread frames: one input-seeking run per frame */
    for (int i = 0; i < 8; i++)
        snprintf(cmds[i], sizeof cmds[i], "%s -ss %.6f -i '%s' -frames:v 1 -vf scale=%d:%d -f rawvideo -pix_fmt rgb24 -", ff,
                 (i + 0.5) * info.duration / 8, clip, SIDE, SIDE);
    compare("8 frames", reps, clip, 8, 0, cmds, 8);
    return 0;
}

static void compare(const char *name, int reps, const char *clip, int n_frames, double fps, char cmds[][1024], int n_cmds)
{
    timing l = loom_run(clip, n_frames, fps), f = ffmpeg_run(cmds, n_cmds);
    for (int r = 1; r < reps; r++) {
        l = best(l, loom_run(clip, n_frames, fps));
        f = best(f, ffmpeg_run(cmds, n_cmds));
    }
    report(name, l, f);
}

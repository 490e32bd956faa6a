/* memlens._sampler: a sampling allocation tracer cheap enough to leave on.
 *
 * Hooks the raw, mem and object allocator domains (PyMem_SetAllocator) and samples
 * allocations by bytes with a Poisson process of mean `interval` bytes: each thread
 * counts down an exponentially distributed number of bytes and the allocation that
 * crosses zero is sampled. An allocation of `size` bytes is therefore sampled with
 * probability p = 1 - exp(-size / interval), and each sample stands for size / p
 * bytes and 1 / p blocks: unbiased estimates of live and allocated bytes per site.
 *
 * A sampled allocation records the Python stack (up to `max_frames`, read from the
 * interpreter's frames without creating frame objects, as tracemalloc does) and
 * goes into a table keyed by pointer, so its free is seen and live bytes fall.
 *
 * Cost on the hot path (see "the hooks"): an allocation subtracts its size from a
 * countdown and tail-jumps to the original allocator (malloc 5 instructions, calloc
 * 7). Under pymalloc a block the mem or object domain samples is served from the raw
 * domain (see divert()), so that its free reaches the raw hook: those domains' frees
 * are not hooked at all, and their realloc counts and tail-jumps (7). A raw free loads
 * one byte of a counting filter and tail-jumps (7). Under PYTHONMALLOC=malloc or
 * pymalloc_debug the mem/object free reads the filter too, and their realloc parks
 * this thread's raw countdown around the call (17). Everything else happens only for
 * sampled blocks, under one mutex, in functions off the fast path.
 *
 * Peak: the estimated live total (the sum over live samples) and its highest value
 * since start() or reset_peak() are kept as samples come and go. The live bytes of
 * every stack at that peak are kept too, copy-on-write: a stack saves its value the
 * first time it changes after a new peak, so reaching a peak costs O(1) and
 * peak_stacks() reads each stack's saved value (or its current one if it has not
 * changed since). Several readers keep their own peaks over this one (heap/peaks.py).
 *
 * Threads and the GIL: the mem and object domains are always called with the GIL
 * held, so they share one process-wide countdown (a plain global; with 3.12's
 * per-interpreter GILs two interpreters could race on it, which skews which
 * allocation is sampled, not the tables). The raw domain may be called without it:
 * its countdown is per thread, and a sample taken without the GIL is not recorded
 * (there is no Python stack to read safely); frees of sampled blocks are seen in
 * every case. Each byte is counted by one countdown only (see Domain.limit), so the
 * two Poisson processes together sample every byte at the same rate. Fork: the
 * mutex is taken around fork() and released in both processes.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030D0000
#error "memlens._sampler reads CPython 3.11/3.12 frames; other versions use the tracemalloc path"
#endif

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE

#include <math.h>
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#define USABLE(p, n) malloc_usable_size(p)
#else
#define USABLE(p, n) (n)
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TLS __thread __attribute__((tls_model("initial-exec")))
#define MAX_FRAMES_LIMIT 128
#define FILTER_BITS 16

/* -- thread-local state ------------------------------------------------------- */
static TLS int tl_ignored; /* a thread whose samples are not recorded (ignore_thread) */
/* The raw domain's countdown: per thread, since the raw domain is also called
 * without the GIL. 0 in a new thread, whose first raw allocation draws it. */
static TLS int tl_init;
static TLS int64_t tl_countdown;
static TLS uint64_t tl_rng;
static TLS uint64_t tl_epoch; /* re-draw after start() changes the interval */
/* The block of the latest mem/object-domain realloc this thread counted itself (see
 * the diverting realloc hook): if that realloc hands it to the raw domain's realloc,
 * the raw hook does not count it again. */
static TLS void *tl_counted;

/* The mem and object domains' countdown: one for the process, since they are only
 * called with the GIL held (a plain global, no TLS access on their fast path). */
static int64_t g_countdown;
static uint64_t g_rng;

/* What a hook's ctx points to: the domain's original allocator, and for the mem
 * and object domains the largest request they serve themselves (see probe_limit):
 * larger ones are handed by the original allocator (pymalloc) to the raw domain,
 * whose hook counts them, so that no block is counted twice. */
typedef struct {
    PyMemAllocatorEx orig;
    size_t limit;
    int domain;
    int divert; /* sampled blocks are served from the raw domain (see divert()) */
} Domain;

/* -- shared state ------------------------------------------------------------- */
typedef struct {
    PyCodeObject *code; /* strong reference */
    int addr; /* byte offset of the instruction; its line is looked up when read */
} Frame;

typedef struct {
    uint64_t hash;
    int nframes;
    double live_bytes, live_blocks, alloc_bytes, alloc_blocks;
    double live_big_bytes; /* live bytes of blocks the C allocator serves (see is_big) */
    uint64_t live_samples, alloc_samples;
    /* live figures at the latest peak, valid when peak_version == S.peak_version */
    double peak_bytes, peak_blocks;
    uint64_t peak_samples, peak_version;
    Frame frames[];
} Stack;

typedef struct {
    uintptr_t ptr; /* 0 = empty */
    uint32_t stack;
    uint8_t domain;
    double bytes, blocks;
    uint64_t seq; /* order of sampling: newer blocks have higher numbers */
} Live;

static struct {
    int installed;
    double interval; /* read without the lock (atomic loads); written under it */
    /* Automatic interval: when auto_div > 0 the interval follows the estimated live
     * total, interval = live_total / auto_div clamped to [auto_min, auto_max]. */
    double auto_div, auto_min, auto_max;
    uint64_t retunes;
    /* Cost governor of the automatic interval: what the sampler costs (its samples
     * and its hooks' fast path) over windows of process CPU; cost_floor is the
     * interval at which that cost would be auto_budget of the window (see
     * auto_retune). win_calls estimates the allocator calls the hooks counted in the
     * window (the samples' 1 / p), hooks_ns what their fast path cost so far. */
    double auto_budget, cost_floor, charged_ns, win_calls, hooks_ns;
    uint64_t cpu_base_ns; /* CPU time the budget counts from (at most 10 s before start) */
    uint64_t cost_ns, win_start_ns, win_cost_ns, win_samples;
    int max_frames;
    uint64_t epoch;
    uint64_t seed;
    Domain dom[3];
    PyMemAllocatorEx hooks[3];
    pthread_mutex_t lock;
    /* stacks: array + open-addressing index */
    Stack **stacks;
    uint32_t n_stacks, cap_stacks;
    uint32_t *stack_index; /* stack number + 1; 0 = empty */
    size_t stack_mask;
    /* live sampled blocks */
    Live *live;
    size_t live_mask, live_used;
    uint64_t samples, dropped_no_gil;
    double live_total, peak_total; /* estimated live bytes, and their peak */
    uint64_t peak_version;         /* bumped at each new peak (and reset) */
    uint8_t filter[1 << FILTER_BITS];
} S = {.lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Address bits 4-19: this runs on every free. Blocks are 16-byte aligned, and
 * neighbouring blocks (freed together more often than not) share cache lines of the
 * filter; a false hit only costs a look-up in the table. */
static inline size_t filter_slot(uintptr_t p) {
    return (size_t)((p >> 4) & ((1u << FILTER_BITS) - 1));
}

/* -- sampling decision ---------------------------------------------------------- */
static inline double next_uniform(uint64_t *rng) {
    /* xorshift64*: uniform in (0, 1] */
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return ((double)((x * 2685821657736338717ULL) >> 11) + 1.0) / 9007199254740992.0;
}

static inline double cur_interval(void) {
    double v;
    __atomic_load(&S.interval, &v, __ATOMIC_RELAXED);
    return v;
}

static inline void put_interval(double v) { __atomic_store(&S.interval, &v, __ATOMIC_RELAXED); }

static inline int64_t next_interval(uint64_t *rng) {
    double v = -log(next_uniform(rng)) * cur_interval();
    if (v < 1.0) v = 1.0;
    if (v > 9.0e18) v = 9.0e18;
    return (int64_t)v;
}

/* After a countdown crossed (went below 0): the Poisson process may place several points
 * inside one allocation, which makes one sample. */
static inline void redraw(int64_t *countdown, uint64_t *rng) {
    do {
        *countdown += next_interval(rng);
    } while (*countdown < 0);
}

/* The raw countdown of this thread crossed after `size` bytes: whether to
 * sample. A new thread (countdown starting at 0) or one last run before a restart
 * draws a fresh countdown first. */
static int raw_crossed(size_t size) {
    if (!tl_init || tl_epoch != S.epoch) {
        tl_rng = mix64(S.seed ^ (uint64_t)(uintptr_t)&tl_rng ^ (uint64_t)pthread_self()) | 1;
        tl_init = 1;
        tl_epoch = S.epoch;
        tl_countdown = next_interval(&tl_rng) - (int64_t)size;
        if (tl_countdown >= 0) return 0;
    }
    redraw(&tl_countdown, &tl_rng);
    return 1;
}

/* -- tables (called with S.lock held) --------------------------------------------- */
/* Before a stack's live figures change: keep them if they are those of the peak. */
static inline void save_for_peak(Stack *s) {
    if (s->peak_version == S.peak_version) return;
    s->peak_bytes = s->live_bytes;
    s->peak_blocks = s->live_blocks;
    s->peak_samples = s->live_samples;
    s->peak_version = S.peak_version;
}

static inline void live_total_add(double bytes) {
    S.live_total += bytes;
    if (S.live_used == 0 || S.live_total < 0) S.live_total = 0; /* no float drift */
    if (S.live_total > S.peak_total) {
        S.peak_total = S.live_total;
        S.peak_version++; /* every stack's current figures are now the peak's */
    }
}

/* Blocks the C allocator serves (what mallinfo sees): the raw domain, and blocks
 * larger than pymalloc's 512-byte limit in the other two. */
static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The process's CPU time (all threads): what the governor's windows are measured in,
 * so that a loaded machine (wall time passing while the program waits for a CPU)
 * does not make sampling look cheaper than it is. A system call: once a window. */
static inline uint64_t cpu_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return now_ns();
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline int is_big(int domain, double size) {
    return domain == PYMEM_DOMAIN_RAW || size > 512.0;
}

/* Automatic interval: re-chosen from the live total as it grows or shrinks (by more
 * than a quarter, so that it does not flap): live_total / auto_div, so that a site
 * holding 1 % of the heap has auto_div / 100 samples. A program that allocates fast
 * would then spend too long recording samples: the cost governor keeps what the
 * sampler costs within auto_budget of the process's CPU time. That cost is the hooks'
 * fast path, which no interval changes, and the samples, which the interval does:
 * the samples get what the fast path leaves of the budget (none, and the largest
 * interval, where the fast path alone takes it all). Each allocator call the hooks
 * counted is charged a nominal HOOK_COST_NS (the calls are estimated from the
 * samples: each stands for 1 / p calls); each sample a
 * nominal SAMPLE_COST_NS: what one extra sample was measured to cost the program
 * (its record(), the free of its block, the cache lines it touches), ~1 us on the
 * allocation-heavy benchmark; measuring each one would cost more than it saves, and
 * wall time inside record() is inflated by preemption on a loaded machine. Over windows of
 * >= 1 ms of process CPU and 32 samples it keeps the interval at least where the
 * window's samples would fit in the window's share of the budget plus what the run
 * left unused so far (capped at MAX_SLACK_NS): a program that builds its heap in a
 * burst is sampled fully while the budget lasts, one that allocates fast all its
 * life settles where recording takes auto_budget (cost_floor).
 * Called with S.lock held. Samples already taken keep the weight of the interval
 * they were taken at, so estimates stay unbiased across a change; each thread's
 * countdown in progress runs out at the old interval (at most one interval per
 * thread of bias). */
#define MAX_SLACK_NS 1.0e8 /* 100 ms: the budget of 10 s of CPU at 1 % */
#define SAMPLE_COST_NS 1000.0
/* What the hooks' fast path was measured to add per counted allocator call:
 * 0.44 ns on the allocation-heavy benchmark, 0.8 ns on the request-like one (its
 * larger blocks pass two hooks). Reading the clock per call would cost more. */
#define HOOK_COST_NS 0.6

static inline void auto_retune(int sampled) {
    if (!(S.auto_div > 0)) return;
    if (sampled && ++S.win_samples >= 32) {
        uint64_t t = cpu_ns();
        uint64_t elapsed = t - S.win_start_ns;
        if (elapsed >= 1000000ULL) {
            /* unused budget when the window began: budget x CPU so far - cost so far */
            double slack = S.auto_budget * (double)(S.win_start_ns - S.cpu_base_ns) -
                           S.charged_ns;
            if (slack < 0) slack = 0;
            if (slack > MAX_SLACK_NS) slack = MAX_SLACK_NS;
            double cost = (double)S.win_samples * SAMPLE_COST_NS;
            double hooks = S.win_calls * HOOK_COST_NS;
            double allowed = S.auto_budget * (double)elapsed + slack - hooks;
            S.cost_floor = allowed > 0 ? cur_interval() * cost / allowed : S.auto_max;
            S.charged_ns += cost + hooks;
            S.hooks_ns += hooks;
            S.win_calls = 0;
            S.win_start_ns = t;
            S.win_cost_ns = S.cost_ns;
            S.win_samples = 0;
        }
    }
    double want = S.live_total / S.auto_div;
    if (want < S.cost_floor) want = S.cost_floor;
    if (want < S.auto_min) want = S.auto_min;
    if (want > S.auto_max) want = S.auto_max;
    double now = cur_interval();
    if (want > now * 1.25 || want * 1.25 < now) {
        put_interval(want);
        S.retunes++;
    }
}

/* A multiply per word and one full mix at the end: every sample hashes its stack. */
static uint64_t hash_frames(const Frame *frames, int n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h = (h ^ (uint64_t)(uintptr_t)frames[i].code) * 0xff51afd7ed558ccdULL;
        h = (h ^ (uint64_t)(uint32_t)frames[i].addr) * 0xc4ceb9fe1a85ec53ULL;
    }
    return mix64(h);
}

static int stack_index_grow(void) {
    size_t size = S.stack_mask ? (S.stack_mask + 1) * 2 : 1024;
    uint32_t *index = calloc(size, sizeof(uint32_t));
    if (!index) return -1;
    for (uint32_t i = 0; i < S.n_stacks; i++) {
        size_t h = S.stacks[i]->hash & (size - 1);
        while (index[h]) h = (h + 1) & (size - 1);
        index[h] = i + 1;
    }
    free(S.stack_index);
    S.stack_index = index;
    S.stack_mask = size - 1;
    return 0;
}

/* Field by field: a Frame has padding after addr, which memcmp would compare too
 * (uninitialised stack bytes made equal stacks look different). */
static inline int same_frames(const Frame *a, const Frame *b, int n) {
    for (int i = 0; i < n; i++) {
        if (a[i].code != b[i].code || a[i].addr != b[i].addr) return 0;
    }
    return 1;
}

/* Index of the stack (new references to its code objects taken when new), or -1. */
static int64_t stack_intern(const Frame *frames, int n) {
    uint64_t h = hash_frames(frames, n);
    if ((size_t)(S.n_stacks + 1) * 2 > S.stack_mask + 1 || !S.stack_index) {
        if (stack_index_grow() < 0) return -1;
    }
    size_t slot = h & S.stack_mask;
    while (S.stack_index[slot]) {
        Stack *s = S.stacks[S.stack_index[slot] - 1];
        if (s->hash == h && s->nframes == n && same_frames(s->frames, frames, n)) {
            return S.stack_index[slot] - 1;
        }
        slot = (slot + 1) & S.stack_mask;
    }
    if (S.n_stacks == S.cap_stacks) {
        uint32_t cap = S.cap_stacks ? S.cap_stacks * 2 : 256;
        Stack **stacks = realloc(S.stacks, cap * sizeof(Stack *));
        if (!stacks) return -1;
        S.stacks = stacks;
        S.cap_stacks = cap;
    }
    Stack *s = calloc(1, sizeof(Stack) + n * sizeof(Frame));
    if (!s) return -1;
    s->hash = h;
    s->nframes = n;
    memcpy(s->frames, frames, n * sizeof(Frame));
    for (int i = 0; i < n; i++) Py_INCREF(frames[i].code);
    S.stacks[S.n_stacks] = s;
    S.stack_index[slot] = S.n_stacks + 1;
    return S.n_stacks++;
}

static int live_grow(void) {
    size_t size = S.live_mask ? (S.live_mask + 1) * 2 : 4096;
    Live *live = calloc(size, sizeof(Live));
    if (!live) return -1;
    for (size_t i = 0; S.live && i <= S.live_mask; i++) {
        if (!S.live[i].ptr) continue;
        size_t h = mix64(S.live[i].ptr) & (size - 1);
        while (live[h].ptr) h = (h + 1) & (size - 1);
        live[h] = S.live[i];
    }
    free(S.live);
    S.live = live;
    S.live_mask = size - 1;
    return 0;
}

static void live_insert(uintptr_t p, uint32_t stack, int domain, double bytes, double blocks) {
    if ((S.live_used + 1) * 2 > S.live_mask + 1 || !S.live) {
        if (live_grow() < 0) return;
    }
    size_t h = mix64(p) & S.live_mask;
    while (S.live[h].ptr && S.live[h].ptr != p) h = (h + 1) & S.live_mask;
    if (S.live[h].ptr == p) return; /* already there (cannot happen: freed first) */
    S.live[h].ptr = p;
    S.live[h].stack = stack;
    S.live[h].bytes = bytes;
    S.live[h].blocks = blocks;
    S.live[h].domain = (uint8_t)domain;
    S.live[h].seq = S.samples;
    S.live_used++;
    uint8_t *f = &S.filter[filter_slot(p)];
    if (*f < 255) __atomic_store_n(f, (uint8_t)(*f + 1), __ATOMIC_RELEASE);
}

/* Remove p if sampled (backward-shift deletion keeps probing chains intact). */
static void live_remove(uintptr_t p) {
    if (!S.live) return;
    size_t h = mix64(p) & S.live_mask;
    while (S.live[h].ptr && S.live[h].ptr != p) h = (h + 1) & S.live_mask;
    if (S.live[h].ptr != p) return;
    Live gone = S.live[h];
    Stack *s = S.stacks[gone.stack];
    save_for_peak(s);
    s->live_bytes -= gone.bytes;
    s->live_blocks -= gone.blocks;
    s->live_samples--;
    if (is_big(gone.domain, gone.bytes / gone.blocks)) s->live_big_bytes -= gone.bytes;
    if (!s->live_samples) s->live_big_bytes = 0; /* no float drift */
    S.live_used--;
    live_total_add(-gone.bytes);
    auto_retune(0);
    uint8_t *f = &S.filter[filter_slot(p)];
    if (*f < 255 && *f > 0) __atomic_store_n(f, (uint8_t)(*f - 1), __ATOMIC_RELEASE);
    size_t i = h, j = h;
    for (;;) {
        S.live[i].ptr = 0;
        for (;;) {
            j = (j + 1) & S.live_mask;
            if (!S.live[j].ptr) return;
            size_t k = mix64(S.live[j].ptr) & S.live_mask;
            /* move j into the hole at i unless its home k lies cyclically in (i, j] */
            if (i <= j ? (i < k && k <= j) : (i < k || k <= j)) continue;
            break;
        }
        S.live[i] = S.live[j];
        i = j;
    }
}

/* -- recording a sample ------------------------------------------------------------ */
static int capture(Frame *frames) {
    PyThreadState *ts = _PyThreadState_UncheckedGet();
    if (ts == NULL || ts->cframe == NULL) return 0;
    int n = 0;
    for (_PyInterpreterFrame *f = ts->cframe->current_frame; f && n < S.max_frames;
         f = f->previous) {
        if (_PyFrame_IsIncomplete(f)) continue;
        frames[n].code = f->f_code;
        /* The line is looked up only when a stack is read (PyCode_Addr2Line walks
         * the line table: most of a sample's cost when done here for every frame). */
        frames[n].addr = _PyInterpreterFrame_LASTI(f) * (int)sizeof(_Py_CODEUNIT);
        n++;
    }
    return n;
}

#define TIMED_EVERY 16

/* Records a sampled block. `gil`: the caller holds the GIL (the mem and object
 * domains always do; the raw domain is asked). */
static void record(int domain, void *p, size_t size, int gil) {
    if (tl_ignored) return;
    if (!gil && !PyGILState_Check()) {
        __atomic_add_fetch(&S.dropped_no_gil, 1, __ATOMIC_RELAXED);
        return;
    }
    /* One sample in TIMED_EVERY is timed (two clock reads would be a sixth of a
     * sample's cost): record_seconds is an estimate, which is all it is used as. */
    uint64_t t0 = S.auto_div > 0 && !(S.samples % TIMED_EVERY) ? now_ns() : 0;
    Frame frames[MAX_FRAMES_LIMIT];
    int n = capture(frames);
    double sz = (double)(size ? size : 1);
    double prob = -expm1(-sz / cur_interval());
    if (prob <= 0) prob = 1e-300;
    pthread_mutex_lock(&S.lock);
    /* A block still in the table at a new block's address was freed while the hooks
     * were out (stop, then start): it is gone. */
    live_remove((uintptr_t)p);
    int64_t stack = stack_intern(frames, n);
    if (stack >= 0) {
        Stack *s = S.stacks[stack];
        save_for_peak(s);
        s->alloc_bytes += sz / prob;
        s->alloc_blocks += 1.0 / prob;
        s->alloc_samples++;
        s->live_bytes += sz / prob;
        s->live_blocks += 1.0 / prob;
        s->live_samples++;
        if (is_big(domain, sz)) s->live_big_bytes += sz / prob;
        live_insert((uintptr_t)p, (uint32_t)stack, domain, sz / prob, 1.0 / prob);
        live_total_add(sz / prob);
        S.samples++;
        S.win_calls += 1.0 / prob;
        if (t0) S.cost_ns += (now_ns() - t0) * TIMED_EVERY;
        auto_retune(1);
    }
    pthread_mutex_unlock(&S.lock);
}

/* -- the hooks ------------------------------------------------------------------------
 * Each hook's fast path is a countdown (or, on free, one filter byte) and a tail jump
 * to the original allocator: no frame, no reentrancy guard. What happens when a
 * sample is due or a sampled block is freed is in the NOINLINE functions, out of the
 * fast path's way. Each domain has its own hooks, which read their original
 * allocator and limit at fixed addresses, and is registered with its original ctx, which
 * the tail jump passes on untouched. The mem
 * and object domains count only the requests their original allocator serves itself
 * (size <= Domain.limit); pymalloc hands larger ones to the raw domain, whose hook
 * counts them and captures the same Python stack. A countdown crosses when it goes
 * below 0; a request of 0 bytes never makes it cross, so it is never sampled (it
 * holds no bytes). */
#define NOINLINE __attribute__((noinline, cold))
#define UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline int maybe_sampled(void *p) {
    /* A plain byte load, which the compiler folds into the test (an atomic relaxed
     * load costs one instruction more). A stale 0 cannot be read for a block this
     * thread frees: it was sampled before its address reached this thread. */
    return S.filter[filter_slot((uintptr_t)p)] != 0;
}

/* p may be a sampled block (its filter byte is set): drop it if it is. */
static NOINLINE void forget(void *p) {
    if (!p) return;
    pthread_mutex_lock(&S.lock);
    live_remove((uintptr_t)p);
    pthread_mutex_unlock(&S.lock);
}

/* Diverting: where a mem/object domain's allocator hands large requests to the raw
 * domain and routes their realloc and free there too (pymalloc: probed at start, see
 * can_divert), a block it samples is served from the raw domain as well, so that its
 * free reaches the raw hook and the domain needs no free hook at all (most frees are
 * of its small blocks: they cost nothing then). The block is asked of the domain's
 * own allocator at limit + 1 bytes, which it hands to the raw domain and counts as
 * one of its raw blocks (as for any large request, so that sys.getallocatedblocks()
 * stays balanced when the block is freed through it).
 *
 * A new block (malloc, calloc) is served at `size` bytes by the raw hook itself: this
 * thread's raw countdown is parked below zero, so the request of limit + 1 bytes
 * takes the hook's crossing path, which sees tl_divert_ask and asks the C allocator
 * for tl_divert_size bytes instead, unsampled (these bytes are counted by the
 * mem/object countdown that chose to sample them). A moved block (realloc, `ptr`) is
 * asked at limit + 1 bytes and shrunk to `size` by a second realloc, which keeps a
 * raw block raw: pymalloc copies the old block's whole size class into the new one,
 * which must hold it. So is a new block whose request did not reach the raw hook as
 * expected, or when a hook below ours records sizes (tracemalloc started first: it
 * would keep limit + 1). Returns the block, or NULL with `ptr` untouched. */
static TLS size_t tl_divert_ask, tl_divert_size; /* 0: not diverting */
static int g_exact_divert; /* new blocks are served at their size (set by start) */

static void *divert(Domain *d, void *ptr, size_t size, int zero) {
    int64_t raw_countdown = tl_countdown;
    size_t want = size ? size : 1;
    void *p;
    if (ptr) {
        tl_countdown = INT64_MAX;
        p = d->orig.realloc(d->orig.ctx, ptr, d->limit + 1);
    } else {
        int exact = g_exact_divert;
        if (exact) {
            tl_countdown = INT64_MIN / 2;
            tl_divert_ask = d->limit + 1;
            tl_divert_size = want;
        } else {
            tl_countdown = INT64_MAX;
        }
        p = zero ? d->orig.calloc(d->orig.ctx, 1, d->limit + 1)
                 : d->orig.malloc(d->orig.ctx, d->limit + 1);
        if (exact && !tl_divert_ask) want = 0; /* the raw hook served it at its size */
        tl_divert_ask = tl_divert_size = 0;
        tl_countdown = INT64_MAX;
    }
    if (p && want) {
        void *q = d->orig.realloc(d->orig.ctx, p, want);
        if (q) p = q; /* else the larger block, still valid, serves */
    }
    tl_countdown = raw_countdown;
    return p;
}

/* mem and object domains (GIL held): their countdown crossed. */
static NOINLINE void *gil_malloc_sampled(Domain *d, size_t size) {
    redraw(&g_countdown, &g_rng);
    void *p = d->divert ? divert(d, NULL, size, 0) : d->orig.malloc(d->orig.ctx, size);
    if (p) record(d->domain, p, size, 1);
    return p;
}

static NOINLINE void *gil_calloc_sampled(Domain *d, size_t nelem, size_t elsize) {
    redraw(&g_countdown, &g_rng);
    /* An overflowing nelem x elsize fails in the original allocator, as without us. */
    int overflow = elsize && nelem > SIZE_MAX / elsize;
    void *p = d->divert && !overflow ? divert(d, NULL, nelem * elsize, 1)
                                     : d->orig.calloc(d->orig.ctx, nelem, elsize);
    if (p) record(d->domain, p, nelem * elsize, 1);
    return p;
}

/* Diverting realloc whose countdown crossed: the new block is diverted (the old one,
 * if sampled, is a raw block: the raw hook forgets it when it is moved). */
static NOINLINE void *gil_realloc_divert(Domain *d, void *ptr, size_t size) {
    redraw(&g_countdown, &g_rng);
    void *p = divert(d, ptr, size, 0);
    if (p) record(d->domain, p, size, 1);
    return p;
}

/* Realloc may move a block between pymalloc and the raw domain either way (a raw
 * block stays raw even when it shrinks under the limit), which the size alone does
 * not tell: the mem/object hook counts the new size itself and parks this thread's
 * raw countdown out of reach while the original runs, so that the raw hook it may
 * call counts nothing. */
static NOINLINE void *gil_realloc_slow(Domain *d, void *ptr, size_t size) {
    /* Forget the old block first: once realloc returns, its address may be reused. */
    if (maybe_sampled(ptr)) forget(ptr);
    int64_t raw_countdown = tl_countdown;
    tl_countdown = INT64_MAX;
    void *p = d->orig.realloc(d->orig.ctx, ptr, size);
    tl_countdown = raw_countdown;
    if (g_countdown < 0) {
        redraw(&g_countdown, &g_rng);
        if (p) record(d->domain, p, size, 1);
    }
    return p;
}

static NOINLINE void free_sampled(Domain *d, void *ptr) {
    forget(ptr);
    d->orig.free(d->orig.ctx, ptr);
}

/* One set of hooks for the mem domain and one for the object domain. */
#define GIL_HOOKS(NAME, D)                                                                 \
    static void *hook_##NAME##_malloc(void *ctx, size_t size) {                            \
        if (size <= D.limit && UNLIKELY((g_countdown -= (int64_t)size) < 0))               \
            return gil_malloc_sampled(&D, size);                                           \
        return D.orig.malloc(ctx, size);                                                   \
    }                                                                                      \
    static void *hook_##NAME##_calloc(void *ctx, size_t nelem, size_t elsize) {            \
        size_t size = nelem * elsize;                                                      \
        if (size <= D.limit && UNLIKELY((g_countdown -= (int64_t)size) < 0))               \
            return gil_calloc_sampled(&D, nelem, elsize);                                  \
        return D.orig.calloc(ctx, nelem, elsize);                                          \
    }                                                                                      \
    static void *hook_##NAME##_realloc(void *ctx, void *ptr, size_t size) {                \
        if (UNLIKELY((g_countdown -= (int64_t)size) < 0 || maybe_sampled(ptr)))            \
            return gil_realloc_slow(&D, ptr, size);                                        \
        int64_t raw_countdown = tl_countdown;                                              \
        tl_countdown = INT64_MAX;                                                          \
        void *p = D.orig.realloc(ctx, ptr, size);                                          \
        tl_countdown = raw_countdown;                                                      \
        return p;                                                                          \
    }                                                                                      \
    static void hook_##NAME##_free(void *ctx, void *ptr) {                                 \
        if (UNLIKELY(maybe_sampled(ptr))) return free_sampled(&D, ptr);                    \
        D.orig.free(ctx, ptr);                                                             \
    }

/* Realloc of a diverting domain: no filter to read (its sampled blocks are raw
 * blocks, whose realloc reaches the raw hook) and a tail jump. A request over the
 * limit is counted by the raw hook, whichever way the block goes: pymalloc moves a
 * small block to the raw domain with a malloc, or reallocates a raw block there. One
 * within the limit is counted here: pymalloc keeps a small block small, without the
 * raw domain, but reallocates a raw block (which stays raw even when it shrinks) with
 * the raw domain's realloc, which must not count it again: the block is left in
 * tl_counted for the raw hook to recognise (a stale value is a block that stayed in
 * pymalloc, which the raw domain's realloc is not given). */
#define DIVERT_REALLOC(NAME, D)                                                            \
    static void *hook_##NAME##_realloc_divert(void *ctx, void *ptr, size_t size) {         \
        if (size <= D.limit) {                                                             \
            if (UNLIKELY((g_countdown -= (int64_t)size) < 0))                              \
                return gil_realloc_divert(&D, ptr, size);                                  \
            tl_counted = ptr;                                                              \
        }                                                                                  \
        return D.orig.realloc(ctx, ptr, size);                                             \
    }

GIL_HOOKS(mem, S.dom[PYMEM_DOMAIN_MEM])
GIL_HOOKS(obj, S.dom[PYMEM_DOMAIN_OBJ])
DIVERT_REALLOC(mem, S.dom[PYMEM_DOMAIN_MEM])
DIVERT_REALLOC(obj, S.dom[PYMEM_DOMAIN_OBJ])

/* The raw domain (any thread, GIL or not): this thread's countdown crossed. */
#define RAW (S.dom[PYMEM_DOMAIN_RAW])

/* While this thread diverts (its countdown parked below zero, see divert()): the
 * diverted request is served at its own size, any other unsampled. */
static NOINLINE void *raw_diverting(size_t size, int zero) {
    if (size == tl_divert_ask) {
        size = tl_divert_size;
        tl_divert_ask = tl_divert_size = 0;
    }
    return zero ? RAW.orig.calloc(RAW.orig.ctx, 1, size) : RAW.orig.malloc(RAW.orig.ctx, size);
}

static NOINLINE void *raw_malloc_crossed(size_t size) {
    if (UNLIKELY(tl_divert_ask)) return raw_diverting(size, 0);
    void *p = RAW.orig.malloc(RAW.orig.ctx, size);
    if (raw_crossed(size) && p) record(PYMEM_DOMAIN_RAW, p, size, 0);
    return p;
}

static NOINLINE void *raw_calloc_crossed(size_t nelem, size_t elsize) {
    if (UNLIKELY(tl_divert_ask)) {
        if (nelem == 1) return raw_diverting(elsize, 1);
        return RAW.orig.calloc(RAW.orig.ctx, nelem, elsize);
    }
    void *p = RAW.orig.calloc(RAW.orig.ctx, nelem, elsize);
    if (raw_crossed(nelem * elsize) && p) record(PYMEM_DOMAIN_RAW, p, nelem * elsize, 0);
    return p;
}

static NOINLINE void *raw_realloc_slow(void *ptr, size_t size) {
    forget(ptr);
    void *p = RAW.orig.realloc(RAW.orig.ctx, ptr, size);
    if (tl_countdown < 0 && !tl_divert_ask && raw_crossed(size) && p)
        record(PYMEM_DOMAIN_RAW, p, size, 0);
    return p;
}

static void *hook_raw_malloc(void *ctx, size_t size) {
    if (UNLIKELY((tl_countdown -= (int64_t)size) < 0)) return raw_malloc_crossed(size);
    return RAW.orig.malloc(ctx, size);
}

static void *hook_raw_calloc(void *ctx, size_t nelem, size_t elsize) {
    if (UNLIKELY((tl_countdown -= (int64_t)(nelem * elsize)) < 0))
        return raw_calloc_crossed(nelem, elsize);
    return RAW.orig.calloc(ctx, nelem, elsize);
}

/* A raw block that a diverting mem/object realloc counted (see DIVERT_REALLOC). */
static NOINLINE void *raw_realloc_counted(void *ptr, size_t size) {
    tl_counted = NULL;
    if (maybe_sampled(ptr)) forget(ptr);
    return RAW.orig.realloc(RAW.orig.ctx, ptr, size);
}

static void *hook_raw_realloc(void *ctx, void *ptr, size_t size) {
    if (UNLIKELY(ptr == tl_counted) && ptr) return raw_realloc_counted(ptr, size);
    if (UNLIKELY((tl_countdown -= (int64_t)size) < 0 || maybe_sampled(ptr)))
        return raw_realloc_slow(ptr, size);
    return RAW.orig.realloc(ctx, ptr, size);
}

static void hook_raw_free(void *ctx, void *ptr) {
    if (UNLIKELY(maybe_sampled(ptr))) return free_sampled(&RAW, ptr);
    RAW.orig.free(ctx, ptr);
}

/* -- which requests a domain hands to the raw domain -------------------------------- */
static Domain probe_raw;
static TLS int tl_probing;
/* What the probe saw while tl_probing: allocations, reallocs and frees handed to
 * it, the last block given to it (realloc, free) and the last it returned. */
static size_t probe_hits, probe_reallocs, probe_frees;
static void *probe_given, *probe_returned;

static void *probe_malloc(void *ctx, size_t size) {
    void *p = probe_raw.orig.malloc(probe_raw.orig.ctx, size);
    if (tl_probing) probe_hits++, probe_returned = p;
    return p;
}

static void *probe_calloc(void *ctx, size_t nelem, size_t elsize) {
    void *p = probe_raw.orig.calloc(probe_raw.orig.ctx, nelem, elsize);
    if (tl_probing) probe_hits++, probe_returned = p;
    return p;
}

static void *probe_realloc(void *ctx, void *ptr, size_t size) {
    void *p = probe_raw.orig.realloc(probe_raw.orig.ctx, ptr, size);
    if (tl_probing) probe_reallocs++, probe_given = ptr, probe_returned = p;
    return p;
}

static void probe_free(void *ctx, void *ptr) {
    if (tl_probing) probe_frees++, probe_given = ptr;
    probe_raw.orig.free(probe_raw.orig.ctx, ptr);
}

/* Whether d's original allocator serves a request of `size` bytes from the raw
 * domain (called with the probe installed as the raw allocator). */
static int handed_to_raw(Domain *d, size_t size) {
    probe_hits = 0;
    tl_probing = 1;
    void *p = d->orig.malloc(d->orig.ctx, size);
    tl_probing = 0;
    if (p) d->orig.free(d->orig.ctx, p);
    return probe_hits > 0;
}

/* Whether d can divert (see divert()): a request of limit + 1 bytes is handed to the
 * raw domain at the address d returns, and d's realloc of that block (to 1 byte) and
 * its free are handed to the raw domain at the same addresses. True of pymalloc (and
 * of tracemalloc over it); not of PYTHONMALLOC=malloc (no limit) or pymalloc_debug
 * (its padding moves the address the raw domain sees), which keep a free hook. */
static int can_divert(Domain *d) {
    if (d->limit == 0 || d->limit >= (size_t)1 << 20) return 0;
    probe_hits = probe_reallocs = probe_frees = 0;
    probe_given = probe_returned = NULL;
    tl_probing = 1;
    void *p = d->orig.malloc(d->orig.ctx, d->limit + 1);
    int ok = p && probe_hits == 1 && probe_returned == p;
    if (p) {
        void *q = d->orig.realloc(d->orig.ctx, p, 1);
        ok = ok && q && probe_reallocs == 1 && probe_given == p && probe_returned == q;
        if (q) p = q;
        d->orig.free(d->orig.ctx, p);
        ok = ok && probe_frees == 1 && probe_given == p;
    }
    tl_probing = 0;
    return ok;
}

/* The largest request d's original allocator serves without the raw domain, found by
 * asking it rather than assumed: 512 bytes with pymalloc, 488 with PYTHONMALLOC=
 * pymalloc_debug (its 24 bytes of padding), everything with PYTHONMALLOC=malloc
 * (SIZE_MAX: then the mem/object hook counts every request), whatever tracemalloc or
 * another hook installed below us does. GIL held, raw domain not hooked yet. */
static size_t probe_limit(Domain *d) {
    enum { TOP = 1 << 20 };
    PyMemAllocatorEx probe = {NULL, probe_malloc, probe_calloc, probe_realloc, probe_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &probe_raw.orig);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &probe);
    size_t limit;
    if (!handed_to_raw(d, TOP)) {
        limit = SIZE_MAX;
    } else if (handed_to_raw(d, 1)) {
        limit = 0;
    } else {
        size_t lo = 1, hi = TOP; /* lo is served by d itself, hi is handed over */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (handed_to_raw(d, mid)) hi = mid;
            else lo = mid;
        }
        limit = lo;
    }
    d->limit = limit;
    d->divert = can_divert(d);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &probe_raw.orig);
    return limit;
}

/* Whether tracemalloc traces: started before the sampler, its hooks are below ours
 * and record the size each block is asked at (see divert()). */
static int tracemalloc_below(void) {
    PyObject *mod = PyImport_ImportModule("_tracemalloc");
    PyObject *got = mod ? PyObject_CallMethod(mod, "is_tracing", NULL) : NULL;
    Py_XDECREF(mod);
    int tracing = got ? PyObject_IsTrue(got) : 1;
    Py_XDECREF(got);
    if (tracing < 0 || PyErr_Occurred()) PyErr_Clear();
    return tracing != 0;
}

/* -- fork ---------------------------------------------------------------------------- */
static void at_fork_prepare(void) { pthread_mutex_lock(&S.lock); }
static void at_fork_parent(void) { pthread_mutex_unlock(&S.lock); }
/* The child's thread has a new kernel tid, so it does not own the (recursive) mutex
 * it inherited locked: make a fresh one. Only this thread exists in the child. */
static void at_fork_child(void) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&S.lock, &attr);
    pthread_mutexattr_destroy(&attr);
}

/* -- Python API ------------------------------------------------------------------------ */
static const PyMemAllocatorDomain DOMAINS[3] = {PYMEM_DOMAIN_RAW, PYMEM_DOMAIN_MEM,
                                                PYMEM_DOMAIN_OBJ};

static void clear_data(void) {
    /* GIL held; hooks not installed (or installed and we hold the lock). */
    for (uint32_t i = 0; i < S.n_stacks; i++) {
        for (int k = 0; k < S.stacks[i]->nframes; k++) Py_DECREF(S.stacks[i]->frames[k].code);
        free(S.stacks[i]);
    }
    free(S.stacks);
    free(S.stack_index);
    free(S.live);
    S.stacks = NULL;
    S.stack_index = NULL;
    S.live = NULL;
    S.n_stacks = S.cap_stacks = 0;
    S.stack_mask = S.live_mask = S.live_used = 0;
    S.samples = S.dropped_no_gil = S.retunes = 0;
    S.live_total = S.peak_total = 0;
    S.peak_version++;
    memset(S.filter, 0, sizeof(S.filter));
}

static PyObject *sampler_start(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"interval",     "max_frames",   "seed",   "auto",
                             "min_interval", "max_interval", "budget", NULL};
    double interval = 512.0 * 1024.0;
    int max_frames = 25;
    unsigned long long seed = 0;
    double auto_div = 0.0, auto_min = 4096.0, auto_max = 512.0 * 1024.0, budget = 0.01;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|diKdddd", kwlist, &interval, &max_frames,
                                     &seed, &auto_div, &auto_min, &auto_max, &budget)) {
        return NULL;
    }
    if (!(interval >= 1.0) || !isfinite(interval)) {
        PyErr_SetString(PyExc_ValueError, "interval must be a number of bytes >= 1");
        return NULL;
    }
    if (!(auto_div >= 0.0) || !isfinite(auto_div) || !(auto_min >= 1.0) ||
        !(auto_max >= auto_min) || !isfinite(auto_max) || !(budget > 0) || !(budget <= 1)) {
        PyErr_SetString(PyExc_ValueError,
                        "auto must be >= 0, 1 <= min_interval <= max_interval and "
                        "0 < budget <= 1");
        return NULL;
    }
    if (max_frames < 1 || max_frames > MAX_FRAMES_LIMIT) {
        PyErr_Format(PyExc_ValueError, "max_frames must be between 1 and %d", MAX_FRAMES_LIMIT);
        return NULL;
    }
    if (S.installed) {
        PyErr_SetString(PyExc_RuntimeError, "the sampler is already running");
        return NULL;
    }
    clear_data();
    S.auto_div = auto_div;
    S.auto_min = auto_min;
    S.auto_max = auto_max;
    S.auto_budget = budget;
    S.cost_floor = 0.0;
    S.cost_ns = S.win_cost_ns = S.win_samples = 0;
    S.win_start_ns = cpu_ns();
    S.cpu_base_ns = S.win_start_ns > 10000000000ULL ? S.win_start_ns - 10000000000ULL : 0;
    S.charged_ns = S.win_calls = S.hooks_ns = 0.0;
    if (auto_div > 0 && interval < auto_min) interval = auto_min;
    if (auto_div > 0 && interval > auto_max) interval = auto_max;
    put_interval(interval);
    S.max_frames = max_frames;
    S.seed = seed ? (uint64_t)seed : mix64((uint64_t)time(NULL) ^ (uint64_t)getpid());
    S.epoch++;
    for (int d = 0; d < 3; d++) {
        Domain *dom = &S.dom[d];
        PyMem_GetAllocator(DOMAINS[d], &dom->orig);
        dom->domain = DOMAINS[d];
        dom->limit = SIZE_MAX;
        dom->divert = 0;
    }
    /* A hook's ctx is its original allocator's: the hook does not read it, and its
     * tail jump passes it on untouched. */
    S.hooks[PYMEM_DOMAIN_RAW] = (PyMemAllocatorEx){S.dom[PYMEM_DOMAIN_RAW].orig.ctx, hook_raw_malloc,
                                                   hook_raw_calloc, hook_raw_realloc,
                                                   hook_raw_free};
    S.hooks[PYMEM_DOMAIN_MEM] = (PyMemAllocatorEx){S.dom[PYMEM_DOMAIN_MEM].orig.ctx, hook_mem_malloc,
                                                   hook_mem_calloc, hook_mem_realloc,
                                                   hook_mem_free};
    S.hooks[PYMEM_DOMAIN_OBJ] = (PyMemAllocatorEx){S.dom[PYMEM_DOMAIN_OBJ].orig.ctx, hook_obj_malloc,
                                                   hook_obj_calloc, hook_obj_realloc,
                                                   hook_obj_free};
    S.dom[PYMEM_DOMAIN_MEM].limit = probe_limit(&S.dom[PYMEM_DOMAIN_MEM]);
    S.dom[PYMEM_DOMAIN_OBJ].limit = probe_limit(&S.dom[PYMEM_DOMAIN_OBJ]);
    /* A diverting domain's frees go straight to its allocator (its sampled blocks'
     * frees reach the raw hook); its realloc hook reads no filter. */
    if (S.dom[PYMEM_DOMAIN_MEM].divert) {
        S.hooks[PYMEM_DOMAIN_MEM].realloc = hook_mem_realloc_divert;
        S.hooks[PYMEM_DOMAIN_MEM].free = S.dom[PYMEM_DOMAIN_MEM].orig.free;
    }
    if (S.dom[PYMEM_DOMAIN_OBJ].divert) {
        S.hooks[PYMEM_DOMAIN_OBJ].realloc = hook_obj_realloc_divert;
        S.hooks[PYMEM_DOMAIN_OBJ].free = S.dom[PYMEM_DOMAIN_OBJ].orig.free;
    }
    g_exact_divert = !tracemalloc_below();
    g_rng = mix64(S.seed ^ 0x5851f42d4c957f2dULL) | 1;
    g_countdown = next_interval(&g_rng);
    for (int d = 0; d < 3; d++) PyMem_SetAllocator(DOMAINS[d], &S.hooks[d]);
    S.installed = 1;
    Py_RETURN_NONE;
}

static int hooks_in_place(void) {
    for (int d = 0; d < 3; d++) {
        PyMemAllocatorEx now;
        PyMem_GetAllocator(DOMAINS[d], &now);
        if (now.malloc != S.hooks[d].malloc || now.ctx != S.hooks[d].ctx) return 0;
    }
    return 1;
}

static PyObject *sampler_stop(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    if (!S.installed) Py_RETURN_NONE;
    if (!hooks_in_place()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another allocator hook (tracemalloc?) was installed after the sampler "
                        "started; stop it first");
        return NULL;
    }
    for (int d = 0; d < 3; d++) PyMem_SetAllocator(DOMAINS[d], &S.dom[d].orig);
    S.installed = 0;
    Py_RETURN_NONE;
}

static PyObject *sampler_is_running(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return PyBool_FromLong(S.installed && hooks_in_place());
}

static PyObject *sampler_reset(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    if (S.installed) {
        PyErr_SetString(PyExc_RuntimeError, "stop the sampler before resetting it");
        return NULL;
    }
    clear_data();
    Py_RETURN_NONE;
}

typedef struct {
    double live_bytes, live_blocks, alloc_bytes, alloc_blocks;
    double peak_bytes, peak_blocks;
    int nframes;
    Frame frames[MAX_FRAMES_LIMIT];
} Row;

/* at_peak == 0: [(frames, live_bytes, live_blocks, alloc_bytes, alloc_blocks)];
 * at_peak == 1: [(frames, bytes, blocks)] live at the peak. Frames are
 * ((filename, lineno), ...) most recent first, like tracemalloc's raw traces. */
static PyObject *stack_rows(int at_peak) {
    pthread_mutex_lock(&S.lock);
    uint32_t n = S.n_stacks;
    Row *rows = malloc((n ? n : 1) * sizeof(Row));
    if (rows) {
        for (uint32_t i = 0; i < n; i++) {
            Stack *s = S.stacks[i];
            rows[i].live_bytes = s->live_samples ? s->live_bytes : 0.0;
            rows[i].live_blocks = s->live_samples ? s->live_blocks : 0.0;
            rows[i].alloc_bytes = s->alloc_bytes;
            rows[i].alloc_blocks = s->alloc_blocks;
            int saved = s->peak_version == S.peak_version;
            uint64_t at_peak = saved ? s->peak_samples : s->live_samples;
            rows[i].peak_bytes = at_peak ? (saved ? s->peak_bytes : s->live_bytes) : 0.0;
            rows[i].peak_blocks = at_peak ? (saved ? s->peak_blocks : s->live_blocks) : 0.0;
            rows[i].nframes = s->nframes;
            memcpy(rows[i].frames, s->frames, s->nframes * sizeof(Frame));
            for (int k = 0; k < s->nframes; k++) Py_INCREF(s->frames[k].code);
        }
    }
    pthread_mutex_unlock(&S.lock);
    if (!rows) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *frames = PyTuple_New(rows[i].nframes);
        for (int k = 0; frames && k < rows[i].nframes; k++) {
            PyObject *fr = Py_BuildValue("(Oi)", rows[i].frames[k].code->co_filename,
                                         PyCode_Addr2Line(rows[i].frames[k].code,
                                                          rows[i].frames[k].addr));
            if (!fr) {
                Py_CLEAR(frames);
                break;
            }
            PyTuple_SET_ITEM(frames, k, fr);
        }
        PyObject *row = NULL;
        if (frames && at_peak) {
            row = Py_BuildValue("(Ndd)", frames, rows[i].peak_bytes, rows[i].peak_blocks);
        } else if (frames) {
            row = Py_BuildValue("(Ndddd)", frames, rows[i].live_bytes, rows[i].live_blocks,
                                rows[i].alloc_bytes, rows[i].alloc_blocks);
        }
        if (!row || PyList_Append(out, row) < 0) Py_CLEAR(out);
        Py_XDECREF(row);
    }
    for (uint32_t i = 0; i < n; i++) {
        for (int k = 0; k < rows[i].nframes; k++) Py_DECREF(rows[i].frames[k].code);
    }
    free(rows);
    return out;
}

static PyObject *sampler_stacks(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return stack_rows(0);
}

static PyObject *sampler_peak_stacks(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    return stack_rows(1);
}

/* (live, peak): estimated live sampled bytes now and at their peak since start()
 * or reset_peak(). */
static PyObject *sampler_peak(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&S.lock);
    double live = S.live_total, peak = S.peak_total;
    pthread_mutex_unlock(&S.lock);
    return Py_BuildValue("(dd)", live, peak);
}

/* Count the peak from now: the peak becomes the live total, the stacks' figures at
 * the peak their current ones. */
static PyObject *sampler_reset_peak(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&S.lock);
    S.peak_total = S.live_total;
    S.peak_version++;
    pthread_mutex_unlock(&S.lock);
    Py_RETURN_NONE;
}

/* set_interval(interval): the mean interval from now on, fixed (automatic choice
 * off). Safe while running and from any thread: the hooks read it atomically. */
static PyObject *sampler_set_interval(PyObject *self, PyObject *arg) {
    double interval = PyFloat_AsDouble(arg);
    if (interval == -1.0 && PyErr_Occurred()) return NULL;
    if (!(interval >= 1.0) || !isfinite(interval)) {
        PyErr_SetString(PyExc_ValueError, "interval must be a number of bytes >= 1");
        return NULL;
    }
    pthread_mutex_lock(&S.lock);
    S.auto_div = 0.0;
    put_interval(interval);
    pthread_mutex_unlock(&S.lock);
    Py_RETURN_NONE;
}

/* ignore_thread(flag): stop (True) or resume (False) recording the calling thread's
 * samples. Its frees are still seen. For a tool's own worker thread. */
static PyObject *sampler_ignore_thread(PyObject *self, PyObject *arg) {
    int flag = PyObject_IsTrue(arg);
    if (flag < 0) return NULL;
    tl_ignored = flag;
    Py_RETURN_NONE;
}

/* Frames tuple of stack number i, ((filename, lineno), ...), or NULL. */
static PyObject *frames_tuple(const Frame *frames, int n) {
    PyObject *out = PyTuple_New(n);
    for (int k = 0; out && k < n; k++) {
        PyObject *fr = Py_BuildValue("(Oi)", frames[k].code->co_filename,
                                     PyCode_Addr2Line(frames[k].code, frames[k].addr));
        if (!fr) {
            Py_CLEAR(out);
            break;
        }
        PyTuple_SET_ITEM(out, k, fr);
    }
    return out;
}

/* live_addresses(stack): [(address, size, order)] of the live sampled blocks of stack
 * number `stack` (its index in stacks()); `order` grows with sampling time. */
static PyObject *sampler_live_addresses(PyObject *self, PyObject *arg) {
    long long want = PyLong_AsLongLong(arg);
    if (want == -1 && PyErr_Occurred()) return NULL;
    typedef struct {
        uintptr_t ptr;
        double size;
        uint64_t seq;
    } Hit;
    pthread_mutex_lock(&S.lock);
    size_t cap = 0, n = 0;
    Hit *hits = NULL;
    int failed = 0;
    if (want >= 0 && (uint64_t)want < S.n_stacks && S.live) {
        cap = S.stacks[want]->live_samples + 1;
        hits = malloc(cap * sizeof(Hit));
        failed = hits == NULL;
        for (size_t i = 0; hits && i <= S.live_mask && n < cap; i++) {
            Live *l = &S.live[i];
            if (l->ptr && l->stack == (uint32_t)want) {
                hits[n].ptr = l->ptr;
                hits[n].size = l->bytes / l->blocks;
                hits[n].seq = l->seq;
                n++;
            }
        }
    }
    pthread_mutex_unlock(&S.lock);
    if (failed) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    for (size_t i = 0; out && i < n; i++) {
        PyObject *row = Py_BuildValue("(KnK)", (unsigned long long)hits[i].ptr,
                                      (Py_ssize_t)(hits[i].size + 0.5),
                                      (unsigned long long)hits[i].seq);
        if (!row || PyList_Append(out, row) < 0) Py_CLEAR(out);
        Py_XDECREF(row);
    }
    free(hits);
    return out;
}

/* The bytes in front of an object inside its block: CPython's _PyType_PreHeaderSize
 * (the GC header of GC types; on 3.11 the managed-dict pointers, on 3.12 those and
 * the managed weakref list). */
static Py_ssize_t preheader_size(PyTypeObject *tp) {
    Py_ssize_t size = 0;
    if (PyType_IS_GC(tp)) size += 2 * (Py_ssize_t)sizeof(void *); /* PyGC_Head */
#if PY_VERSION_HEX >= 0x030C0000
    if (PyType_HasFeature(tp, Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF))
        size += 2 * (Py_ssize_t)sizeof(PyObject *);
#else
    if (PyType_HasFeature(tp, Py_TPFLAGS_MANAGED_DICT)) size += 2 * (Py_ssize_t)sizeof(PyObject *);
#endif
    return size;
}

/* object_block(obj): the address of the block obj was allocated in, as the
 * allocator saw it (id(obj) less the pre-header). */
static PyObject *sampler_object_block(PyObject *self, PyObject *obj) {
    return PyLong_FromUnsignedLongLong(
        (unsigned long long)((uintptr_t)obj - (uintptr_t)preheader_size(Py_TYPE(obj))));
}

/* Stack number of the live sampled block starting at p, or -1. */
static int64_t block_stack(uintptr_t p) {
    if (!S.live) return -1;
    size_t h = mix64(p) & S.live_mask;
    while (S.live[h].ptr && S.live[h].ptr != p) h = (h + 1) & S.live_mask;
    return S.live[h].ptr == p ? (int64_t)S.live[h].stack : -1;
}

/* object_frames(obj): the stack that allocated obj if its block is a live sample (as
 * tracemalloc.get_object_traceback, most recent first), else None. Only the table
 * is read: nothing at the object's address is dereferenced besides its type. */
static PyObject *sampler_object_frames(PyObject *self, PyObject *obj) {
    uintptr_t p = (uintptr_t)obj - (uintptr_t)preheader_size(Py_TYPE(obj));
    Frame frames[MAX_FRAMES_LIMIT];
    int n = -1;
    pthread_mutex_lock(&S.lock);
    int64_t k = block_stack(p);
    if (k >= 0) {
        Stack *s = S.stacks[k];
        n = s->nframes;
        memcpy(frames, s->frames, n * sizeof(Frame));
        for (int i = 0; i < n; i++) Py_INCREF(frames[i].code);
    }
    pthread_mutex_unlock(&S.lock);
    if (n < 0) Py_RETURN_NONE;
    PyObject *out = frames_tuple(frames, n);
    for (int i = 0; i < n; i++) Py_DECREF(frames[i].code);
    return out;
}

/* stack_details(): [(live_bytes, live_big_bytes, live_samples)] per stack number, in
 * the order of stacks() (the frames are read once from there). live_big_bytes: the
 * part in blocks the C allocator serves (raw domain, or larger than 512 bytes). */
static PyObject *sampler_stack_details(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&S.lock);
    uint32_t n = S.n_stacks;
    double *rows = malloc((n ? n : 1) * 3 * sizeof(double));
    for (uint32_t i = 0; rows && i < n; i++) {
        Stack *s = S.stacks[i];
        rows[3 * i] = s->live_samples ? s->live_bytes : 0.0;
        rows[3 * i + 1] = s->live_samples ? s->live_big_bytes : 0.0;
        rows[3 * i + 2] = (double)s->live_samples;
    }
    pthread_mutex_unlock(&S.lock);
    if (!rows) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    for (uint32_t i = 0; out && i < n; i++) {
        PyObject *row = Py_BuildValue("(ddK)", rows[3 * i], rows[3 * i + 1],
                                      (unsigned long long)rows[3 * i + 2]);
        if (!row || PyList_Append(out, row) < 0) Py_CLEAR(out);
        Py_XDECREF(row);
    }
    free(rows);
    return out;
}

static PyObject *sampler_stats(PyObject *self, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&S.lock);
    unsigned long long samples = S.samples, live = S.live_used, stacks = S.n_stacks;
    unsigned long long dropped = S.dropped_no_gil, retunes = S.retunes;
    double auto_div = S.auto_div, cost_floor = S.cost_floor, cost_ns = (double)S.cost_ns;
    double hooks_ns = S.hooks_ns + S.win_calls * HOOK_COST_NS; /* the open window too */
    /* What the tables take from malloc (usable sizes: chunk rounding included). */
    size_t overhead = sizeof(S);
    if (S.live) overhead += USABLE(S.live, (S.live_mask + 1) * sizeof(Live));
    if (S.stack_index) overhead += USABLE(S.stack_index, (S.stack_mask + 1) * sizeof(uint32_t));
    if (S.stacks) overhead += USABLE(S.stacks, S.cap_stacks * sizeof(Stack *));
    for (uint32_t i = 0; i < S.n_stacks; i++) {
        /* + the chunk header malloc keeps in front of each small block */
        overhead += USABLE(S.stacks[i], sizeof(Stack) + S.stacks[i]->nframes * sizeof(Frame)) +
                    sizeof(size_t);
    }
    pthread_mutex_unlock(&S.lock);
    PyObject *limits[2];
    for (int i = 0; i < 2; i++) {
        size_t limit = S.dom[i + 1].limit;
        limits[i] = limit == SIZE_MAX ? Py_NewRef(Py_None) : PyLong_FromSize_t(limit);
        if (!limits[i]) {
            Py_XDECREF(limits[0]);
            return NULL;
        }
    }
    return Py_BuildValue("{s:O,s:d,s:i,s:K,s:K,s:K,s:K,s:n,s:d,s:K,s:d,s:d,s:d,s:N,s:N,s:O,s:O,s:d}",
                         "running",
                         (S.installed && hooks_in_place()) ? Py_True : Py_False, "interval",
                         cur_interval(), "max_frames", S.max_frames, "samples", samples,
                         "live_samples", live, "stacks", stacks, "dropped_without_gil", dropped,
                         "overhead_bytes", (Py_ssize_t)overhead, "auto", auto_div, "retunes",
                         retunes, "cost_floor", cost_floor, "record_seconds", cost_ns / 1e9,
                         "hooks_seconds", hooks_ns / 1e9,
                         "mem_limit", limits[0], "obj_limit", limits[1], "mem_divert",
                         S.dom[PYMEM_DOMAIN_MEM].divert ? Py_True : Py_False, "obj_divert",
                         S.dom[PYMEM_DOMAIN_OBJ].divert ? Py_True : Py_False, "budget",
                         S.auto_budget);
}

static PyMethodDef methods[] = {
    {"start", (PyCFunction)(void (*)(void))sampler_start, METH_VARARGS | METH_KEYWORDS,
     "start(interval=524288, max_frames=25, seed=0, auto=0, min_interval=4096, "
     "max_interval=524288, budget=0.01): install the allocator hooks; auto > 0 "
     "re-chooses the interval as live_total / auto within [min_interval, max_interval], "
     "and no lower than keeps what the sampler costs (hooks and samples) under budget"},
    {"stop", sampler_stop, METH_NOARGS, "remove the hooks (the data is kept)"},
    {"is_running", sampler_is_running, METH_NOARGS, "True while the hooks are installed"},
    {"reset", sampler_reset, METH_NOARGS, "drop every sample (when stopped)"},
    {"stacks", sampler_stacks, METH_NOARGS,
     "[(frames, live_bytes, live_blocks, alloc_bytes, alloc_blocks)], estimates"},
    {"peak_stacks", sampler_peak_stacks, METH_NOARGS,
     "[(frames, bytes, blocks)] live at the peak since start() or reset_peak()"},
    {"peak", sampler_peak, METH_NOARGS, "(live bytes, peak live bytes), estimates"},
    {"reset_peak", sampler_reset_peak, METH_NOARGS, "count the peak from now"},
    {"stats", sampler_stats, METH_NOARGS, "counters of the sampler itself"},
    {"set_interval", sampler_set_interval, METH_O,
     "set_interval(bytes): a fixed mean interval from now on (any thread, while running)"},
    {"ignore_thread", sampler_ignore_thread, METH_O,
     "ignore_thread(flag): do not record (True) or record again (False) this thread's samples"},
    {"live_addresses", sampler_live_addresses, METH_O,
     "live_addresses(stack): [(address, size, order)] of its live sampled blocks"},
    {"object_block", sampler_object_block, METH_O,
     "object_block(obj): address of the block obj lives in (id less the pre-header)"},
    {"object_frames", sampler_object_frames, METH_O,
     "object_frames(obj): frames of obj's block if it is a live sample, else None"},
    {"stack_details", sampler_stack_details, METH_NOARGS,
     "[(live_bytes, live_big_bytes, live_samples)] per stack, in stacks() order"},
    {NULL}};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "_sampler",
                                       "Sampling allocation tracer (Poisson by bytes).", -1,
                                       methods};

PyMODINIT_FUNC PyInit__sampler(void) {
    static int atfork_done = 0;
    if (!atfork_done) {
        if (pthread_atfork(at_fork_prepare, at_fork_parent, at_fork_child) != 0) {
            PyErr_SetString(PyExc_OSError, "pthread_atfork failed");
            return NULL;
        }
        atfork_done = 1;
    }
    return PyModule_Create(&moduledef);
}

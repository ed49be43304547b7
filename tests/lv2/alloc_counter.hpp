// Counting heap allocations: an executable that includes this header (once) puts its
// malloc family in front of libc's, for the plugin and Csound too. Counting is on
// between start() and stop(); with tracing on, the first kMaxTraces allocations keep
// their backtrace in a preallocated buffer, printed by printTraces().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <execinfo.h>
#include <unistd.h>

extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);
extern "C" void __libc_free(void*);

namespace alloc_counter {

constexpr int kMaxTraces = 4096;
constexpr int kMaxFrames = 40;
struct Trace {
    int frames = 0;
    std::size_t size = 0;
    void* pc[kMaxFrames];
};

inline std::atomic<bool> counting{false};
inline std::atomic<long> count{0};
inline bool tracing = false;
inline Trace traces[kMaxTraces];
inline std::atomic<int> numTraces{0};
inline thread_local bool inside = false; // backtrace() itself must not count

inline void note(std::size_t size) {
    if (!counting.load(std::memory_order_relaxed) || inside) return;
    count.fetch_add(1, std::memory_order_relaxed);
    if (!tracing) return;
    const int i = numTraces.fetch_add(1);
    if (i >= kMaxTraces) return;
    inside = true;
    traces[i].size = size;
    traces[i].frames = backtrace(traces[i].pc, kMaxFrames);
    inside = false;
}

// Tracing if SPINOUT_ALLOC_TRACE is set; backtrace() loads libgcc on its first call,
// which allocates: done here, not while counting.
inline void init() {
    tracing = std::getenv("SPINOUT_ALLOC_TRACE") != nullptr;
    void* pc[4];
    backtrace(pc, 4);
}

inline void start() {
    count = 0;
    numTraces = 0;
    counting = true;
}

inline long stop() {
    counting = false;
    return count.load();
}

inline void printTraces() {
    const int n = numTraces.load() < kMaxTraces ? numTraces.load() : kMaxTraces;
    for (int i = 0; i < n; ++i) {
        std::fprintf(stderr, "--- allocation %d: %zu bytes\n", i, traces[i].size);
        std::fflush(stderr);
        backtrace_symbols_fd(traces[i].pc, traces[i].frames, STDERR_FILENO);
    }
}

} // namespace alloc_counter

extern "C" void* malloc(size_t n) {
    alloc_counter::note(n);
    return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
    alloc_counter::note(a * b);
    return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
    alloc_counter::note(n);
    return __libc_realloc(p, n);
}
extern "C" void free(void* p) {
    __libc_free(p);
}
extern "C" int posix_memalign(void** out, size_t align, size_t n) {
    alloc_counter::note(n);
    *out = __libc_memalign(align, n);
    return *out != nullptr ? 0 : 12;
}
extern "C" void* aligned_alloc(size_t align, size_t n) {
    alloc_counter::note(n);
    return __libc_memalign(align, n);
}
extern "C" void* memalign(size_t align, size_t n) {
    alloc_counter::note(n);
    return __libc_memalign(align, n);
}

/*
 * LD_PRELOAD shim for reproducible componentize-py builds: getrandom() and getentropy()
 * return a fixed pseudo-random stream instead of the kernel's.
 *
 * componentize-py pre-initialises CPython in a wasmtime instance and snapshots its memory
 * into the component. CPython draws its str/bytes hash secret, and the `random` module its
 * Mersenne Twister state, from WASI random_get, which wasmtime serves from the host's
 * getrandom(). Both end up in the snapshot, so without this shim every build differs. The
 * guest's environment cannot be set from outside (componentize-py passes only PYTHONHOME,
 * PYTHONPATH and PYTHONUNBUFFERED), so PYTHONHASHSEED is not an option.
 *
 * Only the build tool runs under this shim, never cachehost. At run time componentize-py
 * reseeds `random` on every call; the hash secret stays the one baked in at build time, as
 * it would without the shim.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/syscall.h>
#include <sys/types.h>

/* splitmix64 from a fixed seed. Every call returns the same stream from its start: a
 * shared, advancing stream would hand out different bytes depending on which of the
 * tool's threads asks first. Rust seeds its generators (wasmtime-wasi's included) from
 * such calls, so they all start from a fixed seed. */
static void fill(void *buf, size_t len) {
    unsigned char *out = buf;
    uint64_t state = 0x6361636865686f73ULL; /* "cachehos" */
    while (len > 0) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        size_t n = len < sizeof z ? len : sizeof z;
        memcpy(out, &z, n);
        out += n;
        len -= n;
    }
}

ssize_t getrandom(void *buf, size_t len, unsigned int flags) {
    (void)flags;
    fill(buf, len);
    return (ssize_t)len;
}

int getentropy(void *buf, size_t len) {
    fill(buf, len);
    return 0;
}

/* Rust's getrandom crate (0.2) calls the raw system call through libc's syscall(). */
long syscall(long number, ...) {
    va_list args;
    long a[6];
    va_start(args, number);
    for (int i = 0; i < 6; i++) {
        a[i] = va_arg(args, long);
    }
    va_end(args);
    if (number == SYS_getrandom) {
        fill((void *)a[0], (size_t)a[1]);
        return a[1];
    }
    static long (*real)(long, ...);
    if (real == NULL) {
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    }
    return real(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static time_t source_date_epoch(void) {
    static time_t epoch = -1;
    if (epoch < 0) {
        const char *text = getenv("SOURCE_DATE_EPOCH");
        epoch = text != NULL ? (time_t)strtoll(text, NULL, 10) : 0;
    }
    return epoch;
}

/* The clocks stand still at SOURCE_DATE_EPOCH (default 0): CPython's allocator, mimalloc,
 * seeds its own ChaCha generator from the clock on WASI, and that state is in the
 * snapshot too. */
int clock_gettime(clockid_t clock, struct timespec *ts) {
    (void)clock;
    ts->tv_sec = source_date_epoch();
    ts->tv_nsec = 0;
    return 0;
}

/* Every file's times read as SOURCE_DATE_EPOCH, and its device and inode as 0:
 * componentize-py writes the bindings and helper modules into new folders on every build,
 * CPython's import system stats them, and the results end up in the snapshot (also in
 * freed, not cleared, heap memory). */
static void fix_stat(struct stat64 *st) {
    struct timespec t = {source_date_epoch(), 0};
    st->st_atim = t;
    st->st_mtim = t;
    st->st_ctim = t;
    st->st_dev = 0;
    st->st_ino = 0;
}

#define REAL(name, type) \
    static __typeof__(type) real_##name; \
    if (real_##name == NULL) real_##name = (type)dlsym(RTLD_NEXT, #name)

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    REAL(statx, int (*)(int, const char *, int, unsigned int, struct statx *));
    int result = real_statx(dirfd, path, flags, mask, buf);
    if (result == 0) {
        struct statx_timestamp t = {source_date_epoch(), 0, 0};
        buf->stx_atime = t;
        buf->stx_btime = t;
        buf->stx_ctime = t;
        buf->stx_mtime = t;
        buf->stx_dev_major = 0;
        buf->stx_dev_minor = 0;
        buf->stx_ino = 0;
    }
    return result;
}

int __fxstat64(int ver, int fd, struct stat64 *buf) {
    REAL(__fxstat64, int (*)(int, int, struct stat64 *));
    int result = real___fxstat64(ver, fd, buf);
    if (result == 0) fix_stat(buf);
    return result;
}

int __fxstatat64(int ver, int dirfd, const char *path, struct stat64 *buf, int flags) {
    REAL(__fxstatat64, int (*)(int, int, const char *, struct stat64 *, int));
    int result = real___fxstatat64(ver, dirfd, path, buf, flags);
    if (result == 0) fix_stat(buf);
    return result;
}

int __lxstat64(int ver, const char *path, struct stat64 *buf) {
    REAL(__lxstat64, int (*)(int, const char *, struct stat64 *));
    int result = real___lxstat64(ver, path, buf);
    if (result == 0) fix_stat(buf);
    return result;
}

int __xstat64(int ver, const char *path, struct stat64 *buf) {
    REAL(__xstat64, int (*)(int, const char *, struct stat64 *));
    int result = real___xstat64(ver, path, buf);
    if (result == 0) fix_stat(buf);
    return result;
}

/* Directory entries carry inode numbers too (the WASI preview1 adapter passes them on). */
struct dirent64 *readdir64(DIR *dir) {
    REAL(readdir64, struct dirent64 *(*)(DIR *));
    struct dirent64 *entry = real_readdir64(dir);
    if (entry != NULL) entry->d_ino = 0;
    return entry;
}

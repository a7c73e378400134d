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
#include <errno.h>
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

static void fix_statx(struct statx *buf) {
    struct statx_timestamp t = {source_date_epoch(), 0, 0};
    buf->stx_atime = t;
    buf->stx_btime = t;
    buf->stx_ctime = t;
    buf->stx_mtime = t;
    buf->stx_dev_major = 0;
    buf->stx_dev_minor = 0;
    buf->stx_ino = 0;
}

int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf) {
    REAL(statx, int (*)(int, const char *, int, unsigned int, struct statx *));
    int result = real_statx(dirfd, path, flags, mask, buf);
    if (result == 0) fix_statx(buf);
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

#if defined(__x86_64__)
/* The statx system call itself, made without libc: wasmtime-wasi's file system code (its
 * cap-std and rustix) issues it directly, so the statx() above never sees those calls. They
 * are how the guest gets its inode numbers: the WASI preview1 adapter asks for a "metadata
 * hash" of each file it stats or lists, which wasmtime-wasi computes from the file's real
 * device and inode. The standard library is extracted into a new folder on every build, so
 * every st_ino and d_ino the guest saw was new, and CPython's freed (not cleared) heap
 * memory kept pieces of those numbers in the snapshot. A seccomp filter, installed when
 * the shim loads, turns every statx call in the process into a SIGSYS; the handler makes
 * the call itself (marked by a sixth argument statx does not have, which the filter
 * lets through) and fixes its result like statx() above. Other system calls are
 * untouched. The filter outlives exec: a child program must load this shim too (the
 * build tools start none). */
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>

#define PASS_LOW 0x66697865u  /* "fixe": the sixth argument of the shim's own statx calls */
#define PASS_HIGH 0x64737461u /* "dsta" */

static long raw_statx(long dirfd, long path, long flags, long mask, long buf) {
    long result;
    register long r10 __asm__("r10") = mask;
    register long r8 __asm__("r8") = buf;
    register long r9 __asm__("r9") = ((long)PASS_HIGH << 32) | PASS_LOW;
    __asm__ volatile("syscall"
                     : "=a"(result)
                     : "a"((long)SYS_statx), "D"(dirfd), "S"(path), "d"(flags), "r"(r10),
                       "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return result;
}

static void on_sigsys(int sig, siginfo_t *info, void *context) {
    (void)sig;
    greg_t *regs = ((ucontext_t *)context)->uc_mcontext.gregs;
    if (info->si_syscall != SYS_statx) {
        regs[REG_RAX] = -ENOSYS;
        return;
    }
    long result = raw_statx(regs[REG_RDI], regs[REG_RSI], regs[REG_RDX], regs[REG_R10],
                            regs[REG_R8]);
    if (result == 0) fix_statx((struct statx *)regs[REG_R8]);
    regs[REG_RAX] = result;
}

__attribute__((constructor)) static void trap_statx(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = on_sigsys;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;
    if (sigaction(SIGSYS, &action, NULL) != 0) return;
    enum { ARCH = offsetof(struct seccomp_data, arch), NR = offsetof(struct seccomp_data, nr),
           ARG5_LOW = offsetof(struct seccomp_data, args[5]), ARG5_HIGH = ARG5_LOW + 4 };
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARCH),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 6),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, NR),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_statx, 0, 4),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG5_LOW),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PASS_LOW, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG5_HIGH),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PASS_HIGH, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
    };
    struct sock_fprog program = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
        static const char warning[] =
            "fixed-random: seccomp is unavailable, so inode numbers reach the guest and "
            "the build may not be reproducible\n";
        (void)!write(2, warning, sizeof warning - 1);
    }
}
#endif

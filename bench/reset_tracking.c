/*
 * How a pooled slot's reset would cost if it tracked the pages each call
 * writes (userfaultfd write-protect in async mode, Linux 6.7+) instead of
 * copying back every private page, as wasmtime's PAGEMAP_SCAN reset does
 * (docs/perf.md, "Where issues 10 and 11 stop").
 *
 * A 928-page image in a memfd, mapped MAP_PRIVATE as wasmtime maps a slot.
 * WRITTEN + EXTRA pages are private (written by earlier calls); each round
 * a "call" writes WRITTEN of them and the reset puts them back:
 *   today:    scan for private pages, copy all WRITTEN + EXTRA back;
 *   uffd-wp:  the range is registered write-protect async; writes fault;
 *             scan for pages written since the last reset, copy those
 *             back, write-protect them again.
 *
 *   cc -O2 -o /tmp/reset_tracking bench/reset_tracking.c
 *   /tmp/reset_tracking [WRITTEN=23] [EXTRA=12]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* linux/fs.h's PAGEMAP_SCAN (6.7), spelled out for older headers. */
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)
struct page_region { __u64 start, end, categories; };
struct pm_scan_arg {
    __u64 size, flags, start, end, walk_end, vec, vec_len, max_pages;
    __u64 category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define PAGES 928
#define PAGE 4096
#define ROUNDS 20000

static char *image;
static int pagemap;

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Private pages of `slot` that count as written; with `flags`
 * PM_SCAN_WP_MATCHING they are write-protected as they are found. */
static long scan(char *slot, __u64 flags, struct page_region *regions, long capacity) {
    struct pm_scan_arg arg = {
        .size = sizeof arg, .flags = flags,
        .start = (__u64)slot, .end = (__u64)slot + PAGES * PAGE,
        .vec = (__u64)regions, .vec_len = capacity,
        .category_mask = PAGE_IS_WRITTEN | PAGE_IS_PRESENT | PAGE_IS_FILE,
        .category_inverted = PAGE_IS_FILE,
        .return_mask = PAGE_IS_WRITTEN,
    };
    long n = ioctl(pagemap, PAGEMAP_SCAN, &arg);
    if (n < 0) { perror("PAGEMAP_SCAN"); exit(1); }
    return n;
}

/* Copies the written pages back from the image; returns how many. */
static long reset(char *slot, int tracked) {
    struct page_region regions[128];
    long n = scan(slot, 0, regions, 128), pages = 0;
    for (long i = 0; i < n; i++) {
        size_t offset = regions[i].start - (__u64)slot, len = regions[i].end - regions[i].start;
        memcpy(slot + offset, image + offset, len);
        pages += len / PAGE;
    }
    if (tracked) scan(slot, PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC, regions, 128);
    return pages;
}

static void track_writes(char *slot) {
    int uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (uffd < 0) { perror("userfaultfd"); exit(1); }
    struct uffdio_api api = {.api = UFFD_API,
        .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_WP_UNPOPULATED};
    struct uffdio_register reg = {.range = {(__u64)slot, PAGES * PAGE}, .mode = UFFDIO_REGISTER_MODE_WP};
    struct uffdio_writeprotect wp = {.range = {(__u64)slot, PAGES * PAGE}, .mode = UFFDIO_WRITEPROTECT_MODE_WP};
    if (ioctl(uffd, UFFDIO_API, &api) || ioctl(uffd, UFFDIO_REGISTER, &reg) || ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) {
        perror("userfaultfd write-protect");
        exit(1);
    }
}

int main(int argc, char **argv) {
    int written = argc > 1 ? atoi(argv[1]) : 23, extra = argc > 2 ? atoi(argv[2]) : 12;
    int stride = PAGES / (written + extra + 1);
    pagemap = open("/proc/self/pagemap", O_RDONLY);
    int memfd = memfd_create("image", 0);
    image = malloc(PAGES * PAGE);
    for (long i = 0; i < PAGES * PAGE; i++) image[i] = (char)(i * 7);
    if (pagemap < 0 || memfd < 0 || pwrite(memfd, image, PAGES * PAGE, 0) != PAGES * PAGE) {
        perror("setting up");
        return 1;
    }
    for (int tracked = 0; tracked < 2; tracked++) {
        char *slot = mmap(0, PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, memfd, 0);
        for (int i = 0; i < written + extra; i++) slot[(size_t)i * stride * PAGE] ^= 1;
        if (tracked) track_writes(slot);
        reset(slot, tracked);
        double writing = 0, resetting = 0;
        long copied = 0;
        for (int round = 0; round < ROUNDS; round++) {
            double a = now_ns();
            for (int i = 0; i < written; i++) slot[(size_t)i * stride * PAGE + 8] = (char)round;
            double b = now_ns();
            copied += reset(slot, tracked);
            resetting += now_ns() - b;
            writing += b - a;
        }
        printf("%-26s the call's writes %6.2f µs, reset %6.2f µs, together %6.2f µs; %.0f pages copied\n",
               tracked ? "uffd-wp async (tracked):" : "today (every private page):",
               writing / ROUNDS / 1e3, resetting / ROUNDS / 1e3, (writing + resetting) / ROUNDS / 1e3,
               (double)copied / ROUNDS);
        munmap(slot, PAGES * PAGE);
    }
    return 0;
}

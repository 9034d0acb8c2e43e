// testee: the workload privileged tests trace. Built static by tests/common (no dynamic
// loader, so the only file opens are the ones asked for).
//
//   testee open PREFIX N     openat PREFIX<i> (nonexistent) N times
//   testee add A B N         call nubpf_testee_add(A, B) N times
//   testee spin MS           burn CPU for MS milliseconds
//   testee getpid N          call getpid N times (a syscall flood)
//   testee openpath PATH N   openat the same PATH N times
//   testee read PATH N SIZE  read SIZE bytes from PATH N times
//   testee mmap SIZE N       map SIZE anonymous bytes and unmap them, N times
//   testee symlink TARGET LINK N  create LINK pointing to TARGET and remove it, N times
#include <fcntl.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

__attribute__((noinline)) long nubpf_testee_add(long a, long b) {
    __asm__ volatile("" ::: "memory");
    return a + b;
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "open") == 0) {
        long n = atol(argv[3]);
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s%ld", argv[2], i);
            int fd = openat(AT_FDCWD, path, O_RDONLY);
            if (fd >= 0) close(fd);
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "add") == 0) {
        long a = atol(argv[2]), b = atol(argv[3]), n = atol(argv[4]);
        long total = 0;
        for (long i = 0; i < n; i++) total += nubpf_testee_add(a, b + i);
        printf("%ld\n", total);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "spin") == 0) {
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        long ms = atol(argv[2]);
        volatile unsigned long x = 0;
        do {
            for (int i = 0; i < 100000; i++) x += i;
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "openpath") == 0) {
        long n = atol(argv[3]);
        for (long i = 0; i < n; i++) {
            int fd = openat(AT_FDCWD, argv[2], O_RDONLY);
            if (fd >= 0) close(fd);
        }
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "read") == 0) {
        long n = atol(argv[3]), size = atol(argv[4]);
        static char buf[1 << 20];
        if (size > (long)sizeof buf) size = sizeof buf;
        int fd = openat(AT_FDCWD, argv[2], O_RDONLY);
        if (fd < 0) return 1;
        for (long i = 0; i < n; i++) {
            if (read(fd, buf, size) < 0) return 1;
        }
        close(fd);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "getpid") == 0) {
        long n = atol(argv[2]);
        for (long i = 0; i < n; i++) syscall(SYS_getpid);
        return 0;
    }
    if (argc == 5 && strcmp(argv[1], "symlink") == 0) {
        long n = atol(argv[4]);
        for (long i = 0; i < n; i++) {
            if (symlink(argv[2], argv[3]) != 0) return 1;
            unlink(argv[3]);
        }
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "mmap") == 0) {
        long size = atol(argv[2]), n = atol(argv[3]);
        for (long i = 0; i < n; i++) {
            void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) return 1;
            munmap(p, size);
        }
        return 0;
    }
    fprintf(stderr, "usage: testee open PREFIX N | add A B N | spin MS | getpid N | openpath PATH N | read PATH N SIZE | mmap SIZE N | symlink TARGET LINK N\n");
    return 2;
}

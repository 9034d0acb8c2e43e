// testee: the workload privileged tests trace. Built static by tests/common (no dynamic
// loader, so the only file opens are the ones asked for).
//
//   testee open PREFIX N     openat PREFIX<i> (nonexistent) N times
//   testee add A B N         call nubpf_testee_add(A, B) N times
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    fprintf(stderr, "usage: testee open PREFIX N | testee add A B N\n");
    return 2;
}

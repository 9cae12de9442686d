/*
 * sb-burn — a CPU-bound external command for bench/latency_under_load.py:
 * spins until it has used MS milliseconds of its own CPU time (default 5),
 * then prints "burned MS ms". Small and shell-free, so what a worker pays
 * per call beyond the burn is little more than posix_spawn and a wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    char *end = NULL;
    double ms = argc > 1 ? strtod(argv[1], &end) : 5.0;
    if (argc > 2 || (end && *end != '\0') || !(ms >= 0 && ms <= 10000)) {
        fprintf(stderr, "usage: sb-burn [MS]   (0..10000 ms of CPU, default 5)\n");
        return 2;
    }
    volatile unsigned long spin = 0;
    while (cpu_ms() < ms)
        for (int i = 0; i < 10000; i++)
            spin++;
    printf("burned %g ms\n", ms);
    return 0;
}

/* tool_util.h - what the standalone test tools (mock_kafka, kafka_client)
 * share: a stop flag set by SIGTERM/SIGINT, and a monotonic clock. One
 * translation unit per tool, so the definitions are static. */
#ifndef MF_TOOL_UTIL_H
#define MF_TOOL_UTIL_H

#include <signal.h>
#include <time.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#endif

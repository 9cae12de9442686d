/* reaper.c — kills what a dead worker leaves behind (see reaper.h). */
#include "reaper.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A SIGKILLed process needs a moment to become a zombie; a process stuck in
 * the kernel (state D) may need longer: the passes are bounded, not the wait
 * for it, so the master never hangs on one. */
#define KILL_PASSES   200
#define PASS_PAUSE_NS 1000000L

bool sb_reaper_init(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) == 0)
        return true;
    sb_log_warn("cannot become a subreaper; programs of a dead worker may outlive it",
                "error=\"%s\"", strerror(errno));
    return false;
}

/* The session of a live (not zombie) process; -1 when it is gone or a zombie. */
static pid_t live_session_of(const char *pid_text)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid_text);
    FILE *file = fopen(path, "re");
    if (!file)
        return -1;
    size_t got = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[got] = '\0';
    /* "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')'. */
    const char *after = strrchr(text, ')');
    char state;
    int ppid, group, session;
    if (!after || sscanf(after + 1, " %c %d %d %d", &state, &ppid, &group, &session) != 4)
        return -1;
    return state == 'Z' || state == 'X' ? -1 : (pid_t) session;
}

/* One pass over /proc: SIGKILL to every live member of `session`. */
static int kill_pass(pid_t session)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int found = 0;
    pid_t self = getpid();
    for (struct dirent *entry; (entry = readdir(proc));) {
        if (!isdigit((unsigned char) entry->d_name[0]))
            continue;
        pid_t pid = (pid_t) atoi(entry->d_name);
        if (pid != self && live_session_of(entry->d_name) == session && kill(pid, SIGKILL) == 0)
            found++;
    }
    closedir(proc);
    return found;
}

int sb_reaper_kill_session(pid_t session)
{
    int killed = 0;
    for (int pass = 0; pass < KILL_PASSES; pass++) {
        int found = kill_pass(session);
        if (found == 0)
            return killed;
        if (pass == 0)
            killed = found;
        nanosleep(&(struct timespec) { 0, PASS_PAUSE_NS }, NULL);
    }
    sb_log_warn("processes of a dead worker would not die", "worker_pid=%d", (int) session);
    return killed;
}

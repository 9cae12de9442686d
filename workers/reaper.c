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

/* What a pass looks at in /proc/PID/stat. */
typedef struct {
    pid_t pid, parent, session;
} proc_entry_t;

/* Which processes a pass kills. */
typedef bool (proc_match_fn)(const proc_entry_t *entry, const void *arg);

/* The entry of a live (not zombie) process; false when it is gone or a zombie. */
static bool read_live_entry(const char *pid_text, proc_entry_t *entry)
{
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%s/stat", pid_text);
    FILE *file = fopen(path, "re");
    if (!file)
        return false;
    size_t got = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[got] = '\0';
    /* "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')'. */
    const char *after = strrchr(text, ')');
    char state;
    int ppid, group, session;
    if (!after || sscanf(after + 1, " %c %d %d %d", &state, &ppid, &group, &session) != 4)
        return false;
    *entry = (proc_entry_t) { (pid_t) atoi(pid_text), (pid_t) ppid, (pid_t) session };
    return state != 'Z' && state != 'X';
}

/* One pass over /proc: SIGKILL to every live process `match` names. */
static int kill_pass(proc_match_fn *match, const void *arg)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    int found = 0;
    pid_t self = getpid();
    proc_entry_t entry;
    for (struct dirent *dirent; (dirent = readdir(proc));) {
        if (!isdigit((unsigned char) dirent->d_name[0]) || !read_live_entry(dirent->d_name, &entry))
            continue;
        if (entry.pid != self && match(&entry, arg) && kill(entry.pid, SIGKILL) == 0)
            found++;
    }
    closedir(proc);
    return found;
}

/* Passes until none is found (or KILL_PASSES); how many the first pass killed. */
static int kill_all(proc_match_fn *match, const void *arg, pid_t worker)
{
    int killed = 0;
    for (int pass = 0; pass < KILL_PASSES; pass++) {
        int found = kill_pass(match, arg);
        if (found == 0)
            return killed;
        if (pass == 0)
            killed = found;   /* later passes see the same ones until they are zombies */
        nanosleep(&(struct timespec) { 0, PASS_PAUSE_NS }, NULL);
    }
    sb_log_warn("processes of a dead worker would not die", "worker_pid=%d", (int) worker);
    return killed;
}

static bool in_session(const proc_entry_t *entry, const void *arg)
{
    return entry->session == *(const pid_t *) arg;
}

int sb_reaper_kill_session(pid_t session)
{
    return kill_all(in_session, &session, session);
}

typedef struct {
    pid_t master;
    sb_reaper_is_worker_fn *is_worker;
    void *arg;
} orphan_match_t;

static bool is_orphan(const proc_entry_t *entry, const void *arg)
{
    const orphan_match_t *match = arg;
    return entry->parent == match->master && !match->is_worker(entry->pid, match->arg);
}

int sb_reaper_kill_orphans(pid_t dead_worker, sb_reaper_is_worker_fn *is_worker, void *arg)
{
    orphan_match_t match = { getpid(), is_worker, arg };
    return kill_all(is_orphan, &match, dead_worker);
}

/* process.h — what every switchboard program sets up before anything else. */
#ifndef SB_PROCESS_H
#define SB_PROCESS_H

/* SIGPIPE ignored: a write to a closed pipe or socket (stderr piped to a
 * logger that went away, a client gone mid-write) is an EPIPE error the
 * caller handles, never the death of a broker, a pool or a gateway. Programs
 * the workers start get the default back (job.c resets every signal). */
void sb_process_init(void);

#endif

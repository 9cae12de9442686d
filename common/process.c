/* process.c — process-wide setup shared by every program (see process.h). */
#include "process.h"

#include <signal.h>

void sb_process_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

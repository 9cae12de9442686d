/* data_path.c — default data files and their folders (see data_path.h). */
#include "data_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void sb_data_path_default(const char *file, char *out, size_t size)
{
    const char *data_home = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    if (geteuid() == 0)
        snprintf(out, size, "/var/lib/switchboard/%s", file);
    else if (data_home && *data_home)
        snprintf(out, size, "%s/switchboard/%s", data_home, file);
    else
        snprintf(out, size, "%s/.local/share/switchboard/%s", home && *home ? home : "/tmp", file);
}

void sb_data_path_make_parent(const char *path)
{
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (!slash || slash == folder)
        return;
    *slash = '\0';
    for (char *next = strchr(folder + 1, '/'); next; next = strchr(next + 1, '/')) {
        *next = '\0';
        mkdir(folder, 0750);   /* fails harmlessly where it exists */
        *next = '/';
    }
    mkdir(folder, 0750);
}

/* data_path.h — where switchboard keeps its files when no flag names one
 * (the account store of the pools, the broker's retained values): the
 * system's data folder as root, the user's otherwise. */
#ifndef SB_DATA_PATH_H
#define SB_DATA_PATH_H

#include <stddef.h>

/* /var/lib/switchboard/FILE as root, else $XDG_DATA_HOME/switchboard/FILE,
 * else ~/.local/share/switchboard/FILE. */
void sb_data_path_default(const char *file, char *out, size_t size);

/* Makes the folders of `path` that are missing (a fresh home has none). */
void sb_data_path_make_parent(const char *path);

#endif

/* name_list.h — the comma-separated lists --allow-origin and --allow-host
 * take: "a, b,c" (spaces around entries are ignored, names compare without
 * case). */
#ifndef SB_NAME_LIST_H
#define SB_NAME_LIST_H

#include <stdbool.h>

/* Whether `name` is an entry of `list`. With `wildcards`, an entry "*"
 * matches any name and "*.example" any name that ends in ".example". */
bool sb_name_list_has(const char *list, const char *name, bool wildcards);

#endif

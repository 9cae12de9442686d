/* help.c — `help` and `help NAME`: the catalogue of every command a client
 * can send, from where each is described once: a configured command's own
 * `description`, the gateway's own commands (local_commands.c), the
 * worker's built-ins (common/builtin_commands.c) and the device gateway's
 * commands (here: only help describes them). */
#include <stdio.h>
#include <string.h>

#include "builtin_commands.h"
#include "protocol.h"
#include "router_internal.h"

/* What the device gateway's commands (SB_DEVICE_COMMANDS) do. */
static const struct {
    const char *name;
    const char *description;
} s_device_commands[] = {
    { "devices", "devices: every device and its state (connected, connecting, backoff:Ns, waiting)" },
    { "device", "device NAME [call LINE | send LINE]: a device's details, or a line to it "
                "(call answers with its next line)" },
};
#define DEVICE_COMMAND_COUNT (sizeof s_device_commands / sizeof s_device_commands[0])

/* `help NAME`: a configured command's description first (it may replace a built-in). */
static const char *describe(const sb_router_t *self, const char *name)
{
    const sb_command_config_t *command = sb_config_command(self->settings.config, name);
    if (command && command->description)
        return command->description;
    if (command && command->exec)
        return "an external command (no description in the config)";
    const sb_local_command_t *local = sb_local_command(name);
    if (local)
        return local->description;
    const sb_builtin_command_t *builtin = sb_builtin_command(name);
    if (builtin)
        return builtin->description;
    for (size_t i = 0; i < DEVICE_COMMAND_COUNT; i++)
        if (strcmp(s_device_commands[i].name, name) == 0)
            return s_device_commands[i].description;
    return NULL;
}

void sb_router_run_help(sb_router_t *self, void *client, sb_reply_slot_t *slot,
                        const sb_cmdline_t *request)
{
    if (request->argc == 2) {
        const char *description = describe(self, request->argv[1]);
        if (description)
            self->ops->answer(client, slot, "OK", description, false);
        else
            self->ops->answer(client, slot, "ERR unknown-command", "no such command", false);
        return;
    }
    char names[4096];
    size_t used = sb_builtin_command_names(names, sizeof names);
    for (size_t i = 0; i < DEVICE_COMMAND_COUNT; i++)
        used += (size_t) snprintf(names + used, sizeof names - used, " %s",
                                  s_device_commands[i].name);
    const sb_local_command_t *local;
    for (size_t i = 0; (local = sb_local_command_at(i)); i++)
        used += (size_t) snprintf(names + used, sizeof names - used, " %s", local->name);
    const sb_config_t *config = self->settings.config;
    for (size_t i = 0; i < sb_config_command_count(config) && used < sizeof names; i++) {
        const char *name = sb_config_command_at(config, i)->name;
        if (!sb_word_list_has(names, name))
            used += (size_t) snprintf(names + used, sizeof names - used, " %s", name);
    }
    self->ops->answer(client, slot, "OK", names, false);
}

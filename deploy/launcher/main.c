/* main.c — switchboard, the all-in-one launcher.
 *
 * Starts sb-broker, one sb-workers per service, sb-gateway-tcp,
 * sb-gateway-ws (unless --ws off), sb-gateway-mqtt (unless --mqtt off) and, when the config has [device]
 * sections, sb-gateway-device (with [bridge] sections, sb-bridge) as child
 * processes on ipc:// endpoints in a runtime directory, restarts any that
 * dies (common/supervisor.c), and on SIGTERM/SIGINT stops them in order
 * (gateway, then workers, then broker) and removes the runtime directory.
 * SIGHUP is passed on to the worker pools (a rolling restart of them all)
 * and to the gateways (those with a TLS listener reread its certificate).
 * The programs are found beside this executable. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "curve.h"
#include "secret.h"
#include "log.h"
#include "config_check.h"
#include "options.h"
#include "process.h"
#include "programs.h"
#include "supervisor.h"

#define MAX_ARGS 24
#define MAX_PROGRAMS 64



typedef struct {
    char path[PATH_MAX + 64];
    char *argv[MAX_ARGS];
    int argc;
} program_t;

typedef struct {
    char bin_dir[PATH_MAX];
    char runtime_dir[PATH_MAX];
    bool created_runtime_dir;
    char frontend[PATH_MAX + 16];
    char backend[PATH_MAX + 16];
    const char *config_path;
    const char *log_level;
    program_t *programs[MAX_PROGRAMS];   /* owned: freed when the hub stops */
    int program_count;
} launch_t;

/* ---------------------------------------------------------------- programs */

static void program_arg(program_t *program, const char *arg)
{
    if (program->argc < MAX_ARGS - 1)
        program->argv[program->argc++] = strdup(arg);
}

/* A child program with the settings every child shares; `launch` keeps it. */
static program_t *program_new(launch_t *launch, const char *name)
{
    if (launch->program_count == MAX_PROGRAMS) {
        sb_log_error("too many programs to start", "max=%d", MAX_PROGRAMS);
        exit(2);
    }
    program_t *program = calloc(1, sizeof *program);
    launch->programs[launch->program_count++] = program;
    snprintf(program->path, sizeof program->path, "%s/%s", launch->bin_dir, name);
    program_arg(program, name);
    program_arg(program, "--log-level");
    program_arg(program, launch->log_level);
    if (launch->config_path) {
        program_arg(program, "--config");
        program_arg(program, launch->config_path);
    }
    return program;
}

static void programs_free(launch_t *launch)
{
    for (int i = 0; i < launch->program_count; i++) {
        for (int arg = 0; arg < launch->programs[i]->argc; arg++)
            free(launch->programs[i]->argv[arg]);
        free(launch->programs[i]);
    }
    launch->program_count = 0;
}

static pid_t start_program(void *arg)
{
    program_t *program = arg;
    pid_t pid = sb_supervisor_fork();
    if (pid == 0) {
        execv(program->path, program->argv);
        sb_log_error("cannot run program", "path=%s error=\"%s\"", program->path, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* ---------------------------------------------------------------- set-up */

static bool find_bin_dir(launch_t *launch)
{
    char self[PATH_MAX];
    ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    if (length <= 0)
        return false;
    self[length] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(launch->bin_dir, sizeof launch->bin_dir, "%s", self);
    return true;
}

/* The shipped config beside the programs (bin/../etc/switchboard/), used
 * when none is given, so `sleep` runs in its own pool out of the box. */
static const char *default_config_path(const launch_t *launch)
{
    static char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/../etc/switchboard/switchboard.conf", launch->bin_dir);
    return access(path, R_OK) == 0 ? path : NULL;
}

static bool prepare_runtime_dir(launch_t *launch, const char *requested)
{
    if (requested)
        snprintf(launch->runtime_dir, sizeof launch->runtime_dir, "%s", requested);
    else {
        const char *base = getenv("XDG_RUNTIME_DIR");
        snprintf(launch->runtime_dir, sizeof launch->runtime_dir, "%s/switchboard-%d",
                 base && *base ? base : "/tmp", (int) getpid());
    }
    if (mkdir(launch->runtime_dir, 0700) == 0)
        launch->created_runtime_dir = true;
    else if (errno != EEXIST) {
        sb_log_error("cannot create runtime directory", "path=%s error=\"%s\"",
                     launch->runtime_dir, strerror(errno));
        return false;
    }
    struct sockaddr_un probe;
    if (strlen(launch->runtime_dir) + sizeof "/frontend.sock" > sizeof probe.sun_path) {
        sb_log_error("runtime directory path too long for ipc sockets", "path=%s max=%zu",
                     launch->runtime_dir, sizeof probe.sun_path - sizeof "/frontend.sock");
        return false;
    }
    snprintf(launch->frontend, sizeof launch->frontend, "ipc://%s/frontend.sock",
             launch->runtime_dir);
    snprintf(launch->backend, sizeof launch->backend, "ipc://%s/backend.sock",
             launch->runtime_dir);
    return true;
}

static void remove_runtime_dir(const launch_t *launch)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/frontend.sock", launch->runtime_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/backend.sock", launch->runtime_dir);
    unlink(path);
    if (launch->created_runtime_dir)
        rmdir(launch->runtime_dir);
}

/* ---------------------------------------------------------------- children */

enum { RANK_BROKER, RANK_WORKERS, RANK_GATEWAYS };   /* stopped highest first */

static void add_pool(sb_supervisor_t *supervisor, launch_t *launch, const char *service,
                     long workers)
{
    program_t *pool = program_new(launch, "sb-workers");
    program_arg(pool, "--service");
    program_arg(pool, service);
    program_arg(pool, "--broker");
    program_arg(pool, launch->backend);
    if (workers >= 0) {
        char count[24];
        snprintf(count, sizeof count, "%ld", workers);
        program_arg(pool, "--workers");
        program_arg(pool, count);
    }
    char label[96];
    snprintf(label, sizeof label, "sb-workers/%s", service);
    sb_supervisor_add(supervisor, label, RANK_WORKERS, start_program, pool);
}

/* A gateway on the broker's frontend. `listen` may be NULL (its own
 * setting); `backend`, when given, is where it also provides a service;
 * `label` names the child (NULL: the program's name); `extra` (NULL or
 * NULL-terminated) are more flags. */
static void add_gateway(sb_supervisor_t *supervisor, launch_t *launch, const char *name,
                        const char *listen, const char *backend, const char *label,
                        const char *const *extra)
{
    program_t *gateway = program_new(launch, name);
    if (listen) {
        program_arg(gateway, "--listen");
        program_arg(gateway, listen);
    }
    program_arg(gateway, "--broker");
    program_arg(gateway, launch->frontend);
    if (backend) {
        program_arg(gateway, "--backend");
        program_arg(gateway, backend);
    }
    for (const char *const *arg = extra; arg && *arg; arg++)
        program_arg(gateway, *arg);
    sb_supervisor_add(supervisor, label ? label : name, RANK_GATEWAYS, start_program, gateway);
}

/* `count` WebSocket gateways on one port: with more than one, each listens
 * with SO_REUSEPORT and has a client id prefix of its own (ws, ws2, ...),
 * since each is a gateway of its own at the broker. */
static void add_ws_gateways(sb_supervisor_t *supervisor, launch_t *launch, const char *listen,
                            long count)
{
    for (long i = 1; i <= count; i++) {
        char label[48], name[32];
        snprintf(label, sizeof label, "sb-gateway-ws/%ld", i);
        snprintf(name, sizeof name, "ws%ld", i);
        const char *shared[] = { "--reuse-port", "1", i > 1 ? "--name" : NULL, name, NULL };
        add_gateway(supervisor, launch, "sb-gateway-ws", listen, NULL, count > 1 ? label : NULL,
                    count > 1 ? shared : NULL);
    }
}

static void add_children(sb_supervisor_t *supervisor, launch_t *launch,
                         const sb_options_t *options, const sb_config_t *config)
{
    program_t *broker = program_new(launch, "sb-broker");
    program_arg(broker, "--frontend");
    program_arg(broker, launch->frontend);
    program_arg(broker, "--backend");
    program_arg(broker, launch->backend);
    sb_supervisor_add(supervisor, "sb-broker", RANK_BROKER, start_program, broker);

    long default_workers = sb_options_text(options, "workers") ? sb_options_int(options, "workers") : -1;
    add_pool(supervisor, launch, SB_DEFAULT_SERVICE, default_workers);
    for (size_t i = 0; i < sb_config_service_count(config); i++) {
        const sb_service_config_t *service = sb_config_service_at(config, i);
        if (strcmp(service->name, SB_DEFAULT_SERVICE) != 0)
            add_pool(supervisor, launch, service->name, -1);
    }

    add_gateway(supervisor, launch, "sb-gateway-tcp", sb_options_text(options, "tcp"), NULL, NULL,
                NULL);
    if (strcmp(sb_options_text(options, "ws"), "off") != 0)
        add_ws_gateways(supervisor, launch, sb_options_text(options, "ws"),
                        sb_options_int(options, "ws-processes"));
    if (strcmp(sb_options_text(options, "mqtt"), "off") != 0)
        add_gateway(supervisor, launch, "sb-gateway-mqtt", sb_options_text(options, "mqtt"), NULL,
                    NULL, NULL);
    /* Where devices dial in, if anywhere, is the device gateway's own setting.
     * It also announces the [ha NAME] topics to Home Assistant. */
    if (config && (sb_config_device_count(config) > 0 || sb_config_ha_topic_count(config) > 0))
        add_gateway(supervisor, launch, "sb-gateway-device", NULL, launch->backend, NULL, NULL);
    if (config && sb_config_bridge_count(config) > 0)
        add_gateway(supervisor, launch, "sb-bridge", NULL, NULL, NULL, NULL);
}

static void print_problems(const char *problems)
{
    for (const char *line = problems; *line;) {
        size_t length = strcspn(line, "\n");
        fprintf(stderr, "switchboard: error: %.*s\n", (int) length, line);
        line += length + (line[length] == '\n');
    }
}

/* --check-config FILE: the same checks every program makes before it starts. */
static int check_config(const char *path)
{
    sb_config_t *config = NULL;
    char *problems = sb_config_verify(path, NULL, &config);
    sb_config_destroy(&config);
    if (!problems) {
        printf("%s: ok\n", path);
        return 0;
    }
    print_problems(problems);
    free(problems);
    return 1;
}

static void on_signal(sb_supervisor_t *supervisor, int signo, void *arg)
{
    (void) arg;
    if (signo == SIGHUP) {
        /* Pools restart their workers; gateways with a TLS listener reread its certificate. */
        sb_log_info("passing SIGHUP to the worker pools and the gateways", NULL);
        sb_supervisor_signal_rank(supervisor, RANK_WORKERS, SIGHUP);
        sb_supervisor_signal_rank(supervisor, RANK_GATEWAYS, SIGHUP);
    }
}

/* `switchboard keygen PATH`: a CURVE key pair for a host's component. */
static int keygen(int argc, char **argv)
{
    if (argc != 3 || argv[2][0] == '-') {
        fprintf(stderr, "usage: switchboard keygen PATH\n"
                        "writes a CURVE key pair: PATH (public, for the broker's allowed "
                        "directory) and PATH_secret (keep it private)\n");
        return 2;
    }
    if (sb_curve_keygen(argv[2]) != 0) {
        fprintf(stderr, "switchboard: error: cannot write %s and %s_secret: %s\n", argv[2],
                argv[2], strerror(errno));
        return 1;
    }
    printf("%s\n%s_secret\n", argv[2], argv[2]);
    return 0;
}

/* `switchboard hash-secret`: the secret_sha256 of a [token] for the
 * secret on stdin (one line; its newline is not part of it). */
static int hash_secret(int argc)
{
    if (argc != 2) {
        fprintf(stderr, "usage: switchboard hash-secret < FILE\n"
                        "reads a secret (one line) from stdin and prints its SHA-256 in hex, "
                        "for secret_sha256 in a [token NAME] section\n");
        return 2;
    }
    char secret[4096];
    if (!fgets(secret, sizeof secret, stdin)) {
        fprintf(stderr, "switchboard: error: no secret on stdin\n");
        return 1;
    }
    size_t length = strcspn(secret, "\r\n");
    if (length == sizeof secret - 1 && !strchr(secret, '\n') && !feof(stdin)) {
        fprintf(stderr, "switchboard: error: the secret is longer than %zu bytes\n", length);
        return 1;
    }
    char hex[SB_SECRET_HEX_SIZE];
    bool hashed = length > 0 && sb_secret_hash_hex(secret, length, hex);
    explicit_bzero(secret, sizeof secret);
    if (!hashed) {
        fprintf(stderr, "switchboard: error: %s\n", length ? "cannot hash" : "the secret is empty");
        return 1;
    }
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    sb_process_init();
    if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
        return keygen(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "hash-secret") == 0)
        return hash_secret(argc);
    int exit_code;
    sb_options_t *options = sb_options_load(&sb_program_launcher, argc, argv, &exit_code);
    if (!options)
        return exit_code;
    /* Only as a flag: an environment variable must not turn the hub into a checker. */
    if (sb_options_text(options, "check-config")
        && strcmp(sb_options_source(options, "check-config"), "flag") == 0) {
        int status = check_config(sb_options_text(options, "check-config"));
        sb_options_destroy(&options);
        return status;
    }
    /* The children are configured by flags; SWITCHBOARD_WORKERS meant the
     * default pool and must not resize every pool through the environment. */
    unsetenv("SWITCHBOARD_WORKERS");
    launch_t launch = { .log_level = sb_options_text(options, "log-level") };
    launch.config_path = sb_options_text(options, "config");
    if (!find_bin_dir(&launch)) {
        sb_options_destroy(&options);
        return 1;
    }
    sb_config_t *default_config = NULL;
    const sb_config_t *config = sb_options_config(options);
    if (!launch.config_path && (launch.config_path = default_config_path(&launch))) {
        char *problems = sb_config_verify(launch.config_path, &sb_program_launcher, &default_config);
        config = default_config;
        if (!config) {
            print_problems(problems);
            free(problems);
            sb_options_destroy(&options);
            return 2;
        }
    }
    if (!prepare_runtime_dir(&launch, sb_options_text(options, "runtime-dir"))) {
        sb_config_destroy(&default_config);
        sb_options_destroy(&options);
        return 1;
    }
    sb_log_info("starting hub", "tcp=%s ws=%s mqtt=%s runtime_dir=%s config=%s",
                sb_options_text(options, "tcp"), sb_options_text(options, "ws"),
                sb_options_text(options, "mqtt"), launch.runtime_dir, launch.config_path ? launch.config_path : "none");
    sb_supervisor_t *supervisor = sb_supervisor_new("switchboard",
                                                    sb_options_int(options, "graceful-timeout"));
    int status = supervisor ? 0 : 1;
    if (supervisor) {
        sb_supervisor_set_signal_handler(supervisor, on_signal, NULL);
        add_children(supervisor, &launch, options, config);
        sb_supervisor_run(supervisor);
        sb_supervisor_destroy(&supervisor);
    }
    remove_runtime_dir(&launch);
    programs_free(&launch);
    sb_log_info("hub stopped", NULL);
    sb_config_destroy(&default_config);
    sb_options_destroy(&options);
    return status;
}

/* worker.c — the loop of one forked worker (see worker.h).
 *
 * The master forks before any ZeroMQ context exists; each worker makes its
 * own here. czmq would install a SIGINT/SIGTERM handler of its own on first
 * use, so it is told not to, and the worker installs one that only sets a
 * flag: a stop request never interrupts a command half-way. */
#include "worker.h"

#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>

#include "envelope_io.h"
#include "log.h"

static volatile sig_atomic_t s_stop_requested;

static void request_stop(int signo)
{
    (void) signo;
    s_stop_requested = 1;
}

static void install_stop_handler(void)
{
    struct sigaction action = { .sa_handler = request_stop };
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
}

static zsock_t *connect_and_register(const sb_worker_settings_t *settings)
{
    zsock_t *link = sb_socket_new(ZMQ_DEALER, settings->broker, SB_SOCKET_CONNECT);
    if (!link) {
        sb_log_error("cannot connect to broker", "broker=%s error=\"%s\"", settings->broker,
                     zmq_strerror(errno));
        return NULL;
    }
    sb_envelope_t ready = { .type = SB_ENVELOPE_READY, .service = (char *) settings->service };
    sb_envelope_send(link, NULL, &ready);
    return link;
}

static void serve_request(const sb_worker_settings_t *settings, zsock_t *link,
                          const sb_envelope_t *request)
{
    sb_command_result_t result;
    sb_command_run(&settings->limits, request->command, request->argc, request->argv, &result);
    sb_envelope_t reply = {
        .type = SB_ENVELOPE_REPLY, .id = request->id, .ok = result.ok,
        .code = (char *) result.code, .text = result.text,
    };
    if (sb_envelope_send(link, NULL, &reply) < 0)
        sb_log_warn("cannot send reply", "id=%" PRIu64 " error=\"%s\"", request->id,
                    zmq_strerror(errno));
}

/* Handles one envelope from the broker; returns false when the link must
 * be made anew (the broker does not know this worker any more). */
static bool handle(const sb_worker_settings_t *settings, zsock_t *link, const sb_envelope_t *env)
{
    switch (env->type) {
    case SB_ENVELOPE_REQUEST:
        serve_request(settings, link, env);
        return true;
    case SB_ENVELOPE_DISCONNECT:
        sb_log_info("broker asked to reconnect", "service=%s", settings->service);
        return false;
    case SB_ENVELOPE_HEARTBEAT:
        return true;
    default:
        sb_log_warn("unexpected envelope from broker, dropped", "type=%s",
                    sb_envelope_type_name(env->type));
        return true;
    }
}

/* Reads everything waiting; false when the link must be made anew. */
static bool drain(const sb_worker_settings_t *settings, zsock_t *link)
{
    while (!s_stop_requested) {
        sb_envelope_t *env = NULL;
        const char *error = NULL;
        sb_recv_status_t status = sb_envelope_recv(link, false, NULL, &env, &error);
        if (status == SB_RECV_NONE)
            return true;
        if (status == SB_RECV_MALFORMED) {
            sb_log_warn("malformed envelope from broker, dropped", "error=\"%s\"", error);
            continue;
        }
        bool keep = handle(settings, link, env);
        sb_envelope_destroy(&env);
        if (!keep)
            return false;
    }
    return true;
}

int sb_worker_run(const sb_worker_settings_t *settings)
{
    zsys_handler_set(NULL);
    zsys_init();
    install_stop_handler();
    zsock_t *link = connect_and_register(settings);
    while (link && !s_stop_requested) {
        zmq_pollitem_t item = { zsock_resolve(link), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 1000) < 0 && errno != EINTR)
            break;
        if (!drain(settings, link)) {
            zsock_destroy(&link);
            link = connect_and_register(settings);
        }
    }
    if (link) {
        sb_envelope_t leave = { .type = SB_ENVELOPE_DISCONNECT };
        sb_envelope_send(link, NULL, &leave);
        zsock_set_linger(link, 200);   /* let the goodbye reach the broker */
        zsock_destroy(&link);
    }
    zsys_shutdown();
    return 0;
}

/* curve.c — CURVE settings of this process (see curve.h). Process-wide,
 * like czmq's own settings: every socket of a process plays one role. */
#include "curve.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static zcert_t *s_certificate;        /* this process's key pair */
static zcert_t *s_server;             /* the broker's public certificate (clients) */
static zactor_t *s_authenticator;     /* zauth with the allowed directory (the broker) */

static zcert_t *load_certificate(const char *path, const char *what)
{
    zcert_t *certificate = zcert_load(path);
    if (!certificate)
        sb_log_error("cannot read CURVE certificate", "setting=%s file=%s", what, path);
    return certificate;
}

static bool start_authenticator(const char *allow_dir)
{
    struct stat info;
    if (stat(allow_dir, &info) != 0 || !S_ISDIR(info.st_mode)) {
        sb_log_error("--curve-allow must be a directory of public certificates", "dir=%s",
                     allow_dir);
        return false;
    }
    s_authenticator = zactor_new(zauth, NULL);
    if (!s_authenticator)
        return false;
    zstr_sendx(s_authenticator, "CURVE", allow_dir, NULL);
    zsock_wait(s_authenticator);
    sb_log_info("CURVE on: only peers with an allowed key may connect", "allow=%s", allow_dir);
    return true;
}

bool sb_curve_setup(const sb_options_t *options, bool server)
{
    const char *secret = sb_options_text(options, "curve-secret");
    const char *broker = sb_options_text(options, "curve-server");
    const char *allow = sb_options_text(options, "curve-allow");
    if (!secret) {
        if (broker || allow)
            sb_log_error("--curve-server and --curve-allow need --curve-secret", NULL);
        return !broker && !allow;
    }
    if (!(s_certificate = load_certificate(secret, "curve-secret")))
        return false;
    if (server) {
        if (!allow) {
            sb_log_error("the broker needs --curve-allow DIR with CURVE on", NULL);
            return false;
        }
        return start_authenticator(allow);
    }
    if (!broker) {
        sb_log_error("--curve-server FILE (the broker's public certificate) is needed with "
                     "--curve-secret", NULL);
        return false;
    }
    return (s_server = load_certificate(broker, "curve-server")) != NULL;
}

void sb_curve_apply(zsock_t *socket, bool server)
{
    if (!s_certificate)
        return;
    zcert_apply(s_certificate, socket);
    if (server)
        zsock_set_curve_server(socket, 1);
    else if (s_server)
        zsock_set_curve_serverkey(socket, zcert_public_txt(s_server));
}

zsock_t *sb_curve_watch_refusals(zsock_t *socket)
{
    if (!s_certificate)
        return NULL;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://curve-refusals-%p", (void *) socket);
    if (zmq_socket_monitor(zsock_resolve(socket), endpoint,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    zsock_t *monitor = zsock_new(ZMQ_PAIR);
    if (monitor && zsock_connect(monitor, "%s", endpoint) != 0)
        zsock_destroy(&monitor);
    return monitor;
}

void sb_curve_log_refusals(zsock_t *monitor, const char *name)
{
    while (monitor && (zsock_events(monitor) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv(monitor);
        zframe_t *head = event ? zmsg_first(event) : NULL;
        zframe_t *endpoint = event ? zmsg_next(event) : NULL;
        uint16_t number = 0;
        uint32_t value = 0;
        if (head && zframe_size(head) >= 6) {
            memcpy(&number, zframe_data(head), sizeof number);
            memcpy(&value, zframe_data(head) + 2, sizeof value);
        }
        char *where = endpoint ? zframe_strdup(endpoint) : NULL;
        const char *reason = number == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                                 ? "its key is not in the allowed directory"
                                 : "it does not speak CURVE with this key";
        sb_log_warn("peer refused", "socket=%s endpoint=%s reason=\"%s\" zap_status=%u", name,
                    where ? where : "?", reason, (unsigned) value);
        free(where);
        zmsg_destroy(&event);
    }
}

int sb_curve_keygen(const char *path)
{
    zcert_t *certificate = zcert_new();
    if (!certificate)
        return -1;
    int result = zcert_save(certificate, path);
    zcert_destroy(&certificate);
    return result;
}

void sb_curve_shutdown(void)
{
    zactor_destroy(&s_authenticator);
    zcert_destroy(&s_certificate);
    zcert_destroy(&s_server);
}

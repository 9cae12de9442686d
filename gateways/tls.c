/* tls.c — server-side TLS over memory BIOs (see tls.h).
 *
 * OpenSSL's error queue is per thread and shared by every session, so it is
 * cleared before each call whose outcome SSL_get_error reads. */
#include "tls.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

struct sb_tls_context {
    SSL_CTX *ssl_ctx;          /* the current files; open sessions hold their own reference */
    char *cert_file, *key_file;
    sb_tls_counters_t counters;
};

struct sb_tls_session {
    sb_tls_context_t *context;
    SSL *ssl;
    BIO *input, *output;       /* from the peer, to the peer: owned by `ssl` */
    sb_tls_state_t state;
    char peer[64];
};

/* ---------------------------------------------------------------- errors */

/* The first reason OpenSSL queued for the last failure ("wrong version
 * number", "No such file or directory"), or `fallback`; clears the queue. */
static const char *last_reason(const char *fallback)
{
    const char *reason = NULL;
    unsigned long code;
    while (!reason && (code = ERR_get_error()))
        reason = ERR_GET_LIB(code) == ERR_LIB_SYS ? strerror(ERR_GET_REASON(code))
                                                   : ERR_reason_error_string(code);
    ERR_clear_error();
    return reason ? reason : fallback;
}

/* ---------------------------------------------------------------- context */

static void log_certificate(SSL_CTX *ssl_ctx, const char *cert_file)
{
    X509 *cert = SSL_CTX_get0_certificate(ssl_ctx);
    char subject[256] = "?", expires[32] = "?", quoted[2][SB_LOG_QUOTE_MAX];
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    struct tm until;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &until))
        strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &until);
    sb_log_info("tls certificate loaded", "cert=%s subject=%s expires=%s",
                sb_log_quote(quoted[0], cert_file), sb_log_quote(quoted[1], subject), expires);
}

/* TLS 1.2 suites: Mozilla's "intermediate" list without DHE (which needs
 * parameters of its own and that no client lacking ECDHE would have):
 * forward secrecy and AEAD only, so no RSA key exchange and no CBC. TLS 1.3
 * keeps OpenSSL's default suites, all of which qualify. */
#define TLS12_CIPHERS                                                                  \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                       \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                       \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* An encrypted key is refused instead of OpenSSL asking for its passphrase on a terminal. */
static int no_passphrase(char *buffer, int size, int rwflag, void *data)
{
    (void) buffer;
    (void) size;
    (void) rwflag;
    (void) data;
    return -1;
}

/* A server SSL_CTX with the files, or NULL after logging why. */
static SSL_CTX *load(const char *cert_file, const char *key_file)
{
    ERR_clear_error();
    SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_server_method());
    const char *step = "cannot create a TLS context";
    if (!ssl_ctx)
        goto failed;
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    /* Compression leaks plaintext (CRIME); renegotiation is a DoS lever nobody here needs. */
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                                     | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ssl_ctx, SSL_MODE_RELEASE_BUFFERS);   /* idle clients keep no record buffers */
    step = "cannot set the TLS 1.2 cipher list";
    if (SSL_CTX_set_cipher_list(ssl_ctx, TLS12_CIPHERS) != 1)
        goto failed;
    SSL_CTX_set_default_passwd_cb(ssl_ctx, no_passphrase);
    step = "cannot read the certificate";
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cert_file) != 1)
        goto failed;
    step = "cannot use the private key";
    if (SSL_CTX_use_PrivateKey_file(ssl_ctx, key_file, SSL_FILETYPE_PEM) != 1)
        goto failed;
    step = "the private key does not match the certificate";
    if (SSL_CTX_check_private_key(ssl_ctx) != 1)
        goto failed;
    log_certificate(ssl_ctx, cert_file);
    return ssl_ctx;

failed:;
    char quoted[3][SB_LOG_QUOTE_MAX];
    sb_log_error(step, "cert=%s key=%s reason=%s", sb_log_quote(quoted[0], cert_file),
                 sb_log_quote(quoted[1], key_file), sb_log_quote(quoted[2], last_reason("unknown")));
    SSL_CTX_free(ssl_ctx);
    return NULL;
}

sb_tls_context_t *sb_tls_context_new(const char *cert_file, const char *key_file)
{
    SSL_CTX *ssl_ctx = load(cert_file, key_file);
    if (!ssl_ctx)
        return NULL;
    sb_tls_context_t *self = calloc(1, sizeof *self);
    self->ssl_ctx = ssl_ctx;
    self->cert_file = strdup(cert_file);
    self->key_file = strdup(key_file);
    return self;
}

void sb_tls_context_destroy(sb_tls_context_t **self_p)
{
    sb_tls_context_t *self = *self_p;
    if (!self)
        return;
    SSL_CTX_free(self->ssl_ctx);
    free(self->cert_file);
    free(self->key_file);
    free(self);
    *self_p = NULL;
}

bool sb_tls_context_reload(sb_tls_context_t *self)
{
    SSL_CTX *ssl_ctx = load(self->cert_file, self->key_file);
    if (!ssl_ctx) {
        sb_log_error("tls reload failed, keeping the certificate in use", NULL);
        return false;
    }
    SSL_CTX_free(self->ssl_ctx);
    self->ssl_ctx = ssl_ctx;
    return true;
}

const sb_tls_counters_t *sb_tls_context_counters(const sb_tls_context_t *self)
{
    return &self->counters;
}

/* ---------------------------------------------------------------- session */

sb_tls_session_t *sb_tls_session_new(sb_tls_context_t *context, const char *peer)
{
    sb_tls_session_t *self = calloc(1, sizeof *self);
    self->context = context;
    snprintf(self->peer, sizeof self->peer, "%s", peer);
    self->ssl = SSL_new(context->ssl_ctx);
    self->input = BIO_new(BIO_s_mem());
    self->output = BIO_new(BIO_s_mem());
    if (!self->ssl || !self->input || !self->output)
        abort();   /* out of memory */
    /* An empty input BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(self->input, -1);
    SSL_set_bio(self->ssl, self->input, self->output);
    SSL_set_accept_state(self->ssl);
    self->state = SB_TLS_HANDSHAKE;
    return self;
}

void sb_tls_session_destroy(sb_tls_session_t **self_p)
{
    sb_tls_session_t *self = *self_p;
    if (!self)
        return;
    SSL_free(self->ssl);   /* frees both BIOs */
    free(self);
    *self_p = NULL;
}

sb_tls_state_t sb_tls_session_state(const sb_tls_session_t *self)
{
    return self->state;
}

static void fail(sb_tls_session_t *self, const char *msg, const char *reason)
{
    char quoted[2][SB_LOG_QUOTE_MAX];
    sb_log_warn(msg, "peer=%s reason=%s", sb_log_quote(quoted[0], self->peer),
                sb_log_quote(quoted[1], reason));
    self->context->counters.failed++;
    self->state = SB_TLS_FAILED;
}

/* What a failed SSL call with result `result` means; true when it only waits for bytes. */
static bool must_wait(sb_tls_session_t *self, int result, const char *msg)
{
    int error = SSL_get_error(self->ssl, result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
        return true;
    if (error == SSL_ERROR_ZERO_RETURN)
        self->state = SB_TLS_CLOSED;
    else
        fail(self, msg, last_reason(error == SSL_ERROR_SYSCALL ? "unexpected end" : "unknown"));
    return false;
}

static void advance_handshake(sb_tls_session_t *self)
{
    ERR_clear_error();
    int result = SSL_do_handshake(self->ssl);
    if (result == 1) {
        self->state = SB_TLS_READY;
        self->context->counters.handshakes++;
        char quoted[SB_LOG_QUOTE_MAX];
        sb_log_debug("tls handshake done", "peer=%s version=%s cipher=%s",
                     sb_log_quote(quoted, self->peer), SSL_get_version(self->ssl),
                     SSL_get_cipher_name(self->ssl));
        return;
    }
    must_wait(self, result, "tls handshake failed");
}

sb_tls_state_t sb_tls_session_feed(sb_tls_session_t *self, const void *data, size_t length)
{
    if (self->state == SB_TLS_FAILED || self->state == SB_TLS_CLOSED || length == 0)
        return self->state;
    if (length > INT_MAX || BIO_write(self->input, data, (int) length) != (int) length) {
        fail(self, "tls input refused", "too much at once");
        return self->state;
    }
    if (self->state == SB_TLS_HANDSHAKE)
        advance_handshake(self);
    return self->state;
}

size_t sb_tls_session_read(sb_tls_session_t *self, void *buffer, size_t size)
{
    if (self->state != SB_TLS_READY || size == 0)
        return 0;
    ERR_clear_error();
    int result = SSL_read(self->ssl, buffer, size > INT_MAX ? INT_MAX : (int) size);
    if (result > 0)
        return (size_t) result;
    must_wait(self, result, "tls error");
    return 0;
}

bool sb_tls_session_write(sb_tls_session_t *self, const void *data, size_t length)
{
    /* After the peer's close_notify its side is closed, ours still sends the replies. */
    if ((self->state != SB_TLS_READY && self->state != SB_TLS_CLOSED) || length > INT_MAX)
        return false;
    if (length == 0)
        return true;
    ERR_clear_error();
    int result = SSL_write(self->ssl, data, (int) length);   /* a memory BIO takes it all */
    if (result > 0)
        return true;
    must_wait(self, result, "tls error");
    return false;
}

void sb_tls_session_close(sb_tls_session_t *self)
{
    if (self->state != SB_TLS_READY && self->state != SB_TLS_CLOSED)
        return;
    ERR_clear_error();
    SSL_shutdown(self->ssl);
    ERR_clear_error();
}

void sb_tls_session_expire(sb_tls_session_t *self)
{
    if (self->state != SB_TLS_HANDSHAKE)
        return;
    char quoted[SB_LOG_QUOTE_MAX];
    sb_log_warn("tls handshake timed out", "peer=%s", sb_log_quote(quoted, self->peer));
    self->context->counters.timeouts++;
    self->state = SB_TLS_FAILED;
}

char *sb_tls_session_take_output(sb_tls_session_t *self, size_t *length)
{
    size_t pending = BIO_ctrl_pending(self->output);
    *length = 0;
    if (pending == 0 || pending > INT_MAX)
        return NULL;
    char *data = malloc(pending);
    int taken = BIO_read(self->output, data, (int) pending);
    if (taken <= 0) {
        free(data);
        return NULL;
    }
    *length = (size_t) taken;
    return data;
}

bool sb_tls_session_has_output(const sb_tls_session_t *self)
{
    return BIO_ctrl_pending(self->output) > 0;
}

const char *sb_tls_session_version(const sb_tls_session_t *self)
{
    return self->state == SB_TLS_READY || self->state == SB_TLS_CLOSED
               ? SSL_get_version(self->ssl) : "";
}

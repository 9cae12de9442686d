/* test_cert.h — a self-signed certificate made at test time, for the
 * tests and fuzz targets of the gateways' TLS module (gateways/tls.h). */
#ifndef SB_TEST_CERT_H
#define SB_TEST_CERT_H

#include <stdbool.h>

/* Writes a fresh P-256 key and a certificate for CN=`name`, valid a day,
 * as PEM files; false when a step failed. */
bool sb_test_cert_write(const char *cert_path, const char *key_path, const char *name);

#endif

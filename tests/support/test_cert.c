/* test_cert.c — a self-signed certificate for tests (see test_cert.h). */
#include "test_cert.h"

#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static bool write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    FILE *out = fopen(path, "w");
    if (!out)
        return false;
    bool written = cert ? PEM_write_X509(out, cert) == 1
                        : PEM_write_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL) == 1;
    return fclose(out) == 0 && written;
}

bool sb_test_cert_write(const char *cert_path, const char *key_path, const char *name)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    bool made = key && cert;
    if (made) {
        X509_set_version(cert, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
        X509_NAME *subject = X509_get_subject_name(cert);
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *) name, -1,
                                   -1, 0);
        X509_set_issuer_name(cert, subject);
        X509_set_pubkey(cert, key);
        made = X509_sign(cert, key, EVP_sha256()) > 0 && write_pem(cert_path, cert, NULL)
               && write_pem(key_path, NULL, key);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return made;
}

/* Ed25519 signature verification (RFC 8032, as TweetNaCl computes it, plus the canonical-S check that
 * OpenSSL and Node's crypto make): 1 when sig is a valid signature of msg by the 32-byte key pub. */
#ifndef EF_ED25519_H
#define EF_ED25519_H
#include <stddef.h>
#include <stdint.h>
int ef_ed25519_verify(const uint8_t sig[64], const uint8_t *msg, size_t n, const uint8_t pub[32]);
#endif

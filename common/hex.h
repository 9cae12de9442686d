/* hex.h — bytes as lowercase hexadecimal digits and back: the one codec for
 * secret hashes in the config and MQTT 5 properties carried in envelopes. */
#ifndef SB_HEX_H
#define SB_HEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes 2 * length digits and a NUL into `hex` (2 * length + 1 bytes). */
void sb_hex_encode(const uint8_t *bytes, size_t length, char *hex);

/* Reads 2 * length digits (either case) of `hex` into `bytes`; false on
 * anything that is not a hex digit. */
bool sb_hex_decode(const char *hex, size_t length, uint8_t *bytes);

#endif

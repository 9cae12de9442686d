/* protocol.h — names the processes agree on beyond the envelope
 * (docs/protocol.md): the service the broker answers itself, the device
 * gateway's service and commands. The worker's built-in commands, and
 * which of them are safe to run twice, are in builtin_commands.h. */
#ifndef SB_PROTOCOL_H
#define SB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

/* The service name the broker answers itself (`stats broker`). */
#define SB_BROKER_SERVICE "$broker"

/* The device gateway's service, and the commands every gateway sends it. */
#define SB_DEVICE_SERVICE "device"
#define SB_DEVICE_COMMANDS "device devices"

/* Whether `text` may go to a device as (part of) one line: no C0 control
 * byte but TAB, and no DEL. A CR or LF would end the line early and make
 * the rest a second line, whose answer the first-in first-out matching of
 * calls would hand to the wrong caller; NUL and the other controls mean
 * things to serial firmware (XON/XOFF, ESC sequences) no request should
 * send. A line that is valid UTF-8 may not hold a C1 control code point
 * (U+0080..U+009F: CSI and the like) either; raw bytes 0x80..0x9F of text
 * that is not UTF-8 pass, as they are UTF-8 continuation bytes too. The
 * device gateway enforces it; the other gateways check it early. */
bool sb_device_line_is_safe(const char *text);
#define SB_DEVICE_LINE_RULE "a device line may not hold control characters (CR, LF, NUL, U+0080..U+009F, ...; TAB is allowed)"

/* The serial rates a [device] may ask for (the device gateway maps each to termios). */
#define SB_SERIAL_RATES "1200 2400 4800 9600 19200 38400 57600 115200 230400 460800 921600"

/* How many times a retry-safe request is given to another worker. */
#define SB_MAX_RETRIES 2

/* A token name ([token NAME], `auth NAME SECRET`, `Bearer NAME:SECRET`,
 * the envelope's "tok"): 1..SB_TOKEN_NAME_MAX letters, digits, _ . - */
#define SB_TOKEN_NAME_MAX 64
bool sb_token_name_is_valid(const char *name, size_t length);

/* Whether `word` is one of the space-separated words of `list`. */
bool sb_word_list_has(const char *list, const char *word);

#endif

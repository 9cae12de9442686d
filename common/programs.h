/* programs.h — every program's settings table, in one place: each program
 * reads its own, and config validation (and `switchboard --check-config`)
 * reads them all, so a key in any [section] is checked against the program
 * it belongs to. */
#ifndef SB_PROGRAMS_H
#define SB_PROGRAMS_H

#include "option_spec.h"

extern const sb_program_t sb_program_broker;
extern const sb_program_t sb_program_workers;
extern const sb_program_t sb_program_gateway_tcp;
extern const sb_program_t sb_program_gateway_ws;
extern const sb_program_t sb_program_gateway_mqtt;
extern const sb_program_t sb_program_gateway_device;
extern const sb_program_t sb_program_bridge;
extern const sb_program_t sb_program_launcher;

/* The programs above, then NULL. */
extern const sb_program_t *const sb_programs[];

#endif

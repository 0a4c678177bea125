/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One logging module for the agent and the tools: levels, and one line per
 * event in key=value form, e.g.
 *
 *   level=info msg="service added" service=default/web frontends=2
 *
 * Callers pass the message and then key=value pairs already formatted:
 *   pr_info("service added", "service=%s/%s frontends=%d", ns, name, n);
 * libbpf's own messages are routed here and demoted one level.
 */
#ifndef AXON_LOG_H
#define AXON_LOG_H

#include <stdio.h>

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Send output to f instead of stderr (tests). */
void log_set_stream(FILE *f);
/* Route libbpf's messages into this module. */
void log_hook_libbpf(void);

void log_emit(enum log_level level, const char *msg, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pr_err(msg, ...)   log_emit(LOG_LEVEL_ERROR, msg, __VA_ARGS__)
#define pr_warn(msg, ...)  log_emit(LOG_LEVEL_WARN, msg, __VA_ARGS__)
#define pr_info(msg, ...)  log_emit(LOG_LEVEL_INFO, msg, __VA_ARGS__)
#define pr_debug(msg, ...) log_emit(LOG_LEVEL_DEBUG, msg, __VA_ARGS__)

#endif /* AXON_LOG_H */

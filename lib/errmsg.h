/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Error text for parsers that report to a caller's buffer: the message is
 * formatted into err (cut to errlen, never overflowed; err may be NULL) and
 * -EINVAL returned, so a check fails in one line:
 *
 *	if (n > max)
 *		return errmsg_invalid(err, errlen, "--flag: %u is above %u", n, max);
 */
#ifndef AXON_LIB_ERRMSG_H
#define AXON_LIB_ERRMSG_H

#include <stddef.h>

int errmsg_invalid(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* AXON_LIB_ERRMSG_H */

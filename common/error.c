/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoal_strerror(): names shoal's own error codes and falls back to
 * strerror() for -errno. Used by every process.
 */
#include "autoconf.h"

#include <string.h>

#include "common/error.h"

static const char *const shoal_errors[] = {
	[-(SHOAL_E_CONFIG - SHOAL_E_BASE)] = "configuration rejected",
	[-(SHOAL_E_STORE - SHOAL_E_BASE)] = "state store failure",
	[-(SHOAL_E_STORE_FULL - SHOAL_E_BASE)] = "state store full",
	[-(SHOAL_E_STORE_CORRUPT - SHOAL_E_BASE)] = "state store corrupt",
	[-(SHOAL_E_SCHEMA - SHOAL_E_BASE)] =
	    "state store written by a newer shoal",
	[-(SHOAL_E_FRAME_TOO_BIG - SHOAL_E_BASE)] = "frame exceeds size cap",
	[-(SHOAL_E_MALFORMED - SHOAL_E_BASE)] = "malformed frame",
	[-(SHOAL_E_PROTOCOL - SHOAL_E_BASE)] = "unsupported protocol version",
	[-(SHOAL_E_INVALID - SHOAL_E_BASE)] = "invalid field",
	[-(SHOAL_E_NOT_FOUND - SHOAL_E_BASE)] = "not found",
	[-(SHOAL_E_TIMEOUT - SHOAL_E_BASE)] = "timed out",
	[-(SHOAL_E_UNEXPECTED - SHOAL_E_BASE)] = "unexpected reply",
	[-(SHOAL_E_STORE_LOCKED - SHOAL_E_BASE)] =
	    "state directory in use by another process",
	[-(SHOAL_E_LIMIT - SHOAL_E_BASE)] = "limit reached",
	[-(SHOAL_E_DENIED - SHOAL_E_BASE)] = "not permitted for this key",
	[-(SHOAL_E_PENDING - SHOAL_E_BASE)] = "key awaits acceptance",
};

const char *
shoal_strerror(int code)
{
	if (code <= SHOAL_E_BASE && code >= SHOAL_E_LAST)
		return shoal_errors[-(code - SHOAL_E_BASE)];
	if (code < 0)
		return strerror(-code);
	return code == 0 ? "success" : "unknown error";
}

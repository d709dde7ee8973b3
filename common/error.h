/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Error codes shared by every shoal process. Functions that return int give
 * 0 or a negative value: -errno for system errors, or one of the SHOAL_E_*
 * codes below (from -1000 down). shoal_strerror() names both.
 */
#ifndef SHOAL_ERROR_H
#define SHOAL_ERROR_H

enum {
	SHOAL_E_BASE = -1000,
	SHOAL_E_CONFIG = -1000,     /* configuration file rejected */
	SHOAL_E_STORE = -1001,      /* LMDB failed in a way not listed below */
	SHOAL_E_STORE_FULL = -1002, /* LMDB map full */
	SHOAL_E_STORE_CORRUPT = -1003, /* LMDB or a stored record is corrupt */
	SHOAL_E_SCHEMA = -1004,        /* store written by a newer shoal */
	SHOAL_E_FRAME_TOO_BIG = -1005, /* frame above the size cap */
	SHOAL_E_MALFORMED = -1006,     /* frame does not decode */
	SHOAL_E_PROTOCOL = -1007,      /* unsupported protocol version */
	SHOAL_E_INVALID = -1008,       /* a field failed validation */
	SHOAL_E_NOT_FOUND = -1009,     /* no such node, record, ... */
	SHOAL_E_TIMEOUT = -1010,       /* the peer did not answer in time */
	SHOAL_E_UNEXPECTED = -1011,    /* a reply of the wrong kind */
	SHOAL_E_STORE_LOCKED = -1012,  /* another process holds the store */
	SHOAL_E_LIMIT = -1013,   /* a configured or built-in limit reached */
	SHOAL_E_DENIED = -1014,  /* the peer's key may not do this */
	SHOAL_E_PENDING = -1015, /* the node's key awaits acceptance */
	SHOAL_E_LAST = -1015,
};

/*
 * For validators that name what failed through `const char **ret_why`:
 * unless cond holds, set *ret_why to why and return SHOAL_E_INVALID.
 */
#define REQUIRE(cond, why)                      \
	do {                                    \
		if (!(cond)) {                  \
			*ret_why = (why);       \
			return SHOAL_E_INVALID; \
		}                               \
	} while (0)

/* A static description of a negative code (or -errno). Never NULL. */
const char *shoal_strerror(int code);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
#include "autoconf.h"

#include <errno.h>

#include "common/spec.h"

int
spec_load(const char *path, Shoal__ServiceSpec **ret, char *err, size_t errlen)
{
	return -ENOSYS;
}

int
spec_parse(const char *name, const char *text, size_t len,
    Shoal__ServiceSpec **ret, char *err, size_t errlen)
{
	return -ENOSYS;
}

int
spec_validate(const Shoal__ServiceSpec *spec, const char **ret_why)
{
	return -ENOSYS;
}

void
spec_free(Shoal__ServiceSpec *spec)
{
}

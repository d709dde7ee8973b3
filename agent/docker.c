/* SPDX-License-Identifier: Apache-2.0 */
/* Placeholder: being written. */
#include "autoconf.h"

#include "agent/docker.h"

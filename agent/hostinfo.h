/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the agent tells the coordinator about its host once, in Hello: OS,
 * kernel, CPUs, memory. The heartbeats' figures come from metrics.h.
 */
#ifndef SHOAL_AGENT_HOSTINFO_H
#define SHOAL_AGENT_HOSTINFO_H

#include "shoal.pb-c.h"

typedef struct hostinfo hostinfo_t;

/* proc_root: "/proc" normally; tests point it at a fixture tree. */
int hostinfo_new(const char *proc_root, hostinfo_t **ret);
void hostinfo_destroy(hostinfo_t **h);

/* Fills facts; its strings are owned by h and live as long as h. */
void hostinfo_facts(hostinfo_t *h, Shoal__Facts *facts);

#endif

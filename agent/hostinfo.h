/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the agent tells the coordinator about its host: facts once in Hello
 * (OS, kernel, CPUs, memory) and a few figures with every heartbeat (load,
 * CPU use since the previous sample, memory available), read from /proc.
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

/* Samples into figures. CPU use is measured since the previous call (0 on
 * the first). Missing files leave their figure at 0. */
void hostinfo_sample(hostinfo_t *h, Shoal__HostFigures *figures);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shoalctl's key commands: the nodes' CurveZMQ keys as the coordinator
 * holds them (list, accept, reject, delete: applied at once, no restart),
 * and generate, which makes an operator's key pair for a TCP control
 * endpoint.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/util.h"
#include "ctl/ctl.h"

static json_t *
key_json(const Shoal__NodeKey *k)
{
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s}", "node", k->node,
	    "key", k->key, "state", k->state, "first_seen",
	    time_json(k->first_seen_ms), "updated", time_json(k->updated_ms),
	    "by", k->by, "address", k->address);
}

/* --node ID into *(const char **)arg */
static int
node_flag(int ch, const char *v, void *arg)
{
	(void)ch;
	if (!node_id_valid(v)) {
		fail("--node: '%s' is not a node id", v);
		return -1;
	}
	*(const char **)arg = v;
	return 0;
}

/* --key KEY into *(const char **)arg */
static int
key_flag(int ch, const char *v, void *arg)
{
	(void)ch;
	if (!curve_key_valid(v)) {
		fail("--key: '%s' is not a 40-character Z85 key", v);
		return -1;
	}
	*(const char **)arg = v;
	return 0;
}

static int
keys_list(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl keys list [--node ID] [--json]\n"
	    "The nodes' CurveZMQ keys: pending (asked to enrol, waiting for "
	    "keys accept),\naccepted or rejected. --json prints an array of "
	    "{\"node\", \"key\", \"state\",\n\"first_seen\", \"updated\", "
	    "\"by\", \"address\"}.\n";
	static const struct option extra[] = {
		{ "node", required_argument, NULL, 'n' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__ListKeys lk = SHOAL__LIST_KEYS__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const char *node = NULL;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, extra, node_flag, &node);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (i != argc)
		return usage_error("keys list: unexpected '%s'", argv[i]);
	lk.node = (char *)(node ? node : "");
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_LIST_KEYS;
	req.list_keys = &lk;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (c->json) {
		json_t *arr = json_array();

		for (size_t k = 0; k < cr->n_keys; k++)
			json_array_append_new(arr, key_json(cr->keys[k]));
		r = print_json(arr);
	} else {
		printf("%-24s %-9s %-40s %-10s %s\n", "NODE", "STATE", "KEY",
		    "SINCE", "BY");
		for (size_t k = 0; k < cr->n_keys; k++) {
			const Shoal__NodeKey *e = cr->keys[k];
			char since[32];

			ago(e->updated_ms, since, sizeof since);
			printf("%-24s %-9s %-40s %-10s %s\n", e->node, e->state,
			    e->key, since, e->by[0] ? e->by : "-");
		}
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

static int
keys_control(ctl_t *c, int argc, char **argv, Shoal__KeyControl__Action action)
{
	static const char *const names[] = { "accept", "reject", "delete" };
	static const char *const done[] = { "accepted", "rejected", "deleted" };
	static const char *const helps[] = {
		"Usage: shoalctl keys accept NODE [--key KEY] [--json]\n"
		"Accept NODE's pending (or rejected) key: the agent may speak "
		"for NODE from\nnow on and converges at its next Hello. With "
		"--key, only if NODE's key is\nKEY (compare it with "
		"shoal-agent --print-key on the node).\n",
		"Usage: shoalctl keys reject NODE [--key KEY] [--json]\n"
		"Reject NODE's key: its agent is cut off at once and its "
		"handshakes are\nrefused until the key is deleted.\n",
		"Usage: shoalctl keys delete NODE [--key KEY] [--json]\n"
		"Forget NODE's key: its agent is cut off at once; if it "
		"connects again, its\nkey waits as pending (or is accepted "
		"again if it holds the enrollment\ntoken: reject keeps it "
		"out). A node that got a new key (a new state dir)\nneeds "
		"this before the new key can enrol.\n",
	};
	static const struct option extra[] = {
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	Shoal__ControlRequest req = SHOAL__CONTROL_REQUEST__INIT;
	Shoal__KeyControl kc = SHOAL__KEY_CONTROL__INIT;
	Shoal__Envelope *rep;
	const Shoal__ControlReply *cr;
	const char *key = NULL;
	int i, r;

	i = parse_command_flags(argc, argv, c, helps[action], extra, key_flag,
	    &key);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (argc - i != 1) {
		fail("keys %s: expected NODE", names[action]);
		fputs(helps[action], stderr);
		return EXIT_USAGE;
	}
	if (!node_id_valid(argv[i]))
		return usage_error("keys %s: '%s' is not a node id",
		    names[action], argv[i]);
	kc.node = argv[i];
	kc.action = action;
	kc.key = (char *)(key ? key : "");
	kc.requested_by = (char *)operator_name();
	req.req_case = SHOAL__CONTROL_REQUEST__REQ_KEY_CONTROL;
	req.key_control = &kc;
	r = call(c, &req, &rep);
	if (r)
		return r;
	cr = rep->control_reply;
	if (cr->n_keys != 1) {
		r = fail("keys %s: the reply names no key", names[action]);
	} else if (c->json) {
		json_t *j = key_json(cr->keys[0]);

		if (action == SHOAL__KEY_CONTROL__ACTION__DELETE)
			json_object_set_new(j, "state", json_string("deleted"));
		r = print_json(j);
	} else {
		printf("node %s: key %s %s\n", cr->keys[0]->node,
		    cr->keys[0]->key, done[action]);
	}
	shoal__envelope__free_unpacked(rep, NULL);
	return r;
}

/* keys generate FILE: an operator's key pair, made here; nothing is sent. */
static int
keys_generate(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl keys generate FILE [--json]\n"
	    "Make an operator's CurveZMQ key pair: the secret key in FILE "
	    "(mode 0600) and\nthe public one in FILE.pub. Add the printed "
	    "line (KEY NAME) to the file the\ncoordinator's --operator-keys "
	    "names, then use --key FILE (or SHOAL_KEY) with\na tcp:// "
	    "--control endpoint. An existing FILE is kept and its key "
	    "printed.\n";
	char *pub, err[512], name[64];
	curve_keys_t keys;
	const char *at;
	int i, r;

	i = parse_command_flags(argc, argv, c, help, NULL, NULL, NULL);
	if (i < 0)
		return i == -1 ? 0 : EXIT_USAGE;
	if (argc - i != 1) {
		fail("keys generate: expected FILE");
		fputs(help, stderr);
		return EXIT_USAGE;
	}
	pub = xasprintf("%s.pub", argv[i]);
	r = curve_keys_load_or_create(argv[i], pub, &keys, err, sizeof err);
	if (r < 0) {
		free(pub);
		return fail("%s", err);
	}
	/* The allow-list name: the user part of user@host. */
	at = strchr(operator_name(), '@');
	snprintf(name, sizeof name, "%.*s",
	    at ? (int)(at - operator_name()) : 63, operator_name());
	for (char *p = name; *p; p++)
		if (!strchr(
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789._@-",
		        *p))
			*p = '-';
	if (c->json)
		r = print_json(json_pack("{s:s, s:s, s:s, s:s}", "key",
		    keys.public_key, "secret_file", argv[i], "public_file", pub,
		    "allow", name));
	else
		printf("%s %s\n", keys.public_key, name[0] ? name : "operator");
	explicit_bzero(&keys, sizeof keys);
	free(pub);
	return r;
}

int
cmd_keys(ctl_t *c, int argc, char **argv)
{
	static const char help[] =
	    "Usage: shoalctl keys list|accept|reject|delete|generate ...\n"
	    "  list [--node ID] [--json]         the nodes' keys and their "
	    "state\n"
	    "  accept NODE [--key KEY]           let NODE's agent in\n"
	    "  reject NODE [--key KEY]           cut it off and refuse its "
	    "key\n"
	    "  delete NODE [--key KEY]           cut it off and forget its "
	    "key\n"
	    "  generate FILE                     an operator's key pair, "
	    "for --key\n"
	    "See shoalctl keys COMMAND --help.\n";

	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return keys_list(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "accept") == 0)
		return keys_control(c, argc - 1, argv + 1,
		    SHOAL__KEY_CONTROL__ACTION__ACCEPT);
	if (argc >= 2 && strcmp(argv[1], "reject") == 0)
		return keys_control(c, argc - 1, argv + 1,
		    SHOAL__KEY_CONTROL__ACTION__REJECT);
	if (argc >= 2 && strcmp(argv[1], "delete") == 0)
		return keys_control(c, argc - 1, argv + 1,
		    SHOAL__KEY_CONTROL__ACTION__DELETE);
	if (argc >= 2 && strcmp(argv[1], "generate") == 0)
		return keys_generate(c, argc - 1, argv + 1);
	if (argc >= 2 &&
	    (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		fputs(help, stdout);
		return 0;
	}
	fail("keys: expected list, accept, reject, delete or generate");
	fputs(help, stderr);
	return EXIT_USAGE;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The coordinator's keyring: the CurveZMQ key of every node that asked to
 * enrol (pending, accepted or rejected, kept in the keys database so a
 * restart changes nothing), and the operators' keys allowed on a TCP
 * control endpoint (a file the operator edits; read again when it
 * changes). A key speaks for one node and a node has one key.
 */
#ifndef SHOAL_COORD_KEYS_H
#define SHOAL_COORD_KEYS_H

#include <stddef.h>

#include "common/store.h"
#include "shoal.pb-c.h"

/* Keys waiting for an operator beyond this many are refused, so a flood
 * of made-up keys cannot grow the keyring without bound. */
#define KEYRING_PENDING_MAX 1024
/* Operators' keys read from the allow-list file, at most. */
#define KEYRING_OPERATORS_MAX 1024

typedef struct keyring keyring_t;

/* Loads every key from store (borrowed; must outlive the keyring). */
int keyring_open(store_t *store, keyring_t **ret);
void keyring_close(keyring_t **kr);

/* Borrowed until the next keyring_* call that changes the keyring. */
const Shoal__NodeKey *keyring_by_key(keyring_t *kr, const char *key);
const Shoal__NodeKey *keyring_by_node(keyring_t *kr, const char *node);
size_t keyring_pending(keyring_t *kr);

typedef enum {
	KEYRING_ACCEPTED, /* the node may speak */
	KEYRING_PENDING,  /* it waits for `shoalctl keys accept` */
	KEYRING_REFUSED,  /* rejected, or node and key are bound elsewhere */
} keyring_verdict_t;

/*
 * An agent holding key asks to be node (its Hello). With token_ok (the
 * Hello carried the coordinator's enrollment token) a new or pending key
 * is accepted at once. A node bound to another key, or a key bound to
 * another node, is refused whatever the token says. why says what was
 * decided and, when refused, why. Returns 0, SHOAL_E_LIMIT when
 * KEYRING_PENDING_MAX keys already wait, or a store error.
 */
int keyring_enrol(keyring_t *kr, const char *node, const char *key,
    const char *address, int token_ok, keyring_verdict_t *ret_verdict,
    char *why, size_t whylen);

/*
 * An operator's decision: accept, reject or delete node's key. With
 * only_key set (non-empty), the node's key must be that one. by names the
 * operator. On success *ret_key is a copy of the entry as it now is (the
 * deleted one for a delete): the caller frees it with
 * shoal__node_key__free_unpacked(). On refusal err says why.
 */
int keyring_control(keyring_t *kr, const char *node,
    Shoal__KeyControl__Action action, const char *only_key, const char *by,
    Shoal__NodeKey **ret_key, char *err, size_t errlen);

/* Every entry (or node's only), in node order. The caller frees the
 * array; the entries are borrowed. */
void keyring_list(keyring_t *kr, const char *node, Shoal__NodeKey ***ret,
    size_t *ret_n);

/* The operators' allow-list: lines of "KEY NAME" (# starts a comment).
 * NULL: none (the TCP control endpoint then refuses everyone). */
void keyring_set_operators_file(keyring_t *kr, const char *path);
/*
 * 1 and the operator's name in name if key is on the allow-list (the file
 * is read again when its modification time or size changed); 0 if not; a
 * file that cannot be read or parsed leaves the list empty and err says
 * why (once per change, for the log).
 */
int keyring_operator(keyring_t *kr, const char *key, char *name, size_t namelen,
    char *err, size_t errlen);

#endif

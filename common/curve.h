/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Transport security: every CurveZMQ key pair, key file and socket option
 * shoal uses, and the ZAP handler that decides who may complete a
 * handshake. One module owns it, so the coordinator, the agent and
 * shoalctl secure their sockets the same way.
 *
 * Key files are czmq certificates (ZPL text with a "curve" section):
 * a secret file holds public-key and secret-key and is mode 0600; a public
 * file holds public-key only. Keys are 40-character Z85 text.
 */
#ifndef SHOAL_COMMON_CURVE_H
#define SHOAL_COMMON_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#define CURVE_KEY_LEN 40 /* Z85 text of a 32-byte key */

typedef struct curve_keys {
	char public_key[CURVE_KEY_LEN + 1];
	char secret_key[CURVE_KEY_LEN + 1];
} curve_keys_t;

/* 1 if text is a 40-character Z85 key. */
int curve_key_valid(const char *text);

/*
 * Loads the key pair from secret_path, or, when that file does not exist,
 * generates one and writes it there (mode 0600, through a temporary file)
 * and, when public_path is not NULL, the public half to public_path (mode
 * 0644; rewritten from the secret file on every call so it never drifts).
 * Refuses a secret file others may read. On failure err names the file.
 */
int curve_keys_load_or_create(const char *secret_path, const char *public_path,
    curve_keys_t *ret, char *err, size_t errlen);

/* Writes k to secret_path (0600) and, unless NULL, its public half to
 * public_path (0644), each through a temporary file renamed into place. */
int curve_keys_save(const char *secret_path, const char *public_path,
    const curve_keys_t *k, char *err, size_t errlen);
/* 0 if k holds two valid keys and the public one is the secret's half. */
int curve_keys_check(const curve_keys_t *k);

/* Loads a secret key file that must exist (shoalctl --key). */
int curve_keys_load(const char *secret_path, curve_keys_t *ret, char *err,
    size_t errlen);

/* Reads a public key: a czmq certificate (public or secret: only the public
 * half is taken) or a file holding just the Z85 key. */
int curve_public_load(const char *path, char ret[CURVE_KEY_LEN + 1], char *err,
    size_t errlen);

/* Makes s a CurveZMQ server with keys; its handshakes go to the ZAP
 * handler under domain. Call before binding. */
void curve_server(zsock_t *s, const curve_keys_t *keys, const char *domain);
/* Makes s a CurveZMQ client with keys that trusts only server_key. Call
 * before connecting. */
void curve_client(zsock_t *s, const curve_keys_t *keys, const char *server_key);

/* A short form of a key for logs and tables: its first 8 characters. */
const char *curve_key_short(const char *key, char buf[9]);

/* An enrollment token: 16 to 256 printable characters, no spaces. */
bool curve_token_valid(const char *token);
#define CURVE_TOKEN_EXPECT "16 to 256 printable characters without spaces"
/* Compares two tokens in time that does not depend on where they differ. */
bool curve_token_equal(const char *a, const char *b);

/* -- the ZAP handler -------------------------------------------------- */

/*
 * Decides one handshake: domain is the socket's ZAP domain, address the
 * peer's IP address, key its Z85 public key ("" for a mechanism without
 * one). Returns 1 to let it in (user_id, at most CURVE_USER_ID_MAX - 1
 * characters, becomes the "User-Id" of every message it sends) or 0 to
 * refuse it (why says why, for the log).
 */
#define CURVE_USER_ID_MAX 128
typedef int (*curve_zap_fn)(const char *domain, const char *address,
    const char *key, char *user_id, char *why, size_t whylen, void *arg);

typedef struct curve_zap curve_zap_t;

/*
 * Binds the ZAP endpoint (inproc://zeromq.zap.01 in czmq's context) and
 * answers its requests from loop with decide. Bind it before any CURVE
 * server socket, or libzmq lets every handshake through.
 */
int curve_zap_new(zloop_t *loop, curve_zap_fn decide, void *arg,
    curve_zap_t **ret);
/* Before the loop it was given: it takes its reader off that loop. */
void curve_zap_destroy(curve_zap_t **zap);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The wire codec: every ZeroMQ payload frame is one shoal.Envelope. Frames
 * above WIRE_MAX_FRAME are refused before decoding, and every field a peer
 * controls is validated (lengths, characters, counts) before any daemon
 * code sees it, so a hostile or broken peer gets an error, never a crash.
 */
#ifndef SHOAL_WIRE_H
#define SHOAL_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "shoal.pb-c.h"

#define SHOAL_PROTOCOL_VERSION 1
#define WIRE_MAX_FRAME (1024 * 1024)
#define WIRE_MAX_STRING 256    /* facts, versions, ids in bodies */
#define WIRE_MAX_MESSAGE 4096  /* free text: event and error messages */
#define WIRE_MAX_OPERATIONS 64 /* queued for one node, or answered at once */
#define WIRE_MAX_SNAPSHOTS 128 /* in one agent's catalogue */
#define WIRE_MAX_ITEMS 10000   /* nodes or events in one control reply */
#define WIRE_MAX_SERVICES 1000 /* services in one desired state or report */

/* Packs env (version is set by the caller). Caller owns *ret_buf. */
int wire_pack(const Shoal__Envelope *env, uint8_t **ret_buf, size_t *ret_len);

/*
 * Decodes and validates one frame. On success the caller owns *ret_env and
 * frees it with shoal__envelope__free_unpacked(env, NULL). On failure
 * *ret_why (when not NULL) names the field or rule that failed.
 */
int wire_unpack(const void *buf, size_t len, Shoal__Envelope **ret_env,
    const char **ret_why);

/* Validates an already decoded envelope (wire_unpack calls it). */
int wire_validate(const Shoal__Envelope *env, const char **ret_why);

/*
 * Makes s pass the checks peer strings get, in place: cut to max bytes at
 * a character boundary, every byte of a malformed or control character
 * replaced by '?' (free_text keeps newlines and tabs). For what an agent
 * reads from its host, and for records stored before the checks existed.
 */
void wire_clean_text(char *s, size_t max, int free_text);

/* The checks a Node record in a control reply gets. */
int wire_node_ok(const Shoal__Node *n, const char **ret_why);

/* A deep, owned copy of any message, through the codec; free it with the
 * message's free_unpacked (or protobuf_c_message_free_unpacked). */
void *wire_copy(const ProtobufCMessage *msg);

/* A frame holding the packed envelope, for zmsg_append(). */
zframe_t *wire_frame(const Shoal__Envelope *env);

/* The envelope's body name, for logs ("hello", "heartbeat", ...). */
const char *wire_body_name(const Shoal__Envelope *env);

/* Lower-case names of states, as shoalctl and events show them. */
const char *wire_service_state_name(Shoal__ServiceStatus__State s);
const char *wire_rollout_state_name(Shoal__Rollout__State s);
const char *wire_rollout_node_state_name(Shoal__RolloutNode__State s);
const char *wire_strategy_name(Shoal__UpdateStrategy__Kind k);
const char *wire_prestage_state_name(Shoal__Prestage__State s);

/* Replaces a string field of an unpacked message (freeing the old one
 * unless it is protobuf-c's empty string) with cleaned free text. */
void wire_set_text(char **field, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif

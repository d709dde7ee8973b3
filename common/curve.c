/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CurveZMQ keys and the ZAP handler (RFC 27). See curve.h.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/util.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define KEY_FILE_MAX 4096

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

int
curve_key_valid(const char *text)
{
	uint8_t bin[32];

	if (!text || strlen(text) != CURVE_KEY_LEN ||
	    strspn(text, z85_chars) != CURVE_KEY_LEN)
		return 0;
	return zmq_z85_decode(bin, text) != NULL;
}

bool
curve_token_valid(const char *token)
{
	size_t n = token ? strlen(token) : 0;

	if (n < 16 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++)
		if (token[i] <= ' ' || token[i] > '~')
			return false;
	return true;
}

bool
curve_token_equal(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	unsigned char diff = na != nb;

	/* Every byte of a is read whatever b holds. */
	for (size_t i = 0; i < na; i++)
		diff |=
		    (unsigned char)a[i] ^ (unsigned char)(i < nb ? b[i] : 0);
	return diff == 0;
}

const char *
curve_key_short(const char *key, char buf[9])
{
	snprintf(buf, 9, "%.8s", key ? key : "");
	return buf;
}

/* Reads a key file of at most KEY_FILE_MAX bytes into a string; with
 * ret_st, also what fstat() says of the very file read. */
static int
slurp(const char *path, char **ret, struct stat *ret_st)
{
	char *buf = NULL;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r = 0;

	if (fd < 0)
		return -errno;
	if (ret_st && fstat(fd, ret_st) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	buf = xmalloc(KEY_FILE_MAX + 1);
	n = read(fd, buf, KEY_FILE_MAX + 1);
	if (n < 0)
		r = -errno;
	else if (n > KEY_FILE_MAX)
		r = SHOAL_E_INVALID;
	close(fd);
	if (r < 0) {
		explicit_bzero(buf, KEY_FILE_MAX + 1);
		free(buf);
		return r;
	}
	buf[n] = '\0';
	*ret = buf;
	return 0;
}

/*
 * Finds `NAME = "KEY"` (the ZPL line czmq writes under "curve") in text and
 * copies KEY. Only the curve section is read; other sections (metadata) may
 * hold anything.
 */
static int
zpl_key(const char *text, const char *name, char out[CURVE_KEY_LEN + 1])
{
	const char *line = text;
	int in_curve = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		const char *p = line;

		if (len && line[0] != ' ' && line[0] != '\t' && line[0] != '#')
			in_curve = len >= 5 && strncmp(line, "curve", 5) == 0 &&
			    (len == 5 || line[5] == ' ' || line[5] == '\r');
		while (p < line + len && (*p == ' ' || *p == '\t'))
			p++;
		if (in_curve && p != line &&
		    (size_t)(line + len - p) > strlen(name) &&
		    strncmp(p, name, strlen(name)) == 0) {
			const char *q = p + strlen(name);

			while (*q == ' ' || *q == '\t')
				q++;
			if (*q == '=') {
				q++;
				while (*q == ' ' || *q == '\t')
					q++;
				if (*q == '"' &&
				    q + 1 + CURVE_KEY_LEN < line + len &&
				    q[1 + CURVE_KEY_LEN] == '"') {
					memcpy(out, q + 1, CURVE_KEY_LEN);
					out[CURVE_KEY_LEN] = '\0';
					return curve_key_valid(out)
					    ? 0
					    : SHOAL_E_INVALID;
				}
				return SHOAL_E_INVALID;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return SHOAL_E_NOT_FOUND;
}

static int
read_secret(const char *path, curve_keys_t *k, char *err, size_t errlen)
{
	struct stat st;
	char *text;
	int r;

	r = slurp(path, &text, &st);
	if (r < 0) {
		snprintf(err, errlen, "cannot read the key file %s: %s", path,
		    r == SHOAL_E_INVALID ? "larger than a key file"
		                         : shoal_strerror(r));
		return r;
	}
	if (st.st_mode & 077) {
		snprintf(err, errlen,
		    "the secret key file %s may be read by others (mode %04o): "
		    "chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		free(text);
		return SHOAL_E_INVALID;
	}
	r = zpl_key(text, "public-key", k->public_key);
	if (r == 0)
		r = zpl_key(text, "secret-key", k->secret_key);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r < 0) {
		snprintf(err, errlen,
		    "%s is not a secret key file: it needs a curve section "
		    "with "
		    "public-key and secret-key (40-character Z85 keys)",
		    path);
		return SHOAL_E_INVALID;
	}
	/* The public half must be the secret's. */
	if (curve_keys_check(k) != 0) {
		snprintf(err, errlen,
		    "%s: its public-key is not the public half of its "
		    "secret-key",
		    path);
		return SHOAL_E_INVALID;
	}
	return 0;
}

/* Writes text to path through path.tmp with mode, then renames. */
static int
write_file(const char *path, const char *text, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp", path);
	size_t len = strlen(text);
	int fd, r = 0;

	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	errno = 0;
	if (fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) < 0)
		r = errno ? -errno : -EIO; /* a short write sets no errno */
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0)
		unlink(tmp);
	if (r == 0) {
		/* The rename itself: a key lost in a crash would make the
		 * node a stranger to the coordinator that accepted it. */
		char *dir = xstrdup(path), *slash = strrchr(dir, '/');
		int dfd;

		if (slash)
			*(slash == dir ? slash + 1 : slash) = '\0';
		dfd =
		    open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
out:
	free(tmp);
	return r;
}

static char *
cert_text(const curve_keys_t *k, int secret)
{
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (secret)
		return xasprintf("#   shoal CurveZMQ secret certificate: keep "
		                 "it private (mode 0600)\n"
		                 "metadata\n    created = \"%s\"\n"
		                 "curve\n    public-key = \"%s\"\n"
		                 "    secret-key = \"%s\"\n",
		    stamp, k->public_key, k->secret_key);
	return xasprintf("#   shoal CurveZMQ public certificate\n"
	                 "metadata\n    created = \"%s\"\n"
	                 "curve\n    public-key = \"%s\"\n",
	    stamp, k->public_key);
}

int
curve_keys_load(const char *secret_path, curve_keys_t *ret, char *err,
    size_t errlen)
{
	curve_keys_t k = { { 0 } };
	int r = read_secret(secret_path, &k, err, errlen);

	if (r == 0)
		*ret = k;
	return r;
}

int
curve_keys_check(const curve_keys_t *k)
{
	char again[CURVE_KEY_LEN + 1];

	if (!curve_key_valid(k->public_key) ||
	    !curve_key_valid(k->secret_key) ||
	    zmq_curve_public(again, k->secret_key) != 0)
		return SHOAL_E_INVALID;
	return strcmp(again, k->public_key) == 0 ? 0 : SHOAL_E_INVALID;
}

/* Writes k as a secret (0600) or public (0644) certificate to path. */
static int
write_cert(const char *path, const curve_keys_t *k, int secret, char *err,
    size_t errlen)
{
	char *text = cert_text(k, secret);
	int r = write_file(path, text, secret ? 0600 : 0644);

	explicit_bzero(text, strlen(text));
	free(text);
	if (r < 0)
		snprintf(err, errlen, "cannot write the %skey file %s: %s",
		    secret ? "" : "public ", path, shoal_strerror(r));
	return r;
}

int
curve_keys_save(const char *secret_path, const char *public_path,
    const curve_keys_t *k, char *err, size_t errlen)
{
	int r = write_cert(secret_path, k, 1, err, errlen);

	if (r == 0 && public_path)
		r = write_cert(public_path, k, 0, err, errlen);
	return r;
}

int
curve_keys_load_or_create(const char *secret_path, const char *public_path,
    curve_keys_t *ret, char *err, size_t errlen)
{
	curve_keys_t k = { { 0 } };
	int r;

	if (!zsys_has_curve()) {
		snprintf(err, errlen,
		    "this libzmq has no CurveZMQ (built without libsodium)");
		return -ENOTSUP;
	}
	if (access(secret_path, F_OK) == 0) {
		r = read_secret(secret_path, &k, err, errlen);
		if (r < 0)
			return r;
	} else if (errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "cannot read the key file %s: %s",
		    secret_path, shoal_strerror(r));
		return r;
	} else {
		if (zmq_curve_keypair(k.public_key, k.secret_key) != 0) {
			snprintf(err, errlen, "cannot generate a key pair: %s",
			    zmq_strerror(zmq_errno()));
			return -zmq_errno();
		}
		r = write_cert(secret_path, &k, 1, err, errlen);
		if (r < 0)
			return r;
	}
	if (public_path) {
		char have[CURVE_KEY_LEN + 1];

		/* Rewritten only when it does not say the right key. */
		if (curve_public_load(public_path, have, err, errlen) < 0 ||
		    strcmp(have, k.public_key) != 0) {
			r = write_cert(public_path, &k, 0, err, errlen);
			if (r < 0)
				return r;
		}
	}
	*ret = k;
	explicit_bzero(&k, sizeof k);
	return 0;
}

int
curve_public_load(const char *path, char ret[CURVE_KEY_LEN + 1], char *err,
    size_t errlen)
{
	char *text, key[CURVE_KEY_LEN + 1];
	size_t len;
	int r = slurp(path, &text, NULL);

	if (r < 0) {
		snprintf(err, errlen, "cannot read the key file %s: %s", path,
		    r == SHOAL_E_INVALID ? "larger than a key file"
		                         : shoal_strerror(r));
		return r;
	}
	r = zpl_key(text, "public-key", key);
	if (r == SHOAL_E_NOT_FOUND) {
		/* A bare key, optionally followed by a newline. */
		len = strcspn(text, "\r\n");
		r = SHOAL_E_INVALID;
		if (len == CURVE_KEY_LEN &&
		    text[len + strspn(text + len, "\r\n")] == '\0') {
			memcpy(key, text, CURVE_KEY_LEN);
			key[CURVE_KEY_LEN] = '\0';
			if (curve_key_valid(key))
				r = 0;
		}
	}
	free(text);
	if (r < 0) {
		snprintf(err, errlen,
		    "%s holds no public key: expected a czmq certificate "
		    "(curve section, public-key = \"...\") or one 40-character "
		    "Z85 key",
		    path);
		return SHOAL_E_INVALID;
	}
	memcpy(ret, key, CURVE_KEY_LEN + 1);
	return 0;
}

void
curve_server(zsock_t *s, const curve_keys_t *keys, const char *domain)
{
	zsock_set_zap_domain(s, domain);
	zsock_set_curve_server(s, 1);
	zsock_set_curve_publickey(s, keys->public_key);
	zsock_set_curve_secretkey(s, keys->secret_key);
}

void
curve_client(zsock_t *s, const curve_keys_t *keys, const char *server_key)
{
	zsock_set_curve_serverkey(s, server_key);
	zsock_set_curve_publickey(s, keys->public_key);
	zsock_set_curve_secretkey(s, keys->secret_key);
}

/* -- ZAP ---------------------------------------------------------------- */

struct curve_zap {
	zloop_t *loop;
	zsock_t *sock;
	curve_zap_fn decide;
	void *arg;
};

/* Copies frame f into a string of at most cap - 1 bytes; 0 if it is
 * longer or holds a NUL. */
static int
frame_str(zframe_t *f, char *out, size_t cap)
{
	size_t n = f ? zframe_size(f) : 0;

	if (!f || n >= cap || memchr(zframe_data(f), '\0', n))
		return 0;
	memcpy(out, zframe_data(f), n);
	out[n] = '\0';
	return 1;
}

static int
on_zap(zloop_t *loop, zsock_t *sock, void *arg)
{
	curve_zap_t *z = arg;
	zmsg_t *req = zmsg_recv(sock), *rep;
	char version[8], domain[256], address[64], mechanism[16];
	char key[CURVE_KEY_LEN + 1] = "", user_id[CURVE_USER_ID_MAX] = "";
	char why[256] = "";
	zframe_t *id, *f;
	int ok = 0;

	(void)loop;
	if (!req)
		return 0;
	/* version, request id, domain, address, identity, mechanism,
	 * credentials... */
	f = zmsg_first(req);
	if (!frame_str(f, version, sizeof version) ||
	    strcmp(version, "1.0") != 0) {
		zmsg_destroy(&req);
		return 0; /* not ZAP: libzmq never sends this */
	}
	id = zmsg_next(req);
	if (frame_str(zmsg_next(req), domain, sizeof domain) &&
	    frame_str(zmsg_next(req), address, sizeof address) &&
	    zmsg_next(req) &&
	    frame_str(zmsg_next(req), mechanism, sizeof mechanism)) {
		f = zmsg_next(req);
		if (strcmp(mechanism, "CURVE") == 0 && f &&
		    zframe_size(f) == 32) {
			zmq_z85_encode(key, zframe_data(f), 32);
			ok = 1;
		} else if (strcmp(mechanism, "NULL") == 0) {
			ok = 1;
		} else {
			snprintf(why, sizeof why, "mechanism %s", mechanism);
		}
	} else {
		snprintf(why, sizeof why, "malformed ZAP request");
	}
	if (ok)
		ok = z->decide(domain, address, key, user_id, why, sizeof why,
		    z->arg);
	rep = zmsg_new();
	zmsg_addstr(rep, "1.0");
	zmsg_addmem(rep, id ? zframe_data(id) : NULL, id ? zframe_size(id) : 0);
	zmsg_addstr(rep, ok ? "200" : "400");
	zmsg_addstr(rep, ok ? "OK" : why);
	zmsg_addstr(rep, ok ? user_id : "");
	zmsg_addmem(rep, NULL, 0);
	if (zmsg_send(&rep, sock) < 0)
		zmsg_destroy(&rep);
	zmsg_destroy(&req);
	return 0;
}

int
curve_zap_new(zloop_t *loop, curve_zap_fn decide, void *arg, curve_zap_t **ret)
{
	curve_zap_t *z = xcalloc(1, sizeof *z);

	z->sock = zsock_new(ZMQ_REP);
	if (!z->sock || zsock_bind(z->sock, ZAP_ENDPOINT) < 0) {
		int r = -zmq_errno();

		zsock_destroy(&z->sock);
		free(z);
		return r ? r : -ENOMEM;
	}
	zsock_set_linger(z->sock, 0);
	z->loop = loop;
	z->decide = decide;
	z->arg = arg;
	zloop_reader(loop, z->sock, on_zap, z);
	*ret = z;
	return 0;
}

void
curve_zap_destroy(curve_zap_t **zp)
{
	curve_zap_t *z = *zp;

	if (!z)
		return;
	if (z->loop)
		zloop_reader_end(z->loop, z->sock);
	/* Closing a socket frees its inproc name later, on libzmq's reaper
	 * thread; unbinding frees it now, so a new handler can bind. */
	zsock_unbind(z->sock, "%s", ZAP_ENDPOINT);
	zsock_destroy(&z->sock);
	free(z);
	*zp = NULL;
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/curve.c, transport security: which text is a Z85 key; key files
 * made, loaded again and refused (a secret others may read, halves that
 * do not match, junk, an empty or oversized file, a missing directory),
 * read by czmq and read from czmq; public keys in every form a file may
 * hold them; enrollment tokens and their comparison; and the ZAP handler
 * end to end: a CURVE server with two clients, one admitted with the
 * User-Id the decision gave it, one refused, plus hand-made ZAP requests.
 * Every wait is bounded by a zloop timer, so a failure cannot hang.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "common/curve.h"
#include "common/error.h"
#include "common/util.h"
#include "tests/tap.h"

#define DOMAIN "shoal-test"
#define ADMITTED_USER "operator-alice"
/* The longest any wait in this file may take before the test gives up. */
#define DEADLINE_MS 10000

static char root[64];
static char errbuf[512];

static char *
path_of(const char *name)
{
	return xasprintf("%s/%s", root, name);
}

/* Writes len bytes of text to path with mode; returns 0 or -1. */
static int
put_file_n(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	int r = 0;

	if (fd < 0)
		return -1;
	if (write(fd, text, len) != (ssize_t)len)
		r = -1;
	if (fchmod(fd, mode) < 0)
		r = -1;
	close(fd);
	return r;
}

static int
put_file(const char *path, const char *text, mode_t mode)
{
	return put_file_n(path, text, strlen(text), mode);
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static void
keypair(curve_keys_t *k)
{
	if (zmq_curve_keypair(k->public_key, k->secret_key) != 0)
		abort();
}

/* A secret certificate as czmq writes it, with the halves given. */
static char *
secret_cert(const char *pub, const char *sec)
{
	return xasprintf("#   ZeroMQ CURVE **Secret** Certificate\n"
	                 "metadata\n"
	                 "curve\n"
	                 "    public-key = \"%s\"\n"
	                 "    secret-key = \"%s\"\n",
	    pub, sec);
}

static void
test_key_valid(void)
{
	curve_keys_t k;
	char text[64];

	keypair(&k);
	ok(curve_key_valid(k.public_key), "a public key from zmq is valid");
	ok(curve_key_valid(k.secret_key), "a secret key from zmq is valid");
	snprintf(text, sizeof text, "%.39s", k.public_key);
	ok(!curve_key_valid(text), "39 characters are not a key");
	snprintf(text, sizeof text, "%sA", k.public_key);
	ok(!curve_key_valid(text), "41 characters are not a key");
	ok(!curve_key_valid(""), "an empty string is not a key");
	ok(!curve_key_valid(NULL), "NULL is not a key");
	snprintf(text, sizeof text, "%s", k.public_key);
	text[17] = ' ';
	ok(!curve_key_valid(text), "a space is not a Z85 character");
	text[17] = '"';
	ok(!curve_key_valid(text), "a quote is not a Z85 character");
	text[17] = ',';
	ok(!curve_key_valid(text), "a comma is not a Z85 character");
	text[17] = '\x80';
	ok(!curve_key_valid(text), "a byte above ASCII is not Z85");
	/* Only Z85 characters, but every group of five is 85^5 - 1, more
	 * than 32 bits hold: the decoder must refuse it too. */
	memset(text, '#', CURVE_KEY_LEN);
	text[CURVE_KEY_LEN] = '\0';
	ok(!curve_key_valid(text),
	    "40 Z85 characters whose value overflows are not a key");
	memset(text, '0', CURVE_KEY_LEN);
	ok(curve_key_valid(text), "40 zeros are a (useless but valid) key");
}

static void
test_load_or_create(void)
{
	char *sec = path_of("node.key"), *pub = path_of("node.pub");
	char *other = path_of("other.key"), *text, have[CURVE_KEY_LEN + 1];
	char *missing = path_of("no-such-dir/node.key");
	curve_keys_t k1, k2, x, y;
	zcert_t *cert;
	int r;

	/* A umask that would make the public file 0600 if the code trusted
	 * open()'s mode. */
	umask(077);
	memset(&k1, 0, sizeof k1);
	r = curve_keys_load_or_create(sec, pub, &k1, errbuf, sizeof errbuf);
	is_int(r, 0, "load_or_create makes a new pair");
	ok(curve_key_valid(k1.public_key) && curve_key_valid(k1.secret_key),
	    "of two valid keys");
	{
		char derived[CURVE_KEY_LEN + 1];

		ok(zmq_curve_public(derived, k1.secret_key) == 0 &&
		        strcmp(derived, k1.public_key) == 0,
		    "the public key is the secret's half");
	}
	is_int(mode_of(sec), 0600, "the secret file is mode 0600");
	is_int(mode_of(pub), 0644, "the public file is mode 0644");
	{
		char *tmp = xasprintf("%s.tmp", sec);

		ok(access(tmp, F_OK) < 0, "no temporary file is left behind");
		free(tmp);
	}

	/* czmq reads both files as its certificates. */
	cert = zcert_load(sec);
	ok(cert && strcmp(zcert_public_txt(cert), k1.public_key) == 0 &&
	        strcmp(zcert_secret_txt(cert), k1.secret_key) == 0,
	    "czmq's zcert_load reads the secret file with both keys");
	zcert_destroy(&cert);
	cert = zcert_load(pub);
	ok(cert && strcmp(zcert_public_txt(cert), k1.public_key) == 0,
	    "czmq's zcert_load reads the public file");
	ok(cert && zcert_meta(cert, "created") != NULL,
	    "which carries its creation time as metadata");
	zcert_destroy(&cert);

	memset(&k2, 0, sizeof k2);
	r = curve_keys_load_or_create(sec, pub, &k2, errbuf, sizeof errbuf);
	is_int(r, 0, "load_or_create again");
	ok(strcmp(k1.public_key, k2.public_key) == 0 &&
	        strcmp(k1.secret_key, k2.secret_key) == 0,
	    "loads the same pair");
	memset(&k2, 0, sizeof k2);
	is_int(curve_keys_load(sec, &k2, errbuf, sizeof errbuf), 0,
	    "curve_keys_load reads it too");
	ok(strcmp(k1.secret_key, k2.secret_key) == 0, "the same secret");

	/* A public file that drifted is put right. */
	keypair(&x);
	text = xasprintf("%s\n", x.public_key);
	put_file(pub, text, 0644);
	free(text);
	r = curve_keys_load_or_create(sec, pub, &k2, errbuf, sizeof errbuf);
	is_int(r, 0, "load_or_create with a public file of another key");
	ok(curve_public_load(pub, have, errbuf, sizeof errbuf) == 0 &&
	        strcmp(have, k1.public_key) == 0,
	    "rewrites the public file with the right key");
	is_int(mode_of(pub), 0644, "still mode 0644");
	put_file(pub, "junk\n", 0644);
	r = curve_keys_load_or_create(sec, pub, &k2, errbuf, sizeof errbuf);
	ok(r == 0 && curve_public_load(pub, have, errbuf, sizeof errbuf) == 0 &&
	        strcmp(have, k1.public_key) == 0,
	    "and a public file of junk");
	unlink(pub);
	r = curve_keys_load_or_create(sec, pub, &k2, errbuf, sizeof errbuf);
	ok(r == 0 && curve_public_load(pub, have, errbuf, sizeof errbuf) == 0 &&
	        strcmp(have, k1.public_key) == 0,
	    "and writes a public file that was removed");
	r = curve_keys_load_or_create(sec, NULL, &k2, errbuf, sizeof errbuf);
	ok(r == 0 && strcmp(k2.public_key, k1.public_key) == 0,
	    "no public path: the pair alone");

	/* A secret others may read is refused, naming the fix. */
	chmod(sec, 0644);
	errbuf[0] = '\0';
	memset(&k2, 0, sizeof k2);
	r = curve_keys_load_or_create(sec, pub, &k2, errbuf, sizeof errbuf);
	is_int(r, SHOAL_E_INVALID, "a secret file of mode 0644 is refused");
	ok(strstr(errbuf, sec) && strstr(errbuf, "chmod 600"),
	    "the error names the file and says chmod 600");
	if (!strstr(errbuf, "chmod 600"))
		diag("err: %s", errbuf);
	ok(!k2.secret_key[0], "and returns no key");
	is_int(mode_of(sec), 0644, "the file is left as it was");
	chmod(sec, 0640);
	ok(curve_keys_load(sec, &k2, errbuf, sizeof errbuf) == SHOAL_E_INVALID,
	    "mode 0640 too (the group may read it)");
	chmod(sec, 0400);
	ok(curve_keys_load(sec, &k2, errbuf, sizeof errbuf) == 0 &&
	        strcmp(k2.secret_key, k1.secret_key) == 0,
	    "mode 0400 is fine");
	chmod(sec, 0600);

	/* Halves of two different pairs. */
	keypair(&x);
	keypair(&y);
	text = secret_cert(x.public_key, y.secret_key);
	put_file(other, text, 0600);
	free(text);
	errbuf[0] = '\0';
	r = curve_keys_load_or_create(other, NULL, &k2, errbuf, sizeof errbuf);
	is_int(r, SHOAL_E_INVALID,
	    "a public-key that is not the secret's half is refused");
	ok(strstr(errbuf, other) && strstr(errbuf, "public half"),
	    "and the error names the file and says why");
	text = secret_cert(x.public_key, x.secret_key);
	put_file(other, text, 0600);
	free(text);
	memset(&k2, 0, sizeof k2);
	r = curve_keys_load_or_create(other, NULL, &k2, errbuf, sizeof errbuf);
	ok(r == 0 && strcmp(k2.public_key, x.public_key) == 0 &&
	        strcmp(k2.secret_key, x.secret_key) == 0,
	    "a czmq-style secret certificate of one pair is loaded");

	/* Only the curve section counts. */
	text = xasprintf("metadata\n    public-key = \"%s\"\n"
	                 "    secret-key = \"%s\"\n",
	    x.public_key, x.secret_key);
	put_file(other, text, 0600);
	free(text);
	ok(curve_keys_load(other, &k2, errbuf, sizeof errbuf) ==
	        SHOAL_E_INVALID,
	    "keys outside the curve section are not read");

	static const struct {
		const char *text, *name;
	} junk[] = {
		{ "", "an empty secret file" },
		{ "this is not a certificate\n", "a secret file of garbage" },
		{ "curve\n    public-key = \"short\"\n",
		    "a secret file with a short key" },
		{ "curve\n    secret-key\n", "a secret file without '='" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		put_file(other, junk[i].text, 0600);
		errbuf[0] = '\0';
		r = curve_keys_load_or_create(other, NULL, &k2, errbuf,
		    sizeof errbuf);
		okf(r == SHOAL_E_INVALID && strstr(errbuf, other),
		    "%s is refused and named", junk[i].name);
	}
	/* Half a pair: a valid public key, no secret. */
	text = xasprintf("curve\n    public-key = \"%s\"\n", x.public_key);
	put_file(other, text, 0600);
	free(text);
	ok(curve_keys_load(other, &k2, errbuf, sizeof errbuf) ==
	        SHOAL_E_INVALID,
	    "a public certificate is not a secret key file");

	/* The size cap: a good certificate padded to 4096 bytes with a
	 * comment is fine, one byte more is refused. */
	{
		char *cert_text = secret_cert(x.public_key, x.secret_key);
		size_t clen = strlen(cert_text), total = 4096;
		char *buf = xmalloc(total + 2);

		memset(buf, 'x', total + 1);
		buf[0] = '#';
		buf[total - clen - 1] = '\n';
		memcpy(buf + total - clen, cert_text, clen);
		put_file_n(other, buf, total, 0600);
		r = curve_keys_load(other, &k2, errbuf, sizeof errbuf);
		is_int(r, 0, "a key file of 4096 bytes is read");
		memmove(buf + 1, buf, total);
		buf[0] = '#';
		put_file_n(other, buf, total + 1, 0600);
		errbuf[0] = '\0';
		r = curve_keys_load_or_create(other, NULL, &k2, errbuf,
		    sizeof errbuf);
		is_int(r, SHOAL_E_INVALID, "one of 4097 bytes is refused");
		ok(strstr(errbuf, other) && strstr(errbuf, "larger"),
		    "and the error names it and says it is too large");
		free(buf);
		free(cert_text);
	}

	errbuf[0] = '\0';
	r = curve_keys_load_or_create(missing, NULL, &k2, errbuf,
	    sizeof errbuf);
	ok(r < 0, "no directory for the secret file: refused");
	ok(strstr(errbuf, missing) != NULL, "and the error names the path");
	{
		char *miss_pub = path_of("no-such-dir/node.pub");

		errbuf[0] = '\0';
		r = curve_keys_load_or_create(sec, miss_pub, &k2, errbuf,
		    sizeof errbuf);
		ok(r < 0 && strstr(errbuf, miss_pub),
		    "no directory for the public file: refused and named");
		free(miss_pub);
	}

	unlink(other);
	errbuf[0] = '\0';
	r = curve_keys_load(other, &k2, errbuf, sizeof errbuf);
	is_int(r, -ENOENT, "curve_keys_load of a missing file: -ENOENT");
	ok(strstr(errbuf, other) != NULL, "and the error names it");
	ok(access(other, F_OK) < 0, "and it makes no file");

	umask(022);
	free(sec);
	free(pub);
	free(other);
	free(missing);
}

/* What the coordinator uses to put back the pair its store holds. */
static void
test_save_check(void)
{
	char *sec = path_of("saved.key"), *pub = path_of("saved.pub");
	char *missing = path_of("no-such-dir/saved.key");
	char have[CURVE_KEY_LEN + 1];
	curve_keys_t k, x, loaded;

	keypair(&k);
	keypair(&x);
	is_int(curve_keys_check(&k), 0, "curve_keys_check: a pair from zmq");
	{
		curve_keys_t mixed = k;

		memcpy(mixed.public_key, x.public_key, sizeof mixed.public_key);
		is_int(curve_keys_check(&mixed), SHOAL_E_INVALID,
		    "halves of two pairs");
		mixed = k;
		mixed.secret_key[5] = ' ';
		is_int(curve_keys_check(&mixed), SHOAL_E_INVALID,
		    "a secret that is not Z85");
		mixed = k;
		mixed.public_key[0] = '\0';
		is_int(curve_keys_check(&mixed), SHOAL_E_INVALID,
		    "no public key");
	}

	umask(077);
	put_file(sec, "old\n", 0644);
	is_int(curve_keys_save(sec, pub, &k, errbuf, sizeof errbuf), 0,
	    "curve_keys_save over an old file");
	is_int(mode_of(sec), 0600, "the secret file is 0600 (it was 0644)");
	is_int(mode_of(pub), 0644, "the public file is 0644");
	memset(&loaded, 0, sizeof loaded);
	ok(curve_keys_load(sec, &loaded, errbuf, sizeof errbuf) == 0 &&
	        strcmp(loaded.public_key, k.public_key) == 0 &&
	        strcmp(loaded.secret_key, k.secret_key) == 0,
	    "what it saved loads as the same pair");
	ok(curve_public_load(pub, have, errbuf, sizeof errbuf) == 0 &&
	        strcmp(have, k.public_key) == 0,
	    "and the public file holds its public half");
	unlink(pub);
	is_int(curve_keys_save(sec, NULL, &x, errbuf, sizeof errbuf), 0,
	    "curve_keys_save without a public path");
	ok(access(pub, F_OK) < 0, "writes no public file");
	errbuf[0] = '\0';
	ok(curve_keys_save(missing, NULL, &k, errbuf, sizeof errbuf) < 0 &&
	        strstr(errbuf, missing),
	    "no directory: refused, and err names the path");
	umask(022);
	free(sec);
	free(pub);
	free(missing);
}

static void
test_public_load(void)
{
	char *path = path_of("peer.pub"), *czmq_base = path_of("czmq");
	char *czmq_secret = xasprintf("%s_secret", czmq_base);
	char key[CURVE_KEY_LEN + 1], *text;
	curve_keys_t k, loaded;
	zcert_t *cert;
	int r;

	/* Files czmq itself wrote. */
	cert = zcert_new();
	zcert_set_meta(cert, "name", "%s", "peer");
	r = zcert_save(cert, czmq_base);
	ok(r == 0, "czmq saves a certificate pair");
	memset(key, 0, sizeof key);
	ok(curve_public_load(czmq_base, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, zcert_public_txt(cert)) == 0,
	    "curve_public_load reads czmq's public certificate");
	memset(key, 0, sizeof key);
	ok(curve_public_load(czmq_secret, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, zcert_public_txt(cert)) == 0,
	    "and takes the public half of czmq's secret certificate");
	chmod(czmq_secret, 0600);
	memset(&loaded, 0, sizeof loaded);
	ok(curve_keys_load(czmq_secret, &loaded, errbuf, sizeof errbuf) == 0 &&
	        strcmp(loaded.public_key, zcert_public_txt(cert)) == 0 &&
	        strcmp(loaded.secret_key, zcert_secret_txt(cert)) == 0,
	    "curve_keys_load reads czmq's secret certificate (mode 0600)");
	zcert_destroy(&cert);

	keypair(&k);
	text = secret_cert(k.public_key, k.secret_key);
	put_file(path, text, 0600);
	free(text);
	ok(curve_public_load(path, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, k.public_key) == 0,
	    "a secret certificate: its public half");

	text = xasprintf("%s\n", k.public_key);
	put_file(path, text, 0644);
	free(text);
	memset(key, 0, sizeof key);
	ok(curve_public_load(path, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, k.public_key) == 0,
	    "a bare Z85 key and a newline");
	put_file(path, k.public_key, 0644);
	memset(key, 0, sizeof key);
	ok(curve_public_load(path, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, k.public_key) == 0,
	    "a bare Z85 key without a newline");
	text = xasprintf("%s\r\n", k.public_key);
	put_file(path, text, 0644);
	free(text);
	ok(curve_public_load(path, key, errbuf, sizeof errbuf) == 0 &&
	        strcmp(key, k.public_key) == 0,
	    "a bare Z85 key and CRLF");

	static const struct {
		const char *pre;
		int keylen; /* how much of the key follows pre */
		const char *post, *name;
	} junk[] = {
		{ "", 0, "", "an empty file" },
		{ "hello world\n", 0, "", "a line of junk" },
		{ "", 39, "\n", "39 characters" },
		{ "", 40, "A\n", "41 characters" },
		{ "", 40, "\nmore\n", "a key and a second line" },
		{ " ", 40, "\n", "a key after a space" },
		{ "metadata\n    public-key = \"", 40, "\"\n",
		    "a public-key outside the curve section" },
		{ "curve\n    public-key = \"", 39, "\"\n",
		    "a certificate with a short key" },
		{ "curve\n    public-key = ", 40, "\n",
		    "a certificate with an unquoted key" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		text = xasprintf("%s%.*s%s", junk[i].pre, junk[i].keylen,
		    k.public_key, junk[i].post);
		put_file(path, text, 0644);
		free(text);
		errbuf[0] = '\0';
		r = curve_public_load(path, key, errbuf, sizeof errbuf);
		okf(r == SHOAL_E_INVALID && strstr(errbuf, path),
		    "curve_public_load refuses %s and names the file",
		    junk[i].name);
	}
	/* Z85 characters that do not decode. */
	put_file(path, "########################################\n", 0644);
	ok(curve_public_load(path, key, errbuf, sizeof errbuf) ==
	        SHOAL_E_INVALID,
	    "curve_public_load refuses a key that does not decode");
	unlink(path);
	errbuf[0] = '\0';
	r = curve_public_load(path, key, errbuf, sizeof errbuf);
	ok(r == -ENOENT && strstr(errbuf, path),
	    "a missing public file: -ENOENT, named");

	unlink(czmq_base);
	unlink(czmq_secret);
	free(czmq_secret);
	free(czmq_base);
	free(path);
}

static void
test_tokens(void)
{
	char t[300], u[300];

	memset(t, 'a', sizeof t);
	t[15] = '\0';
	ok(!curve_token_valid(t), "a token of 15 characters is too short");
	t[15] = 'a';
	t[16] = '\0';
	ok(curve_token_valid(t), "16 characters are a token");
	memset(t, 'a', sizeof t);
	t[256] = '\0';
	ok(curve_token_valid(t), "256 characters are a token");
	t[256] = 'a';
	t[257] = '\0';
	ok(!curve_token_valid(t), "257 characters are too many");
	ok(!curve_token_valid("0123456789 abcdef"), "a space is refused");
	ok(!curve_token_valid("0123456789\tabcdef"), "a tab is refused");
	ok(!curve_token_valid("0123456789\x01"
	                      "abcdef"),
	    "a control character is refused");
	ok(!curve_token_valid("0123456789\x7f"
	                      "abcdef"),
	    "DEL is refused");
	ok(!curve_token_valid("0123456789\xc3\xa9"
	                      "abcdef"),
	    "a byte above ASCII is refused");
	ok(curve_token_valid("~!@#$%^&*()_+{}|:<>?"), "punctuation is fine");
	ok(!curve_token_valid(""), "an empty token is refused");
	ok(!curve_token_valid(NULL), "NULL is refused");

	snprintf(t, sizeof t, "%s", "s3cret-enrollment-token");
	snprintf(u, sizeof u, "%s", t);
	ok(curve_token_equal(t, u), "equal tokens are equal");
	u[0] = 'S';
	ok(!curve_token_equal(t, u), "differing in the first byte");
	snprintf(u, sizeof u, "%s", t);
	u[strlen(u) - 1] ^= 1;
	ok(!curve_token_equal(t, u), "differing in the last byte");
	ok(!curve_token_equal(t, "s3cret-enrollment"),
	    "the second a prefix of the first");
	ok(!curve_token_equal("s3cret-enrollment", t),
	    "the first a prefix of the second");
	ok(!curve_token_equal(t, "s3cret-enrollment-token-and-more"),
	    "different lengths");
	ok(!curve_token_equal("s3cret-enrollment-token\0", "s3cret"),
	    "different lengths, the shorter one a prefix");
	ok(!curve_token_equal(t, ""), "against an empty token");
	ok(!curve_token_equal("", t), "an empty token against one");
	ok(curve_token_equal("", ""), "two empty strings are equal");

	{
		char buf[9];
		curve_keys_t k;

		keypair(&k);
		curve_key_short(k.public_key, buf);
		ok(strlen(buf) == 8 && strncmp(buf, k.public_key, 8) == 0,
		    "curve_key_short: the first 8 characters");
		is_str(curve_key_short(NULL, buf), "", "of NULL: empty");
	}
}

/* -- the ZAP handler ------------------------------------------------- */

struct zap_seen {
	char admit[CURVE_KEY_LEN + 1]; /* the one key decide lets in */
	int calls, admitted, refused, wrong_domain;
	char domain[256], address[64];
	char admitted_key[CURVE_KEY_LEN + 1], refused_key[CURVE_KEY_LEN + 1];
};

static int
decide(const char *domain, const char *address, const char *key, char *user_id,
    char *why, size_t whylen, void *arg)
{
	struct zap_seen *s = arg;

	s->calls++;
	if (strcmp(domain, DOMAIN) != 0)
		s->wrong_domain++;
	snprintf(s->domain, sizeof s->domain, "%s", domain);
	snprintf(s->address, sizeof s->address, "%s", address);
	if (strcmp(key, s->admit) == 0) {
		s->admitted++;
		snprintf(s->admitted_key, sizeof s->admitted_key, "%s", key);
		snprintf(user_id, CURVE_USER_ID_MAX, "%s", ADMITTED_USER);
		return 1;
	}
	s->refused++;
	snprintf(s->refused_key, sizeof s->refused_key, "%s", key);
	snprintf(why, whylen, "key %.8s is not on the list", key);
	return 0;
}

struct server_seen {
	struct zap_seen *zap;
	int from_a, from_b, other, bad_user_id;
	char user_id[CURVE_USER_ID_MAX];
	int settle; /* ticks left once everything expected happened */
	int timed_out;
};

static int
on_server(zloop_t *loop, zsock_t *sock, void *arg)
{
	struct server_seen *s = arg;
	zmsg_t *msg = zmsg_recv(sock);
	zframe_t *body;
	const char *uid;

	(void)loop;
	if (!msg)
		return 0;
	/* ROUTER: the peer's routing id, then what it sent. */
	body = zmsg_last(msg);
	if (zmsg_size(msg) == 2 && zframe_streq(body, "from-a"))
		s->from_a++;
	else if (zmsg_size(msg) == 2 && zframe_streq(body, "from-b"))
		s->from_b++;
	else
		s->other++;
	uid = body ? zframe_meta(body, "User-Id") : NULL;
	if (uid)
		snprintf(s->user_id, sizeof s->user_id, "%s", uid);
	else
		s->bad_user_id++;
	zmsg_destroy(&msg);
	return 0;
}

/*
 * Every 10 ms: done once a's message arrived and b was refused at least
 * once, after 30 more ticks in which b's message would have arrived had
 * the refusal not held.
 */
static int
on_tick(zloop_t *loop, int timer_id, void *arg)
{
	struct server_seen *s = arg;

	(void)loop;
	(void)timer_id;
	if (s->from_a && s->zap->refused) {
		if (s->settle == 0)
			return -1;
		s->settle--;
	}
	return 0;
}

static int
on_deadline(zloop_t *loop, int timer_id, void *arg)
{
	struct server_seen *s = arg;

	(void)loop;
	(void)timer_id;
	s->timed_out = 1;
	return -1;
}

/* Where on_reply puts the answer to a hand-made ZAP request. */
struct reply_slot {
	zmsg_t *msg;
	int timed_out;
};

static int
on_reply(zloop_t *loop, zsock_t *sock, void *arg)
{
	struct reply_slot *slot = arg;

	(void)loop;
	slot->msg = zmsg_recv(sock);
	return -1;
}

static int
on_reply_deadline(zloop_t *loop, int timer_id, void *arg)
{
	struct reply_slot *slot = arg;

	(void)loop;
	(void)timer_id;
	slot->timed_out = 1;
	return -1;
}

/* Sends *m on req to the ZAP handler and runs loop (which answers it)
 * until the reply is back or DEADLINE_MS passed; NULL then. */
static zmsg_t *
zap_ask(zloop_t *loop, zsock_t *req, zmsg_t **m)
{
	struct reply_slot slot = { NULL, 0 };
	int deadline;

	if (zmsg_send(m, req) < 0) {
		zmsg_destroy(m);
		return NULL;
	}
	zloop_reader(loop, req, on_reply, &slot);
	deadline = zloop_timer(loop, DEADLINE_MS, 1, on_reply_deadline, &slot);
	zloop_start(loop);
	zloop_timer_end(loop, deadline);
	zloop_reader_end(loop, req);
	return slot.msg;
}

static void
test_zap_end_to_end(void)
{
	struct zap_seen zs;
	struct server_seen ss;
	curve_keys_t server_keys, a_keys, b_keys;
	curve_zap_t *zap = NULL, *zap2 = NULL;
	zloop_t *loop = zloop_new();
	zsock_t *server, *a, *b;
	int port, r, tick, deadline;

	keypair(&server_keys);
	keypair(&a_keys);
	keypair(&b_keys);
	memset(&zs, 0, sizeof zs);
	memset(&ss, 0, sizeof ss);
	snprintf(zs.admit, sizeof zs.admit, "%s", a_keys.public_key);
	ss.zap = &zs;
	ss.settle = 30;

	r = curve_zap_new(loop, decide, &zs, &zap);
	is_int(r, 0, "curve_zap_new binds the ZAP endpoint");
	if (r < 0) {
		zloop_destroy(&loop);
		return;
	}
	r = curve_zap_new(loop, decide, &zs, &zap2);
	ok(r < 0 && zap2 == NULL,
	    "a second ZAP handler in the same context is refused");
	curve_zap_destroy(&zap2);

	server = zsock_new(ZMQ_ROUTER);
	curve_server(server, &server_keys, DOMAIN);
	port = zsock_bind(server, "tcp://127.0.0.1:*");
	ok(port > 0, "the CURVE server binds on 127.0.0.1");
	zloop_reader(loop, server, on_server, &ss);

	a = zsock_new(ZMQ_DEALER);
	b = zsock_new(ZMQ_DEALER);
	zsock_set_linger(a, 0);
	zsock_set_linger(b, 0);
	curve_client(a, &a_keys, server_keys.public_key);
	curve_client(b, &b_keys, server_keys.public_key);
	zsock_connect(a, "tcp://127.0.0.1:%d", port);
	zsock_connect(b, "tcp://127.0.0.1:%d", port);
	/* Queued until the handshake: sent only if ZAP says yes. */
	zstr_send(a, "from-a");
	zstr_send(b, "from-b");

	tick = zloop_timer(loop, 10, 0, on_tick, &ss);
	deadline = zloop_timer(loop, DEADLINE_MS, 1, on_deadline, &ss);
	zloop_start(loop);
	zloop_timer_end(loop, tick);
	zloop_timer_end(loop, deadline);
	zloop_reader_end(loop, server);

	ok(!ss.timed_out, "the admitted message and the refusal came in time");
	is_int(ss.from_a, 1, "the admitted client's message arrives once");
	is_str(ss.user_id, ADMITTED_USER,
	    "with the User-Id the decision gave it");
	is_int(ss.bad_user_id, 0, "every message carries a User-Id");
	is_int(ss.from_b, 0, "the refused client's message never arrives");
	is_int(ss.other, 0, "nothing else arrives");
	ok(zs.admitted >= 1 && zs.refused >= 1,
	    "decide was asked about both clients");
	is_int(zs.wrong_domain, 0, "always with the server's domain");
	is_str(zs.domain, DOMAIN, "domain " DOMAIN);
	is_str(zs.address, "127.0.0.1", "and the peer's address");
	is_str(zs.admitted_key, a_keys.public_key,
	    "the admitted key is the first client's public key");
	is_str(zs.refused_key, b_keys.public_key,
	    "the refused key is the second client's public key");

	zsock_destroy(&a);
	zsock_destroy(&b);
	zsock_destroy(&server);

	/* Requests made by hand, as libzmq would send them. */
	{
		zsock_t *req = zsock_new(ZMQ_REQ);
		uint8_t bin[32];
		zmsg_t *m, *rep;
		char *status, *text, *uid;
		static const struct {
			const char *mechanism;
			int with_a_key, want_calls;
			const char *want_status, *want_text, *want_uid, *name;
		} cases[] = {
			{ "CURVE", 1, 1, "200", "OK", ADMITTED_USER,
			    "a CURVE request of the admitted key" },
			{ "CURVE", 0, 1, "400", "not on the list", "",
			    "a CURVE request of another key" },
			{ "PLAIN", 0, 0, "400", "mechanism PLAIN", "",
			    "a PLAIN request, refused without asking" },
			{ "NULL", 0, 1, "400", "not on the list", "",
			    "a NULL request: decide asked with no key" },
		};

		zsock_set_linger(req, 0);
		zsock_connect(req, "inproc://zeromq.zap.01");
		zmq_z85_decode(bin, a_keys.public_key);
		for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
			int before = zs.calls;

			m = zmsg_new();
			zmsg_addstr(m, "1.0");
			zmsg_addstr(m, "req-7");
			zmsg_addstr(m, DOMAIN);
			zmsg_addstr(m, "10.1.2.3");
			zmsg_addstr(m, "");
			zmsg_addstr(m, cases[i].mechanism);
			if (strcmp(cases[i].mechanism, "CURVE") == 0) {
				uint8_t other[32];

				if (cases[i].with_a_key)
					zmsg_addmem(m, bin, sizeof bin);
				else {
					zmq_z85_decode(other,
					    b_keys.public_key);
					zmsg_addmem(m, other, sizeof other);
				}
			} else if (strcmp(cases[i].mechanism, "PLAIN") == 0) {
				zmsg_addstr(m, "user");
				zmsg_addstr(m, "password");
			}
			rep = zap_ask(loop, req, &m);
			if (!okf(rep && zmsg_size(rep) == 6,
			        "%s: a six-frame reply", cases[i].name)) {
				zmsg_destroy(&rep);
				continue;
			}
			text = zmsg_popstr(rep);
			okf(text && strcmp(text, "1.0") == 0, "%s: version 1.0",
			    cases[i].name);
			free(text);
			text = zmsg_popstr(rep);
			okf(text && strcmp(text, "req-7") == 0,
			    "%s: the request id echoed", cases[i].name);
			free(text);
			status = zmsg_popstr(rep);
			text = zmsg_popstr(rep);
			uid = zmsg_popstr(rep);
			okf(status && strcmp(status, cases[i].want_status) == 0,
			    "%s: status %s", cases[i].name,
			    cases[i].want_status);
			okf(text && strstr(text, cases[i].want_text),
			    "%s: says '%s'", cases[i].name, cases[i].want_text);
			okf(uid && strcmp(uid, cases[i].want_uid) == 0,
			    "%s: user id '%s'", cases[i].name,
			    cases[i].want_uid);
			okf(zs.calls - before == cases[i].want_calls,
			    "%s: decide asked %d time(s)", cases[i].name,
			    cases[i].want_calls);
			free(status);
			free(text);
			free(uid);
			zmsg_destroy(&rep);
		}
		ok(strcmp(zs.address, "10.1.2.3") == 0,
		    "decide saw the request's address");
		zsock_destroy(&req);
	}

	curve_zap_destroy(&zap);
	ok(zap == NULL, "curve_zap_destroy clears the pointer");
	curve_zap_destroy(&zap);
	r = curve_zap_new(loop, decide, &zs, &zap);
	is_int(r, 0, "after destroy the ZAP endpoint can be bound again");
	curve_zap_destroy(&zap);
	zloop_destroy(&loop);
}

int
main(void)
{
	char cmd[128];

	zsys_init();
	zsys_set_logstream(NULL);
	snprintf(root, sizeof root, "/tmp/shoal-test-curve.XXXXXX");
	if (!mkdtemp(root))
		return 1;
	ok(zsys_has_curve(), "libzmq has CurveZMQ");

	test_key_valid();
	test_load_or_create();
	test_save_check();
	test_public_load();
	test_tokens();
	test_zap_end_to_end();

	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd) != 0)
		diag("could not remove %s", root);
	return done_testing();
}

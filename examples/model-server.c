/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model-server: the example model that shoal deploys in its tests and demos.
 * It loads a multinomial logistic regression from a text weights file (the
 * format is in examples/README.md) and serves GET /health and
 * POST /v1/predict over HTTP/1.1 from one single-threaded poll loop, one
 * request per connection. It is linked statically so that its image needs
 * nothing but this binary and the weights; nothing here may use the resolver
 * (NSS does not work in a static glibc binary), so addresses are numeric.
 * Whatever a client sends, the worst it gets is an error status.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Hard caps on what a client or the weights file controls. */
#define REQUEST_MAX (64 * 1024) /* request line, headers and body */
#define TARGET_MAX 1024         /* request target */
#define CONN_MAX 64             /* connections served at once */
#define READ_TIMEOUT_MS 5000    /* a whole request must arrive within it */
#define WRITE_TIMEOUT_MS 5000
#define DRAIN_TIMEOUT_MS 1000
#define JSON_DEPTH_MAX 32
#define NUMBER_MAX 64 /* characters of one JSON number */
#define CLASSES_MAX 16
#define FEATURES_MAX 64
#define NAME_MAX_LEN 32   /* model and class names, NUL included */
#define LINE_MAX_LEN 1024 /* one line of the weights file */
#define VERSION_MAX 64    /* characters of MODEL_VERSION echoed */
#define OUT_MAX 4096      /* one response, headers included */

struct model {
	char name[NAME_MAX_LEN];
	int nfeatures;
	int nclasses;
	char classes[CLASSES_MAX][NAME_MAX_LEN];
	double bias[CLASSES_MAX];
	double weight[CLASSES_MAX][FEATURES_MAX];
};

enum conn_state { CONN_READING, CONN_WRITING, CONN_DRAINING };

struct conn {
	int fd;
	enum conn_state state;
	int64_t started_ms;
	int64_t deadline_ms;
	char peer[INET6_ADDRSTRLEN + 8];
	char method[16];   /* for the log line; "-" until parsed */
	char target[80];   /* idem, truncated */
	size_t scanned;    /* bytes searched for the end of the headers */
	size_t header_len; /* 0 until the blank line after the headers */
	size_t body_len;
	bool continue_sent;
	char out[OUT_MAX];
	size_t out_len;
	size_t out_off;
	size_t in_len;
	char in[REQUEST_MAX + 1]; /* +1 keeps it NUL-terminated */
};

static struct model model;
static char version_json[VERSION_MAX * 2 + 3]; /* quoted and escaped */
static int64_t ready_at_ms;
static bool fail_health;
static volatile sig_atomic_t stop_signal;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the weights file ---------------------------------------------------- */

struct loader {
	const char *path;
	int line;
};

static int
load_error(const struct loader *ld, const char *fmt, ...)
{
	va_list ap;

	if (ld->line > 0)
		fprintf(stderr, "model-server: %s:%d: ", ld->path, ld->line);
	else
		fprintf(stderr, "model-server: %s: ", ld->path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return -1;
}

/* Names end up in JSON and log lines unescaped, so keep them plain. */
static bool
valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= NAME_MAX_LEN)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') &&
		    !(*s >= '0' && *s <= '9') && !strchr("_.-", *s))
			return false;
	return true;
}

static bool
parse_double(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return false;
	*ret = v;
	return true;
}

/*
 * Splits a line into at most max whitespace-separated tokens, dropping a
 * '#' comment. Returns the number of tokens, or max + 1 when there are more.
 */
static int
tokenize(char *line, char **tok, int max)
{
	char *save, *t;
	int n = 0;

	line[strcspn(line, "#")] = '\0';
	for (t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max)
			return max + 1;
		tok[n++] = t;
	}
	return n;
}

/* One significant line of the file; step counts the lines seen before. */
static int
load_line(struct loader *ld, struct model *m, int step, char **tok, int n)
{
	int c = step - 4, i;
	long v;
	char *end;

	switch (step) {
	case 0:
		if (n != 2 || strcmp(tok[0], "shoal-model") != 0)
			return load_error(ld, "expected \"shoal-model 1\"");
		if (strcmp(tok[1], "1") != 0)
			return load_error(ld,
			    "format version %s not supported "
			    "(this server reads version 1)",
			    tok[1]);
		return 0;
	case 1:
		if (n != 2 || strcmp(tok[0], "name") != 0 ||
		    !valid_name(tok[1]))
			return load_error(ld,
			    "expected \"name NAME\" "
			    "([A-Za-z0-9_.-], at most %d characters)",
			    NAME_MAX_LEN - 1);
		strcpy(m->name, tok[1]);
		return 0;
	case 2:
		if (n != 2 || strcmp(tok[0], "features") != 0)
			return load_error(ld, "expected \"features N\"");
		v = strtol(tok[1], &end, 10);
		if (*end || v < 1 || v > FEATURES_MAX)
			return load_error(ld, "features must be 1 to %d",
			    FEATURES_MAX);
		m->nfeatures = (int)v;
		return 0;
	case 3:
		if (n < 3 || strcmp(tok[0], "classes") != 0)
			return load_error(ld,
			    "expected \"classes NAME NAME...\" "
			    "(2 to %d classes)",
			    CLASSES_MAX);
		if (n > CLASSES_MAX + 1)
			return load_error(ld, "more than %d classes",
			    CLASSES_MAX);
		for (i = 1; i < n; i++) {
			if (!valid_name(tok[i]))
				return load_error(ld,
				    "bad class name \"%.40s\"", tok[i]);
			strcpy(m->classes[i - 1], tok[i]);
		}
		m->nclasses = n - 1;
		return 0;
	}
	if (c >= m->nclasses)
		return load_error(ld, "unexpected line after the last class");
	if (n < 1 || strcmp(tok[0], m->classes[c]) != 0)
		return load_error(ld, "expected the weights of class \"%s\"",
		    m->classes[c]);
	if (n != m->nfeatures + 2)
		return load_error(ld,
		    "class \"%s\" needs a bias and %d "
		    "weights, found %d numbers",
		    m->classes[c], m->nfeatures, n - 1);
	if (!parse_double(tok[1], &m->bias[c]))
		return load_error(ld, "bias \"%.40s\" is not a finite number",
		    tok[1]);
	for (i = 0; i < m->nfeatures; i++)
		if (!parse_double(tok[i + 2], &m->weight[c][i]))
			return load_error(ld,
			    "weight \"%.40s\" is not a finite number",
			    tok[i + 2]);
	return 0;
}

static int
model_load(const char *path, struct model *m)
{
	struct loader ld = { .path = path, .line = 0 };
	char buf[LINE_MAX_LEN + 2], *tok[FEATURES_MAX + 2];
	int step = 0, n, rc = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr,
		    "model-server: %s: cannot open the weights file: %s\n",
		    path, strerror(errno));
		return -1;
	}
	memset(m, 0, sizeof(*m));
	while (fgets(buf, sizeof(buf), f)) {
		ld.line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			rc = load_error(&ld, "line longer than %d characters",
			    LINE_MAX_LEN);
			goto out;
		}
		n = tokenize(buf, tok, FEATURES_MAX + 2);
		if (n == 0)
			continue;
		if (n > FEATURES_MAX + 2) {
			rc = load_error(&ld, "too many fields");
			goto out;
		}
		rc = load_line(&ld, m, step, tok, n);
		if (rc < 0)
			goto out;
		step++;
	}
	if (ferror(f)) {
		rc = load_error(&ld, "read error: %s", strerror(errno));
		goto out;
	}
	if (step < 4 || step - 4 < m->nclasses) {
		ld.line++;
		rc = load_error(&ld, "unexpected end of file (%s)",
		    step < 4 ? "the header is incomplete"
		             : "a class has no weights");
	}
out:
	fclose(f);
	return rc;
}

/* Softmax over the class scores, shifted by the largest so exp() never
 * overflows. */
static int
model_predict(const struct model *m, const double *x, double *prob)
{
	double max = -INFINITY, sum = 0;
	int c, i, best = 0;

	for (c = 0; c < m->nclasses; c++) {
		prob[c] = m->bias[c];
		for (i = 0; i < m->nfeatures; i++)
			prob[c] += m->weight[c][i] * x[i];
		if (prob[c] > max) {
			max = prob[c];
			best = c;
		}
	}
	for (c = 0; c < m->nclasses; c++) {
		prob[c] = exp(prob[c] - max);
		sum += prob[c];
	}
	for (c = 0; c < m->nclasses; c++)
		prob[c] /= sum;
	return best;
}

/* --- the request body ---------------------------------------------------- */

/*
 * A small JSON reader: enough to find "features" in an object and to skip
 * any other member, strict enough that what it accepts is JSON.
 */
struct json {
	const char *p;
	const char *end;
};

static void
json_ws(struct json *j)
{
	while (j->p < j->end && *j->p && strchr(" \t\r\n", *j->p))
		j->p++;
}

static bool
json_lit(struct json *j, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool
is_digit(const struct json *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

static bool
json_digits(struct json *j)
{
	if (!is_digit(j))
		return false;
	while (is_digit(j))
		j->p++;
	return true;
}

static bool
json_number(struct json *j, double *ret)
{
	const char *start = j->p;
	char buf[NUMBER_MAX + 1];
	size_t n;

	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!json_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!json_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!json_digits(j))
			return false;
	}
	/* strtod also reads hex and "inf": hand it only what we checked. */
	n = (size_t)(j->p - start);
	if (n > NUMBER_MAX)
		return false;
	memcpy(buf, start, n);
	buf[n] = '\0';
	return parse_double(buf, ret);
}

/* Reads a string; its text goes to out (escapes other than the simple
 * ones become '?', which is enough to compare member names). */
static bool
json_string(struct json *j, char *out, size_t outlen)
{
	size_t n = 0;
	char c;
	int i;

	if (!json_lit(j, "\""))
		return false;
	while (j->p < j->end) {
		c = *j->p++;
		if (c == '"') {
			if (outlen)
				out[n < outlen ? n : outlen - 1] = '\0';
			return true;
		}
		if ((unsigned char)c < 0x20)
			return false;
		if (c == '\\') {
			if (j->p >= j->end)
				return false;
			c = *j->p++;
			if (c == 'u') {
				for (i = 0; i < 4; i++, j->p++)
					if (j->p >= j->end ||
					    !strchr("0123456789abcdefABCDEF",
					        *j->p) ||
					    !*j->p)
						return false;
				c = '?';
			} else if (!strchr("\"\\/bfnrt", c) || !c) {
				return false;
			}
		}
		if (n + 1 < outlen)
			out[n++] = c;
	}
	return false;
}

static bool json_skip(struct json *j, int depth);

static bool
json_skip_container(struct json *j, int depth, char close, bool object)
{
	j->p++;
	json_ws(j);
	if (json_lit(j, close == '}' ? "}" : "]"))
		return true;
	for (;;) {
		if (object) {
			if (!json_string(j, NULL, 0))
				return false;
			json_ws(j);
			if (!json_lit(j, ":"))
				return false;
		}
		if (!json_skip(j, depth + 1))
			return false;
		json_ws(j);
		if (json_lit(j, ","))
			continue;
		return json_lit(j, close == '}' ? "}" : "]");
	}
}

static bool
json_skip(struct json *j, int depth)
{
	double d;

	if (depth > JSON_DEPTH_MAX)
		return false;
	json_ws(j);
	if (j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return json_skip_container(j, depth, '}', true);
	case '[':
		return json_skip_container(j, depth, ']', false);
	case '"':
		return json_string(j, NULL, 0);
	case 't':
		return json_lit(j, "true");
	case 'f':
		return json_lit(j, "false");
	case 'n':
		return json_lit(j, "null");
	}
	return json_number(j, &d);
}

/* Reads an array of numbers; *n counts all of them, x keeps the first max. */
static bool
json_features(struct json *j, double *x, int max, int *n)
{
	double v;

	*n = 0;
	json_ws(j);
	if (!json_lit(j, "["))
		return false;
	json_ws(j);
	if (json_lit(j, "]"))
		return true;
	for (;;) {
		json_ws(j);
		if (!json_number(j, &v))
			return false;
		if (*n < max)
			x[*n] = v;
		(*n)++;
		json_ws(j);
		if (json_lit(j, ","))
			continue;
		return json_lit(j, "]");
	}
}

/*
 * Parses {"features": [numbers], ...}. Returns NULL with x and *n filled, or
 * a message for the client.
 */
static const char *
parse_request(const char *body, size_t len, double *x, int max, int *n)
{
	struct json j = { .p = body, .end = body + len };
	char key[16];
	bool found = false;

	json_ws(&j);
	if (!json_lit(&j, "{"))
		return "the body must be a JSON object";
	json_ws(&j);
	if (!json_lit(&j, "}")) {
		for (;;) {
			json_ws(&j);
			if (!json_string(&j, key, sizeof(key)))
				return "malformed JSON";
			json_ws(&j);
			if (!json_lit(&j, ":"))
				return "malformed JSON";
			if (strcmp(key, "features") == 0) {
				if (found)
					return "\\\"features\\\" appears twice";
				if (!json_features(&j, x, max, n))
					return "\\\"features\\\" must be an "
					       "array of numbers";
				found = true;
			} else if (!json_skip(&j, 1)) {
				return "malformed JSON";
			}
			json_ws(&j);
			if (json_lit(&j, ","))
				continue;
			if (json_lit(&j, "}"))
				break;
			return "malformed JSON";
		}
	}
	json_ws(&j);
	if (j.p != j.end)
		return "trailing data after the JSON object";
	if (!found)
		return "\\\"features\\\" is missing";
	return NULL;
}

/* --- HTTP ---------------------------------------------------------------- */

static const char *
reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	}
	return "Unknown";
}

static void
conn_log(const struct conn *c, int status)
{
	fprintf(stderr, "%s \"%s %s\" %d %zu %lldms\n", c->peer, c->method,
	    c->target, status, c->out_len,
	    (long long)(now_ms() - c->started_ms));
}

/*
 * Queues the response; the body is a printf format that builds a JSON
 * value. allow names the methods of a 405.
 */
static void __attribute__((format(printf, 4, 5)))
respond(struct conn *c, int status, const char *allow, const char *fmt, ...)
{
	char body[OUT_MAX];
	va_list ap;
	int n, m;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(body) - 1) {
		status = 500;
		n = snprintf(body, sizeof(body),
		    "{\"error\":\"response too large\"}");
	}
	body[n++] = '\n';
	m = snprintf(c->out, sizeof(c->out),
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "%s%s%sConnection: close\r\n\r\n",
	    status, reason(status), n, allow ? "Allow: " : "",
	    allow ? allow : "", allow ? "\r\n" : "");
	if (m < 0 || (size_t)(m + n) > sizeof(c->out)) {
		/* Cannot happen with the caps above; say so rather than
		 * sending half a response. */
		m = snprintf(c->out, sizeof(c->out),
		    "HTTP/1.1 500 %s\r\n"
		    "Content-Length: 0\r\nConnection: close\r\n\r\n",
		    reason(500));
		n = 0;
		status = 500;
	}
	memcpy(c->out + m, body, (size_t)n);
	c->out_len = (size_t)(m + n);
	c->out_off = 0;
	c->state = CONN_WRITING;
	c->deadline_ms = now_ms() + WRITE_TIMEOUT_MS;
	conn_log(c, status);
}

static void
handle_health(struct conn *c)
{
	const char *status = "ok";
	int code = 200;

	if (fail_health) {
		status = "failing";
		code = 503;
	} else if (now_ms() < ready_at_ms) {
		status = "loading";
		code = 503;
	}
	respond(c, code, NULL,
	    "{\"status\":\"%s\",\"model\":\"%s\",\"version\":%s}", status,
	    model.name, version_json);
}

static void
handle_predict(struct conn *c, const char *body, size_t len)
{
	double x[FEATURES_MAX], prob[CLASSES_MAX];
	char probs[CLASSES_MAX * 24] = "";
	size_t off = 0;
	const char *err;
	int n = 0, best, i;

	if (now_ms() < ready_at_ms) {
		respond(c, 503, NULL, "{\"error\":\"the model is loading\"}");
		return;
	}
	err = parse_request(body, len, x, FEATURES_MAX, &n);
	if (err) {
		respond(c, 400, NULL, "{\"error\":\"%s\"}", err);
		return;
	}
	if (n != model.nfeatures) {
		respond(c, 400, NULL,
		    "{\"error\":\"expected %d features, got %d\"}",
		    model.nfeatures, n);
		return;
	}
	best = model_predict(&model, x, prob);
	for (i = 0; i < model.nclasses; i++)
		off += (size_t)snprintf(probs + off, sizeof(probs) - off,
		    "%s%.6g", i ? "," : "", prob[i]);
	respond(c, 200, NULL,
	    "{\"class\":\"%s\",\"index\":%d,"
	    "\"probabilities\":[%s],\"version\":%s}",
	    model.classes[best], best, probs, version_json);
}

/* Keeps a printable copy of a request field for the log line. */
static void
copy_printable(char *dst, size_t dstlen, const char *src, size_t n)
{
	size_t i;

	if (n >= dstlen)
		n = dstlen - 1;
	for (i = 0; i < n; i++)
		dst[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[n] = '\0';
}

static bool
is_tchar(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/*
 * Reads the request line "METHOD SP TARGET SP HTTP/1.x". Returns 0, or the
 * status to answer with.
 */
static int
parse_request_line(struct conn *c, const char *line, size_t len,
    size_t *target_off, size_t *target_len)
{
	const char *sp1, *sp2, *end = line + len;
	size_t mlen;

	for (sp1 = line; sp1 < end && is_tchar(*sp1); sp1++)
		;
	mlen = (size_t)(sp1 - line);
	if (sp1 == end || *sp1 != ' ' || mlen == 0 || mlen >= sizeof(c->method))
		return 400;
	copy_printable(c->method, sizeof(c->method), line, mlen);
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2)
		return 400;
	copy_printable(c->target, sizeof(c->target), sp1 + 1,
	    (size_t)(sp2 - sp1 - 1));
	if (sp2 - sp1 - 1 > TARGET_MAX)
		return 414;
	if (sp2 == sp1 + 1 || sp1[1] != '/')
		return 400;
	if ((size_t)(end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
	    (sp2[8] != '0' && sp2[8] != '1'))
		return 400;
	*target_off = (size_t)(sp1 + 1 - c->in);
	*target_len = (size_t)(sp2 - sp1 - 1);
	return 0;
}

static bool
header_is(const char *line, size_t len, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	*value = line + n + 1;
	while (**value == ' ' || **value == '\t')
		(*value)++;
	return true;
}

/* Content-Length: digits only, and within what the request may hold. */
static int
parse_length(const char *v, const char *eol, size_t *ret)
{
	size_t n = 0;

	if (v == eol)
		return 400;
	for (; v < eol && *v != ' ' && *v != '\t'; v++) {
		if (*v < '0' || *v > '9')
			return 400;
		if (n > REQUEST_MAX)
			return 413;
		n = n * 10 + (size_t)(*v - '0');
	}
	for (; v < eol; v++)
		if (*v != ' ' && *v != '\t')
			return 400;
	*ret = n;
	return 0;
}

/* Reads the header fields after the request line. Returns 0 or a status. */
static int
parse_headers(struct conn *c, const char *p, const char *end)
{
	const char *eol, *v, *colon;
	bool have_length = false;
	size_t len;
	int rc;

	c->body_len = 0;
	for (; p < end; p = eol + 2) {
		eol = strstr(p, "\r\n");
		if (!eol || eol > end)
			return 400;
		if (eol == p)
			break;
		colon = memchr(p, ':', (size_t)(eol - p));
		if (!colon || colon == p)
			return 400;
		for (v = p; v < colon; v++)
			if (!is_tchar(*v))
				return 400;
		if (header_is(p, (size_t)(eol - p), "Content-Length", &v)) {
			rc = parse_length(v, eol, &len);
			if (rc)
				return rc;
			if (have_length && len != c->body_len)
				return 400;
			have_length = true;
			c->body_len = len;
		} else if (header_is(p, (size_t)(eol - p), "Transfer-Encoding",
		               &v)) {
			return 501;
		} else if (header_is(p, (size_t)(eol - p), "Expect", &v)) {
			if (strncasecmp(v, "100-continue", 12) != 0)
				return 400;
			/* Only worth answering when there is a body to wait
			 * for; marked sent otherwise. */
			c->continue_sent = false;
		}
	}
	return 0;
}

static void
route(struct conn *c, const char *target, size_t tlen)
{
	const char *body = c->in + c->header_len;
	const char *q = memchr(target, '?', tlen);

	if (q)
		tlen = (size_t)(q - target);
	if (tlen == 7 && memcmp(target, "/health", 7) == 0) {
		if (strcmp(c->method, "GET") != 0) {
			respond(c, 405, "GET", "{\"error\":\"use GET\"}");
			return;
		}
		handle_health(c);
	} else if (tlen == 11 && memcmp(target, "/v1/predict", 11) == 0) {
		if (strcmp(c->method, "POST") != 0) {
			respond(c, 405, "POST", "{\"error\":\"use POST\"}");
			return;
		}
		handle_predict(c, body, c->body_len);
	} else {
		respond(c, 404, NULL, "{\"error\":\"not found\"}");
	}
}

static void
send_continue(struct conn *c)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

	/* The socket's send buffer is empty this early, so this small write
	 * goes through whole; if it does not, the client sends the body
	 * after its own timeout anyway. */
	if (send(c->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL) < 0)
		return;
}

static const char *
request_error(int status)
{
	switch (status) {
	case 413:
		return "request too large";
	case 414:
		return "request target too long";
	case 501:
		return "chunked bodies are not supported";
	}
	return "bad request";
}

/*
 * Looks at what has arrived: answers once the request is complete or known
 * to be bad, otherwise waits for more.
 */
static void
conn_parse(struct conn *c)
{
	size_t target_off = 0, target_len = 0;
	const char *hdr_end, *eol;
	int rc;

	if (!c->header_len) {
		/* Search only the new bytes (and the three before them), so
		 * a request that trickles in costs linear time. strstr()
		 * stops at a NUL, which has no place in a header anyway. */
		hdr_end = strstr(c->in + c->scanned, "\r\n\r\n");
		if (!hdr_end) {
			if (memchr(c->in + c->scanned, '\0',
			        c->in_len - c->scanned))
				respond(c, 400, NULL,
				    "{\"error\":\"bad request\"}");
			else if (c->in_len >= REQUEST_MAX)
				respond(c, 413, NULL,
				    "{\"error\":\"request too large\"}");
			c->scanned = c->in_len > 3 ? c->in_len - 3 : 0;
			return;
		}
		c->header_len = (size_t)(hdr_end - c->in) + 4;
		c->continue_sent = true;
		eol = strstr(c->in, "\r\n");
		rc = parse_request_line(c, c->in, (size_t)(eol - c->in),
		    &target_off, &target_len);
		if (!rc)
			rc = parse_headers(c, eol + 2, hdr_end + 2);
		if (!rc && c->body_len > REQUEST_MAX - c->header_len)
			rc = 413;
		if (rc) {
			respond(c, rc, NULL, "{\"error\":\"%s\"}",
			    request_error(rc));
			return;
		}
	}
	if (c->in_len - c->header_len < c->body_len) {
		if (!c->continue_sent) {
			send_continue(c);
			c->continue_sent = true;
		}
		return;
	}
	/* Parse the request line again: cheap, and it keeps no pointers
	 * into the buffer across reads. */
	eol = strstr(c->in, "\r\n");
	parse_request_line(c, c->in, (size_t)(eol - c->in), &target_off,
	    &target_len);
	route(c, c->in + target_off, target_len);
}

static void
conn_close(struct conn **cp)
{
	if (!*cp)
		return;
	close((*cp)->fd);
	free(*cp);
	*cp = NULL;
}

static void
conn_read(struct conn **cp)
{
	struct conn *c = *cp;
	char sink[4096];
	ssize_t n;

	if (c->state == CONN_WRITING) {
		/* Only a hang-up or an error gets here: the client is gone. */
		conn_close(cp);
		return;
	}
	if (c->state == CONN_DRAINING) {
		n = recv(c->fd, sink, sizeof(sink), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			conn_close(cp);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, REQUEST_MAX - c->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The client went away before its request was complete. */
		conn_close(cp);
		return;
	}
	c->in_len += (size_t)n;
	c->in[c->in_len] = '\0';
	conn_parse(c);
}

/*
 * After the response, close our side and read until the client closes: a
 * close with unread input would reset the connection, and the client could
 * lose the response (a 413 leaves the body unread).
 */
static void
conn_write(struct conn **cp)
{
	struct conn *c = *cp;
	ssize_t n;

	n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
	    MSG_NOSIGNAL);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		conn_close(cp);
		return;
	}
	c->out_off += (size_t)n;
	if (c->out_off < c->out_len)
		return;
	shutdown(c->fd, SHUT_WR);
	c->state = CONN_DRAINING;
	c->deadline_ms = now_ms() + DRAIN_TIMEOUT_MS;
}

static void
conn_timeout(struct conn **cp)
{
	struct conn *c = *cp;

	if (c->state != CONN_READING) {
		conn_close(cp);
		return;
	}
	respond(c, 408, NULL, "{\"error\":\"request timeout\"}");
	conn_write(cp);
}

static void
peer_name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const void *)ss;

		inet_ntop(AF_INET, &s->sin_addr, addr, sizeof(addr));
		port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const void *)ss;

		inet_ntop(AF_INET6, &s->sin6_addr, addr, sizeof(addr));
		port = ntohs(s->sin6_port);
	}
	snprintf(buf, len, "%s:%d", addr, port);
}

static void
accept_all(int lfd, struct conn **conns, int *nconns)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	struct conn *c;
	int fd;

	while (*nconns < CONN_MAX) {
		sl = sizeof(ss);
		fd = accept4(lfd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				fprintf(stderr, "model-server: accept: %s\n",
				    strerror(errno));
			return;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->state = CONN_READING;
		c->started_ms = now_ms();
		c->deadline_ms = c->started_ms + READ_TIMEOUT_MS;
		strcpy(c->method, "-");
		strcpy(c->target, "-");
		peer_name(&ss, c->peer, sizeof(c->peer));
		conns[(*nconns)++] = c;
	}
}

/* --- start-up and the loop ----------------------------------------------- */

static int
listen_on(const char *bind_addr, int port)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s4 = (void *)&ss;
	struct sockaddr_in6 *s6 = (void *)&ss;
	socklen_t sl;
	int fd, one = 1;

	if (inet_pton(AF_INET, bind_addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
	} else if (inet_pton(AF_INET6, bind_addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
	} else {
		fprintf(stderr,
		    "model-server: --bind %s: not a numeric IPv4 "
		    "or IPv6 address\n",
		    bind_addr);
		return -1;
	}
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		fprintf(stderr, "model-server: listen on %s port %d: %s\n",
		    bind_addr, port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* "500ms", "2s", "1m", "1h"; a bare number is seconds. */
static int
parse_duration(const char *s, int64_t *ret_ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 },
		{ "h", 3600000 } };
	char *end;
	long long v;
	size_t i;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || errno || v < 0 || v > 86400000)
		return -1;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].unit) == 0) {
			if (v * units[i].ms > 86400000)
				return -1;
			*ret_ms = v * units[i].ms;
			return 0;
		}
	return -1;
}

/* MODEL_VERSION as a JSON string: printable ASCII kept, the rest '?'. */
static void
set_version(const char *v)
{
	char *o = version_json;
	int i;

	if (!v)
		v = "unknown";
	*o++ = '"';
	for (i = 0; v[i] && i < VERSION_MAX; i++) {
		if (v[i] == '"' || v[i] == '\\')
			*o++ = '\\';
		*o++ = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	}
	*o++ = '"';
	*o = '\0';
}

static void
on_signal(int sig)
{
	stop_signal = sig;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: model-server [--port N] [--bind ADDR] [--weights PATH]\n"
	    "                    [--load-delay DURATION] [--fail-health]\n"
	    "\n"
	    "Serves a logistic regression model over HTTP:\n"
	    "  GET  /health      200 when loaded, 503 while loading\n"
	    "  POST /v1/predict  {\"features\":[...]} -> class and "
	    "probabilities\n"
	    "\n"
	    "  --port N                TCP port (default 8080)\n"
	    "  --bind ADDR             numeric address (default 0.0.0.0)\n"
	    "  --weights PATH          weights file (default "
	    "/models/iris.txt)\n"
	    "  --load-delay DURATION   /health answers 503 this long (500ms, "
	    "2s, 1m)\n"
	    "  --fail-health           /health always answers 503\n"
	    "  --help                  this text\n"
	    "\n"
	    "MODEL_VERSION in the environment is echoed as \"version\".\n");
}

struct options {
	int port;
	const char *bind;
	const char *weights;
	int64_t load_delay_ms;
};

static void
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "weights", required_argument, NULL, 'w' },
		{ "load-delay", required_argument, NULL, 'd' },
		{ "fail-health", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	long v;
	int opt;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p':
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (end == optarg || *end || errno || v < 1 ||
			    v > 65535) {
				fprintf(stderr,
				    "model-server: --port %s: not "
				    "a port number\n",
				    optarg);
				exit(2);
			}
			o->port = (int)v;
			break;
		case 'b':
			o->bind = optarg;
			break;
		case 'w':
			o->weights = optarg;
			break;
		case 'd':
			if (parse_duration(optarg, &o->load_delay_ms) < 0) {
				fprintf(stderr,
				    "model-server: --load-delay "
				    "%s: not a duration (500ms, 2s, 1m)\n",
				    optarg);
				exit(2);
			}
			break;
		case 'f':
			fail_health = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "model-server: unexpected argument %s\n",
		    argv[optind]);
		exit(2);
	}
}

/*
 * The signals stay blocked except inside ppoll(), so one that arrives
 * between two polls is not lost: ppoll() returns at once with EINTR.
 */
static void
setup_signals(sigset_t *poll_mask)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, poll_mask);
	sigdelset(poll_mask, SIGTERM);
	sigdelset(poll_mask, SIGINT);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Time until the earliest connection deadline, or -1 for none. */
static int64_t
next_timeout(struct conn **conns, int nconns)
{
	int64_t t = -1, now = now_ms(), left;
	int i;

	for (i = 0; i < nconns; i++) {
		left = conns[i]->deadline_ms - now;
		if (left < 0)
			left = 0;
		if (t < 0 || left < t)
			t = left;
	}
	return t;
}

static void
serve(int lfd, const sigset_t *poll_mask)
{
	static struct conn *conns[CONN_MAX];
	struct pollfd pfd[CONN_MAX + 1];
	struct timespec ts, *tsp;
	int64_t timeout;
	int nconns = 0, i, j, nfds;

	while (!stop_signal) {
		nfds = 0;
		for (i = 0; i < nconns; i++) {
			pfd[nfds].fd = conns[i]->fd;
			pfd[nfds].events =
			    conns[i]->state == CONN_WRITING ? POLLOUT : POLLIN;
			pfd[nfds++].revents = 0;
		}
		/* At the cap, leave new connections in the backlog. */
		pfd[nfds].fd = nconns < CONN_MAX ? lfd : -1;
		pfd[nfds].events = POLLIN;
		pfd[nfds].revents = 0;
		timeout = next_timeout(conns, nconns);
		tsp = NULL;
		if (timeout >= 0) {
			ts.tv_sec = timeout / 1000;
			ts.tv_nsec = (timeout % 1000) * 1000000;
			tsp = &ts;
		}
		if (ppoll(pfd, (nfds_t)nfds + 1, tsp, poll_mask) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "model-server: poll: %s\n",
			    strerror(errno));
			exit(1);
		}
		for (i = 0; i < nconns; i++) {
			if (pfd[i].revents & POLLOUT)
				conn_write(&conns[i]);
			else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
				conn_read(&conns[i]);
			if (conns[i] && conns[i]->deadline_ms <= now_ms())
				conn_timeout(&conns[i]);
		}
		for (i = j = 0; i < nconns; i++)
			if (conns[i])
				conns[j++] = conns[i];
		nconns = j;
		if (pfd[nfds].revents & POLLIN)
			accept_all(lfd, conns, &nconns);
	}
	for (i = 0; i < nconns; i++)
		conn_close(&conns[i]);
}

int
main(int argc, char **argv)
{
	struct options o = { .port = 8080,
		.bind = "0.0.0.0",
		.weights = "/models/iris.txt" };
	sigset_t poll_mask;
	int lfd;

	parse_options(argc, argv, &o);
	set_version(getenv("MODEL_VERSION"));
	if (model_load(o.weights, &model) < 0) {
		fprintf(stderr,
		    "model-server: not starting: no usable weights in %s\n",
		    o.weights);
		return 1;
	}
	setup_signals(&poll_mask);
	lfd = listen_on(o.bind, o.port);
	if (lfd < 0)
		return 1;
	ready_at_ms = now_ms() + o.load_delay_ms;
	fprintf(stderr,
	    "model-server: model %s (%d classes, %d features) "
	    "from %s, version %s; listening on %s port %d%s\n",
	    model.name, model.nclasses, model.nfeatures, o.weights,
	    version_json, o.bind, o.port,
	    fail_health ? "; health always fails" : "");
	serve(lfd, &poll_mask);
	fprintf(stderr, "model-server: signal %d, exiting\n", (int)stop_signal);
	close(lfd);
	return 0;
}

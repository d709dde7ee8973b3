/* SPDX-License-Identifier: Apache-2.0 */
/*
 * train: makes the weights of the example model. It draws a synthetic,
 * iris-like data set (three species, four measurements in cm: sepal length
 * and width, petal length and width, each class a Gaussian cluster) from a
 * fixed-seed generator of its own, so every run on every machine sees the
 * same data, fits a multinomial logistic regression by full-batch gradient
 * descent, prints its accuracy on the training set and on a held-out set
 * drawn the same way, and writes the weights file model-server reads.
 */
#include "autoconf.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCLASSES 3
#define NFEATURES 4
#define SAMPLES_MAX 100000

struct cluster {
	const char *name;
	double mean[NFEATURES];
	double sd[NFEATURES];
};

/* Plausible sizes, not measurements: the first species is small-petalled
 * and far from the others; the other two overlap a little, as real
 * flowers do, so the fit has something to get wrong. */
static const struct cluster clusters[NCLASSES] = {
	{ "setosa", { 5.0, 3.4, 1.5, 0.25 }, { 0.35, 0.35, 0.18, 0.10 } },
	{ "versicolor", { 5.9, 2.8, 4.2, 1.30 }, { 0.50, 0.30, 0.45, 0.20 } },
	{ "virginica", { 6.6, 3.0, 5.5, 2.00 }, { 0.60, 0.30, 0.55, 0.27 } },
};

static const char *const feature_names[NFEATURES] = {
	"sepal_length",
	"sepal_width",
	"petal_length",
	"petal_width",
};

struct sample {
	double x[NFEATURES];
	int y;
};

struct params {
	double bias[NCLASSES];
	double w[NCLASSES][NFEATURES];
};

/* SplitMix64: tiny, and the same sequence everywhere, unlike rand(). */
static uint64_t
next_u64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in (0, 1]: never 0, so log() below is finite. */
static double
next_unit(uint64_t *state)
{
	return ((double)(next_u64(state) >> 11) + 1.0) / 9007199254740992.0;
}

/* Box-Muller; uses one of the pair, which keeps the sequence simple. */
static double
next_gauss(uint64_t *state)
{
	double u = next_unit(state), v = next_unit(state);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* n samples per class, interleaved; sizes below 0.1 cm are clamped. */
static void
draw(struct sample *s, int n, uint64_t *state)
{
	int i, c, f;

	for (i = 0; i < n; i++)
		for (c = 0; c < NCLASSES; c++, s++) {
			s->y = c;
			for (f = 0; f < NFEATURES; f++) {
				s->x[f] = clusters[c].mean[f] +
				    clusters[c].sd[f] * next_gauss(state);
				if (s->x[f] < 0.1)
					s->x[f] = 0.1;
			}
		}
}

static void
softmax(const struct params *p, const double *x, double *prob)
{
	double max = -INFINITY, sum = 0;
	int c, f;

	for (c = 0; c < NCLASSES; c++) {
		prob[c] = p->bias[c];
		for (f = 0; f < NFEATURES; f++)
			prob[c] += p->w[c][f] * x[f];
		if (prob[c] > max)
			max = prob[c];
	}
	for (c = 0; c < NCLASSES; c++) {
		prob[c] = exp(prob[c] - max);
		sum += prob[c];
	}
	for (c = 0; c < NCLASSES; c++)
		prob[c] /= sum;
}

/*
 * Gradient descent on the mean cross-entropy plus a small L2 penalty. The
 * penalty matters: the first class is separable, and without it its
 * weights would grow for as long as we iterate. Features are standardised
 * so one learning rate suits all four. Returns the final loss.
 */
static double
fit(struct params *p, const struct sample *s, int n, const double *mean,
    const double *sd, int epochs, double rate, double l2)
{
	double gb[NCLASSES], gw[NCLASSES][NFEATURES], prob[NCLASSES];
	double x[NFEATURES], loss = 0, d;
	int e, i, c, f;

	memset(p, 0, sizeof(*p));
	for (e = 0; e < epochs; e++) {
		memset(gb, 0, sizeof(gb));
		memset(gw, 0, sizeof(gw));
		loss = 0;
		for (i = 0; i < n; i++) {
			for (f = 0; f < NFEATURES; f++)
				x[f] = (s[i].x[f] - mean[f]) / sd[f];
			softmax(p, x, prob);
			loss -= log(prob[s[i].y] + 1e-300);
			for (c = 0; c < NCLASSES; c++) {
				d = prob[c] - (c == s[i].y);
				gb[c] += d;
				for (f = 0; f < NFEATURES; f++)
					gw[c][f] += d * x[f];
			}
		}
		loss /= n;
		for (c = 0; c < NCLASSES; c++) {
			p->bias[c] -= rate * gb[c] / n;
			for (f = 0; f < NFEATURES; f++) {
				loss += 0.5 * l2 * p->w[c][f] * p->w[c][f];
				p->w[c][f] -=
				    rate * (gw[c][f] / n + l2 * p->w[c][f]);
			}
		}
	}
	return loss;
}

/* Folds the standardisation into the weights, so the server applies the
 * model to raw measurements: w.(x - m)/s + b = (w/s).x + b - w.m/s. */
static void
unscale(struct params *p, const double *mean, const double *sd)
{
	int c, f;

	for (c = 0; c < NCLASSES; c++)
		for (f = 0; f < NFEATURES; f++) {
			p->w[c][f] /= sd[f];
			p->bias[c] -= p->w[c][f] * mean[f];
		}
}

static int
correct(const struct params *p, const struct sample *s, int n)
{
	double prob[NCLASSES];
	int i, c, best, right = 0;

	for (i = 0; i < n; i++) {
		softmax(p, s[i].x, prob);
		for (best = 0, c = 1; c < NCLASSES; c++)
			if (prob[c] > prob[best])
				best = c;
		right += best == s[i].y;
	}
	return right;
}

static void
moments(const struct sample *s, int n, double *mean, double *sd)
{
	int i, f;

	for (f = 0; f < NFEATURES; f++) {
		mean[f] = sd[f] = 0;
		for (i = 0; i < n; i++)
			mean[f] += s[i].x[f];
		mean[f] /= n;
		for (i = 0; i < n; i++)
			sd[f] += (s[i].x[f] - mean[f]) * (s[i].x[f] - mean[f]);
		sd[f] = sqrt(sd[f] / n);
		if (sd[f] < 1e-9)
			sd[f] = 1;
	}
}

static int
write_weights(const char *path, const struct params *p, int n,
    unsigned long long seed, int epochs, double accuracy)
{
	FILE *f = fopen(path, "w");
	int c, i;

	if (!f) {
		fprintf(stderr, "train: %s: %s\n", path, strerror(errno));
		return -1;
	}
	fprintf(f,
	    "# Weights of the shoal example model: multinomial logistic\n"
	    "# regression on synthetic iris-like data, made by\n"
	    "# examples/train --seed %llu --per-class %d --epochs %d\n"
	    "# (training accuracy %.1f%%). Format: examples/README.md.\n"
	    "# Features, in cm:",
	    seed, n, epochs, 100 * accuracy);
	for (i = 0; i < NFEATURES; i++)
		fprintf(f, " %s", feature_names[i]);
	fprintf(f, "\nshoal-model 1\nname iris\nfeatures %d\nclasses",
	    NFEATURES);
	for (c = 0; c < NCLASSES; c++)
		fprintf(f, " %s", clusters[c].name);
	fprintf(f, "\n# class bias then one weight per feature\n");
	for (c = 0; c < NCLASSES; c++) {
		fprintf(f, "%s %.6f", clusters[c].name, p->bias[c]);
		for (i = 0; i < NFEATURES; i++)
			fprintf(f, " %.6f", p->w[c][i]);
		fputc('\n', f);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "train: %s: %s\n", path, strerror(errno));
		return -1;
	}
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: train [--seed N] [--per-class N] [--epochs N] OUTPUT\n"
	    "Fits the example iris model on synthetic data and writes its "
	    "weights to OUTPUT.\n");
}

static long
number_arg(const char *name, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end || errno || v < min || v > max) {
		fprintf(stderr, "train: --%s %s: expected %ld to %ld\n", name,
		    s, min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "per-class", required_argument, NULL, 'n' },
		{ "epochs", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long long seed = 1;
	int n = 50, epochs = 2000, opt, total, right;
	double mean[NFEATURES], sd[NFEATURES], loss;
	struct sample *train, *test;
	struct params p;
	uint64_t state;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 's':
			seed = (unsigned long long)number_arg("seed", optarg, 0,
			    2147483647);
			break;
		case 'n':
			n = (int)number_arg("per-class", optarg, 1,
			    SAMPLES_MAX / NCLASSES);
			break;
		case 'e':
			epochs = (int)number_arg("epochs", optarg, 1, 1000000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	total = n * NCLASSES;
	train = calloc((size_t)total, sizeof(*train));
	test = calloc((size_t)total, sizeof(*test));
	if (!train || !test) {
		fprintf(stderr, "train: out of memory\n");
		return 1;
	}
	state = seed;
	draw(train, n, &state);
	draw(test, n, &state);
	moments(train, total, mean, sd);
	loss = fit(&p, train, total, mean, sd, epochs, 0.5, 1e-3);
	unscale(&p, mean, sd);
	right = correct(&p, train, total);
	printf("loss %.4f; training accuracy %d/%d (%.1f%%)\n", loss, right,
	    total, 100.0 * right / total);
	printf("held-out accuracy %d/%d (%.1f%%)\n", correct(&p, test, total),
	    total, 100.0 * correct(&p, test, total) / total);
	if (write_weights(argv[optind], &p, n, seed, epochs,
	        (double)right / total) < 0)
		return 1;
	free(train);
	free(test);
	return 0;
}

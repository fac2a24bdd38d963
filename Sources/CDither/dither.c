// Floyd-Steinberg, eight rows at a time (Sources/TillESCPOS/Raster.swift says why it is C).
//
// Each pixel's result depends on the one before it in its row (the 7/16 carried right), so a
// row is a chain of dependent steps and one row at a time is bound by the latency of that
// chain: about 2.3 ns a pixel here, however few the instructions. But a row only needs the
// row above to be two pixels ahead of it (pixel x takes errors from x-1, x and x+1 above).
// So eight rows run together, one per lane of a 16-bit vector, each two pixels behind the row
// above it: a wavefront. At step s, lane k works on pixel s - 2k of row k. What lane k hands
// to the row below it for a column is complete when it has done the next column; the step
// after, lane k + 1 takes it, shifted one lane along. The band's last row hands its errors to
// the next band through memory. The arithmetic is the scalar algorithm's, lane for lane, so
// the dots are the same (Tests/TillESCPOSTests checks them against the textbook algorithm).
//
// Written with clang's vector extensions (any target: SSE2 on x86-64, NEON on arm64); only
// the gathering of the "is black" bits uses an SSE2 instruction where there is one.

#include "CDither.h"

#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef int16_t lanes16 __attribute__((vector_size(16)));
typedef uint8_t bytes16 __attribute__((vector_size(16)));

enum { LANES = 8, SKEW = 2, MARGIN = 16 };

static inline bytes16 load8(const uint8_t *p) {
    bytes16 v = {0};
    memcpy(&v, p, 8);
    return v;
}

// Bit k set when lane k is black.
static inline uint8_t black_bits(lanes16 black) {
#ifdef __SSE2__
    return (uint8_t)_mm_movemask_epi8(_mm_packs_epi16((__m128i)black, _mm_setzero_si128()));
#else
    const lanes16 bit = {1, 2, 4, 8, 16, 32, 64, 128};
    return (uint8_t)__builtin_reduce_or(black & bit);
#endif
}

int till_floyd_steinberg(const uint8_t *pixels, int width, int height, uint8_t *rows, int stride) {
    if (width <= 0 || height <= 0) return 0;
    const int w = width;
    const int span = w + 3 * MARGIN;
    // below[c + 1]: the error the band's last row leaves for column c of the row under it.
    int16_t *below = calloc((size_t)w + 2, sizeof *below);
    // The band's rows with room on both sides, so that every lane reads without a bounds check.
    uint8_t *band = calloc((size_t)LANES * span, 1);
    // marks[s]: bit k set when lane k's pixel at step s is black.
    uint8_t *marks = calloc((size_t)w + 3 * MARGIN, 1);
    if (!below || !band || !marks) {
        free(below);
        free(band);
        free(marks);
        return -1;
    }
    const lanes16 skew = {0, 2, 4, 6, 8, 10, 12, 14};
    const lanes16 widths = (lanes16){0} + (int16_t)w;
    const bytes16 zero = {0};
    for (int top = 0; top < height; top += LANES) {
        const int count = height - top < LANES ? height - top : LANES;
        const int last = count - 1;
        lanes16 inBand;
        const uint8_t *row[LANES];
        for (int k = 0; k < LANES; k++) {
            uint8_t *copy = band + (size_t)k * span + MARGIN;
            if (k < count) memcpy(copy, pixels + (size_t)(top + k) * w, (size_t)w);
            else memset(copy, 0, (size_t)w);
            row[k] = copy - SKEW * k;  // row[k][s]: lane k's pixel at step s
            inBand[k] = k < count ? -1 : 0;
        }
        lanes16 carry = {0}, column = {0}, following = {0}, finished = {0};
        const int steps = w + SKEW * last + 1;  // the last lane's last step hands on its leftover
        for (int first = 0; first < steps; first += LANES) {
            // The lanes' next eight pixels: eight row loads transposed (step j in quad[j / 2]).
            bytes16 a0 = load8(row[0] + first), a1 = load8(row[1] + first), a2 = load8(row[2] + first), a3 = load8(row[3] + first);
            bytes16 a4 = load8(row[4] + first), a5 = load8(row[5] + first), a6 = load8(row[6] + first), a7 = load8(row[7] + first);
            bytes16 t01 = __builtin_shufflevector(a0, a1, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            bytes16 t23 = __builtin_shufflevector(a2, a3, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            bytes16 t45 = __builtin_shufflevector(a4, a5, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            bytes16 t67 = __builtin_shufflevector(a6, a7, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            bytes16 u0 = __builtin_shufflevector(t01, t23, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
            bytes16 u1 = __builtin_shufflevector(t01, t23, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
            bytes16 v0 = __builtin_shufflevector(t45, t67, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
            bytes16 v1 = __builtin_shufflevector(t45, t67, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
            bytes16 quad[4] = {
                __builtin_shufflevector(u0, v0, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23),
                __builtin_shufflevector(u0, v0, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31),
                __builtin_shufflevector(u1, v1, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23),
                __builtin_shufflevector(u1, v1, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31),
            };
            const int n = steps - first < LANES ? steps - first : LANES;
            // Inside the picture with all eight lanes (most steps): nothing to mask.
            const int inside = n == LANES && count == LANES && first >= SKEW * (LANES - 1) && first + LANES <= w;
            for (int j = 0; j < n; j++) {
                const int s = first + j;
                lanes16 pixel = (j & 1)
                    ? (lanes16)__builtin_shufflevector(quad[j >> 1], zero, 8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16)
                    : (lanes16)__builtin_shufflevector(quad[j >> 1], zero, 0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
                // Lane 0's errors from above come from memory (the band before); lane k's from
                // lane k - 1, finished the step before.
                lanes16 fromAbove = {s < w ? below[s + 1] : 0, 0, 0, 0, 0, 0, 0, 0};
                lanes16 incoming = __builtin_shufflevector(finished, (lanes16){0}, 8, 0, 1, 2, 3, 4, 5, 6);
                lanes16 value = pixel + fromAbove + carry + incoming;
                lanes16 black = value < 128;
                lanes16 error = value - (~black & 255);
                if (!inside) {
                    // Lanes before their row's start or past its end change nothing.
                    lanes16 at = ((lanes16){0} + (int16_t)s) - skew;
                    error &= (at >= 0) & (at < widths) & inBand;
                }
                carry = (error * 7) >> 4;
                finished = column + ((error * 3) >> 4);  // column s - 2k - 1 of the row below
                column = following + ((error * 5) >> 4);
                following = error >> 4;
                const int atLast = s - SKEW * last;
                if (atLast >= 0) below[atLast] = finished[last];
                marks[s] = black_bits(black);
            }
        }
        // Row k's dots are bit k of marks[c + 2k]: eight at a time, gathered into a byte by one
        // multiplication (bit k of eight bytes, first byte to the most significant bit).
        for (int k = 0; k < count; k++) {
            uint8_t *out = rows + (size_t)(top + k) * stride;
            const uint8_t *mark = marks + SKEW * k;
            for (int byte = 0; byte < (w + 7) / 8; byte++) {
                uint64_t eight;
                memcpy(&eight, mark + 8 * byte, 8);
                eight = (eight >> k) & 0x0101010101010101ULL;
                out[byte] = (uint8_t)((eight * 0x8040201008040201ULL) >> 56);
            }
            if (w & 7) out[(w + 7) / 8 - 1] &= (uint8_t)(0xFF << (8 - (w & 7)));
        }
    }
    free(below);
    free(band);
    free(marks);
    return 0;
}

#ifndef C_DITHER_H
#define C_DITHER_H

#include <stdint.h>

/// Floyd-Steinberg error diffusion of an 8-bit grey picture (0 black ... 255 white) to dots:
/// 7/16 of a pixel's error to the right, 3/16, 5/16 and 1/16 to the row below, each share
/// rounded down (an arithmetic shift), a pixel black below 128. `rows` is `stride * height`
/// bytes, cleared by the caller; a set bit is a dot, most significant bit leftmost, the bits
/// past `width` left clear. Returns 0, or -1 when its scratch memory could not be had.
int till_floyd_steinberg(const uint8_t *pixels, int width, int height, uint8_t *rows, int stride);

#endif

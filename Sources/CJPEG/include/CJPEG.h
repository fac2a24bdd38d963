#ifndef C_JPEG_H
#define C_JPEG_H

#include <stddef.h>
#include <stdint.h>

/// Decodes a JPEG to 8-bit grey (libjpeg converts colour). On success returns 0 and sets
/// `*pixels` (malloc'd, width * height bytes, row by row; the caller frees it), `*width` and
/// `*height`. On failure returns -1 with libjpeg's message in `message`. Pictures over
/// `max_side` pixels on a side are refused before their pixels are read.
int till_jpeg_decode_gray(const uint8_t *data, size_t size, int max_side,
                          uint8_t **pixels, int *width, int *height, char *message, size_t message_size);

/// Encodes 8-bit grey pixels as a baseline JPEG (for tests: what a browser's canvas sends).
/// Returns 0 and a malloc'd `*out` of `*out_size` bytes, or -1.
int till_jpeg_encode_gray(const uint8_t *pixels, int width, int height, int quality,
                          uint8_t **out, size_t *out_size);

#endif

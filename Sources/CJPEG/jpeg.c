// libjpeg behind two calls. libjpeg reports a fatal error by calling error_exit, which by
// default ends the process; here it jumps back to the call (setjmp), which Swift cannot do.

#include "CJPEG.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

struct failure {
    struct jpeg_error_mgr manager;
    jmp_buf back;
    char message[JMSG_LENGTH_MAX];
};

static void jump_back(j_common_ptr info) {
    struct failure *failure = (struct failure *)info->err;
    (*info->err->format_message)(info, failure->message);
    longjmp(failure->back, 1);
}

static void quiet(j_common_ptr info) { (void)info; }  // warnings (a corrupt byte) are not errors

int till_jpeg_decode_gray(const uint8_t *data, size_t size, int max_side,
                          uint8_t **pixels, int *width, int *height, char *message, size_t message_size) {
    struct jpeg_decompress_struct info;
    struct failure failure;
    uint8_t *volatile out = NULL;
    memset(&info, 0, sizeof info);
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jump_back;
    failure.manager.output_message = quiet;
    failure.message[0] = 0;
    if (setjmp(failure.back)) {
        snprintf(message, message_size, "%s", failure.message[0] ? failure.message : "libjpeg could not read it");
        jpeg_destroy_decompress(&info);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    if ((int)info.image_width > max_side || (int)info.image_height > max_side) {
        snprintf(message, message_size, "%ux%u pixels is over the limit of %d on a side", info.image_width, info.image_height, max_side);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = JCS_GRAYSCALE;
    jpeg_start_decompress(&info);
    const size_t stride = info.output_width;
    out = malloc(stride * info.output_height);
    if (!out) {
        snprintf(message, message_size, "out of memory for %ux%u pixels", info.output_width, info.output_height);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out + stride * info.output_scanline;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    *pixels = out;
    *width = (int)info.output_width;
    *height = (int)info.output_height;
    jpeg_destroy_decompress(&info);
    return 0;
}

int till_jpeg_encode_gray(const uint8_t *pixels, int width, int height, int quality, uint8_t **out, size_t *out_size) {
    struct jpeg_compress_struct info;
    struct failure failure;
    unsigned char *volatile buffer = NULL;
    unsigned long length = 0;
    memset(&info, 0, sizeof info);
    info.err = jpeg_std_error(&failure.manager);
    failure.manager.error_exit = jump_back;
    failure.manager.output_message = quiet;
    if (setjmp(failure.back)) {
        jpeg_destroy_compress(&info);
        free(buffer);
        return -1;
    }
    jpeg_create_compress(&info);
    unsigned char *target = NULL;
    jpeg_mem_dest(&info, &target, &length);
    info.image_width = (JDIMENSION)width;
    info.image_height = (JDIMENSION)height;
    info.input_components = 1;
    info.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&info);
    jpeg_set_quality(&info, quality, TRUE);
    jpeg_start_compress(&info, TRUE);
    while (info.next_scanline < info.image_height) {
        JSAMPROW row = (JSAMPROW)(pixels + (size_t)width * info.next_scanline);
        jpeg_write_scanlines(&info, &row, 1);
    }
    jpeg_finish_compress(&info);
    buffer = target;
    *out = buffer;
    *out_size = length;
    jpeg_destroy_compress(&info);
    return 0;
}

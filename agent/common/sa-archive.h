/* sa-archive.h: unpacks a (gzip- or zstd-compressed) newc initramfs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <stddef.h>

#include "sa-util.h"

/* Decompresses @data if it starts with the gzip or zstd magic, else
 * copies it; returns false with @err set on failure */
bool sa_decompress     (const void *data, size_t len, size_t max_out, SaBuf *out, char *err, size_t errlen);

/* Extracts a newc ("070701") archive into @dest: directories, regular
 * files and symlinks; refuses absolute names, ".." and names too long.
 * Symbolic links on an entry's path, the destination's own (a
 * merged-/usr root: lib -> usr/lib) or ones the archive made, are
 * followed as if @dest were "/" (openat2() with RESOLVE_IN_ROOT): an
 * absolute or ".." target is resolved against @dest and nothing outside
 * it is written; a link to nothing there is refused. Where openat2() is
 * unavailable (Linux before 5.6, or refused by a seccomp filter) such
 * an entry is refused, the error naming the link. Returns the number
 * of entries extracted, or -1 with @err set. */
long sa_newc_extract   (const void *data, size_t len, const char *dest, char *err, size_t errlen);

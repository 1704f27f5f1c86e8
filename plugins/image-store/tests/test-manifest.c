/* test-manifest.c: the manifest library
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib.h>
#include <string.h>

#include "shoal-manifest.h"

#define ABC_SHA256 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
test_hash (void)
{
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];
  uint8_t back[SHOAL_MANIFEST_DIGEST_LEN];
  char hex[SHOAL_MANIFEST_HEX_LEN + 1];
  ShoalManifestHash *hash = shoal_manifest_hash_new ();

  g_assert_cmpint (shoal_manifest_digest ("abc", 3, digest), ==, 0);
  shoal_manifest_digest_to_hex (digest, hex);
  g_assert_cmpstr (hex, ==, ABC_SHA256);

  /* streaming, and reuse after final */
  g_assert_cmpint (shoal_manifest_hash_update (hash, "a", 1), ==, 0);
  g_assert_cmpint (shoal_manifest_hash_update (hash, "bc", 2), ==, 0);
  g_assert_cmpint (shoal_manifest_hash_final (hash, digest), ==, 0);
  shoal_manifest_digest_to_hex (digest, hex);
  g_assert_cmpstr (hex, ==, ABC_SHA256);
  g_assert_cmpint (shoal_manifest_hash_final (hash, digest), ==, 0);
  shoal_manifest_digest_to_hex (digest, hex);
  g_assert_cmpstr (hex, ==, EMPTY_SHA256);
  shoal_manifest_hash_free (hash);

  g_assert_cmpint (shoal_manifest_digest_from_hex (ABC_SHA256, 64, back), ==, 0);
  g_assert_cmpint (shoal_manifest_digest ("abc", 3, digest), ==, 0);
  g_assert_cmpmem (back, sizeof back, digest, sizeof digest);
  g_assert_cmpint (shoal_manifest_digest_from_hex ("BA7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 64, back), ==, -1);
  g_assert_cmpint (shoal_manifest_digest_from_hex (ABC_SHA256, 63, back), ==, -1);
  g_assert_true (shoal_manifest_is_valid_id (ABC_SHA256));
  g_assert_false (shoal_manifest_is_valid_id ("../etc/passwd"));
  g_assert_false (shoal_manifest_is_valid_id (ABC_SHA256 "0"));
}

static void
test_zero (void)
{
  g_autofree guint8 *buf = g_malloc0 (65536);

  g_assert_true (shoal_manifest_is_zero (buf, 65536));
  g_assert_true (shoal_manifest_is_zero (buf, 0));
  buf[65535] = 1;
  g_assert_false (shoal_manifest_is_zero (buf, 65536));
  buf[65535] = 0;
  buf[0] = 1;
  g_assert_false (shoal_manifest_is_zero (buf, 65536));
}

static ShoalManifest *
build_sample (void)
{
  ShoalManifestError error = { 0 };
  /* 3 chunks of 4096 and a last one of 100 bytes; chunk 1 is zero */
  ShoalManifest *m = shoal_manifest_new ("debian-12.5_amd64", 3 * 4096 + 100, 4096, &error);
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

  g_assert_nonnull (m);
  g_assert_cmpuint (m->n_chunks, ==, 4);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree gchar *text = g_strdup_printf ("chunk %u", i);

      shoal_manifest_digest (text, strlen (text), digest);
      g_assert_cmpint (shoal_manifest_set_chunk (m, i, i == 1 ? NULL : digest), ==, 0);
    }
  g_assert_cmpint (shoal_manifest_set_chunk (m, 4, digest), ==, -1);
  shoal_manifest_digest ("image", 5, digest);
  shoal_manifest_set_image_sha256 (m, digest);
  return m;
}

static void
test_round_trip (void)
{
  ShoalManifest *m = build_sample ();
  ShoalManifest *p;
  ShoalManifestError error = { 0 };
  size_t len = 0;
  size_t len2 = 0;
  char *text = shoal_manifest_serialize (m, &len);
  char *text2;
  char id[SHOAL_MANIFEST_HEX_LEN + 1];
  char id2[SHOAL_MANIFEST_HEX_LEN + 1];
  uint64_t data_bytes = 0;

  g_assert_nonnull (text);
  g_assert_true (g_str_has_prefix (text, "shoal-manifest 1\nname debian-12.5_amd64\nsize 12388\n"
                                         "chunk-size 4096\nchunks 4\nimage-sha256 "));
  g_assert_nonnull (strstr (text, "\nzero\n"));
  g_assert_true (g_str_has_suffix (text, "\nend\n"));
  g_assert_cmpuint (strlen (text), ==, len);

  p = shoal_manifest_parse (text, len, &error);
  g_assert_nonnull (p);
  g_assert_cmpstr (p->name, ==, m->name);
  g_assert_cmpuint (p->size, ==, m->size);
  g_assert_cmpuint (p->chunk_size, ==, m->chunk_size);
  g_assert_cmpuint (p->n_chunks, ==, 4);
  g_assert_cmpmem (p->image_sha256, 32, m->image_sha256, 32);
  g_assert_cmpmem (p->digests, 4 * 32, m->digests, 4 * 32);
  g_assert_true (shoal_manifest_chunk_is_zero (p, 1));
  g_assert_false (shoal_manifest_chunk_is_zero (p, 0));
  g_assert_null (shoal_manifest_chunk_digest (p, 1));
  g_assert_cmpuint (shoal_manifest_chunk_length (p, 3), ==, 100);
  g_assert_cmpuint (shoal_manifest_chunk_length (p, 2), ==, 4096);
  g_assert_cmpuint (shoal_manifest_chunk_length (p, 4), ==, 0);
  g_assert_cmpuint (shoal_manifest_chunk_offset (p, 3), ==, 3 * 4096);
  g_assert_cmpuint (shoal_manifest_count_data_chunks (p, &data_bytes), ==, 3);
  g_assert_cmpuint (data_bytes, ==, 2 * 4096 + 100);

  text2 = shoal_manifest_serialize (p, &len2);
  g_assert_cmpmem (text, len, text2, len2);
  shoal_manifest_compute_id (text, len, id);
  shoal_manifest_compute_id (text2, len2, id2);
  g_assert_cmpstr (id, ==, id2);
  g_assert_true (shoal_manifest_is_valid_id (id));

  free (text);
  free (text2);
  shoal_manifest_free (m);
  shoal_manifest_free (p);
}

static void
test_new_bad (void)
{
  ShoalManifestError error = { 0 };

  g_assert_null (shoal_manifest_new ("ok", 100, 1000, &error));
  g_assert_nonnull (strstr (error.message, "power of two"));
  g_assert_null (shoal_manifest_new ("ok", 0, 4096, &error));
  g_assert_null (shoal_manifest_new ("bad name", 100, 4096, &error));
  g_assert_null (shoal_manifest_new ("../x", 100, 4096, &error));
  g_assert_null (shoal_manifest_new ("ok", (uint64_t) 4096 * SHOAL_MANIFEST_MAX_CHUNKS + 1, 4096, &error));
  g_assert_nonnull (strstr (error.message, "limit"));
}

typedef struct {
  const gchar *text;
  guint        line;
  const gchar *message;
} BadCase;

#define H "shoal-manifest 1\nname x\nsize 5000\nchunk-size 4096\nchunks 2\n"
#define D "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define IMG "image-sha256 " D "\n"

static const BadCase bad_cases[] = {
  { "", 1, "not a shoal manifest" },
  { "shoal-manifest 2\n", 1, "unsupported manifest version" },
  { "shoal-manifest 01\n", 1, "unsupported manifest version" },
  { "shoal-manifest 1", 1, "not a shoal manifest" },
  { "SHOAL-manifest 1\n", 1, "not a shoal manifest" },
  { "shoal-manifest 1\nname \n", 2, "expected \"name <value>\"" },
  { "shoal-manifest 1\nname a b\n", 2, "invalid image name" },
  { "shoal-manifest 1\nname x\nsize -1\n", 3, "size is not a decimal" },
  { "shoal-manifest 1\nname x\nsize 99999999999999999999999\n", 3, "size is not a decimal" },
  { "shoal-manifest 1\nname x\nsize 18446744073709551616\n", 3, "size is not a decimal" },
  { "shoal-manifest 1\nname x\nsize 0\nchunk-size 4096\n", 4, "image size is zero" },
  { "shoal-manifest 1\nname x\nsize 10\nchunk-size 4097\n", 4, "power of two" },
  { "shoal-manifest 1\nname x\nsize 10\nchunk-size 4294971392\n", 4, "larger than" },
  { "shoal-manifest 1\nname x\nsize 10\nchunk-size 4096\nchunks 2\n", 5, "size and chunk-size make 1" },
  { H, 5, "too short" },
  { H "image-sha256 " D "\n" D "\n", 8, "unexpected end" },
  { H "image-sha256 xyz\n" D "\nzero\nend\n", 6, "image-sha256 is not" },
  { H IMG "Zero\n" "zero\nend\n", 7, "chunk 0: expected 64 lowercase hex digits" },
  { H IMG "zero\n" "zero \nend\n", 8, "chunk 1" },
  { H IMG "zero\r\n" "zero\nend\n", 7, "chunk 0" },
  { H IMG "zero\nzero\nzero\nend\n", 9, "expected \"end\"" },
  { H IMG "zero\nzero\nend\n\n", 10, "data after \"end\"" },
  { H IMG "zero\nzero\nend", 9, "not terminated" },
  { H IMG "zero\nzero\nend\nx", 10, "data after" },
};

static void
test_bad_input (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      ShoalManifestError error = { 0 };
      const BadCase *c = &bad_cases[i];
      ShoalManifest *m = shoal_manifest_parse (c->text, strlen (c->text), &error);

      g_test_message ("case %" G_GSIZE_FORMAT ": line %u: %s", i, error.line, error.message);
      g_assert_null (m);
      g_assert_nonnull (strstr (error.message, c->message));
      g_assert_cmpuint (error.line, ==, c->line);
    }
  /* and the good one the bad cases are made from */
  {
    const gchar *good = H IMG "zero\n" D "\nend\n";
    ShoalManifestError error = { 0 };
    ShoalManifest *m = shoal_manifest_parse (good, strlen (good), &error);

    g_assert_nonnull (m);
    g_assert_cmpuint (shoal_manifest_chunk_length (m, 1), ==, 5000 - 4096);
    shoal_manifest_free (m);
  }
  /* an embedded NUL is not a newline and not valid anywhere */
  {
    const gchar good_nul[] = "shoal-manifest 1\nname x\0y\nsize 1\n";
    ShoalManifestError error = { 0 };

    g_assert_null (shoal_manifest_parse (good_nul, sizeof good_nul - 1, &error));
    g_assert_cmpuint (error.line, ==, 2);
  }
}

static void
test_verify_chunk (void)
{
  ShoalManifestError error = { 0 };
  ShoalManifest *m = shoal_manifest_new ("v", 4096 + 10, 4096, &error);
  g_autofree guint8 *data = g_malloc (4096);
  guint8 zeros[10] = { 0 };
  uint8_t digest[SHOAL_MANIFEST_DIGEST_LEN];

  memset (data, 0xab, 4096);
  shoal_manifest_digest (data, 4096, digest);
  shoal_manifest_set_chunk (m, 0, digest);
  shoal_manifest_set_chunk (m, 1, NULL);

  g_assert_cmpint (shoal_manifest_verify_chunk (m, 0, data, 4096, &error), ==, 0);
  g_assert_cmpint (shoal_manifest_verify_chunk (m, 1, zeros, 10, &error), ==, 0);
  g_assert_cmpint (shoal_manifest_verify_chunk (m, 0, data, 4095, &error), ==, -1);
  g_assert_nonnull (strstr (error.message, "4095 bytes"));
  data[100] ^= 1;
  g_assert_cmpint (shoal_manifest_verify_chunk (m, 0, data, 4096, &error), ==, -1);
  g_assert_nonnull (strstr (error.message, "does not match"));
  zeros[9] = 1;
  g_assert_cmpint (shoal_manifest_verify_chunk (m, 1, zeros, 10, &error), ==, -1);
  g_assert_nonnull (strstr (error.message, "all zeros"));
  g_assert_cmpint (shoal_manifest_verify_chunk (m, 2, zeros, 10, &error), ==, -1);
  shoal_manifest_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/shoal/manifest/hash", test_hash);
  g_test_add_func ("/shoal/manifest/zero", test_zero);
  g_test_add_func ("/shoal/manifest/round-trip", test_round_trip);
  g_test_add_func ("/shoal/manifest/new-bad", test_new_bad);
  g_test_add_func ("/shoal/manifest/bad-input", test_bad_input);
  g_test_add_func ("/shoal/manifest/verify-chunk", test_verify_chunk);
  return g_test_run ();
}

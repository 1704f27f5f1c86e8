/* test-agent-initramfs.c: the generated agent initramfs, listed with a real
 * cpio tool and unpacked with the agent loader's own extractor
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sa-archive.h"
#include "shoal-agent-gen.h"
#include "shoal-agent-initramfs.h"
#include "shoal-drivers-modindex.h"
#include "shoal-error.h"

typedef struct {
  gchar *tmp;
} Fixture;

static void
fixture_set_up (Fixture *f, gconstpointer data)
{
  g_autoptr(GError) error = NULL;

  f->tmp = g_dir_make_tmp ("shoal-agent-initramfs-XXXXXX", &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture *f, gconstpointer data)
{
  const gchar *argv[] = { "rm", "-rf", f->tmp, NULL };

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
  g_free (f->tmp);
}

static void
write_file (const gchar *dir, const gchar *name, const gchar *text)
{
  g_autofree gchar *path = g_build_filename (dir, name, NULL);
  g_autofree gchar *parent = g_path_get_dirname (path);
  g_autoptr(GError) error = NULL;

  g_mkdir_with_parents (parent, 0755);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

/* The entries of a compressed newc archive, as `cpio -t` lists them */
static GPtrArray *
cpio_list (const gchar *path, const gchar *decompressor)
{
  g_autofree gchar *cmd = g_strdup_printf ("%s -dc '%s' | cpio -t --quiet", decompressor, path);
  const gchar *argv[] = { "sh", "-c", cmd, NULL };
  g_autofree gchar *out = NULL;
  g_autofree gchar *err = NULL;
  g_autoptr(GError) error = NULL;
  gint status = 0;
  g_auto(GStrv) lines = NULL;
  GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);

  g_spawn_sync (NULL, (gchar **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      if (*lines[i] != '\0')
        g_ptr_array_add (entries, g_strdup (lines[i]));
    }
  return entries;
}

static gboolean
has (GPtrArray *entries, const gchar *name)
{
  return g_ptr_array_find_with_equal_func (entries, name, g_str_equal, NULL);
}

static guint
count_suffix (GPtrArray *entries, const gchar *suffix)
{
  guint n = 0;

  for (guint i = 0; i < entries->len; i++)
    n += g_str_has_suffix (g_ptr_array_index (entries, i), suffix);
  return n;
}

static gboolean
have_tools (void)
{
  g_autofree gchar *cpio = g_find_program_in_path ("cpio");
  g_autofree gchar *zstd = g_find_program_in_path ("zstd");

  if (cpio == NULL || zstd == NULL)
    {
      g_test_skip ("cpio or zstd missing");
      return FALSE;
    }
  return TRUE;
}

/* A fake kernel tree: lib/modules/9.9.9-test with four modules */
static ShoalModIndex *
fake_index (Fixture *f)
{
  g_autofree gchar *rel = g_build_filename (f->tmp, "lib/modules/9.9.9-test", NULL);
  g_autoptr(GError) error = NULL;
  ShoalModIndex *index;

  write_file (rel, "modules.alias", "alias pci:v00001111d*sv*sd*bc*sc*i* nic_drv\n");
  write_file (rel, "modules.dep",
              "kernel/drivers/net/nic-drv.ko: kernel/lib/helper.ko kernel/lib/base.ko\n"
              "kernel/lib/helper.ko: kernel/lib/base.ko\n"
              "kernel/lib/base.ko:\n"
              "kernel/drivers/other.ko:\n");
  write_file (rel, "kernel/drivers/net/nic-drv.ko", "NIC");
  write_file (rel, "kernel/lib/helper.ko", "HELPER");
  write_file (rel, "kernel/lib/base.ko", "BASE");
  write_file (rel, "kernel/drivers/other.ko", "OTHER");
  write_file (f->tmp, "shoal-agent", "\x7f" "ELF fake agent");
  index = shoal_mod_index_new (rel, &error);
  g_assert_no_error (error);
  return index;
}

static GPtrArray *
resolve (ShoalModIndex *index, const gchar *first, ...)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  GPtrArray *order;
  va_list ap;

  va_start (ap, first);
  for (const gchar *n = first; n != NULL; n = va_arg (ap, const gchar *))
    g_ptr_array_add (names, (gpointer) n);
  va_end (ap);
  order = shoal_mod_index_resolve (index, names, &error);
  g_assert_no_error (error);
  return order;
}

static void
test_fake_kernel (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalModIndex) index = fake_index (f);
  g_autoptr(GPtrArray) mods = resolve (index, "nic_drv", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *base = g_build_filename (f->tmp, "base.cpio.zst", NULL);
  g_autofree gchar *gz = g_build_filename (f->tmp, "base.cpio.gz", NULL);
  g_autoptr(GPtrArray) entries = NULL;
  g_autoptr(GPtrArray) gz_entries = NULL;
  g_autoptr(GError) error = NULL;

  if (!have_tools ())
    return;
  g_assert_cmpuint (mods->len, ==, 3);
  g_assert_true (shoal_agent_initramfs_write_base (base, agent, index, mods, SHOAL_AGENT_COMPRESSION_ZSTD, &error));
  g_assert_no_error (error);
  entries = cpio_list (base, "zstd");
  for (guint i = 0; i < entries->len; i++)
    g_test_message ("entry %s", (const gchar *) g_ptr_array_index (entries, i));
  g_assert_true (has (entries, "usr/sbin/shoal-agent"));
  g_assert_true (has (entries, "lib/modules/9.9.9-test/kernel/drivers/net/nic-drv.ko"));
  g_assert_true (has (entries, "lib/modules/9.9.9-test/kernel/lib/helper.ko"));
  g_assert_true (has (entries, "lib/modules/9.9.9-test/kernel/lib/base.ko"));
  g_assert_true (has (entries, "lib/modules/9.9.9-test/modules.dep"));
  g_assert_false (has (entries, "lib/modules/9.9.9-test/kernel/drivers/other.ko"));
  g_assert_cmpuint (count_suffix (entries, ".ko"), ==, 3);
  /* directories come before what they hold */
  g_assert_true (has (entries, "lib/modules/9.9.9-test/kernel/lib"));

  g_assert_true (shoal_agent_initramfs_write_base (gz, agent, index, mods, SHOAL_AGENT_COMPRESSION_GZIP, &error));
  g_assert_no_error (error);
  gz_entries = cpio_list (gz, "gzip");
  g_assert_cmpuint (gz_entries->len, ==, entries->len);
}

static void
test_unpack_concatenated (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalModIndex) index = fake_index (f);
  g_autoptr(GPtrArray) mods = resolve (index, "nic_drv", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *base = g_build_filename (f->tmp, "base.cpio.gz", NULL);
  g_autofree gchar *conf = g_build_filename (f->tmp, "conf.cpio.gz", NULL);
  g_autofree gchar *dest = g_build_filename (f->tmp, "root", NULL);
  g_autofree gchar *b = NULL, *c = NULL, *dep = NULL, *text = NULL;
  gsize blen = 0, clen = 0;
  g_autoptr(GError) error = NULL;
  char err[256];
  SaBuf whole, cpio;
  g_autofree gchar *dep_path = g_build_filename (dest, "lib/modules/9.9.9-test/modules.dep", NULL);
  g_autofree gchar *conf_path = g_build_filename (dest, "etc/shoal/agent.conf", NULL);
  GStatBuf st;

  for (guint compression = 0; compression < 2; compression++)
    {
      g_assert_true (shoal_agent_initramfs_write_base (base, agent, index, mods, compression, &error));
      g_assert_true (shoal_agent_initramfs_write_config (conf, "server=http://10.0.0.1:8080\ntoken=t\n", compression, &error));
      g_assert_no_error (error);
      g_file_get_contents (base, &b, &blen, NULL);
      g_file_get_contents (conf, &c, &clen, NULL);
      sa_buf_init (&whole);
      sa_buf_append (&whole, b, blen);
      sa_buf_append (&whole, c, clen);
      sa_buf_init (&cpio);
      g_assert_true (sa_decompress (whole.data, whole.len, 1 << 26, &cpio, err, sizeof err));
      g_mkdir_with_parents (dest, 0755);
      g_assert_cmpint (sa_newc_extract (cpio.data, cpio.len, dest, err, sizeof err), >, 5);
      sa_buf_clear (&whole);
      sa_buf_clear (&cpio);
      g_clear_pointer (&b, g_free);
      g_clear_pointer (&c, g_free);
    }
  g_assert_true (g_file_get_contents (dep_path, &dep, NULL, NULL));
  g_assert_cmpstr (dep, ==,
                   "kernel/lib/base.ko:\n"
                   "kernel/lib/helper.ko: kernel/lib/base.ko\n"
                   "kernel/drivers/net/nic-drv.ko: kernel/lib/helper.ko kernel/lib/base.ko\n");
  g_assert_true (g_file_get_contents (conf_path, &text, NULL, NULL));
  g_assert_true (g_str_has_prefix (text, "server="));
  g_assert_cmpint (g_stat (conf_path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);
}

/* Compressed modules are stored decompressed, under their .ko name, and
 * modules.dep names them so: finit_module refuses a compressed module
 * unless the kernel is 5.17 or later and built to decompress it */
static void
test_compressed_modules (Fixture *f, gconstpointer data)
{
  g_autofree gchar *rel = g_build_filename (f->tmp, "lib/modules/9.9.9-test", NULL);
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *base = g_build_filename (f->tmp, "base.cpio.zst", NULL);
  g_autofree gchar *dest = g_build_filename (f->tmp, "root", NULL);
  g_autofree gchar *cmd = g_strdup_printf ("sh -c 'cd %s/kernel && xz drivers/net/nic-drv.ko && zstd -q --rm lib/helper.ko"
                                           " && gzip lib/base.ko'", rel);
  const gchar *files[][2] = { { "kernel/drivers/net/nic-drv.ko", "NIC" }, { "kernel/lib/helper.ko", "HELPER" },
                              { "kernel/lib/base.ko", "BASE" } };
  g_autoptr(ShoalModIndex) index = NULL;
  g_autoptr(GPtrArray) mods = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *b = NULL, *dep = NULL;
  gsize blen = 0;
  gint status = 0;
  char err[256];
  SaBuf cpio;

  if (!have_tools ())
    return;
  write_file (f->tmp, "shoal-agent", "AGENT");
  write_file (rel, "modules.alias", "alias pci:v00001111d*sv*sd*bc*sc*i* nic_drv\n");
  write_file (rel, "modules.dep",
              "kernel/drivers/net/nic-drv.ko.xz: kernel/lib/helper.ko.zst kernel/lib/base.ko.gz\n"
              "kernel/lib/helper.ko.zst: kernel/lib/base.ko.gz\n"
              "kernel/lib/base.ko.gz:\n");
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    write_file (rel, files[i][0], files[i][1]);
  g_assert_true (g_spawn_command_line_sync (cmd, NULL, NULL, &status, NULL));
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  index = shoal_mod_index_new (rel, &error);
  g_assert_no_error (error);
  mods = resolve (index, "nic_drv", NULL);
  g_assert_cmpuint (mods->len, ==, 3);
  g_assert_true (shoal_agent_initramfs_write_base (base, agent, index, mods, SHOAL_AGENT_COMPRESSION_ZSTD, &error));
  g_assert_no_error (error);

  g_assert_true (g_file_get_contents (base, &b, &blen, NULL));
  sa_buf_init (&cpio);
  g_assert_true (sa_decompress (b, blen, 1 << 26, &cpio, err, sizeof err));
  g_assert_cmpint (sa_newc_extract (cpio.data, cpio.len, dest, err, sizeof err), >, 3);
  sa_buf_clear (&cpio);
  for (guint i = 0; i < G_N_ELEMENTS (files); i++)
    {
      g_autofree gchar *path = g_build_filename (dest, "lib/modules/9.9.9-test", files[i][0], NULL);
      g_autofree gchar *text = NULL;

      g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
      g_assert_cmpstr (text, ==, files[i][1]);
    }
  dep = g_build_filename (dest, "lib/modules/9.9.9-test/modules.dep", NULL);
  g_free (b);
  g_assert_true (g_file_get_contents (dep, &b, NULL, NULL));
  g_assert_cmpstr (b, ==,
                   "kernel/lib/base.ko:\n"
                   "kernel/lib/helper.ko: kernel/lib/base.ko\n"
                   "kernel/drivers/net/nic-drv.ko: kernel/lib/helper.ko kernel/lib/base.ko\n");

  /* a module that does not decompress fails the generation */
  write_file (rel, "kernel/lib/base.ko.gz", "not gzip");
  g_assert_false (shoal_agent_initramfs_write_base (base, agent, index, mods, SHOAL_AGENT_COMPRESSION_ZSTD, &error));
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "base.ko"));
}

static void
test_cache_key (Fixture *f, gconstpointer data)
{
  g_autoptr(GPtrArray) a = g_ptr_array_new ();
  g_autoptr(GPtrArray) b = g_ptr_array_new ();
  g_autofree gchar *ka = NULL, *ka2 = NULL, *kb = NULL, *kc = NULL, *kd = NULL;

  g_ptr_array_add (a, "e1000");
  g_ptr_array_add (b, "virtio_net");
  ka = shoal_agent_initramfs_cache_key ("abc", "6.1", "tree /a\n", a, SHOAL_AGENT_COMPRESSION_ZSTD);
  ka2 = shoal_agent_initramfs_cache_key ("abc", "6.1", "tree /a\n", a, SHOAL_AGENT_COMPRESSION_ZSTD);
  kb = shoal_agent_initramfs_cache_key ("abc", "6.1", "tree /a\n", b, SHOAL_AGENT_COMPRESSION_ZSTD);
  kc = shoal_agent_initramfs_cache_key ("abd", "6.1", "tree /a\n", a, SHOAL_AGENT_COMPRESSION_ZSTD);
  kd = shoal_agent_initramfs_cache_key ("abc", "6.1", "tree /b\n", a, SHOAL_AGENT_COMPRESSION_ZSTD);
  g_assert_cmpstr (ka, ==, ka2);
  g_assert_cmpstr (ka, !=, kb);
  g_assert_cmpstr (ka, !=, kc);
  g_assert_cmpstr (ka, !=, kd);
  g_assert_cmpuint (strlen (ka), ==, 64);
}

static ShoalAgentGenJob *
gen_job (Fixture *f, ShoalModIndex *index, const gchar *device, const gchar *modules)
{
  ShoalAgentGenJob *job = shoal_agent_gen_job_new ();

  job->state_dir = g_build_filename (f->tmp, "state", NULL);
  job->agent_binary = g_build_filename (f->tmp, "shoal-agent", NULL);
  job->release_dir = g_strdup (shoal_mod_index_get_dir (index));
  job->modules = g_strdup (modules);
  job->device_id = g_strdup (device);
  job->config_text = shoal_agent_gen_config ("http://10.0.0.1:8080", device, device, "img", "", "", "9.9.9-test", modules, 7);
  job->compression = SHOAL_AGENT_COMPRESSION_ZSTD;
  return job;
}

/* Identical hardware and recipe: one cached base part, two device parts */
static void
test_cache_reuse (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalModIndex) index = fake_index (f);
  g_autoptr(ShoalAgentGenJob) a = gen_job (f, index, "dev-a", "base helper nic_drv");
  g_autoptr(ShoalAgentGenJob) b = gen_job (f, index, "dev-b", "base helper nic_drv");
  g_autoptr(ShoalAgentGenJob) c = gen_job (f, index, "dev-c", "base");
  g_autoptr(ShoalAgentGenJob) bad = gen_job (f, index, "dev-d", "base no_such_module");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) conf = NULL;
  g_autofree gchar *text = NULL;

  if (!have_tools ())
    return;
  g_assert_true (shoal_agent_gen_run (a, &error));
  g_assert_no_error (error);
  g_assert_false (a->reused);
  g_assert_true (shoal_agent_gen_run (b, &error));
  g_assert_true (b->reused);
  g_assert_cmpstr (a->base_path, ==, b->base_path);
  g_assert_cmpstr (a->device_path, !=, b->device_path);
  g_assert_cmpstr (a->sha256, !=, b->sha256);
  g_assert_cmpuint (a->size, >, 0);
  g_assert_true (shoal_agent_gen_run (c, &error));
  g_assert_false (c->reused);
  g_assert_cmpstr (c->base_path, !=, a->base_path);
  g_assert_false (shoal_agent_gen_run (bad, &error));
  g_assert_error (error, SHOAL_ERROR, SHOAL_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no_such_module"));
  /* the device part is the device's configuration, listed by cpio */
  conf = cpio_list (a->device_path, "zstd");
  g_assert_true (has (conf, "etc/shoal/agent.conf"));
  text = shoal_agent_gen_config ("http://s", "t\nx=1", "d", NULL, NULL, NULL, "r", "m", 42);
  g_assert_nonnull (strstr (text, "token=t x=1\n"));
  g_assert_nonnull (strstr (text, "serial=42\n"));
}

/* A tree at @top/lib/modules/9.9.9-test whose one module holds @text */
static ShoalModIndex *
tree_index (Fixture *f, const gchar *top, const gchar *text)
{
  g_autofree gchar *rel = g_build_filename (f->tmp, top, "lib/modules/9.9.9-test", NULL);
  g_autoptr(GError) error = NULL;
  ShoalModIndex *index;

  write_file (rel, "modules.alias", "alias pci:v00001111d*sv*sd*bc*sc*i* nic_drv\n");
  write_file (rel, "modules.dep", "kernel/nic-drv.ko:\n");
  write_file (rel, "kernel/nic-drv.ko", text);
  index = shoal_mod_index_new (rel, &error);
  g_assert_no_error (error);
  return index;
}

/* The nic-drv.ko in the base part @job generated */
static gchar *
base_module (Fixture *f, ShoalAgentGenJob *job)
{
  g_autofree gchar *dest = g_build_filename (f->tmp, "root-XXXXXX", NULL);
  g_autofree gchar *path = NULL;
  g_autofree gchar *b = NULL;
  gchar *text = NULL;
  gsize blen = 0;
  char err[256];
  SaBuf cpio;

  g_assert_nonnull (g_mkdtemp (dest));
  g_assert_true (g_file_get_contents (job->base_path, &b, &blen, NULL));
  sa_buf_init (&cpio);
  g_assert_true (sa_decompress (b, blen, 1 << 26, &cpio, err, sizeof err));
  g_assert_cmpint (sa_newc_extract (cpio.data, cpio.len, dest, err, sizeof err), >, 1);
  sa_buf_clear (&cpio);
  path = g_build_filename (dest, "lib/modules/9.9.9-test/kernel/nic-drv.ko", NULL);
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  return text;
}

/* The cached base part is the one of the tree the job names, as it is
 * now: two trees of the same release name, or a module replaced in place,
 * give another base part */
static void
test_cache_tree (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalModIndex) ia = NULL;
  g_autoptr(ShoalModIndex) ib = NULL;
  g_autoptr(ShoalAgentGenJob) a = NULL, b = NULL, a2 = NULL, a3 = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree gchar *ta = NULL, *tb = NULL, *ta2 = NULL;

  write_file (f->tmp, "shoal-agent", "AGENT");
  ia = tree_index (f, "A", "NIC of A");
  ib = tree_index (f, "B", "NIC of B");
  a = gen_job (f, ia, "dev-a", "nic_drv");
  b = gen_job (f, ib, "dev-b", "nic_drv");
  g_assert_true (shoal_agent_gen_run (a, &error));
  g_assert_no_error (error);
  g_assert_true (shoal_agent_gen_run (b, &error));
  g_assert_no_error (error);
  g_assert_false (b->reused);
  g_assert_cmpstr (a->base_path, !=, b->base_path);
  ta = base_module (f, a);
  tb = base_module (f, b);
  g_assert_cmpstr (ta, ==, "NIC of A");
  g_assert_cmpstr (tb, ==, "NIC of B");

  /* A's module replaced in place (same size) */
  g_clear_pointer (&ia, shoal_mod_index_free);
  ia = tree_index (f, "A", "NIC of Z");
  a2 = gen_job (f, ia, "dev-a", "nic_drv");
  g_assert_true (shoal_agent_gen_run (a2, &error));
  g_assert_no_error (error);
  g_assert_false (a2->reused);
  ta2 = base_module (f, a2);
  g_assert_cmpstr (ta2, ==, "NIC of Z");
  /* unchanged: reused */
  a3 = gen_job (f, ia, "dev-a", "nic_drv");
  g_assert_true (shoal_agent_gen_run (a3, &error));
  g_assert_true (a3->reused);
  g_assert_cmpstr (a3->base_path, ==, a2->base_path);
}

static gpointer
gen_thread (gpointer data)
{
  ShoalAgentGenJob *job = data;
  g_autoptr(GError) error = NULL;
  gboolean ok = shoal_agent_gen_run (job, &error);

  g_assert_no_error (error);
  return GINT_TO_POINTER (ok);
}

static void
feed_fifo (const gchar *path, const gchar *text)
{
  int fd = open (path, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, text, strlen (text)), ==, (gssize) strlen (text));
  close (fd);
}

/* A base part that takes long to build (its agent binary is a FIFO the
 * test feeds) does not hold up the build of another base part */
static void
test_parallel_keys (Fixture *f, gconstpointer data)
{
  g_autoptr(ShoalModIndex) index = fake_index (f);
  g_autoptr(ShoalAgentGenJob) slow = gen_job (f, index, "dev-slow", "base helper nic_drv");
  g_autoptr(ShoalAgentGenJob) other = gen_job (f, index, "dev-other", "base");
  g_autofree gchar *fifo = g_build_filename (f->tmp, "agent-fifo", NULL);
  GThread *slow_thread, *other_thread;
  gint64 deadline;

  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  g_free (slow->agent_binary);
  slow->agent_binary = g_strdup (fifo);
  slow_thread = g_thread_new ("slow", gen_thread, slow);
  /* read once for its hash; then it waits, building, for the second read */
  feed_fifo (fifo, "SLOW AGENT");
  g_usleep (100000);
  other_thread = g_thread_new ("other", gen_thread, other);
  deadline = g_get_monotonic_time () + 10 * G_TIME_SPAN_SECOND;
  while (g_atomic_pointer_get (&other->sha256) == NULL && g_get_monotonic_time () < deadline)
    g_usleep (10000);
  g_assert_nonnull (other->sha256);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (other_thread)));
  g_assert_false (other->reused);
  feed_fifo (fifo, "SLOW AGENT");
  g_assert_true (GPOINTER_TO_INT (g_thread_join (slow_thread)));
  g_assert_false (slow->reused);
  g_assert_cmpstr (slow->base_path, !=, other->base_path);
}

static void
test_real_kernel (Fixture *f, gconstpointer data)
{
  const gchar *cache = g_getenv ("SHOAL_KERNEL_CACHE");
  g_autofree gchar *kernels = cache ? g_build_filename (cache, "kernel", NULL) : NULL;
  g_autofree gchar *current = kernels ? g_build_filename (kernels, "current", NULL) : NULL;
  g_autofree gchar *dir = current ? shoal_mod_index_find_release_dir (current, NULL, NULL) : NULL;
  g_autoptr(ShoalModIndex) index = NULL;
  g_autoptr(GPtrArray) e1000 = NULL;
  g_autoptr(GPtrArray) virtio = NULL;
  g_autoptr(GPtrArray) le = NULL;
  g_autoptr(GPtrArray) lv = NULL;
  g_autofree gchar *agent = g_build_filename (f->tmp, "shoal-agent", NULL);
  g_autofree gchar *pe = g_build_filename (f->tmp, "e.cpio.zst", NULL);
  g_autofree gchar *pv = g_build_filename (f->tmp, "v.cpio.zst", NULL);
  g_autoptr(GError) error = NULL;

  if (dir == NULL)
    {
      g_test_skip ("no kernel in the build cache: run scripts/fetch-kernel.sh (SHOAL_KERNEL_CACHE)");
      return;
    }
  if (!have_tools ())
    return;
  write_file (f->tmp, "shoal-agent", "fake");
  index = shoal_mod_index_new (dir, &error);
  g_assert_no_error (error);
  e1000 = resolve (index, "e1000", "ata_piix", "sd_mod", NULL);
  virtio = resolve (index, "virtio_pci", "virtio_net", "virtio_blk", NULL);
  g_assert_true (shoal_agent_initramfs_write_base (pe, agent, index, e1000, SHOAL_AGENT_COMPRESSION_ZSTD, &error));
  g_assert_true (shoal_agent_initramfs_write_base (pv, agent, index, virtio, SHOAL_AGENT_COMPRESSION_ZSTD, &error));
  g_assert_no_error (error);
  le = cpio_list (pe, "zstd");
  lv = cpio_list (pv, "zstd");
  g_assert_cmpuint (count_suffix (le, ".ko"), ==, e1000->len);
  g_assert_cmpuint (count_suffix (lv, ".ko"), ==, virtio->len);
  g_assert_cmpuint (count_suffix (le, "/e1000.ko"), ==, 1);
  g_assert_cmpuint (count_suffix (le, "/virtio_net.ko"), ==, 0);
  g_assert_cmpuint (count_suffix (lv, "/virtio_net.ko"), ==, 1);
  g_assert_cmpuint (count_suffix (lv, "/net_failover.ko"), ==, 1);
  g_assert_cmpuint (count_suffix (lv, "/e1000.ko"), ==, 0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/shoal/agent-gen/initramfs/fake-kernel", Fixture, NULL, fixture_set_up, test_fake_kernel, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/unpack-concatenated", Fixture, NULL, fixture_set_up, test_unpack_concatenated, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/compressed-modules", Fixture, NULL, fixture_set_up, test_compressed_modules, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/cache-key", Fixture, NULL, fixture_set_up, test_cache_key, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/cache-tree", Fixture, NULL, fixture_set_up, test_cache_tree, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/parallel-keys", Fixture, NULL, fixture_set_up, test_parallel_keys, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/cache-reuse", Fixture, NULL, fixture_set_up, test_cache_reuse, fixture_tear_down);
  g_test_add ("/shoal/agent-gen/initramfs/real-kernel", Fixture, NULL, fixture_set_up, test_real_kernel, fixture_tear_down);
  return g_test_run ();
}

#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-fleet-e2e.sh: the whole fleet end to end on QEMU virtual machines
# (issue 6). In a network namespace it creates (a bridge, one tap per VM;
# the root namespace is never touched) it runs the real shoald of the build
# tree with the pxe plugin (authoritative DHCP, TFTP, HTTP on the bridge),
# a git recipe repository made from data/recipes-e2e (two recipes, two
# images, so two multicast sessions) and an image store holding two small
# bootable disk images (tests/e2e/make-disk-image.sh). Then N VMs (TCG;
# BIOS through the iPXE ROMs of ipxe-qemu, UEFI through OVMF; e1000,
# virtio-net and rtl8139 NICs) go, on their own:
#
#   power on -> DHCP/PXE -> iPXE HTTP script -> agent loader -> inventory
#   -> driver selection -> generated agent -> rendezvous -> multicast image
#   -> disk written and verified -> reboot -> the boot service says
#   "boot local" -> the installed disk boots and prints its marker
#
# and the test checks every device's journal through shoalctl (D-Bus).
# A failure prints the VM's serial log and journal.
#
# Environment: SHOAL_BUILD_ROOT, SHOAL_SOURCE_ROOT, SHOAL_E2E_PLUGIN_DIR,
# SHOAL_KERNEL_CACHE (set by meson); SHOAL_E2E_VMS (1..6, default 6);
# SHOAL_E2E_KEEP=1 keeps the work folder; SHOAL_E2E_IMAGE_MIB (default 8)
# and SHOAL_E2E_RATE_MBIT (the recipes' multicast cap) for benchmarks;
# SHOAL_E2E_WATCH=1 prints `shoalctl watch` while the fleet runs (the demo);
# SHOAL_E2E_FIGURES=FILE appends one line of figures per VM and one for the
# fleet.
#
# Exit 0: passed; 77: skipped (reason printed); anything else: failed.
set -uo pipefail

src=${SHOAL_SOURCE_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SHOAL_BUILD_ROOT:-$src/build}
plugin_dir=${SHOAL_E2E_PLUGIN_DIR:-$build/plugins/reboot}
cache=${SHOAL_KERNEL_CACHE:-$src/.cache}
n_vms=${SHOAL_E2E_VMS:-6}
vm_timeout=${SHOAL_E2E_VM_TIMEOUT:-540}
fleet_timeout=${SHOAL_E2E_TIMEOUT:-600}
image_mib=${SHOAL_E2E_IMAGE_MIB:-8}
boot_timeout=${SHOAL_E2E_BOOT_TIMEOUT:-180}   # installed -> installed system's marker
here=$(cd "$(dirname "$0")" && pwd)

say () { printf '# %s\n' "$*"; }
skip () { echo "SKIP: $*"; exit 77; }

# --- what is needed -----------------------------------------------------------

[ "$(id -u)" = 0 ] || skip "needs root (network namespace, tap devices)"
for tool in ip qemu-system-x86_64 busybox dnsmasq dbus-daemon git cpio gzip depmod as ld mformat mcopy openssl sha256sum sgdisk; do
  command -v "$tool" > /dev/null || skip "$tool is not installed (scripts/install-deps.sh)"
done
[ -e /dev/net/tun ] || skip "no /dev/net/tun"
for rom in efi-e1000.rom efi-virtio.rom efi-rtl8139.rom; do
  [ -f "/usr/lib/ipxe/qemu/$rom" ] || skip "ipxe-qemu's $rom is missing"
done
ovmf_code=/usr/share/OVMF/OVMF_CODE_4M.fd
ovmf_vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$ovmf_code" ] && [ -f "$ovmf_vars" ] || skip "OVMF (package ovmf) is missing"
shoald=$build/core/daemon/shoald
shoalctl=$build/core/ctl/shoalctl
shoal_image=$build/plugins/image-store/shoal-image
loader=$build/agent/shoal-agent-loader
agent=$build/agent/shoal-agent
for f in "$shoald" "$shoalctl"; do [ -x "$f" ] || skip "$f is not built"; done
[ -x "$shoal_image" ] || skip "the image-store plugin is not built ($shoal_image)"
[ -x "$loader" ] && [ -x "$agent" ] || skip "the static agent programs are not built (target_programs disabled or sanitized build)"
for p in pxe/pxe.plugin inventory/inventory.plugin drivers/drivers.plugin agent/agent.plugin \
         multicast/multicast.plugin unicast/unicast.plugin image-store/image-store.plugin; do
  [ -f "$build/plugins/$p" ] || skip "plugin ${p%%/*} is not built"
done
[ -f "$plugin_dir/reboot.plugin" ] || skip "the reboot step is not built ($plugin_dir)"
kernel=$cache/kernel/current
[ -f "$kernel/vmlinuz" ] && [ -f "$kernel/version" ] || skip "no kernel in $cache: run scripts/fetch-kernel.sh"
release=$(cat "$kernel/version")
[ "$n_vms" -ge 1 ] && [ "$n_vms" -le 6 ] || { echo "SHOAL_E2E_VMS must be 1..6" >&2; exit 2; }

# --- the fleet ------------------------------------------------------------------
# name  recipe  firmware  nic  disk interface  old OS on the disk (no, yes:
# MBR; gpt: a GPT fitted to the disk, its backup at the disk's last LBA,
# which the MBR image a does not overwrite: the agent clears it)
fleet=(
  "a1 a bios e1000 virtio no"
  "b1 b bios rtl8139 virtio yes"
  "a2 a uefi virtio-net-pci ahci no"
  "b2 b uefi e1000 ahci no"
  "a3 a bios virtio-net-pci ide gpt"
  "b3 b uefi rtl8139 ahci no"
)

work=$(mktemp -d /tmp/shoal-fleet-e2e.XXXXXX)
ns=shfleet$$
pids=()
vm_pids=()
failed=0
cleanup () {
  for p in "${vm_pids[@]}" "${pids[@]}"; do
    [ -n "$p" ] && kill "$p" 2> /dev/null
  done
  for p in "${vm_pids[@]}" "${pids[@]}"; do
    [ -n "$p" ] && wait "$p" 2> /dev/null
  done
  ip netns del "$ns" 2> /dev/null
  if [ -z "${SHOAL_E2E_KEEP:-}" ]; then rm -rf "$work"; else say "kept $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail () { echo "FAIL: $*"; failed=1; }
now () { date +%s.%N; }
elapsed () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# --- images, recipes, boot files ------------------------------------------------

say "building the disk images and the agent loader initramfs"
mkdir -p "$work/boot" "$work/state" "$work/images"
# image a has an MBR; image b a GPT, which the agents move to the end of
# their larger disks (its backup is in the image's last sectors)
for x in a b; do
  table=mbr; [ "$x" = b ] && table=gpt
  "$here/make-disk-image.sh" "$work/e2e-$x.img" "SHOAL-E2E-INSTALLED image e2e-$x" "$image_mib" "e2e-$x" "$table" ||
    exit $?
  "$shoal_image" --store "$work/images" import --name "e2e-$x" "$work/e2e-$x.img" > "$work/import-$x.log" 2>&1 || {
    cat "$work/import-$x.log"; echo "FAIL: import of e2e-$x"; exit 1; }
  sha256sum "$work/e2e-$x.img" | cut -d' ' -f1 > "$work/e2e-$x.sha256"
done
"$here/make-disk-image.sh" "$work/old-os.img" "SHOAL-E2E-OLD-OS still here" 4 old || exit $?
"$here/make-disk-image.sh" "$work/old-os-gpt.img" "SHOAL-E2E-OLD-OS still here" 4 old gpt || exit $?
cp "$kernel/vmlinuz" "$work/boot/vmlinuz"
"$src/agent/initramfs/build-loader-initramfs.sh" "$work/boot/shoal-loader.img" "$loader" \
  "$kernel/modules/lib/modules/$release" > "$work/initramfs.log" 2>&1 || {
  cat "$work/initramfs.log"; echo "FAIL: the loader initramfs"; exit 1; }

mkdir -p "$work/recipes.git/recipes"
cp "$src"/data/recipes-e2e/*.json "$work/recipes.git/recipes/"
if [ -n "${SHOAL_E2E_RATE_MBIT:-}" ]; then   # benchmarks: another multicast rate cap
  sed -i "s/\"rate-mbit\": [0-9]*/\"rate-mbit\": $SHOAL_E2E_RATE_MBIT/" "$work"/recipes.git/recipes/*.json
fi
git -C "$work/recipes.git" init -q -b main .
git -C "$work/recipes.git" add recipes
git -C "$work/recipes.git" -c user.name="shoal e2e" -c user.email="e2e@example.invalid" commit -q -m "e2e recipes"
commit=$(git -C "$work/recipes.git" rev-parse HEAD)

# --- the network ------------------------------------------------------------------

subnet=10.$((100 + $$ % 100)).$(($$ / 100 % 250))
server=$subnet.1
ip netns add "$ns" || exit 1
ip -n "$ns" link set lo up
ip -n "$ns" link add br0 type bridge
ip -n "$ns" link set br0 type bridge forward_delay 0 2> /dev/null
ip -n "$ns" addr add "$server/24" dev br0
ip -n "$ns" -6 addr add fd77::1/64 dev br0 nodad
ip -n "$ns" link set br0 up
for i in $(seq 0 $((n_vms - 1))); do
  ip -n "$ns" tuntap add dev "tap$i" mode tap
  ip -n "$ns" link set "tap$i" master br0 up
done
# router advertisements only, so iPXE's IPv6 autoconfiguration ends at once
ip netns exec "$ns" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=br0 \
  --bind-interfaces --enable-ra --dhcp-range=::,constructor:br0,ra-only --pid-file= \
  > "$work/radvd.log" 2>&1 &
pids+=($!)

# --- D-Bus and shoald ----------------------------------------------------------------

bus=unix:path=$work/bus
dbus-daemon --session --nofork --nopidfile --address="$bus" > "$work/dbus.log" 2>&1 &
pids+=($!)
cat > "$work/shoald.conf" <<CONF
[daemon]
http-address=$server
http-port=8070
[recipes]
url=$work/recipes.git
ref=main
[pxe]
mode=authoritative
interface=br0
address=$server
range-start=$subnet.100
range-end=$subnet.199
router=$server
boot-files=$work/boot
[drivers]
kernel=$kernel
[multicast]
interface=br0
[image-store]
path=$work/images
CONF
for _ in $(seq 1 50); do [ -S "$work/bus" ] && break; sleep 0.1; done
ip netns exec "$ns" env SHOAL_UNINSTALLED=1 SHOAL_NO_SYSTEM_PLUGINS=1 SHOAL_SCHEMA_DIR="$src/schemas" \
  GI_TYPELIB_PATH="$build/core" G_MESSAGES_DEBUG="${SHOAL_E2E_DEBUG:-}" \
  "$shoald" --address "$bus" --state-dir "$work/state" --config "$work/shoald.conf" \
  --plugin-dir "$plugin_dir" --verbose > "$work/shoald.log" 2>&1 &
shoald_pid=$!
pids+=($shoald_pid)
ctl () { "$shoalctl" --address "$bus" "$@"; }
for _ in $(seq 1 100); do ctl stats > /dev/null 2>&1 && break; sleep 0.1; done
if ! ctl stats > /dev/null 2>&1; then
  cat "$work/shoald.log"; echo "FAIL: shoald did not come up"; exit 1
fi
say "shoald is up; recipes:"
ctl recipes | sed 's/^/#   /'
ctl plugins > "$work/plugins.txt" 2>&1
for step in pxe-boot inventory drivers agent multicast reboot; do
  grep -qw -- "$step" "$work/plugins.txt" || { cat "$work/plugins.txt" "$work/shoald.log"; echo "FAIL: no plugin provides step $step"; exit 1; }
done

# --- the virtual machines -------------------------------------------------------------

mac_of () { printf '52:54:00:e2:0%s:0%s' "${1:0:1}" "${1:1:1}"; }
id_of () { mac_of "$1" | tr : -; }

start_vm () {
  local i=$1 name recipe fw nic dif old
  read -r name recipe fw nic dif old <<< "${fleet[$i]}"
  local mac; mac=$(mac_of "$name")
  local disk=$work/vm-$name.disk
  truncate -s $((image_mib < 24 ? 32 : image_mib + 8))M "$disk"
  [ "$old" = yes ] && dd if="$work/old-os.img" of="$disk" conv=notrunc status=none
  if [ "$old" = gpt ]; then
    dd if="$work/old-os-gpt.img" of="$disk" conv=notrunc status=none
    sgdisk -e "$disk" > /dev/null
  fi
  local args=(-machine pc,accel=tcg -m 256 -smp 1 -display none -monitor none
              -serial "file:$work/vm-$name.serial" -uuid "e2e0000$i-0000-4000-8000-00000000e2e0"
              -device isa-debug-exit,iobase=0xf4,iosize=0x04
              -netdev "tap,id=n0,ifname=tap$i,script=no,downscript=no")
  if [ "$fw" = uefi ]; then
    cp "$ovmf_vars" "$work/vm-$name.vars"
    # OVMF's own PXE and HTTP boot options (IPv4 and IPv6) would run after
    # iPXE exits to the firmware ("boot local") and before the disk; PXEv6
    # alone waits ~60 s for DHCPv6. A real machine's boot order lists the
    # NIC, then the disk: these fw_cfg knobs turn OVMF's own network stack
    # off (iPXE, from the NIC's option ROM, has its own).
    args+=(-drive "if=pflash,format=raw,readonly=on,file=$ovmf_code"
           -drive "if=pflash,format=raw,file=$work/vm-$name.vars"
           -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n
           -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n
           -fw_cfg name=opt/org.tianocore/IPv4Support,string=n
           -fw_cfg name=opt/org.tianocore/IPv6Support,string=n
           -device "$nic,netdev=n0,mac=$mac,bootindex=1")
  else
    args+=(-boot n -device "$nic,netdev=n0,mac=$mac")
  fi
  case $dif in
    ahci) args+=(-device ahci,id=ahci -drive "id=d0,if=none,file=$disk,format=raw"
                 -device "ide-hd,drive=d0,bus=ahci.0,bootindex=2") ;;
    *) args+=(-drive "file=$disk,if=$dif,format=raw") ;;
  esac
  ip netns exec "$ns" timeout -s KILL "$vm_timeout" qemu-system-x86_64 "${args[@]}" \
    > "$work/vm-$name.qemu" 2>&1 &
  vm_pids[$i]=$!
  vm_start[$i]=$(now)
}

dump_vm () {
  local name=$1
  echo "----- serial log of vm-$name ($(id_of "$name")) -----"
  sed 's/\x1b\[[0-9;=?]*[A-Za-z]//g' "$work/vm-$name.serial" 2> /dev/null | tr -d '\r' | tail -n 80
  echo "----- qemu of vm-$name -----"
  cat "$work/vm-$name.qemu" 2> /dev/null
  echo "----- journal of $(id_of "$name") -----"
  ctl log "$(id_of "$name")" 2>&1 | tail -n 60
}

watch_pid=
if [ -n "${SHOAL_E2E_WATCH:-}" ]; then
  ctl watch &
  watch_pid=$!
  pids+=($watch_pid)
fi

say "starting $n_vms VMs"
declare -a vm_start vm_done vm_rc vm_installed
fleet_start=$(now)
for i in $(seq 0 $((n_vms - 1))); do
  start_vm "$i"
done

# every VM ends by itself: the installed system prints its marker and leaves
# through isa-debug-exit (qemu exit status 33); anything else is a failure
deadline=$(($(date +%s) + fleet_timeout))
left=$n_vms
tick=0
while [ "$left" -gt 0 ] && [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 1
  tick=$((tick + 1))
  # a deployment that failed ends its VM at once (every 3 s)
  [ $((tick % 3)) = 0 ] && ctl devices > "$work/devices-now.txt" 2> /dev/null
  for i in $(seq 0 $((n_vms - 1))); do
    [ -n "${vm_done[$i]:-}" ] && continue
    read -r name recipe _ <<< "${fleet[$i]}"
    if [ -z "${vm_installed[$i]:-}" ] && grep -qE "^$(id_of "$name") +installed " "$work/devices-now.txt" 2> /dev/null; then
      vm_installed[$i]=$(date +%s)
    fi
    if grep -qE "^$(id_of "$name") +(failed|cancelled) " "$work/devices-now.txt" 2> /dev/null; then
      kill "${vm_pids[$i]}" 2> /dev/null
      wait "${vm_pids[$i]}"; vm_rc[$i]=$?
      vm_done[$i]=failed
      left=$((left - 1))
      fail "vm-$name: its deployment failed ($(grep "^$(id_of "$name") " "$work/devices-now.txt" | tr -s ' '))"
      dump_vm "$name"
    elif [ -n "${vm_installed[$i]:-}" ] && [ $(($(date +%s) - ${vm_installed[$i]})) -gt "$boot_timeout" ]; then
      kill "${vm_pids[$i]}" 2> /dev/null
      wait "${vm_pids[$i]}"; vm_rc[$i]=$?
      vm_done[$i]=failed
      left=$((left - 1))
      fail "vm-$name: installed, but its installed system did not boot within $boot_timeout s"
      dump_vm "$name"
    elif grep -qa "SHOAL-E2E-INSTALLED image e2e-$recipe" "$work/vm-$name.serial" 2> /dev/null; then
      vm_done[$i]=$(now)
      left=$((left - 1))
      say "vm-$name: installed system booted after $(elapsed "${vm_start[$i]}" "${vm_done[$i]}") s"
    elif ! kill -0 "${vm_pids[$i]}" 2> /dev/null; then
      wait "${vm_pids[$i]}"; vm_rc[$i]=$?
      vm_done[$i]=failed
      left=$((left - 1))
      fail "vm-$name stopped (status ${vm_rc[$i]}) without booting its installed system"
      dump_vm "$name"
    fi
  done
done
fleet_end=$(now)
[ -n "$watch_pid" ] && kill "$watch_pid" 2> /dev/null
for i in $(seq 0 $((n_vms - 1))); do
  [ -z "${vm_done[$i]:-}" ] && { read -r name _ <<< "${fleet[$i]}"; fail "vm-$name did not finish within ${fleet_timeout} s"; }
done
# the VMs left through isa-debug-exit (33) once their marker was out
for i in $(seq 0 $((n_vms - 1))); do
  [ "${vm_done[$i]}" = failed ] && continue
  for _ in $(seq 1 50); do kill -0 "${vm_pids[$i]}" 2> /dev/null || break; sleep 0.1; done
  kill "${vm_pids[$i]}" 2> /dev/null
  wait "${vm_pids[$i]}"; vm_rc[$i]=$?
done
say "fleet of $n_vms: $(elapsed "$fleet_start" "$fleet_end") s from the first power-on to the last installed boot"

# --- what shoald says -----------------------------------------------------------------

say "shoalctl devices:"
ctl devices | tee "$work/devices.txt" | sed 's/^/#   /'
check_journal () {
  local i=$1 name recipe fw nic dif old
  read -r name recipe fw nic dif old <<< "${fleet[$i]}"
  local id; id=$(id_of "$name")
  local j=$work/journal-$name.txt
  ctl log "$id" > "$j" 2>&1
  local ok=1 want
  # every step, in the journal with its time (shoalctl prints one line per entry)
  for want in "pxe.*dhcp" "pxe.*http" "pxe-boot" "inventory" "drivers" "agent running" \
              "rendezvous" "multicast-member" "multicast-receive" "multicast-session" "image-written" \
              "reboot" "installed"; do
    grep -qiE -- "$want" "$j" || { fail "$id: no journal entry matching '$want'"; ok=0; }
  done
  grep -q -- "$commit" "$j" || { fail "$id: the recipe commit $commit is not in the journal"; ok=0; }
  grep -qi -- "e2e-$recipe" "$j" || { fail "$id: recipe e2e-$recipe not in the journal"; ok=0; }
  local sha; sha=$(cat "$work/e2e-$recipe.sha256")
  grep -q -- "image sha256 $sha" "$j" || { fail "$id: the image checksum $sha is not in the journal"; ok=0; }
  case $nic in
    e1000) want=e1000 ;; rtl8139) want=8139cp ;; *) want=virtio_net ;;
  esac
  grep -qE -- "(picked|modules|drivers).*$want" "$j" || { fail "$id: driver $want not in the journal"; ok=0; }
  grep -q "^$id .*installed\|$id.*installed" "$work/devices.txt" || { fail "$id: not installed in shoalctl devices"; ok=0; }
  local serial=$work/vm-$name.serial
  # after the reboot the network boot service answered "boot the local disk":
  # its DHCP answer (action local) and, unless iPXE lost that answer (seen
  # under heavy load: it then exits to the firmware, which boots the disk
  # too), the iPXE script that boots the local disk
  local after; after=$(sed -n '/ controller  *installed /,$p' "$j")
  grep -qE " pxe +dhcp " <<< "$after" ||
    { fail "$id: no DHCP answer from the network boot service after the installation"; ok=0; }
  grep -q "script served (local)" <<< "$after" ||
    say "warning: $id: iPXE did not fetch its 'local' script (it booted the disk through the firmware)"
  # the disk holds exactly the image (checked on the host, after the VM ended)
  local size; size=$(stat -c %s "$work/e2e-$recipe.img")
  local disk=$work/vm-$name.disk
  if [ "$recipe" = b ]; then
    # a GPT image: the agent moved its backup to the disk's end. The same
    # boot code, then the same bytes from LBA 2 to the image's last sector
    # (the old backup header, cleared); a table sgdisk finds whole
    local same=1
    cmp -s -n 440 "$work/e2e-$recipe.img" "$disk" || same=0
    cmp -s -n $((size - 1536)) -i 1024 "$work/e2e-$recipe.img" "$disk" || same=0
    [ "$same" = 1 ] || { fail "vm-$name: the disk does not hold image e2e-$recipe"; ok=0; }
    grep -q "GPT backup moved from LBA $((size / 512 - 1)) to the disk's last LBA $(( $(stat -c %s "$disk") / 512 - 1))" "$j" ||
      { fail "$id: the journal does not say that the GPT's backup was moved"; ok=0; }
    sgdisk -v "$disk" | grep -q "No problems found" ||
      { sgdisk -v "$disk"; fail "vm-$name: sgdisk finds problems in the partition table"; ok=0; }
  else
    local got; got=$(head -c "$size" "$disk" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { fail "vm-$name: the disk does not hold image e2e-$recipe (sha256 $got)"; ok=0; }
  fi
  if [ "$old" = gpt ]; then
    # the earlier system's backup GPT at the disk's end: cleared with the
    # disk's last MiB
    local last=$(( $(stat -c %s "$disk") / 512 - 1 ))
    grep -q "the disk's last 1048576 bytes zeroed .*an earlier system's GPT backup header at the last LBA $last" "$j" ||
      { fail "$id: the journal does not say that the earlier system's backup GPT was cleared"; ok=0; }
    tail -c 512 "$disk" | grep -qa "EFI PART" && { fail "vm-$name: a GPT backup header is left at the disk's end"; ok=0; }
  fi
  if [ "$old" != no ] && grep -qa "SHOAL-E2E-OLD-OS" "$serial"; then
    fail "vm-$name: the old system booted"; ok=0
  fi
  [ "${vm_rc[$i]:-}" = 33 ] || { fail "vm-$name: qemu status ${vm_rc[$i]:-none}, not 33 (isa-debug-exit of the installed system)"; ok=0; }
  [ "$ok" = 1 ] || dump_vm "$name"
  return 0
}
for i in $(seq 0 $((n_vms - 1))); do
  check_journal "$i"
done

# two recipes -> two multicast sessions
sessions=$(cat "$work"/journal-*.txt 2> /dev/null | grep -o 'multicast session [0-9]*' | sort -u | wc -l)
if [ "$n_vms" -ge 2 ] && [ "$sessions" -lt 2 ]; then
  fail "expected two multicast sessions, saw $sessions"
fi

# --- figures --------------------------------------------------------------------------
figures=$work/figures.txt
# seconds from the VM's power-on to the first journal entry matching $2
jt () {
  local t; t=$(grep -m1 -E -- "$2" "$3" | awk '{print $1" "$2}')
  [ -n "$t" ] || { echo "-"; return; }
  elapsed "$1" "$(date -d "$t" +%s.%N)"
}
for i in $(seq 0 $((n_vms - 1))); do
  read -r name recipe fw nic dif old <<< "${fleet[$i]}"
  [ "${vm_done[$i]}" = failed ] && continue
  j=$work/journal-$name.txt
  t0=${vm_start[$i]}
  mc=$(grep -o 'Session [0-9]*: [0-9.]* s' "$j" | head -n1 | awk '{print $3}')
  printf 'vms=%s vm=%s fw=%s nic=%s disk=%s recipe=e2e-%s dhcp=%s loader=%s inventory=%s agent_running=%s group=%s image_written=%s reboot=%s installed_boot=%s multicast_session_s=%s\n' \
    "$n_vms" "$name" "$fw" "$nic" "$dif" "$recipe" \
    "$(jt "$t0" "pxe +dhcp" "$j")" "$(jt "$t0" "pxe-boot +step-finished" "$j")" \
    "$(jt "$t0" "inventory +step-finished" "$j")" "$(jt "$t0" "agent +step-finished" "$j")" \
    "$(jt "$t0" "multicast-member" "$j")" "$(jt "$t0" "reboot +image-written" "$j")" \
    "$(jt "$t0" "reboot +reboot " "$j")" "$(elapsed "$t0" "${vm_done[$i]}")" "${mc:-?}" >> "$figures"
done
printf 'vms=%s fleet_s=%s sessions=%s image_mib=%s\n' "$n_vms" "$(elapsed "$fleet_start" "$fleet_end")" "$sessions" "$image_mib" >> "$figures"
sed 's/^/# /' "$figures"
if [ -n "${SHOAL_E2E_SHOW_LOG:-}" ]; then
  say "journal of $(id_of "${fleet[0]%% *}") (shoalctl log):"
  sed 's/^/#   /' "$work/journal-${fleet[0]%% *}.txt"
fi
[ -n "${SHOAL_E2E_FIGURES:-}" ] && cat "$figures" >> "$SHOAL_E2E_FIGURES"

if [ "$failed" != 0 ]; then
  echo "----- shoald log (tail) -----"
  tail -n 80 "$work/shoald.log"
  exit 1
fi
say "PASS: $n_vms VMs installed and booted their new disks"
exit 0

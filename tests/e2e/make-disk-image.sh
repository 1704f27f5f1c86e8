#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# make-disk-image.sh OUT MARKER [SIZE_MIB] [SEED] [mbr|gpt]
#
# Builds a small bootable raw disk image for the QEMU end-to-end test:
#   - sector 0: an MBR whose boot code (BIOS) prints "MARKER" on COM1 and
#     ends the VM through QEMU's isa-debug-exit port (0xf4);
#   - partition 1 (type 0xef, from 1 MiB): an EFI system partition (FAT)
#     holding \EFI\BOOT\BOOTX64.EFI, a UEFI application that prints the same
#     marker through ConOut and COM1 and ends the VM the same way, and a file
#     of SEED-derived pseudo-random data (the "operating system" payload, so
#     the image has real content to transfer).
# With "gpt" (default "mbr"), the partition table is a GPT (sgdisk) whose
# protective MBR holds the same boot code, and the ESP ends 1 MiB before
# the image does (the backup GPT is in its last 33 sectors), as cloud
# images are made.
# Needs binutils (as, ld with the i386pep emulation), mtools (mformat, mmd,
# mcopy) and dd. Nothing is installed on the host.
set -euo pipefail

out=$1
marker=$2
size_mib=${3:-8}
seed=${4:-$marker}
table=${5:-mbr}
case $table in
  mbr|gpt) ;;
  *) echo "make-disk-image: the table is mbr or gpt, not $table" >&2; exit 2 ;;
esac
tmp=$(mktemp -d /tmp/shoal-disk.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

for tool in as ld mformat mmd mcopy dd; do
  command -v "$tool" > /dev/null || { echo "make-disk-image: $tool is missing" >&2; exit 77; }
done

line="$marker"$'\r\n'
bytes=$(printf '%s' "$line" | od -An -tu1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/ /, /g')

# BIOS: 16-bit boot sector loaded at 0:7c00
cat > "$tmp/mbr.S" <<ASM
	.code16
	.text
	.globl _start
_start:
	cli
	xorw %ax, %ax
	movw %ax, %ds
	movw %ax, %ss
	movw \$0x7c00, %sp
	movw \$msg, %si
	movw \$msg_end - msg, %cx
1:	lodsb
	movw \$0x3f8, %dx
	outb %al, %dx
	loop 1b
	movw \$0xf4, %dx
	movb \$0x10, %al
	outb %al, %dx
2:	hlt
	jmp 2b
msg:	.byte $bytes
msg_end:
ASM
as --32 -o "$tmp/mbr.o" "$tmp/mbr.S"
ld -m elf_i386 -Ttext 0x7c00 --oformat binary -e _start -o "$tmp/mbr.bin" "$tmp/mbr.o"
if [ "$(stat -c %s "$tmp/mbr.bin")" -gt 440 ]; then
  echo "make-disk-image: marker too long for the boot sector" >&2
  exit 1
fi

# UEFI: a PE32+ application, efi_main(ImageHandle, SystemTable) (MS x64 ABI)
utf16=$(printf '%s' "$line" | od -An -tu1 | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/ /, /g')
cat > "$tmp/efi.S" <<ASM
	.text
	.globl efi_main
efi_main:
	subq \$40, %rsp
	movq 64(%rdx), %rcx          /* SystemTable->ConOut */
	leaq wmsg(%rip), %rdx
	callq *8(%rcx)               /* ConOut->OutputString (ConOut, wmsg) */
	leaq msg(%rip), %rsi
	movq \$msg_end - msg, %rcx
1:	lodsb
	movw \$0x3f8, %dx
	outb %al, %dx
	loop 1b
	movw \$0xf4, %dx
	movb \$0x10, %al
	outb %al, %dx
2:	hlt
	jmp 2b
	.data
msg:	.byte $bytes
msg_end:
	.balign 2
wmsg:	.short $utf16, 0
ASM
as --64 -o "$tmp/efi.o" "$tmp/efi.S"
ld -m i386pep --subsystem 10 -e efi_main --image-base 0x10000000 -o "$tmp/BOOTX64.EFI" "$tmp/efi.o"

# The EFI system partition: FAT from 1 MiB to the end
part_mib=$((size_mib - 1))
[ "$table" = gpt ] && part_mib=$((size_mib - 2))
payload_kib=$((part_mib * 1024 / 2))
dd if=/dev/zero of="$tmp/esp.img" bs=1M count="$part_mib" status=none
mformat -i "$tmp/esp.img" -v SHOALESP ::
mmd -i "$tmp/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$tmp/esp.img" "$tmp/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
# deterministic pseudo-random payload derived from the seed
{ openssl enc -aes-128-ctr -pass "pass:$seed" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null || true; } \
  | head -c $((payload_kib * 1024)) > "$tmp/payload.bin"
mcopy -i "$tmp/esp.img" "$tmp/payload.bin" ::/payload.bin
printf '%s\n' "$marker" > "$tmp/marker.txt"
mcopy -i "$tmp/esp.img" "$tmp/marker.txt" ::/marker.txt

dd if=/dev/zero of="$tmp/disk.img" bs=1M count="$size_mib" status=none
if [ "$table" = gpt ]; then
  # The disk: a GPT with the ESP from 1 MiB (type EF00), its protective MBR
  # given the boot code (bytes 0-439: the table after them is kept)
  command -v sgdisk > /dev/null || { echo "make-disk-image: sgdisk (gdisk) is missing" >&2; exit 77; }
  sgdisk -n "1:2048:+${part_mib}M" -t 1:ef00 -c 1:ESP "$tmp/disk.img" > /dev/null
  dd if="$tmp/mbr.bin" of="$tmp/disk.img" conv=notrunc status=none
  dd if="$tmp/esp.img" of="$tmp/disk.img" bs=1M seek=1 conv=notrunc status=none
  mv "$tmp/disk.img" "$out"
  exit 0
fi
# The disk: MBR (boot code, one partition of type 0xef, 0x55aa) + the ESP
dd if="$tmp/mbr.bin" of="$tmp/disk.img" conv=notrunc status=none
le32 () { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
start=2048
count=$((part_mib * 2048))
# status 0x80 (active), CHS fields unused (0xfe 0xff 0xff), type 0xef
entry="\\x80\\xfe\\xff\\xff\\xef\\xfe\\xff\\xff$(le32 $start)$(le32 $count)"
printf "$entry" | dd of="$tmp/disk.img" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$tmp/disk.img" bs=1 seek=510 conv=notrunc status=none
dd if="$tmp/esp.img" of="$tmp/disk.img" bs=1M seek=1 conv=notrunc status=none
mv "$tmp/disk.img" "$out"

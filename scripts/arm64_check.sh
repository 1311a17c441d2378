#!/usr/bin/env bash
# The device wheel on the current Raspberry Pi OS's base (Debian 13, Python 3.13, arm64) under emulation,
# against this x86-64 machine: not part of the test command. Needs root (debootstrap, mounts, binfmt_misc),
# Debian's qemu-user-static and debootstrap (installed here if missing), the package registries, and about
# 30 minutes.
#
#   sudo bash scripts/arm64_check.sh [SUITE]     # SUITE: trixie (default; Debian 13) or bookworm (Debian 12)
#
# It builds a minimal Debian arm64 root filesystem, installs the wheel built from this checkout with
# [litert,video] into a venv there, runs the device commands (doctor, inspect, predict on the example int8 and
# float models, raw outputs, profile) as a Raspberry Pi 5 CPU (qemu's Cortex-A76: its default CPU model is no
# Pi, and gave the int8 digits model a wrong answer) with an aarch64 /proc/cpuinfo (the host's x86 one shown
# through crashes the interpreter at load), runs the same commands in .venv-runtime here, and compares them:
# int8 scores identical, float ones within 1e-5. The report goes to docs/benchmarks/arm64_SUITE.json (shown on
# the Raspberry Pi page); its work in WORK (default /var/tmp/edgelite-arm64-SUITE). What it mounts and registers
# it undoes on exit; the root filesystem is kept for the next run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${1:-trixie}"
WORK="${WORK:-/var/tmp/edgelite-arm64-$SUITE}"
FS="$WORK/rootfs"
MIRROR="${EDGELITE_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit} /^deb / {print $2; exit}' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)}"
BINFMT=/proc/sys/fs/binfmt_misc
log() { printf '[arm64] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, mounts, binfmt_misc)"; exit 2; }
[ -n "$MIRROR" ] || { log "no Debian mirror found in /etc/apt; set EDGELITE_DEBIAN_MIRROR"; exit 2; }
mkdir -p "$WORK"

if ! command -v debootstrap >/dev/null || [ ! -x /usr/bin/qemu-aarch64-static ]; then
    log "installing qemu-user-static and debootstrap from Debian's archive"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        qemu-user-static debootstrap >/dev/null
fi

mounted=() registered=0
cleanup() {
    local i
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
    if [ "$registered" = 1 ]; then echo -1 > "$BINFMT/qemu-aarch64" || true; fi
}
trap cleanup EXIT

# arm64 binaries run through qemu by the kernel's binfmt_misc ('F': the interpreter is opened now, so it works
# inside the chroot); an entry the system already has is used as it is.
if [ ! -e "$BINFMT/register" ]; then mount -t binfmt_misc binfmt_misc "$BINFMT"; mounted+=("$BINFMT"); fi
if [ ! -e "$BINFMT/qemu-aarch64" ]; then
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
        > "$BINFMT/register"
    registered=1
fi

if [ ! -f "$FS/.complete" ]; then
    log "building a Debian $SUITE arm64 root filesystem in $FS (the slow part: its second stage runs emulated)"
    rm -rf "$FS"
    debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,ca-certificates \
        "$SUITE" "$FS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || { tail -20 "$WORK/debootstrap.log"; exit 1; }
    touch "$FS/.complete"
fi

# A Raspberry Pi 5's /proc/cpuinfo (four Cortex-A76 cores), over the chroot's /proc.
cat > "$WORK/cpuinfo" <<'EOF'
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

EOF
mount -t proc proc "$FS/proc"; mounted+=("$FS/proc")
mount --bind "$WORK/cpuinfo" "$FS/proc/cpuinfo"; mounted+=("$FS/proc/cpuinfo")
mount --bind /dev "$FS/dev"; mounted+=("$FS/dev")
cp /etc/resolv.conf "$FS/etc/resolv.conf"
# The host's CA bundle, so pip in the chroot trusts what the host trusts (a proxy's own CA included).
CA="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
cp "$CA" "$FS/etc/ssl/certs/edgelite-host-ca.crt"

log "building the wheel and the inputs"
rm -rf "$WORK/inputs" && mkdir -p "$WORK/inputs"
"$ROOT/.venv/bin/python" -m pip wheel -q --no-deps --no-build-isolation "$ROOT" -w "$WORK/inputs" >/dev/null
cp "$ROOT"/examples/models/digits_int8.tflite "$ROOT"/examples/models/digits_float.tflite "$WORK/inputs/"
cp -r "$ROOT/examples/images" "$WORK/inputs/images"
rm -rf "$FS/edgelite" && cp -r "$WORK/inputs" "$FS/edgelite"
wheel="$(basename "$(ls "$WORK"/inputs/edgelite-*.whl)")"

commands() {  # the device commands, each one's JSON to $1/NAME.json
    local edgelite="$1" out="$2" dir="$3"
    mkdir -p "$out"
    "$edgelite" doctor --json > "$out/doctor.json"
    "$edgelite" inspect "$dir/digits_int8.tflite" --json > "$out/inspect.json"
    for m in int8 float; do
        "$edgelite" predict "$dir/digits_$m.tflite" "$dir/images" --top-k 3 --json > "$out/predict_$m.json"
        "$edgelite" predict "$dir/digits_$m.tflite" "$dir/images" --task raw --json > "$out/raw_$m.json"
    done
    "$edgelite" profile "$dir/digits_int8.tflite" --runs 20 --threads 1 --json > "$out/profile.json"
}

log "installing the wheel with [litert,video] in the arm64 root (emulated; minutes)"
chroot "$FS" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root QEMU_CPU=cortex-a76 \
    PIP_CERT=/etc/ssl/certs/edgelite-host-ca.crt /bin/sh -c "python3 -m venv /opt/edgelite && /opt/edgelite/bin/pip install -q '/edgelite/$wheel[litert,video]'" \
    >"$WORK/pip.log" 2>&1 || { tail -20 "$WORK/pip.log"; exit 1; }
log "running the device commands as a Cortex-A76"
chroot "$FS" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root QEMU_CPU=cortex-a76 /bin/bash -c \
    "$(declare -f commands); commands /opt/edgelite/bin/edgelite /edgelite/arm64 /edgelite"
log "running the same commands here (x86-64, .venv-runtime)"
commands "$ROOT/.venv-runtime/bin/edgelite" "$WORK/x86_64" "$WORK/inputs"

"$ROOT/.venv-runtime/bin/python" - "$FS/edgelite/arm64" "$WORK/x86_64" "$ROOT/docs/benchmarks/arm64_$SUITE.json" \
    "$SUITE" "$ROOT/benchmarks" <<'PY'
"""Compares the two runs: int8 scores identical, float within 1e-5, the same classes; doctor and profile
shown side by side (their timings are the emulator's, not a Pi's)."""
import json, pathlib, platform, sys
arm, x86, out, suite = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]), sys.argv[4]
sys.path.insert(0, sys.argv[5])
from common import machine  # benchmarks/common.py: where, when and on which commit
load = lambda d, n: json.loads((d / f"{n}.json").read_text())
def numbers(value):
    if isinstance(value, dict):
        return [x for k in sorted(value) if k not in ("ms", "timings_ms", "seconds", "path", "image") for x in numbers(value[k])]
    if isinstance(value, list):
        return [x for v in value for x in numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []
report = {"suite": suite, "host": platform.machine(), "commands": {}}
for name, tolerance in (("predict_int8", 0.0), ("raw_int8", 0.0), ("predict_float", 1e-5), ("raw_float", 1e-5)):
    a, b = numbers(load(arm, name)), numbers(load(x86, name))
    worst = max((abs(p - q) for p, q in zip(a, b)), default=0.0)
    report["commands"][name] = {"values": len(a), "same_count": len(a) == len(b), "max_abs_diff": worst,
                                "agrees": len(a) == len(b) and worst <= tolerance}
doctor = load(arm, "doctor")
report["arm64"] = {k: doctor.get(k) for k in ("python", "platform", "packages", "delegates")}
report["inspect_same"] = load(arm, "inspect").get("edgelite_record") == load(x86, "inspect").get("edgelite_record")
report["profile_ran"] = bool(load(arm, "profile"))
report["machine"] = {**machine(), "emulated": "qemu-aarch64-static as a Cortex-A76, an aarch64 /proc/cpuinfo"}
out.write_text(json.dumps(report, indent=2, default=str) + "\n")
print(json.dumps(report, indent=2, default=str))
sys.exit(0 if all(c["agrees"] for c in report["commands"].values()) and report["inspect_same"] else 1)
PY

#!/usr/bin/env bash
# Power-cut simulation: isocache-nbd under an LD_PRELOAD shim that journals
# every write and sync to the store; the store is rebuilt from the journal
# as a power cut at random points would leave it (unsynced writes dropped,
# or kept at random) and every block is checked (tests/powercut/).
# Run with layer writes through the page cache and with O_DIRECT.
# IC_POWERCUT_OPS and IC_POWERCUT_CUTS (per mode) set the size; IC_SEED
# replays a run.
source "$(dirname "$0")/../functions.sh"
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "SKIP: python3-libnbd is not installed" >&2; exit 77; }
SHIM=$IC_BUILD/tests/powercut/libpcshim.so
REPLAY=$IC_BUILD/tests/powercut/pc-replay
[ -f "$SHIM" ] && [ -x "$REPLAY" ] || fail "$SHIM or $REPLAY is not built"
cd "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}

# Layer writes through the page cache (the default), then O_DIRECT.
for cache in writeback none; do
	mkdir "$cache"
	/usr/bin/python3 "$IC_SRC/tests/powercut/powercut-nbd.py" "$ADMIN" "$NBD" "$SHIM" "$REPLAY" \
		"$TESTDIR/$cache" "${IC_POWERCUT_OPS:-600}" "${IC_POWERCUT_CUTS:-15}" "$seed" \
		--cache="$cache"
done

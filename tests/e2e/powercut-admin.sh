#!/usr/bin/env bash
# Power-cut simulation of the admin commands that make layer files (snap,
# clone, import, flatten, rm) under the LD_PRELOAD shim, names and directory
# fsyncs modelled: after any cut, every layer file the metadata names
# exists and every image reads back (tests/powercut/powercut-admin.py).
# IC_POWERCUT_CUTS sets the number of cut points (default 40); IC_SEED
# replays a run.
source "$(dirname "$0")/../functions.sh"
SHIM=$IC_BUILD/tests/powercut/libpcshim.so
REPLAY=$IC_BUILD/tests/powercut/pc-replay
[ -f "$SHIM" ] && [ -x "$REPLAY" ] || fail "$SHIM or $REPLAY is not built"
cd "$TESTDIR"
cleanup_fn chattr -R -i "$TESTDIR"
seed=${IC_SEED:-$RANDOM$RANDOM}
/usr/bin/python3 "$IC_SRC/tests/powercut/powercut-admin.py" "$ADMIN" "$SHIM" "$REPLAY" \
	"$TESTDIR" "${IC_POWERCUT_CUTS:-40}" "$seed"

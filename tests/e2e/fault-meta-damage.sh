#!/usr/bin/env bash
# Damaged metadata (issue 13 item 9): random damage to meta.mdb, then every
# admin command, reading and writing, over many seeds: no crash (signal or
# hang) and no failure without a message. IC_DAMAGE_SEEDS and
# IC_DAMAGE_SECONDS make it longer (defaults: 40 seeds, at most 20 s of runs).
source "$(dirname "$0")/../functions.sh"
requires python3
cd "$TESTDIR"
python3 "$IC_SRC/tests/e2e/fault-meta-damage.py" "$ADMIN" "$TESTDIR" \
	"${IC_DAMAGE_SEEDS:-40}" "${IC_DAMAGE_SECONDS:-20}"

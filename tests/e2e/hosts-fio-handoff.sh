#!/usr/bin/env bash
# Handoff across hosts while fio writes with verification: fio's nbd
# engine writes 4 KiB blocks at random through host a's isocache-nbd, each
# with a crc32c header, a flush every 8 writes; host b's isocache-nbd
# claims vm meanwhile, a releases (its policy is always) and fences
# itself, and fio stops at its first failed request. A second fio run
# through b then reads back, with the verify state the first one saved,
# every write fio saw completed: each must be intact on b (a flushes on
# release what it acknowledged). Then one of those blocks is overwritten
# through b and the same check must fail, naming it.
#
# Why fio's state can say "completed before the failure" here: fio 3.33
# (Debian's) saves the number of writes issued and the offsets of the
# last iodepth completions, and on reading back stops at the first of the
# last iodepth writes that is not among those completions. That is exact
# at --iodepth=1, where every write but the last was complete before the
# next was issued; at a greater depth out-of-order completions can fool it
# (fio issue #1950, fixed by in-flight tracking in fio 3.41).
HOST_TTL=3
source "$(dirname "$0")/hosts-functions.bash"
requires fio
fio --enghelp 2>&1 | grep -qw nbd || { echo "SKIP: fio has no nbd engine" >&2; exit 77; }

# The job of both runs: the same name and options (so the same offsets,
# randrepeat being on); the verify state goes to $TESTDIR, as
# local-handoff-0-verify.state. 256 MiB is far more than fio writes before
# the handoff; fio stops at its first error (continue_on_error=none).
JOB=(--name=handoff --ioengine=nbd --rw=randwrite --bs=4k --size=256M --iodepth=1
	--fsync=8 --verify=crc32c --continue_on_error=none --aux-path="$TESTDIR"
	--output-format=json)
BS=4096

# fio_value JSON KEY: jobs[0][KEY] of fio's JSON output ("write.io_bytes").
fio_value() {
	/usr/bin/python3 - "$@" <<'PY'
import json, sys
text = open(sys.argv[1]).read()
job = json.loads(text[text.index("{"):])["jobs"][0]
for k in sys.argv[2].split("."):
    job = job[k]
print(job)
PY
}
# fio_issued N: fio has logged N writes (it logs each before issuing it;
# the log reaches the file in buffer-sized pieces).
fio_issued() { [ -e "$TESTDIR/fio.iolog" ] && [ "$(grep -c ' write ' "$TESTDIR/fio.iolog")" -ge "$1" ]; }

hosts_serving --release=always

fio "${JOB[@]}" --uri="$(nbd_uri a)" --do_verify=0 --verify_state_save=1 \
	--write_iolog="$TESTDIR/fio.iolog" --output="$TESTDIR/write.json" 2>"$TESTDIR/write.err" &
fio_pid=$!
cleanup_fn kill_job "$fio_pid"
wait_until 60 fio_issued 1000 || fail "fio did not get going: $(cat "$TESTDIR/write.err")"

host_nbd b b --release=never vm
grep -E 'released (through etcd )?to' "$TESTDIR/a.log" || fail "a did not release: $(cat "$TESTDIR/a.log")"
wait_until 60 gone "$fio_pid" || fail "fio kept writing through a after a released vm"
wait "$fio_pid" && fail "fio ended well: a accepted every write after releasing"
cat "$TESTDIR/write.err"
written=$(fio_value "$TESTDIR/write.json" write.io_bytes)
[ "$(fio_value "$TESTDIR/write.json" error)" != 0 ] || fail "fio saw no error"
((written > 0 && written < 256 << 20)) || fail "fio wrote $written bytes: it did not stop at the handoff"
[ -s "$TESTDIR/local-handoff-0-verify.state" ] || fail "fio saved no verify state"
echo "fio completed $((written / BS)) writes through a before a released vm"

# Every completed write intact on b: fio reads back as many blocks as it
# completed, all verified.
fio "${JOB[@]}" --uri="$(nbd_uri b)" --verify_only=1 --verify_state_load=1 \
	--output="$TESTDIR/verify.json" 2>"$TESTDIR/verify.err" ||
	fail "fio's verification through b failed: $(cat "$TESTDIR/verify.err")"
verified=$(fio_value "$TESTDIR/verify.json" read.io_bytes)
[ "$(fio_value "$TESTDIR/verify.json" error)" = 0 ] || fail "fio's verification saw errors"
[ "$verified" = "$written" ] || fail "fio verified $verified bytes of the $written it wrote"
echo "$((verified / BS)) blocks verified intact on b"

# The check can fail: overwrite the first block fio wrote, through b.
first=$(awk '$3 == "write" { print $4; exit }' "$TESTDIR/fio.iolog") # "TIME FILE write OFF LEN"
[ -n "$first" ] || fail "no write in fio's log"
qemu-io -f raw -c "write -P 0x5a $first 4k" "$(nbd_uri b)" >"$TESTDIR/b.io"
qemu_io_done "$TESTDIR/b.io" 1
! fio "${JOB[@]}" --uri="$(nbd_uri b)" --verify_only=1 --verify_state_load=1 \
	--output="$TESTDIR/bad.json" 2>"$TESTDIR/bad.err" || fail "fio verified an overwritten block"
grep -E "verify: .* at file .* offset $first," "$TESTDIR/bad.err" ||
	fail "fio's failure does not name block $first: $(cat "$TESTDIR/bad.err")"
host_nbd_stop b
host_nbd_stop a
echo PASS

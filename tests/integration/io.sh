#!/bin/bash
# Without a terminal: binary-safe stdin with EOF, large output intact,
# a closed stdout behaves like a pipeline (the writer gets SIGPIPE).
. "$(dirname "$0")/lib.sh"

head -c 50M /dev/urandom > "$WORK/blob"
want=$(sha256sum < "$WORK/blob" | cut -d' ' -f1)
run_mvm_in "$WORK/blob" -q -- sha256sum
assert_eq 0 "$RC" "sha256sum exits 0"
assert_eq "$want  -" "$OUT" "50 MB of random stdin arrive byte-exact"

printf 'a\0b\n' > "$WORK/nul-in"
run_mvm_in "$WORK/nul-in" -q -- sh -c 'cat; echo "[eof]"'
assert_eq "$(printf 'a\0b\n[eof]\n' | od -c)" "$(od -c < "$WORK/out")" "NUL bytes pass and EOF reaches the command"

run_mvm_in /dev/null -q -- cat
assert_eq 0 "$RC" "empty stdin is an immediate EOF"

(cd "$PROJECT" && "$MVM" run -q -- head -c 100M /dev/zero | wc -c) > "$WORK/count"
assert_eq 104857600 "$(cat "$WORK/count")" "100 MB of stdout arrive complete"

(cd "$PROJECT" && "$MVM" run -q -- sh -c 'head -c 3M /dev/urandom | tee /dev/stderr | sha256sum >&2' \
    2> "$WORK/err2" > /dev/null)
tail -c 68 "$WORK/err2" | head -c 64 > "$WORK/sum-reported" # "<hex>  -\n"
head -c $((3 * 1024 * 1024)) "$WORK/err2" | sha256sum | head -c 64 > "$WORK/sum-actual"
assert_eq "$(cat "$WORK/sum-reported")" "$(cat "$WORK/sum-actual")" "3 MB of binary stderr arrive intact"

# `yes | head -1`: when the reader goes away the guest's writer must die
# of SIGPIPE instead of running forever.
start=$(date +%s)
(cd "$PROJECT" && timeout 60 "$MVM" run -q -- yes | head -1) > "$WORK/yes"
rc=${PIPESTATUS[0]}
assert_eq y "$(cat "$WORK/yes")" "yes | head prints one line"
[ $(($(date +%s) - start)) -lt 30 ] && ok "yes stopped when head exited" || fail "yes kept running"
assert_no_leftovers "after the I/O runs"

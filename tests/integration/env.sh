#!/bin/bash
# The environment: only TERM, LANG, LC_* and --env reach the guest; values
# travel over the control channel, never on a command line or in a file.
. "$(dirname "$0")/lib.sh"

export MVM_IT_SECRET=host-only-value
export LANG=C.UTF-8 LC_ALL=C.UTF-8 TERM=xterm-test
export FROM_HOST=copied-value
marker="env-marker-$$-$RANDOM"
run_mvm -q --env "EXPLICIT=$marker" --env FROM_HOST --env "EMPTY=" -- sh -c \
    'echo "E=$EXPLICIT"; echo "F=$FROM_HOST"; echo "S=${MVM_IT_SECRET:-unset}"; echo "Z=[${EMPTY-unset}]"; echo "L=$LANG/$LC_ALL"; echo "T=$TERM"; echo "H=$HOME"; echo "U=$USER"; cat /proc/cmdline; grep -rl "$EXPLICIT" /etc /mvm 2>/dev/null | head -3; echo end'
assert_eq 0 "$RC" "run with --env"
assert_contains "$OUT" "E=$marker" "--env NAME=VALUE sets the variable"
assert_contains "$OUT" "F=copied-value" "--env NAME copies the host's value"
assert_contains "$OUT" "S=unset" "the rest of the host environment does not leak in"
assert_contains "$OUT" "Z=[]" "--env NAME= sets an empty value"
assert_contains "$OUT" "L=C.UTF-8/C.UTF-8" "LANG and LC_* follow the host"
assert_contains "$OUT" "T=xterm-test" "TERM follows the host"
assert_contains "$OUT" "H=/root" "HOME is the guest user's home"
assert_not_contains "$(echo "$OUT" | grep -v '^E=')" "$marker" "the value is on no kernel command line or guest file"

# While a session runs, the value is on no host command line or file.
(cd "$PROJECT" && exec "$MVM" run -q --env "EXPLICIT=$marker" -- sleep 20) 2> /dev/null &
pid=$!
defer "kill -KILL $pid 2> /dev/null"
for _ in $(seq 100); do ls /run/mvm/*/state.json > /dev/null 2>&1 && break; sleep 0.1; done
sleep 2
echo "$marker" > "$WORK/pattern" # not on grep's own command line
leaks=$(grep -rlF -f "$WORK/pattern" /run/mvm /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | grep -v "^/proc/$$/" || true)
# The test's own shell and the mvm process were given the value on their
# command lines; anything else holding it is a leak.
leaks=$(for f in $leaks; do p=${f#/proc/}; p=${p%%/*}; [ "$p" = "$pid" ] && continue; \
    ps -o args= -p "$p" 2>/dev/null | grep -q "mvm run" && continue; echo "$f"; done)
assert_eq "" "$leaks" "the --env value is in no session file and no helper's command line or environment"
kill -TERM "$pid" 2>/dev/null
wait "$pid"
assert_eq 143 "$?" "SIGTERM ends the session with 128+15"

unset NOT_SET_ANYWHERE
run_mvm -q --env NOT_SET_ANYWHERE -- true
assert_eq 125 "$RC" "--env NAME with NAME unset is an error"
assert_contains "$ERR" "sudo --preserve-env=NOT_SET_ANYWHERE" "the error explains sudo's reset"
assert_no_leftovers "after the env runs"

#!/bin/bash
# mvm run: the command runs in the guest's kernel, its stdout and stderr
# stay apart, its exit status is mvm's, and nothing is left behind.
. "$(dirname "$0")/lib.sh"

run_mvm -- uname -a
assert_eq 0 "$RC" "uname exits 0"
assert_contains "$OUT" "Linux mvm " "uname runs in the guest (hostname mvm)"
# The kernel mvm should have picked: the running release's when /boot
# has it with modules, else the newest /boot/vmlinuz-* with modules.
expected=""
if [ -e "/boot/vmlinuz-$(uname -r)" ] && [ -d "/lib/modules/$(uname -r)" ]; then
    expected=$(uname -r)
else
    for k in $(ls /boot/vmlinuz-* 2> /dev/null | sed 's,^/boot/vmlinuz-,,' | sort -V); do
        [ -d "/lib/modules/$k" ] && expected=$k
    done
fi
assert_eq "$expected" "$(echo "$OUT" | awk '{print $3}')" "guest runs the kernel mvm chose from /boot"
assert_no_leftovers "after uname"

run_mvm -- sh -c 'echo out; echo err >&2; exit 42'
assert_eq 42 "$RC" "exit status is the command's"
assert_eq out "$OUT" "stdout carries only stdout"
assert_contains "$ERR" err "stderr carries stderr"
assert_not_contains "$OUT" err "stderr does not leak into stdout"

run_mvm -- sh -c 'kill -KILL $$'
assert_eq 137 "$RC" "death by SIGKILL is 128+9"
run_mvm -- sh -c 'kill -TERM $$'
assert_eq 143 "$RC" "death by SIGTERM is 128+15"

run_mvm -- no-such-command-here
assert_eq 127 "$RC" "a missing command is 127"
assert_contains "$ERR" "no-such-command-here: command not found" "not-found message names it"

touch "$PROJECT/not-exec"
run_mvm -- ./not-exec
assert_eq 126 "$RC" "a non-executable command is 126"
assert_contains "$ERR" "not-exec" "not-executable message names it"

# The login shell when no command is given (stdin is not a terminal).
echo 'echo "shell:$0:$(pwd)"; exit 7' > "$WORK/shell-in"
run_mvm_in "$WORK/shell-in" -q
assert_eq 7 "$RC" "login shell's exit status"
assert_contains "$OUT" "shell:-" "no command runs a login shell"
assert_contains "$OUT" ":$PROJECT" "the shell starts in the working directory"
assert_no_leftovers "after all runs"

# The q35 fallback machine boots too.
run_mvm -q --machine q35 -- sh -c 'ls /sys/bus/pci/devices | wc -l'
assert_eq 0 "$RC" "--machine q35 runs the command"
[ "${OUT:-0}" -gt 0 ] && ok "q35 guest has PCI devices" || fail "q35 guest has no PCI devices"

# --console shows the guest kernel's messages.
run_mvm -q --console -- true
assert_eq 0 "$RC" "--console run exits 0"
assert_contains "$ERR" "Linux version" "--console shows the kernel's boot messages"
run_mvm -q -- true
assert_not_contains "$ERR" "Linux version" "without --console the kernel's messages stay in the log"
assert_no_leftovers "after the q35 and console runs"

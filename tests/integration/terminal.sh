#!/bin/bash
# With a terminal: a pty in the guest of the host terminal's size, resize
# follows, Ctrl-C reaches the guest program, ~. kills the VM, the host
# terminal's settings are restored and the guest cannot set the clipboard.
. "$(dirname "$0")/lib.sh"
command -v tmux > /dev/null || die "tmux is not installed (contrib/install-deps.sh installs it)"
command -v script > /dev/null || die "script is not installed (util-linux)"

# script(1) gives mvm a terminal; stty sets its size first.
script -qec "stty cols 123 rows 45; cd '$PROJECT'; '$MVM' run -q -- sh -c 'stty size; tty; test -t 0 && echo stdin-tty'" \
    /dev/null < /dev/null > "$WORK/script.out"
out=$(tr -d '\r' < "$WORK/script.out")
assert_contains "$out" "45 123" "stty size in the guest matches the host terminal"
assert_contains "$out" "/dev/pts/" "the command has a pty"
assert_contains "$out" "stdin-tty" "stdin is the terminal"

# OSC 52 (set clipboard) never reaches the host terminal; OSC 0 (title) does.
script -qec "cd '$PROJECT'; '$MVM' run -q -- printf 'A\\033]52;c;SGVsbG8=\\007B\\033]0;title\\007C'" \
    /dev/null < /dev/null > "$WORK/osc.out"
assert_not_contains "$(cat -v "$WORK/osc.out")" "]52;" "OSC 52 is filtered out"
assert_contains "$(cat -v "$WORK/osc.out")" "A" "text before OSC 52 passes"
assert_contains "$(cat -v "$WORK/osc.out")" "^[]0;title^GC" "other OSC sequences pass"

# Without a pty (stdin is a pipe) stdout and stderr are still terminals:
# still filtered.
script -qec "cd '$PROJECT'; echo | '$MVM' run -q -- sh -c 'printf \"O\\033]52;c;SGk=\\007P\"; printf \"E\\033]52;c;SGk=\\007R\" >&2'" \
    /dev/null < /dev/null > "$WORK/osc2.out"
assert_not_contains "$(cat -v "$WORK/osc2.out")" "]52;" "OSC 52 is filtered on stdout and stderr without a pty"
assert_contains "$(cat -v "$WORK/osc2.out")" "O^XP" "stdout text around it passes (a CAN marks the cut)"
assert_contains "$(cat -v "$WORK/osc2.out")" "E^XR" "stderr text around it passes"

# Messages that quote the guest (a command name full of escapes) are
# printed with the control characters replaced.
script -qec "cd '$PROJECT'; '$MVM' run -q -- \$'x\\e]52;c;SGk=\\ay'" /dev/null < /dev/null > "$WORK/name.out"
assert_not_contains "$(cat -v "$WORK/name.out")" "^[]52" "a guest-chosen name cannot smuggle escapes into mvm's message"
assert_contains "$(cat -v "$WORK/name.out")" "command not found" "the message is still printed"

# Terminal modes the guest switched on are switched off at exit.
script -qec "cd '$PROJECT'; '$MVM' run -q -- printf '\\033[?1049h\\033[?2004h\\033[?1000h'" \
    /dev/null < /dev/null > "$WORK/modes.out"
tailseq=$(cat -v "$WORK/modes.out" | tail -c 60)
assert_contains "$tailseq" "^[[?1000l" "mouse reporting is reset at exit"
assert_contains "$tailseq" "^[[?2004l" "bracketed paste is reset at exit"
assert_contains "$tailseq" "^[[?1049l" "the alternate screen is left at exit"

# Interactive: tmux is a real terminal emulator.
sock="$WORK/tmux.sock"
tm() { tmux -S "$sock" "$@"; }
defer "tmux -S '$sock' kill-server 2>/dev/null"
tm new-session -d -x 100 -y 30 -s t "cd '$PROJECT' && stty -a > '$WORK/stty.before'; '$MVM' run -q -- bash --norc -i; echo \"rc=\$?\" > '$WORK/rc1'; stty -a > '$WORK/stty.after'; sleep 60"
wait_for() { # file-or-pane-text timeout
    for _ in $(seq $(($2 * 10))); do
        tm capture-pane -t t -p | grep -q -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
wait_for 'bash-' 60 || die "no guest prompt: $(tm capture-pane -t t -p)"
tm resize-window -t t -x 132 -y 43
sleep 0.5
tm send-keys -t t 'stty size' Enter
wait_for '^43 132' 10 && ok "window resize reaches the guest" || fail "resize: $(tm capture-pane -t t -p)"
tm send-keys -t t "sh -c 'trap \"echo got-SIGINT\" INT; sleep 100'" Enter
sleep 1
tm send-keys -t t C-c
wait_for 'C*got-SIGINT$' 10 && ok "Ctrl-C reaches the guest program as SIGINT" || fail "Ctrl-C: $(tm capture-pane -t t -p)"
tm send-keys -t t 'exit 9' Enter
for _ in $(seq 100); do [ -s "$WORK/rc1" ] && break; sleep 0.1; done
assert_eq "rc=9" "$(cat "$WORK/rc1" 2>/dev/null)" "the shell's exit status is mvm's"
# The size changed on purpose (the resize above); every setting must match.
assert_eq "$(sed 1d "$WORK/stty.before")" "$(sed 1d "$WORK/stty.after" 2>/dev/null)" "terminal settings are restored"
tm kill-server

# ~. kills a stuck VM.
rm -f "$WORK/rc2"
tm new-session -d -x 100 -y 30 -s t "cd '$PROJECT' && '$MVM' run -q -- sh -c 'echo stuck-ready; sleep 1000'; echo \"rc=\$?\" > '$WORK/rc2'; sleep 60"
wait_for 'stuck-ready' 60 || die "guest never started: $(tm capture-pane -t t -p)"
tm send-keys -t t Enter '~.'
for _ in $(seq 100); do [ -s "$WORK/rc2" ] && break; sleep 0.1; done
assert_eq "rc=137" "$(cat "$WORK/rc2" 2>/dev/null)" "~. kills the VM (exit 137)"
tm kill-server
assert_no_leftovers "after the terminal runs"

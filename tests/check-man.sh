#!/bin/sh
# The man page, docs/mvm.1:
#   check-man.sh render        renders without a warning (groff -ww), and
#                              man -l reads it
#   check-man.sh options MVM   names every option that MVM's --help texts
#                              list (mvm run, ps, stop, exec, cleanup, doctor,
#                              image)
# Exit 0 pass, 77 skip (the tool is missing), else fail.
cd "$(dirname "$0")/.." || exit 1
PAGE=docs/mvm.1

render() {
    command -v groff > /dev/null || { echo "SKIP: groff is not installed (contrib/install-deps.sh installs it)"; exit 77; }
    warnings=$(groff -man -Tutf8 -ww -z "$PAGE" 2>&1)
    [ -z "$warnings" ] || { echo "FAIL: groff warns about $PAGE:"; echo "$warnings"; exit 1; }
    if command -v man > /dev/null; then
        out=$(MANWIDTH=80 man -l "$PAGE" 2> /dev/null) || { echo "FAIL: man -l $PAGE failed"; exit 1; }
        case "$out" in *"mvm - run an untrusted program"*) ;; *) echo "FAIL: man -l $PAGE shows no NAME"; exit 1 ;; esac
    fi
    echo "ok: $PAGE renders without warnings"
}

# Options as a --help text lists them ("  -t, --tty   ...", "  --cpus N"),
# as the page spells them in roff (\-\-cpus).
options() {
    mvm=${1:?usage: check-man.sh options MVM}
    missing=""
    n=0
    for cmd in run ps stop exec attach cleanup doctor image; do
        help=$("$mvm" "$cmd" --help) || { echo "FAIL: $mvm $cmd --help failed"; exit 1; }
        opts=$(printf '%s\n' "$help" | grep -oE '^ +(-[A-Za-z], )?--[a-z][a-z-]*' | tr -d ' ' | tr ',' '\n')
        [ -n "$opts" ] || { echo "FAIL: no options found in $mvm $cmd --help"; exit 1; }
        for o in $opts; do
            n=$((n + 1))
            roff=$(printf '%s' "$o" | sed 's/-/\\-/g')
            grep -qF -- "$roff" "$PAGE" || missing="$missing $cmd:$o"
        done
    done
    [ -z "$missing" ] || { echo "FAIL: $PAGE lacks these options:$missing"; exit 1; }
    echo "ok: $PAGE names all $n options of the commands' --help"
}

case "${1:-}" in
render) render ;;
options) options "${2:-}" ;;
*) echo "usage: check-man.sh render | options MVM" >&2; exit 2 ;;
esac

#!/bin/sh
# The completion scripts in contrib/completion:
#   check-completion.sh bash MVM   mvm.bash loads, registers itself, and
#                                  completes commands, options, values and
#                                  session names; its option lists are
#                                  mvm run --help's (MVM: the binary)
#   check-completion.sh zsh        _mvm loads through compinit and when
#                                  sourced, without an error
# Exit 0 pass, 77 skip (zsh is missing), else fail.
cd "$(dirname "$0")/.." || exit 1
DIR=contrib/completion

check_bash() {
    mvm=${1:?usage: check-completion.sh bash MVM}
    help=$("$mvm" run --help) || { echo "FAIL: $mvm run --help failed"; exit 1; }
    exec_help=$("$mvm" exec --help) || { echo "FAIL: $mvm exec --help failed"; exit 1; }
    image_help=$("$mvm" image --help) || { echo "FAIL: $mvm image --help failed"; exit 1; }
    tmp=$(mktemp -d) || exit 1
    trap 'rm -rf "$tmp"' EXIT
    # A stand-in mvm for the session names, printing what `mvm ps --json`
    # prints (jansson, two-space indent).
    cat > "$tmp/mvm" << 'EOF'
#!/bin/sh
[ "$1 $2" = "ps --json" ] || exit 125
cat << 'JSON'
[
  {
    "id": "6f1c2a9b0d3e",
    "name": "brisk-otter",
    "shares": [
      "/home/u/project"
    ]
  },
  {
    "id": "0a1b2c3d4e5f",
    "name": "web"
  }
]
JSON
EOF
    chmod 755 "$tmp/mvm"
    HELP=$help EXEC_HELP=$exec_help IMAGE_HELP=$image_help PATH="$tmp:$PATH" bash --norc --noprofile -c '
        set -u
        failed=0
        check() { # what expected actual
            if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "FAIL: $1: expected [$2], got [$3]"; failed=1; fi
        }
        . contrib/completion/mvm.bash || { echo "FAIL: sourcing mvm.bash"; exit 1; }
        check "complete -p mvm" "complete -F _mvm mvm" "$(complete -p mvm)"
        comp() { # the words, the last one being completed
            COMP_WORDS=("$@")
            COMP_CWORD=$(($# - 1))
            COMPREPLY=()
            _mvm
            printf "%s\n" "${COMPREPLY[@]}" | sort -u | tr "\n" " " | sed "s/ $//"
        }
        check "mvm r" "run" "$(comp mvm r)"
        check "mvm d" "doctor" "$(comp mvm d)"
        check "mvm --v" "--version" "$(comp mvm --v)"
        check "mvm run --vo" "--volume" "$(comp mvm run --vo)"
        check "mvm run --allow-" "--allow-host --allow-lan" "$(comp mvm run --allow-)"
        check "mvm run --accel" "auto kvm tcg" "$(comp mvm run --accel "")"
        check "mvm run --net i" "isolated" "$(comp mvm run --cpus 2 --net i)"
        check "mvm run --cpus N: no guess" "" "$(comp mvm run --cpus "")"
        check "mvm run -- CMD" "true" "$(comp mvm run --root -- tru | tr " " "\n" | grep -x true)"
        check "mvm run CMD" "true" "$(comp mvm run tru | tr " " "\n" | grep -x true)"
        check "mvm ps --j" "--json" "$(comp mvm ps --j)"
        check "mvm stop NAME" "brisk-otter web" "$(comp mvm stop "")"
        check "mvm stop w" "web" "$(comp mvm stop --force w)"
        check "mvm stop --f" "--force" "$(comp mvm stop --f)"
        check "mvm exec NAME" "brisk-otter web" "$(comp mvm exec "")"
        check "mvm exec -T w" "web" "$(comp mvm exec -T w)"
        check "mvm exec --env V NAME" "web" "$(comp mvm exec --env A=1 w)"
        check "mvm exec NAME --r" "--root" "$(comp mvm exec web --r)"
        check "mvm exec NAME -- CMD" "true" "$(comp mvm exec web --root -- tru | tr " " "\n" | grep -x true)"
        check "mvm exec NAME CMD" "true" "$(comp mvm exec web tru | tr " " "\n" | grep -x true)"
        check "mvm exec NAME CMD ARG: not an option of exec" "" "$(comp mvm exec web ls --ro)"
        check "mvm attach NAME" "brisk-otter web" "$(comp mvm attach "")"
        check "mvm attach NAME: one" "" "$(comp mvm attach web "")"
        check "mvm run --det" "--detach" "$(comp mvm run --det)"
        check "mvm volume" "--help ls rm" "$(comp mvm volume "")"
        check "mvm volume rm NAME: none offered" "" "$(comp mvm volume rm "")"
        check "mvm cleanup --" "--all --cache --help" "$(comp mvm cleanup --)"
        check "mvm doctor --q" "--qemu" "$(comp mvm doctor --q)"
        check "mvm image" "--help build inspect ls rm" "$(comp mvm image "")"
        check "mvm image build NAME --f" "--force --from" "$(comp mvm image build dev --f)"
        check "mvm image build --from" "debian:bookworm debian:trixie" "$(comp mvm image build dev --from "")"
        check "mvm image build --packages: no guess" "" "$(comp mvm image build dev --packages "")"
        # The lists in the script are exactly the options mvm run --help shows.
        help_opts=$(printf "%s\n" "$HELP" | grep -oE "^ +(-[A-Za-z], )?--[a-z][a-z-]*" |
            tr -d " " | tr "," "\n" | sort | tr "\n" " ")
        ours=$(printf "%s\n" $_mvm_run_with_arg $_mvm_run_flags | sort | tr "\n" " ")
        check "mvm.bash lists mvm run --help options" "$help_opts" "$ours"
        exec_opts=$(printf "%s\n" "$EXEC_HELP" | grep -oE "^ +(-[A-Za-z], )?--[a-z][a-z-]*" |
            tr -d " " | tr "," "\n" | sort | tr "\n" " ")
        ours=$(printf "%s\n" $_mvm_exec_opts | sort | tr "\n" " ")
        check "mvm.bash lists mvm exec --help options" "$exec_opts" "$ours"
        image_opts=$(printf "%s\n" "$IMAGE_HELP" | grep -oE "^ +(-[A-Za-z], )?--[a-z][a-z-]*" |
            tr -d " " | tr "," "\n" | sort | tr "\n" " ")
        ours=$(printf "%s\n" $_mvm_image_build_opts -h --help | sort -u | tr "\n" " ")
        check "mvm.bash lists mvm image --help options" "$image_opts" "$ours"
        exit $failed
    '
}

check_zsh() {
    command -v zsh > /dev/null || { echo "SKIP: zsh is not installed (contrib/install-deps.sh installs it)"; exit 77; }
    tmp=$(mktemp -d) || exit 1
    trap 'rm -rf "$tmp"' EXIT
    zsh -n "$DIR/_mvm" || { echo "FAIL: zsh -n $DIR/_mvm"; exit 1; }
    # Through $fpath, as installed: compinit reads #compdef.
    out=$(ZDOTDIR=$tmp zsh -f -c "fpath=($DIR \$fpath); autoload -U compinit; compinit -u -d $tmp/zcompdump
        print -r -- \$_comps[mvm]" 2>&1)
    [ "$out" = "_mvm" ] || { echo "FAIL: compinit does not register _mvm for mvm: $out"; exit 1; }
    # Sourced after compinit, as a user might.
    out=$(ZDOTDIR=$tmp zsh -f -c "autoload -U compinit; compinit -u -d $tmp/zcompdump
        source $DIR/_mvm && print -r -- \$_comps[mvm] \$+functions[_mvm_run]" 2>&1)
    [ "$out" = "_mvm 1" ] || { echo "FAIL: sourcing $DIR/_mvm: $out"; exit 1; }
    echo "ok: $DIR/_mvm loads through compinit and when sourced"
}

case "${1:-}" in
bash) check_bash "${2:-}" ;;
zsh) check_zsh ;;
*) echo "usage: check-completion.sh bash MVM | zsh" >&2; exit 2 ;;
esac

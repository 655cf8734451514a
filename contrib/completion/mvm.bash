# bash completion for mvm; cmake --install puts it in
# share/bash-completion/completions/mvm.  Completes the commands, their
# options and the values that have a fixed set, files where an option
# takes one, session names for `mvm stop`, `mvm exec` and `mvm attach` (from `mvm ps
# --json`, which lists your own sessions), image names for `mvm image` and
# `mvm run --image` (from /var/lib/mvm/images), and the command after `mvm run
# [OPTIONS]` and `mvm exec [OPTIONS] SESSION [OPTIONS]`.

_mvm_commands="run ps stop exec attach cleanup volume image doctor config help version --help --version"
# mvm image build's options (tests/check-completion.sh keeps them in step
# with `mvm image --help`).
_mvm_image_build_opts="--from --packages --script --net --force --refresh -h --help"
# mvm exec's options (kept in step with `mvm exec --help` too).
_mvm_exec_opts="--env --root -t --tty -T --no-tty -h --help"
# mvm run's options; tests/check-completion.sh keeps these in step with
# `mvm run --help`.
_mvm_run_with_arg="--cpus --memory --kernel --modules --image --rootfs
    --boot --accel --machine --env --share --name
    --disk --volume --net --dns --publish --allow-host --allow-lan --wireguard --api-key --api-ca
    --audit --timeout
    --console-log --result --share-limit --min-free"
_mvm_run_flags="--no-cwd --force-share --no-resolve --root --console -t --tty -T --no-tty
    --detach -q --quiet -h --help"

_mvm_reply() { # words to offer, the word being completed
    mapfile -t COMPREPLY < <(compgen -W "$1" -- "$2")
}

_mvm_files() { # -f files, -d directories
    mapfile -t COMPREPLY < <(compgen "$1" -- "$2")
    compopt -o filenames 2> /dev/null
}

# Names of your running sessions (names are [A-Za-z0-9._-]: no quoting).
_mvm_sessions() {
    mvm ps --json 2> /dev/null | sed -n 's/^    "name": "\([A-Za-z0-9._-]*\)",\{0,1\}$/\1/p'
}

# The images mvm image build made (the store is world-readable; names
# are [a-z0-9._-]: no quoting).
_mvm_images() {
    local f
    for f in /var/lib/mvm/images/*.qcow2; do
        [[ -f $f ]] && f=${f##*/} && echo "${f%.qcow2}"
    done
}

# A value for mvm run's option $1; 1 when $1 takes none.
_mvm_run_value() {
    case $1 in
    --accel) _mvm_reply "auto kvm tcg" "$2" ;;
    --boot) _mvm_reply "mvm image" "$2" ;;
    --machine) _mvm_reply "auto microvm q35" "$2" ;;
    --net) _mvm_reply "isolated none open" "$2" ;;
    --audit) _mvm_reply "warn strict off" "$2" ;;
    --disk) _mvm_reply "none 4G 8G 16G" "$2" ;;
    --share-limit) _mvm_reply "none 1G 4G 16G" "$2" ;;
    --min-free) _mvm_reply "0 5% 10% 2G" "$2" ;;
    --kernel | --console-log | --result | --api-ca | --wireguard) _mvm_files -f "$2" ;;
    --image)
        _mvm_files -f "$2"
        mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$(_mvm_images)" -- "$2")
        ;;
    --api-key) _mvm_reply "anthropic openai custom:" "$2" ;;
    --modules | --share | --rootfs) _mvm_files -d "$2" ;;
    *) [[ " ${_mvm_run_with_arg//$'\n'/ } " == *" $1 "* ]] || return 1 ;;
    esac
    return 0
}

# The command from word $1 on: through bash-completion when it is there.
_mvm_command_at() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    if declare -F _command_offset > /dev/null; then
        _command_offset "$1"
    elif (($1 == COMP_CWORD)); then
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    else
        _mvm_files -f "$cur"
    fi
}

# mvm exec [OPTIONS] SESSION [OPTIONS] [--] [CMD...]: where the command
# starts is the first word after the session that is not an option (or
# an option's value), or after a "--" (one before the session: right
# after the session).
_mvm_exec() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} i w
    local session="" dashdash=0 start=-1
    [[ $prev == --env ]] && return
    for ((i = 2; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [[ -n $session ]] && ((dashdash)); then
            start=$i
            break
        fi
        case $w in
        --)
            if [[ -n $session ]]; then
                start=$((i + 1))
                break
            fi
            dashdash=1
            ;;
        --env) i=$((i + 1)) ;;
        -*) ;;
        *)
            if [[ -n $session ]]; then
                start=$i
                break
            fi
            session=$w
            ;;
        esac
    done
    [[ -n $session ]] && ((dashdash)) && ((start < 0)) && start=$i
    if ((start >= 0)); then
        _mvm_command_at "$start"
    elif [[ -z $session && $cur != -* ]]; then
        _mvm_reply "$(_mvm_sessions)" "$cur"
    elif [[ $cur == -* ]]; then
        _mvm_reply "$_mvm_exec_opts${session:+ --}" "$cur"
    else
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    fi
}

_mvm_run() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]} i
    # Where the command starts: after --, or at the first word that is
    # neither an option nor an option's value.
    for ((i = 2; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --)
            i=$((i + 1))
            break
            ;;
        --*=*) ;;
        -*) [[ " ${_mvm_run_with_arg//$'\n'/ } " == *" ${COMP_WORDS[i]} "* ]] && i=$((i + 1)) ;;
        *) break ;;
        esac
    done
    if ((i < COMP_CWORD)) || [[ $prev == -- ]]; then
        _mvm_command_at "$i"
        return
    fi
    ((COMP_CWORD > 2)) && [[ $prev == -* ]] && _mvm_run_value "$prev" "$cur" && return
    if [[ $cur == -* ]]; then
        _mvm_reply "$_mvm_run_with_arg $_mvm_run_flags --" "$cur"
    else
        mapfile -t COMPREPLY < <(compgen -c -- "$cur")
    fi
}

# mvm image build NAME [OPTIONS], ls, inspect NAME, rm NAME.
_mvm_image() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    if ((COMP_CWORD == 2)); then
        _mvm_reply "build ls inspect rm --help" "$cur"
        return
    fi
    case ${COMP_WORDS[2]} in
    build)
        case $prev in
        --from) _mvm_reply "debian:bookworm debian:trixie" "$cur" ;;
        --script) _mvm_files -f "$cur" ;;
        --net) _mvm_reply "isolated none open" "$cur" ;;
        --packages) ;;
        *) [[ $cur == -* ]] && _mvm_reply "$_mvm_image_build_opts" "$cur" ;;
        esac
        ;;
    inspect | rm) ((COMP_CWORD == 3)) && _mvm_reply "$(_mvm_images)" "$cur" ;;
    esac
}

_mvm() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        _mvm_reply "$_mvm_commands" "$cur"
        return
    fi
    case ${COMP_WORDS[1]} in
    run | config) _mvm_run ;;
    ps) _mvm_reply "--json -a --all --help" "$cur" ;;
    stop)
        [[ $prev == --timeout ]] && return
        if [[ $cur == -* ]]; then
            _mvm_reply "--force --timeout --help" "$cur"
        else
            _mvm_reply "$(_mvm_sessions)" "$cur"
        fi
        ;;
    exec) _mvm_exec ;;
    attach)
        if [[ $cur == -* ]]; then
            _mvm_reply "--help" "$cur"
        elif ((COMP_CWORD == 2)); then
            _mvm_reply "$(_mvm_sessions)" "$cur"
        fi
        ;;
    cleanup) _mvm_reply "--cache --all --help" "$cur" ;;
    volume) ((COMP_CWORD == 2)) && _mvm_reply "ls rm --help" "$cur" ;;
    image) _mvm_image ;;
    doctor)
        case $prev in
        --kernel | --qemu) _mvm_files -f "$cur" ;;
        --modules) _mvm_files -d "$cur" ;;
        *) _mvm_reply "--json --kernel --modules --qemu --help" "$cur" ;;
        esac
        ;;
    esac
}

complete -F _mvm mvm

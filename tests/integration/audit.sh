#!/bin/bash
# The audit at exit: what a guest leaves in the shared project that the
# host would run later -- a symlink to /etc/passwd, a git hook, a
# core.fsmonitor setting, a Claude Code hook, a setuid file -- is reported
# by name (--audit warn, the default); --audit strict also undoes it and
# exits 123, leaving the project as it was apart from ordinary edits; the
# setuid bit goes in every mode.  A clean run reports nothing (first).
. "$(dirname "$0")/lib.sh"
ensure_test_user
as_user() { SUDO_UID=$TEST_UID SUDO_GID=$TEST_GID SUDO_USER=$TEST_USER run_mvm -q "$@"; }

# The project as `git init` leaves it, with a README and a package.json.
fresh_project() {
    rm -rf "$PROJECT"
    mkdir -p "$PROJECT/.git/hooks" "$PROJECT/src"
    printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' > "$PROJECT/.git/config"
    printf '#!/bin/sh\n' > "$PROJECT/.git/hooks/pre-commit.sample"
    chmod 755 "$PROJECT/.git/hooks/pre-commit.sample"
    echo 'ref: refs/heads/main' > "$PROJECT/.git/HEAD"
    echo hello > "$PROJECT/README.md"
    echo 'int main(void) { return 0; }' > "$PROJECT/src/main.c"
    chown -R "$TEST_USER:" "$PROJECT"
}
# Every entry's type, mode and owner, and every file's content but
# README.md's (which the guest edits, as any agent would).
manifest() {
    (cd "$PROJECT" && find . -printf '%p %y %m %U\n' | sort &&
        find . -type f ! -name README.md -print0 | sort -z | xargs -0 sha256sum)
}

# What the hostile guest does, as the user (nothing here needs root).
PLANT='ln -s /etc/passwd passwd-link
printf "#!/bin/sh\necho pwned\n" > .git/hooks/pre-commit && chmod 755 .git/hooks/pre-commit
printf "[core]\n\tfsmonitor = \"touch /tmp/pwned\"\n" >> .git/config
mkdir -p .claude && echo "{\"hooks\": {\"Stop\": [{\"hooks\": [{\"type\": \"command\", \"command\": \"touch /tmp/pwned\"}]}]}}" > .claude/settings.json
cp /bin/true suid && chmod 4755 suid
echo edited >> README.md
ls -l suid'

# Positive control: ordinary work is no finding.
fresh_project
as_user -- sh -c 'echo edited >> README.md; echo x > notes.txt; mkdir -p build && echo o > build/out.o'
assert_eq 0 "$RC" "a clean run exits 0 ($ERR)"
assert_not_contains "$ERR" "audit" "a clean run reports nothing"

# warn (the default): each planted thing by name; only the setuid bit goes.
fresh_project
as_user -- sh -c "$PLANT"
assert_eq 0 "$RC" "warn keeps the command's status"
assert_contains "$OUT" "rws" "the guest did make the file setuid"
assert_contains "$ERR" "passwd-link: new symlink leading out of the share: /etc/passwd" "the symlink to /etc/passwd is reported"
assert_contains "$ERR" ".git/hooks/pre-commit: new git hook" "the git hook is reported"
assert_contains "$ERR" ".git/config: changed git setting that runs a program: core.fsmonitor = touch /tmp/pwned" "core.fsmonitor is reported"
assert_contains "$ERR" ".claude/settings.json: new configuration that editors, direnv or agents act on" "the Claude Code hook is reported"
assert_contains "$ERR" "suid: new setuid/setgid file (setuid/setgid bits removed)" "the setuid file is reported and fixed"
assert_not_contains "$ERR" "README.md" "an ordinary edit is not reported"
[ -e "$PROJECT/suid" ] && ! [ -u "$PROJECT/suid" ] && ok "the setuid bit is gone on the host" || fail "setuid bit left: $(stat -c %A "$PROJECT/suid")"
[ -x "$PROJECT/.git/hooks/pre-commit" ] && grep -q fsmonitor "$PROJECT/.git/config" && ok "warn leaves the rest as it is" || fail "warn changed the project"

# strict: the same, undone; the project as before but for README.md.
fresh_project
before=$(manifest)
result="$TEST_HOME/mvm-audit-result.json"
defer "rm -f '$result'"
as_user --audit strict --result "$result" -- sh -c "$PLANT"
assert_eq 123 "$RC" "strict exits 123 when it found something and the command succeeded"
# --result carries the findings and the final status, for CI.
got=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
a = r["audit"]
f = {(x["path"], x["kind"], x["action"]) for x in a["findings"]}
print(r["exit_status"], a["mode"], a["more"],
      (".git/hooks/pre-commit", "hook", "removed") in f,
      ("passwd-link", "link-out", "removed") in f,
      all(x["share"] == sys.argv[2] and x["text"] for x in a["findings"]))
' "$result" "$PROJECT" 2>&1)
assert_eq "123 strict 0 True True True" "$got" "--result lists the audit's findings by path, kind and action, with the final status"
assert_contains "$ERR" ".git/hooks/pre-commit: new git hook (removed)" "strict removes the hook"
assert_contains "$ERR" "core.fsmonitor = touch /tmp/pwned (restored)" "strict restores .git/config"
assert_contains "$ERR" "passwd-link: new symlink leading out of the share: /etc/passwd (removed)" "strict removes the symlink"
assert_contains "$ERR" ".claude/settings.json: new configuration that editors, direnv or agents act on (removed)" "strict removes the agent's settings"
assert_eq "edited" "$(tail -1 "$PROJECT/README.md")" "the ordinary edit stays"
assert_eq "644" "$(stat -c %a "$PROJECT/suid" 2> /dev/null)" "the new file is neither setuid nor executable any more"
rm -f "$PROJECT/suid"
assert_eq "$before" "$(manifest)" "the project is as it was before the run, apart from ordinary edits"

# A failing command keeps its status under strict; off reports no hook,
# yet the setuid bit still goes.
fresh_project
as_user --audit strict -- sh -c 'ln -s /etc/passwd passwd-link; exit 3'
assert_eq 3 "$RC" "strict keeps a failing command's own status"
[ -L "$PROJECT/passwd-link" ] && fail "strict left the symlink" || ok "strict removed the symlink"
fresh_project
as_user --audit off -- sh -c "$PLANT"
assert_eq 0 "$RC" "off keeps the command's status"
assert_not_contains "$ERR" "pre-commit" "off reports no hook"
assert_contains "$ERR" "suid: new setuid/setgid file (setuid/setgid bits removed)" "off still removes the setuid bit"
[ -u "$PROJECT/suid" ] && fail "setuid bit left with --audit off" || ok "no setuid bit on the host with --audit off"

assert_no_leftovers "after the audit runs"

#!/bin/sh
# Installs the Debian packages named in $PKGS that are missing. Called by the Makefile.
# As root: apt-get directly; otherwise through sudo -n. When neither works, says exactly
# which packages are missing and exits 1.
set -u
missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
    case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "leakdiff: installing missing Debian packages:$missing"
if [ "$(id -u)" -eq 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else
    echo "leakdiff: cannot install packages (not root, no sudo). Please run:" >&2
    echo "  apt-get update && apt-get install -y$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q $missing >/dev/null 2>&1; then
    $SUDO apt-get update -q >/dev/null 2>&1
    $SUDO apt-get install -y -q $missing || {
        echo "leakdiff: apt-get failed to install:$missing" >&2; exit 1; }
fi

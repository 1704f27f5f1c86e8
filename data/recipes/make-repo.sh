#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Creates a recipe repository from the example recipes next to this script:
#   make-repo.sh DIR
# DIR gets a git repository with recipes/*.json on branch main, tagged v1.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 DIR" >&2
	exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
dest=$1

if [ -e "$dest/.git" ]; then
	echo "$dest is already a git repository" >&2
	exit 1
fi
mkdir -p "$dest/recipes"
cp "$src"/*.json "$dest/recipes/"
cd "$dest"
git init -q -b main .
git add recipes
git -c user.name="shoal example" -c user.email="shoal@example.invalid" \
	commit -q -m "Example recipes"
git -c user.name="shoal example" -c user.email="shoal@example.invalid" \
	tag -a -m "Example recipes, first version" v1
echo "recipe repository ready: $dest (branch main, tag v1, commit $(git rev-parse HEAD))"

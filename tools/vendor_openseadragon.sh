#!/usr/bin/env bash
# Refreshes src/view/web/vendor/openseadragon/ (the viewer's OpenSeadragon, embedded into the binary
# at build time) from npm: the pinned version's tarball, checked against its pinned integrity.
# It is committed so that builds need no network (clusters are often offline); this script is the
# only way it changes. Usage: tools/vendor_openseadragon.sh [VERSION SHA512-INTEGRITY]
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=${1:-6.1.1}
INTEGRITY=${2:-sha512-g4iKe2q8B642SaBT3+x4ZF3/8b1TxPPydyjmtrOLgDrlYWMKd9ZXM+1Cb/xa9DVySkvs/7l6HR1nHKfD5F3Tsw==}
dest=src/view/web/vendor/openseadragon
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "openseadragon@$VERSION" >/dev/null)
tgz=$(ls "$tmp"/openseadragon-*.tgz)
got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
[ "$got" = "$INTEGRITY" ] || { echo "openseadragon@$VERSION: integrity $got, expected $INTEGRITY" >&2; exit 1; }
tar -xzf "$tgz" -C "$tmp"
install -m 644 "$tmp/package/build/openseadragon/openseadragon.min.js" "$tmp/package/LICENSE.txt" "$dest/"
echo "$dest: openseadragon $VERSION ($INTEGRITY)"

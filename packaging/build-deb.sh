#!/usr/bin/env bash
# Build the m365fwd Debian package with dpkg-deb from a `meson install
# --destdir` tree (no debhelper needed).
#
#   packaging/build-deb.sh [-b BUILDDIR] [-o OUTDIR]
#
#   -b BUILDDIR  meson build dir, configured afresh as a release build with
#                prefix /usr (default: build-deb/ in the source root)
#   -o OUTDIR    where the .deb goes (default: BUILDDIR)
#
# The version is the top entry of packaging/debian/changelog; its upstream
# part must equal the meson project version. Depends comes from
# dpkg-shlibdeps on the installed binary, plus what packaging/debian/control
# names. Compiler and linker flags are Debian's (dpkg-buildflags, with
# hardening=+all) unless CFLAGS/LDFLAGS are set. Prints the path of the .deb
# on the last line. Needs: meson, ninja, dpkg-dev (dpkg-shlibdeps,
# dpkg-gencontrol, dpkg-buildflags), gzip.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PKG="$ROOT/packaging"
build="$ROOT/build-deb"
out=""

die()
{
    echo "build-deb: $*" >&2
    exit 1
}

while getopts "b:o:h" opt; do
    case "$opt" in
        b) build=$OPTARG ;;
        o) out=$OPTARG ;;
        h) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-b BUILDDIR] [-o OUTDIR]" >&2; exit 2 ;;
    esac
done
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
out=${out:-$build}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

for tool in meson ninja dpkg-deb dpkg-shlibdeps dpkg-gencontrol gzip; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (apt-get install meson ninja-build dpkg-dev gzip)"
done

# ------------------------------------------------------------- version
changelog="$PKG/debian/changelog"
deb_version=$(sed -n '1s/^m365fwd (\([^)]*\)).*/\1/p' "$changelog")
[ -n "$deb_version" ] || die "$changelog: first line is not 'm365fwd (VERSION) ...'"
upstream=${deb_version%-*}
project_version=$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" "$ROOT/meson.build" | head -n 1)
[ "$upstream" = "$project_version" ] ||
    die "packaging/debian/changelog is at $deb_version but meson.build says" \
        "$project_version: add a changelog entry"
arch=$(dpkg --print-architecture)
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    stamp=$(sed -n 's/^ -- .*>  \(.*\)$/\1/p' "$changelog" | head -n 1)
    SOURCE_DATE_EPOCH=$(date -d "$stamp" +%s) ||
        die "$changelog: cannot read the date of the first entry"
    export SOURCE_DATE_EPOCH
fi

# ------------------------------------------------------------- build
if [ -z "${CFLAGS:-}${LDFLAGS:-}" ] && command -v dpkg-buildflags >/dev/null; then
    eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
fi
setup_args=(--prefix=/usr --sysconfdir=/etc --localstatedir=/var
            --buildtype=release -Db_pie=true -Dtests=disabled)
if [ -f "$build/meson-private/coredata.dat" ]; then
    # --wipe: flags from the environment are read at configure time only.
    meson setup --wipe "${setup_args[@]}" "$build" "$ROOT" >"$build.setup.log" 2>&1 ||
        { cat "$build.setup.log" >&2; die "meson setup failed"; }
else
    meson setup "${setup_args[@]}" "$build" "$ROOT" >"$build.setup.log" 2>&1 ||
        { cat "$build.setup.log" >&2; die "meson setup failed"; }
fi
rm -f "$build.setup.log"
ninja -C "$build" || die "build failed"

# ------------------------------------------------------------- stage
stage="$build/deb-root"
rm -rf "$stage"
DESTDIR="$stage" meson install -C "$build" --no-rebuild --strip --quiet ||
    die "meson install failed"

doc="$stage/usr/share/doc/m365fwd"
install -d -m 0755 "$doc"
install -m 0644 "$PKG/debian/copyright" "$doc/copyright"
gzip -9n -c "$changelog" > "$doc/changelog.Debian.gz"
find "$stage/usr/share/man" -type f -name '*.[0-9]' -exec gzip -9nf {} +

# Everything the package promises; a missing file names the rule to add.
missing=0
for f in usr/bin/m365fwd:agent/meson.build \
         lib/systemd/system/m365fwd.service:packaging/meson.build \
         usr/share/man/man1/m365fwd.1.gz:packaging/meson.build \
         usr/share/man/man5/m365fwd.yaml.5.gz:packaging/meson.build \
         usr/share/doc/m365fwd/m365fwd.yaml.example:config/meson.build \
         usr/share/doc/m365fwd/examples/records.ndjson:packaging/meson.build \
         usr/share/m365fwd/tags.yaml:normalizers/meson.build \
         usr/share/m365fwd/ocsf.yaml:normalizers/meson.build \
         usr/share/m365fwd/ecs.yaml:normalizers/meson.build \
         usr/share/m365fwd/checks.yaml:report/meson.build \
         usr/share/m365fwd/plan.yaml:report/meson.build; do
    if [ ! -f "$stage/${f%%:*}" ]; then
        echo "build-deb: /${f%%:*} was not installed (install rule in ${f#*:})" >&2
        missing=1
    fi
done
[ "$missing" = 0 ] || die "incomplete install tree in $stage"
grep -q '^ExecStart=/usr/bin/m365fwd ' "$stage/lib/systemd/system/m365fwd.service" ||
    die "installed unit does not start /usr/bin/m365fwd"

# Ownership is root:root in the archive (--root-owner-group); modes as Debian
# wants them.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$stage/usr/bin/m365fwd"

# ------------------------------------------------------------- control
install -d -m 0755 "$stage/DEBIAN"
for s in postinst prerm postrm; do
    install -m 0755 "$PKG/debian/$s" "$stage/DEBIAN/$s"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# dpkg-shlibdeps and dpkg-gencontrol read debian/control and
# debian/changelog from the current directory.
(
    cd "$PKG"
    dpkg-shlibdeps -T"$work/substvars" -e"$stage/usr/bin/m365fwd" 2>"$work/shlibdeps.log" ||
        { cat "$work/shlibdeps.log" >&2; exit 1; }
    echo "misc:Depends=" >> "$work/substvars"
    dpkg-gencontrol -pm365fwd -ldebian/changelog -cdebian/control \
        -T"$work/substvars" -f"$work/files" -P"$stage" -O > "$work/control"
) || die "dpkg-shlibdeps/dpkg-gencontrol failed"
install -m 0644 "$work/control" "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
    sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

# ------------------------------------------------------------- package
mkdir -p "$out"
deb="$out/m365fwd_${deb_version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null ||
    die "dpkg-deb failed"
echo "build-deb: $(sed -n 's/^Depends: //p' "$stage/DEBIAN/control")" >&2
echo "$deb"

#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The packages, checked end to end (CI): from a configured tree, as root,
# in the repository root. Makes the release tarball (make dist), builds the
# Debian packages from it (packaging/debian as debian/, dpkg-buildpackage
# -b, tests off: CI runs them elsewhere) and the source package, runs
# lintian on both (any E: or W: fails), installs the two .debs, checks what
# they installed (files, conffiles, the shoal user, enabled units, the units'
# systemd-analyze verify and security exposure, the programs' --version),
# purges them again, then builds the RPMs (rpmbuild -bb --nodeps) and
# checks their file lists and scriptlets. Prints TAP; exits 1 if anything
# failed. Leaves the machine as it found it, but for an earlier install of
# the packages, which it purges first.
#   sh scripts/packages.sh        KEEP=1 keeps the work directory,
#                                 DEBS_OUT=DIR copies the .debs there
set -eu
umask 022
cd "$(dirname "$0")/.."

plan=28
n=0
failed=0
start=$(date +%s)

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
diag() { sed 's/^/# /'; }
# check DESC CMD...: one test, CMD's output shown as diagnostics on
# failure (and left in $out).
check() {
	desc=$1
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc"
		printf '%s\n' "$out" | diag
	fi
}
# step DESC LOG CMD...: a long command, its output in LOG; the tail of LOG
# as diagnostics on failure.
step() {
	desc=$1
	log=$2
	shift 2
	if "$@" >"$log" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc (log: $log)"
		tail -n 40 "$log" | diag
		return 1
	fi
}

if [ "$(id -u)" -ne 0 ]; then
	echo "packages.sh: run as root (it installs and purges the packages)" >&2
	exit 2
fi
if [ ! -f Makefile ]; then
	echo "packages.sh: configure the tree first (./autogen.sh && ./configure)" >&2
	exit 2
fi

# The tools, from install-deps.sh's list where any is missing.
for tool in dpkg-buildpackage dh lintian fakeroot rpmbuild systemd-analyze \
    systemd-sysusers; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		./scripts/install-deps.sh >&2
		break
	fi
done

version=$(sed -n 's/^PACKAGE_VERSION = //p' Makefile)
debversion=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
rpmversion=$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/shoal.spec)
tarball=shoal-$version.tar.gz

work=$(mktemp -d /tmp/shoal-packages.XXXXXX)
# World-readable, so that apt's _apt user and lintian (run as nobody) can
# read the packages.
chmod 0755 "$work"
installed=no
# The packages make the shoal user and, as Debian's do, keep it on purge:
# it goes again here if it was not there before.
had_user=no
getent passwd shoal >/dev/null && had_user=yes
drop_user() {
	[ "$had_user" = no ] || return 0
	if getent passwd shoal >/dev/null; then
		userdel shoal >/dev/null 2>&1 || :
	fi
	if getent group shoal >/dev/null; then
		groupdel shoal >/dev/null 2>&1 || :
	fi
}
cleanup() {
	if [ "$installed" = yes ]; then
		apt-get purge -y -qq shoal-agent shoal-coordinator >/dev/null 2>&1 || :
	fi
	drop_user
	if [ "${KEEP:-0}" = 1 ] || [ "$failed" -ne 0 ]; then
		echo "# work directory kept: $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

echo "1..$plan"

# 1: one version everywhere.
if [ "$debversion" = "$version-1" ] && [ "$rpmversion" = "$version" ]; then
	ok "versions agree: configure $version, debian $debversion, rpm $rpmversion"
else
	not_ok "versions agree: configure $version, debian $debversion, rpm $rpmversion"
	echo "# packaging/debian/changelog and packaging/rpm/shoal.spec need a new entry" |
		diag
fi

# 2-3: the tarball, with the packaging in it.
built=yes
had_tarball=no
[ -f "$tarball" ] && had_tarball=yes
step "make dist makes $tarball" "$work/dist.log" make dist || built=no
if [ "$built" = yes ]; then
	mkdir -p "$work/deb"
	cp "$tarball" "$work/deb/shoal_$version.orig.tar.gz"
	[ "$had_tarball" = yes ] || rm -f "$tarball"
	tar -C "$work/deb" -xzf "$work/deb/shoal_$version.orig.tar.gz"
	src=$work/deb/shoal-$version
	missing=""
	for f in packaging/debian/control packaging/debian/rules \
	    packaging/debian/changelog packaging/debian/copyright \
	    packaging/debian/source/format packaging/rpm/shoal.spec \
	    scripts/packages.sh systemd/shoal.sysusers; do
		[ -f "$src/$f" ] || missing="$missing $f"
	done
	if [ -z "$missing" ]; then
		ok "the tarball holds packaging/debian and packaging/rpm"
	else
		not_ok "the tarball holds packaging/debian and packaging/rpm"
		echo "missing:$missing (EXTRA_DIST in packaging/Makefile.inc)" | diag
	fi
	cp -R "$src/packaging/debian" "$src/debian"
else
	skip "the tarball holds packaging/debian and packaging/rpm" "no tarball"
fi

# 4-6: the source package, the binary packages, lintian on both.
debs=no
if [ "$built" = yes ]; then
	step "dpkg-source -b builds the 3.0 (quilt) source package" \
	    "$work/source.log" sh -c "cd '$work/deb' && dpkg-source -b 'shoal-$version'" ||
		:
	if step "dpkg-buildpackage -us -uc -b (nocheck)" "$work/build.log" \
	    sh -c "cd '$src' && DEB_BUILD_OPTIONS='nocheck parallel=$(nproc)' \
		dpkg-buildpackage -us -uc -b"; then
		debs=yes
	fi
else
	skip "dpkg-source -b builds the 3.0 (quilt) source package" "no tarball"
	skip "dpkg-buildpackage -us -uc -b (nocheck)" "no tarball"
fi
deb_agent=$work/deb/shoal-agent_${debversion}_$(dpkg --print-architecture).deb
deb_coord=$work/deb/shoal-coordinator_${debversion}_$(dpkg --print-architecture).deb
# DEBS_OUT=DIR: a copy of the two .debs for scripts/boot-check.sh.
if [ "$debs" = yes ] && [ -n "${DEBS_OUT:-}" ]; then
	mkdir -p "$DEBS_OUT"
	rm -f "$DEBS_OUT"/shoal-*.deb
	cp "$deb_agent" "$deb_coord" "$DEBS_OUT/"
fi
if [ "$debs" = yes ]; then
	changes=$work/deb/shoal_${debversion}_$(dpkg --print-architecture).changes
	dsc=$work/deb/shoal_$debversion.dsc
	set -- "$changes"
	[ -f "$dsc" ] && set -- "$@" "$dsc"
	# As nobody: lintian advises against running as root.
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    env HOME=/nonexistent lintian --info --display-info "$@" \
	    >"$work/lintian.log" 2>&1 || :
	if grep -q '^[EW]: ' "$work/lintian.log"; then
		not_ok "lintian: no errors or warnings"
		grep '^[EWI]: ' "$work/lintian.log" | diag
		echo "(lintian --info explains each tag: $work/lintian.log)" | diag
	else
		ok "lintian: no errors or warnings"
		grep -v '^N:' "$work/lintian.log" | diag
	fi
else
	skip "lintian: no errors or warnings" "no packages"
fi

# 7-20: install, look, purge.
if [ "$debs" = yes ]; then
	if dpkg-query -W shoal-agent shoal-coordinator >/dev/null 2>&1; then
		echo "# purging an earlier install"
		apt-get purge -y -qq shoal-agent shoal-coordinator >/dev/null 2>&1 || :
	fi
	installed=yes
	if ! step "apt-get install the two .debs" "$work/install.log" \
	    env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	    "$deb_agent" "$deb_coord"; then
		debs=no
	fi
else
	skip "apt-get install the two .debs" "no packages"
fi

# has_files PKG FILE...: dpkg -L PKG lists every FILE.
has_files() {
	pkg=$1
	shift
	list=$(dpkg -L "$pkg") || return 1
	rc=0
	for f in "$@"; do
		printf '%s\n' "$list" | grep -qx "$f" || { echo "missing: $f"; rc=1; }
	done
	return $rc
}
# has_conffile PKG FILE: dpkg registered FILE as a conffile of PKG.
has_conffile() {
	grep -qx "$2" "/var/lib/dpkg/info/$1.conffiles" ||
		{ echo "not in /var/lib/dpkg/info/$1.conffiles: $2"; return 1; }
}
# exposure UNIT: systemd-analyze security's overall exposure is at most 2.0.
exposure() {
	out=$(systemd-analyze security --offline=yes --no-pager \
	    "/lib/systemd/system/$1" 2>&1) || :
	level=$(printf '%s\n' "$out" |
	    sed -n "s/.*Overall exposure level for $1: \([0-9.]*\).*/\1/p")
	echo "exposure $1: ${level:-unknown}"
	[ -n "$level" ] || { printf '%s\n' "$out"; return 1; }
	awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' ||
		{ printf '%s\n' "$out" | grep '✗'; return 1; }
}
# prints_version PROGRAM: PROGRAM --version says NAME VERSION.
prints_version() {
	out=$("$1" --version 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	[ "$out" = "$(basename "$1") $version" ]
}

man=/usr/share/man
if [ "$debs" = yes ]; then
	check "shoal-agent: binary, unit, config, manual" has_files shoal-agent \
	    /usr/sbin/shoal-agent /lib/systemd/system/shoal-agent.service \
	    /etc/shoal/agent.yaml $man/man8/shoal-agent.8.gz
	check "shoal-coordinator: binaries, unit, config, sysusers, manuals" \
	    has_files shoal-coordinator /usr/sbin/shoal-coordinator \
	    /usr/bin/shoalctl /lib/systemd/system/shoal-coordinator.service \
	    /etc/shoal/coordinator.yaml /usr/lib/sysusers.d/shoal.conf \
	    $man/man8/shoal-coordinator.8.gz $man/man1/shoalctl.1.gz
	check "conffile: /etc/shoal/agent.yaml" \
	    has_conffile shoal-agent /etc/shoal/agent.yaml
	check "conffile: /etc/shoal/coordinator.yaml" \
	    has_conffile shoal-coordinator /etc/shoal/coordinator.yaml
	check "the shoal user and group exist" \
	    sh -c 'getent passwd shoal && getent group shoal'
	check "both units enabled (multi-user.target.wants)" sh -c \
	    'cd /etc/systemd/system/multi-user.target.wants &&
	     test -L shoal-agent.service && test -L shoal-coordinator.service'
	check "systemd-analyze verify: both units" systemd-analyze verify \
	    /lib/systemd/system/shoal-agent.service \
	    /lib/systemd/system/shoal-coordinator.service
	for unit in shoal-agent.service shoal-coordinator.service; do
		n0=$failed
		check "systemd-analyze security: $unit exposure <= 2.0" \
		    exposure "$unit"
		[ "$failed" -ne "$n0" ] || echo "$out" | diag
	done
	for p in shoal-agent shoal-coordinator; do
		echo "# dpkg -L $p:"
		dpkg -L "$p" | diag
	done
	for prog in /usr/sbin/shoal-agent /usr/sbin/shoal-coordinator \
	    /usr/bin/shoalctl; do
		check "$prog --version prints $version" prints_version "$prog"
	done
else
	for t in "shoal-agent: binary, unit, config, manual" \
	    "shoal-coordinator: binaries, unit, config, sysusers, manuals" \
	    "conffile: /etc/shoal/agent.yaml" \
	    "conffile: /etc/shoal/coordinator.yaml" \
	    "the shoal user and group exist" \
	    "both units enabled (multi-user.target.wants)" \
	    "systemd-analyze verify: both units" \
	    "systemd-analyze security: shoal-agent.service exposure <= 2.0" \
	    "systemd-analyze security: shoal-coordinator.service exposure <= 2.0" \
	    "/usr/sbin/shoal-agent --version prints $version" \
	    "/usr/sbin/shoal-coordinator --version prints $version" \
	    "/usr/bin/shoalctl --version prints $version"; do
		skip "$t" "not installed"
	done
fi

purged() {
	env DEBIAN_FRONTEND=noninteractive apt-get purge -y \
	    shoal-agent shoal-coordinator || return 1
	! dpkg-query -W -f='${Status}\n' shoal-agent shoal-coordinator 2>/dev/null |
		grep -qv 'not-installed' || { echo "still known to dpkg"; return 1; }
	for f in /etc/shoal /lib/systemd/system/shoal-agent.service \
	    /etc/systemd/system/multi-user.target.wants/shoal-agent.service \
	    /etc/systemd/system/multi-user.target.wants/shoal-coordinator.service; do
		if [ -e "$f" ] || [ -L "$f" ]; then
			echo "left behind: $f"
			return 1
		fi
	done
}
if [ "$installed" = yes ]; then
	check "apt-get purge removes both, conffiles and unit links too" purged
	installed=no
	drop_user
else
	skip "apt-get purge removes both, conffiles and unit links too" \
	    "not installed"
fi

# 21-28: the RPMs.
rpms=no
arch=$(rpm --eval '%{_arch}')
if [ "$built" = yes ]; then
	top=$work/rpm
	mkdir -p "$top/SOURCES"
	cp "$work/deb/shoal_$version.orig.tar.gz" "$top/SOURCES/$tarball"
	if step "rpmbuild -bb --nodeps (nocheck)" "$work/rpmbuild.log" \
	    rpmbuild -bb --nodeps --nocheck --define "_topdir $top" \
	    "$src/packaging/rpm/shoal.spec"; then
		rpms=yes
	fi
else
	skip "rpmbuild -bb --nodeps (nocheck)" "no tarball"
fi
rpm_agent=$work/rpm/RPMS/$arch/shoal-agent-$rpmversion-1.$arch.rpm
rpm_coord=$work/rpm/RPMS/$arch/shoal-coordinator-$rpmversion-1.$arch.rpm

# rpm_has RPM FILE...: rpm -qlp RPM lists every FILE.
rpm_has() {
	r=$1
	shift
	list=$(rpm -qlp "$r") || return 1
	rc=0
	for f in "$@"; do
		printf '%s\n' "$list" | grep -qx "$f" || { echo "missing: $f"; rc=1; }
	done
	return $rc
}
# rpm_noreplace RPM FILE: FILE is %config(noreplace) in RPM.
rpm_noreplace() {
	flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' "$1" |
	    sed -n "s| $2\$||p")
	echo "$2: flags '$flags'"
	case $flags in *c*n* | *n*c*) ;; *) return 1 ;; esac
}
# rpm_scripts RPM WHAT...: rpm -qp --scripts RPM has each scriptlet WHAT.
rpm_scripts() {
	r=$1
	shift
	s=$(rpm -qp --scripts "$r") || return 1
	rc=0
	for w in "$@"; do
		printf '%s\n' "$s" | grep -q "^$w scriptlet" ||
			{ echo "no $w scriptlet"; rc=1; }
	done
	printf '%s\n' "$s" | grep -q 'systemctl' ||
		{ echo "no systemctl call"; rc=1; }
	[ $rc -eq 0 ] || printf '%s\n' "$s"
	return $rc
}

unitdir=$(rpm --eval '%{?_unitdir}%{!?_unitdir:/usr/lib/systemd/system}')
if [ "$rpms" = yes ]; then
	check "rpm -qlp shoal-agent: binary, unit, config, manual" rpm_has \
	    "$rpm_agent" /usr/sbin/shoal-agent "$unitdir/shoal-agent.service" \
	    /etc/shoal/agent.yaml
	check "rpm -qlp shoal-coordinator: binaries, unit, config, sysusers" \
	    rpm_has "$rpm_coord" /usr/sbin/shoal-coordinator /usr/bin/shoalctl \
	    "$unitdir/shoal-coordinator.service" /etc/shoal/coordinator.yaml \
	    /usr/lib/sysusers.d/shoal.conf
	check "rpm manuals: shoal-agent.8, shoal-coordinator.8, shoalctl.1" sh -c \
	    "rpm -qlp '$rpm_agent' | grep -q '^$man/man8/shoal-agent\.8' &&
	     rpm -qlp '$rpm_coord' | grep -q '^$man/man8/shoal-coordinator\.8' &&
	     rpm -qlp '$rpm_coord' | grep -q '^$man/man1/shoalctl\.1'"
	check "rpm: agent.yaml is %config(noreplace)" \
	    rpm_noreplace "$rpm_agent" /etc/shoal/agent.yaml
	check "rpm: coordinator.yaml is %config(noreplace)" \
	    rpm_noreplace "$rpm_coord" /etc/shoal/coordinator.yaml
	check "rpm scriptlets: shoal-agent (systemd)" rpm_scripts "$rpm_agent" \
	    postinstall preuninstall postuninstall
	check "rpm scriptlets: shoal-coordinator (user in %pre, systemd)" \
	    rpm_scripts "$rpm_coord" preinstall postinstall preuninstall \
	    postuninstall
else
	for t in "rpm -qlp shoal-agent: binary, unit, config, manual" \
	    "rpm -qlp shoal-coordinator: binaries, unit, config, sysusers" \
	    "rpm manuals: shoal-agent.8, shoal-coordinator.8, shoalctl.1" \
	    "rpm: agent.yaml is %config(noreplace)" \
	    "rpm: coordinator.yaml is %config(noreplace)" \
	    "rpm scriptlets: shoal-agent (systemd)" \
	    "rpm scriptlets: shoal-coordinator (user in %pre, systemd)"; do
		skip "$t" "no RPMs"
	done
fi

for r in "$rpm_agent" "$rpm_coord"; do
	[ -f "$r" ] || continue
	echo "# $(basename "$r"):"
	rpm -qlp "$r" | diag
done

echo "# $n tests, $failed failed, $(($(date +%s) - start)) s"
if [ "$n" -ne "$plan" ]; then
	echo "# planned $plan tests, ran $n: fix plan= in scripts/packages.sh"
	failed=$((failed + 1))
fi
[ "$failed" -eq 0 ]

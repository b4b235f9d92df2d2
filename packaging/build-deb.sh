#!/usr/bin/env bash
# Builds dist/danube-metrics-agent_<version>_<arch>.deb: a release build with the Swift runtime linked in
# statically (so the package needs no Swift toolchain), the units, sysusers entry, default options and docs,
# with maintainer scripts that create the user and enable the sockets. Then runs lintian on it.
#   packaging/build-deb.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# Tools: dpkg-shlibdeps (dpkg-dev), help2man for the man page, lintian for the check.
missing=()
for tool in dpkg-dev help2man lintian libsystemd-dev zlib1g-dev libsnappy-dev libcrypt-dev libyaml-dev pkg-config; do
    dpkg-query -W -f='${Status}' "$tool" 2>/dev/null | grep -q "install ok installed" || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
package=danube-metrics-agent
upstream="$(sed -n 's/.*public static let version = "\(.*\)"/\1/p' Sources/DanubeMetricsAgent/BuildInfo.swift)"
version="$upstream-1"
arch="$(dpkg --print-architecture)"

# One scratch directory, removed at the end; every tool below (swift, help2man, lintian) keeps its temporary
# files in it, so the build leaves nothing in /tmp.
work="$(mktemp -d)"
mkdir "$work/tmp"
export TMPDIR="$work/tmp"

# The revision danube_agent_build_info and --version report (restored afterwards: development builds say unknown).
revision_file=Sources/DanubeMetricsAgent/BuildRevision.swift
revision="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
[ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ] || revision="$revision-modified"
cp "$revision_file" "$work/BuildRevision.swift"
trap 'cp "$work/BuildRevision.swift" "$revision_file"; rm -rf "$work"' EXIT
sed -i "s/= \"unknown\"/= \"$revision\"/" "$revision_file"
# Full RELRO (-z now with -z relro): the dynamic relocations are resolved at start and made read-only.
release=(-c release --static-swift-stdlib -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now)
swift build "${release[@]}" --product danube-metrics-agent
bin="$(swift build "${release[@]}" --show-bin-path)"

root="$work/$package"
doc="$root/usr/share/doc/$package"
install -D -m 0755 "$bin/danube-metrics-agent" "$root/usr/bin/danube-metrics-agent"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/danube-metrics-agent"
for unit in danube-metrics-agent.service danube-metrics-agent.socket danube-metrics-agent-http.socket; do
    install -D -m 0644 "systemd/$unit" "$root/usr/lib/systemd/system/$unit"
done
install -D -m 0644 systemd/danube-metrics-agent.sysusers "$root/usr/lib/sysusers.d/$package.conf"
install -D -m 0644 packaging/debian/default "$root/etc/default/$package"
install -D -m 0644 packaging/debian/copyright "$doc/copyright"
install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/$package"
# Every document README links to; RUNBOOK.md uncompressed, as alerts point at it and operators read it there.
install -m 0644 README.md docs/RUNBOOK.md docs/PROTOCOL.md docs/BENCHMARKS.md docs/CATALOG.md docs/RELIABILITY.md \
    docs/DANUBE-INTEGRATION.md docs/SCALING.md docs/SECURITY.md docs/TRACING.md docs/CONTAINERS.md "$doc/"
gzip -9n "$doc/BENCHMARKS.md" "$doc/PROTOCOL.md" "$doc/CATALOG.md" "$doc/RELIABILITY.md" "$doc/DANUBE-INTEGRATION.md" \
    "$doc/SCALING.md" "$doc/SECURITY.md" "$doc/TRACING.md" "$doc/CONTAINERS.md"
# README's Documentation section lists what is installed here: every document it names must be.
for named in $(sed -n '/^## Documentation/,/^## /p' README.md | grep -o 'docs/[A-Z-]*\.md' | sort -u); do
    base="$(basename "$named")"
    [ -f "$doc/$base" ] || [ -f "$doc/$base.gz" ] || { echo "build-deb: README names $named, the package lacks it" >&2; exit 1; }
done
# danube-metrics-agent(8): OPTIONS from the binary's own --help, so the two never disagree; NAME, DESCRIPTION, FILES,
# ENVIRONMENT, SIGNALS, EXIT STATUS and SEE ALSO from packaging/debian/danube-metrics-agent.h2m. help2man reads
# GNU-style help, so the wrapper drops ArgumentParser's OVERVIEW paragraph (the include file has the description),
# turns USAGE: into Usage: and opens an Options: section whose subsections are ArgumentParser's option groups.
mkdir "$work/help2man"
cat > "$work/help2man/danube-metrics-agent" <<WRAPPER
#!/bin/sh
if [ "\$1" = --version ]; then exec "$bin/danube-metrics-agent" --version; fi
"$bin/danube-metrics-agent" --help | awk '
    BEGIN { skip = 1 }
    /^USAGE: / { skip = 0; sub(/^USAGE:/, "Usage:"); print; print ""; print "Options:"; next }
    skip { next }
    /^OPTIONS:\$/ { print "GENERAL:"; next }
    { print }'
WRAPPER
chmod +x "$work/help2man/danube-metrics-agent"
help2man --no-info --section 8 --name "metrics sidecar for the Danube broker, serving Prometheus /metrics" \
    --include packaging/debian/danube-metrics-agent.h2m --no-discard-stderr \
    --version-string "$upstream" --output "$work/danube-metrics-agent.8" "$work/help2man/danube-metrics-agent"
install -D -m 0644 "$work/danube-metrics-agent.8" "$root/usr/share/man/man8/danube-metrics-agent.8"
gzip -9n "$root/usr/share/man/man8/danube-metrics-agent.8"
# Dashboards and Prometheus files, to import into Grafana and copy into a Prometheus configuration.
share="$root/usr/share/$package"
install -D -m 0644 -t "$share/grafana" packaging/grafana/*.json
install -D -m 0644 -t "$share/grafana/provisioning" packaging/grafana/provisioning/*.yaml
install -D -m 0644 -t "$share/prometheus" packaging/prometheus/*.yml
install -D -m 0644 -t "$share/prometheus/tests" packaging/prometheus/tests/*.yml
printf '%s (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- Danube maintainers <maintainers@danube.invalid>  %s\n' \
    "$package" "$version" "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}")" \
    | gzip -9n > "$doc/changelog.Debian.gz"

# Runtime dependencies with the versions the binary's symbols need (GLIBC_2.35, GLIBCXX_..., libsystemd's),
# as dpkg-shlibdeps computes them from the shlibs/symbols files of the libraries it links.
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$package" "$package" > "$work/shlibs/debian/control"
depends="$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/bin/danube-metrics-agent" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$depends" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

install -d "$root/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "packaging/debian/$script" "$root/DEBIAN/$script"; done
echo "/etc/default/$package" > "$root/DEBIAN/conffiles"
cat > "$root/DEBIAN/control" <<CONTROL
Package: $package
Version: $version
Architecture: $arch
Maintainer: Danube maintainers <maintainers@danube.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends, systemd
Section: net
Priority: optional
Homepage: https://github.com/danube-messaging/danube-metrics-agent
Description: metrics sidecar for the Danube broker, serving Prometheus /metrics
 Emitters in the Danube broker and WAL writer record counters, gauges and
 histograms into per-thread cells and push compact binary deltas over a Unix
 socket; the agent aggregates them and serves Prometheus text and OpenMetrics.
 Runs as a socket-activated systemd service with a watchdog and logs to
 journald.
CONTROL

mkdir -p dist
deb="dist/${package}_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$deb" >/dev/null
echo "built $deb"
if command -v lintian >/dev/null 2>&1; then
    lintian --pedantic --tag-display-limit 0 "$deb" || true
    lintian --pedantic --fail-on error,warning,info,pedantic "$deb" >/dev/null \
        || { echo "build-deb: lintian --pedantic found something (above)" >&2; exit 1; }
    echo "lintian --pedantic: nothing found"
fi

#!/usr/bin/env bash
# Installs edgelog as a systemd service on a Debian box, or removes it. Idempotent: running
# it again changes only what differs. See deploy/README.md.
#
#   deploy/install.sh [--binary PATH] [--start | --no-start]
#   deploy/install.sh --uninstall [--purge]
#   deploy/install.sh --root DIR ...        install into DIR (a chroot, an image, a test)
#
# What it does:
#   - apt-get installs the runtime packages (libmosquitto1 zlib1g libzstd1 liblz4-1 libsnappy1v5, and
#     procps for the unit's ExecReload=/bin/kill) when one is missing;
#   - creates the system user and group edgelog (no login, home /var/lib/edgelog);
#   - installs the binary to /usr/bin/edgelog and the unit to
#     /etc/systemd/system/edgelog.service;
#   - installs config/edgelog.toml to /etc/edgelog/edgelog.toml only when there is none
#     (an operator's config is never overwritten: a newer example goes next to it as
#     edgelog.toml.dist);
#   - creates /var/lib/edgelog (edgelog:edgelog, 0750);
#   - reloads systemd and enables the unit when systemd runs; starts it with --start.
#
# With --root DIR every path is under DIR, apt and the running systemd are left alone, the
# user is added with useradd --root when DIR has an /etc/passwd (skipped with a warning
# otherwise), and the unit is enabled with systemctl --root when systemctl exists.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
  cat <<EOF

Options:
  --binary PATH   the edgelog executable to install (default: $repo/.build/release/edgelog)
  --start         start (or restart) edgelog.service after installing
  --no-start      only enable it (the default); print how to start it
  --uninstall     stop and disable the service, remove the binary and the unit; keep
                  /etc/edgelog and /var/lib/edgelog
  --purge         with --uninstall: also remove /etc/edgelog and /var/lib/edgelog (the log!)
  --root DIR      install into DIR instead of / (alias: --prefix)
  -h, --help      this text
EOF
}

binary="$repo/.build/release/edgelog"
root=""
action=install
start=no
purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#*=}; shift ;;
    --root | --prefix) root=${2:?$1 needs a directory}; shift 2 ;;
    --root=* | --prefix=*) root=${1#*=}; shift ;;
    --start) start=yes; shift ;;
    --no-start) start=no; shift ;;
    --uninstall) action=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

say() { echo "edgelog install: $*"; }
warn() { echo "edgelog install: warning: $*" >&2; }
die() { echo "edgelog install: error: $*" >&2; exit 1; }

if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root is not a directory"
  root=$(cd "$root" && pwd)
  [ "$root" = / ] && root=""
fi
[ "$purge" = yes ] && [ "$action" != uninstall ] && die "--purge only goes with --uninstall"

is_root_user=no
[ "$(id -u)" -eq 0 ] && is_root_user=yes
if [ -z "$root" ] && [ "$is_root_user" = no ]; then
  die "run as root (sudo), or use --root DIR"
fi

user=edgelog
group=edgelog
bin_path=/usr/bin/edgelog
unit_path=/etc/systemd/system/edgelog.service
config_dir=/etc/edgelog
config_path=$config_dir/edgelog.toml
data_dir=/var/lib/edgelog
runtime_packages=(libmosquitto1 zlib1g libzstd1 liblz4-1 libsnappy1v5 procps)

# Whether the systemd to talk to is running (never for --root).
systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }

# The uid and gid of edgelog in the target system's own passwd and group files (a --root's
# users are not the host's), empty when there is none.
lookup_id() { # file name
  if [ -f "$1" ]; then
    awk -F: -v name="$2" '$1 == name { print $3; exit }' "$1"
  fi
}
user_id() { lookup_id "$root/etc/passwd" "$user"; }
group_id() { lookup_id "$root/etc/group" "$group"; }

# install(1) with an owner only when we may set one; the file is replaced by a rename so a
# running binary is never written in place. Prints whether it changed.
put_file() { # mode owner-uid owner-gid source destination
  local mode=$1 uid=$2 gid=$3 source=$4 destination=$5
  local owner=()
  [ "$is_root_user" = yes ] && [ -n "$uid" ] && [ -n "$gid" ] && owner=(-o "$uid" -g "$gid")
  if [ -f "$destination" ] && cmp -s "$source" "$destination"; then
    chmod "$mode" "$destination"
    [ ${#owner[@]} -gt 0 ] && chown "$uid:$gid" "$destination"
    say "unchanged ${destination#"$root"}"
    return 0
  fi
  install -D -m "$mode" "${owner[@]}" "$source" "$destination.new.$$"
  mv -f "$destination.new.$$" "$destination"
  say "installed ${destination#"$root"}"
}

put_dir() { # mode owner-uid owner-gid directory
  local mode=$1 uid=$2 gid=$3 directory=$4
  mkdir -p "$directory"
  chmod "$mode" "$directory"
  if [ "$is_root_user" = yes ] && [ -n "$uid" ] && [ -n "$gid" ]; then
    chown "$uid:$gid" "$directory"
  fi
}

install_packages() {
  if [ -n "$root" ]; then
    say "--root: not installing Debian packages; the target needs: ${runtime_packages[*]}"
    return 0
  fi
  if ! command -v dpkg-query >/dev/null; then
    warn "not a Debian system: make sure these libraries are installed: ${runtime_packages[*]}"
    return 0
  fi
  local missing=() package
  for package in "${runtime_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "runtime packages present: ${runtime_packages[*]}"
    return 0
  fi
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

create_user() {
  local nologin=/usr/sbin/nologin
  if [ -z "$root" ]; then
    getent group "$group" >/dev/null || { groupadd --system "$group"; say "created group $group"; }
    if ! getent passwd "$user" >/dev/null; then
      useradd --system --gid "$group" --home-dir "$data_dir" --no-create-home \
        --shell "$nologin" --comment "edgelog daemon" "$user"
      say "created user $user"
    fi
    return 0
  fi
  if [ ! -f "$root/etc/passwd" ] || [ ! -f "$root/etc/group" ]; then
    warn "$root has no /etc/passwd or /etc/group: not creating user $user; files stay owned by $(id -un)"
    return 0
  fi
  if [ "$is_root_user" = no ]; then
    warn "not root: not creating user $user in $root"
    return 0
  fi
  if [ -z "$(group_id)" ]; then
    groupadd --root "$root" --system "$group"
    say "created group $group in $root"
  fi
  if [ -z "$(user_id)" ]; then
    useradd --root "$root" --system --gid "$group" --home-dir "$data_dir" --no-create-home \
      --shell "$nologin" --comment "edgelog daemon" "$user"
    say "created user $user in $root"
  fi
}

install_config() {
  local shipped=$repo/config/edgelog.toml gid
  gid=$(group_id)
  # The config may hold passwords: readable by root and the edgelog group only.
  put_dir 0755 0 0 "$root$config_dir"
  if [ ! -e "$root$config_path" ]; then
    put_file 0640 0 "$gid" "$shipped" "$root$config_path"
  elif cmp -s "$shipped" "$root$config_path"; then
    say "unchanged $config_path"
  else
    say "keeping the existing $config_path (yours)"
    put_file 0640 0 "$gid" "$shipped" "$root$config_path.dist"
    say "the example that came with this version is $config_path.dist; compare with diff"
  fi
}

enable_unit() {
  if [ -n "$root" ]; then
    if command -v systemctl >/dev/null; then
      systemctl --root="$root" --quiet enable edgelog.service
      say "enabled edgelog.service in $root"
    else
      warn "no systemctl: enable edgelog.service inside $root yourself"
    fi
    return 0
  fi
  if ! systemd_running; then
    warn "systemd is not running here: not enabling or starting edgelog.service"
    say "on a systemd system: systemctl daemon-reload && systemctl enable --now edgelog"
    return 0
  fi
  systemctl daemon-reload
  systemctl --quiet enable edgelog.service
  say "enabled edgelog.service (starts at boot)"
  if [ "$start" = yes ]; then
    systemctl restart edgelog.service
    say "started: systemctl status edgelog; journalctl -u edgelog -f"
  elif systemctl --quiet is-active edgelog.service; then
    say "edgelog is running the old binary: systemctl restart edgelog"
  else
    say "start it with: systemctl start edgelog   (logs: journalctl -u edgelog -f)"
  fi
}

do_install() {
  if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then
    die "no executable at $binary (build it with: swift build -c release --static-swift-stdlib, or pass --binary PATH)"
  fi
  [ -f "$repo/systemd/edgelog.service" ] || die "missing $repo/systemd/edgelog.service"
  [ -f "$repo/config/edgelog.toml" ] || die "missing $repo/config/edgelog.toml"

  install_packages
  create_user
  put_file 0755 0 0 "$binary" "$root$bin_path"
  put_file 0644 0 0 "$repo/systemd/edgelog.service" "$root$unit_path"
  install_config
  put_dir 0750 "$(user_id)" "$(group_id)" "$root$data_dir"
  if [ -n "$(user_id)" ] && [ "$is_root_user" = yes ]; then
    say "data directory $data_dir (0750, $user:$group)"
  else
    say "data directory $data_dir (0750, owner unchanged: no user $user to give it to)"
  fi
  enable_unit
}

do_uninstall() {
  if [ -n "$root" ]; then
    if command -v systemctl >/dev/null && [ -e "$root$unit_path" ]; then
      systemctl --root="$root" --quiet disable edgelog.service || true
    fi
  elif systemd_running; then
    if systemctl --quiet is-enabled edgelog.service 2>/dev/null \
      || systemctl --quiet is-active edgelog.service 2>/dev/null; then
      systemctl --quiet disable --now edgelog.service || true
      say "stopped and disabled edgelog.service"
    fi
  fi
  local path
  for path in "$bin_path" "$unit_path"; do
    if [ -e "$root$path" ]; then
      rm -f "$root$path"
      say "removed $path"
    fi
  done
  systemd_running && systemctl daemon-reload
  if [ "$purge" = yes ]; then
    rm -rf "$root$config_dir" "$root$data_dir"
    say "purged $config_dir and $data_dir"
    say "the system user $user is kept (files elsewhere may still belong to it): userdel $user"
  else
    say "kept $config_dir and $data_dir (remove them with --uninstall --purge)"
  fi
}

case "$action" in
  install) do_install ;;
  uninstall) do_uninstall ;;
esac

# ensure_apt_packages PACKAGE...: installs the Debian packages that are missing (as root, or
# through sudo), and nothing when all are there.
ensure_apt_packages() {
  local missing=() package sudo=""
  for package in "$@"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# What building windlass needs beyond cargo: librdkafka (built by the rdkafka crate) links
# OpenSSL and zlib.
BUILD_PACKAGES=(libssl-dev zlib1g-dev pkg-config)

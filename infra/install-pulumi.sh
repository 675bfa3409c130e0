#!/usr/bin/env bash
# Install the Pulumi CLI and resource plugins pinned in versions.env (CodeBuild install phase).
# Every download must succeed: a refused or failed download stops the build with a message
# naming the URL, instead of leaving Pulumi to fetch plugins ad hoc during a run.
set -euo pipefail

infra_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${infra_dir}/versions.env"
: "${PULUMI_VERSION:?missing in versions.env}"
: "${PULUMI_AWS_PLUGIN_VERSION:?missing in versions.env}"
: "${PULUMI_AWSX_PLUGIN_VERSION:?missing in versions.env}"

install_root="${PULUMI_INSTALL_ROOT:-/opt/pulumi-v${PULUMI_VERSION}}"
bin_dir="${PULUMI_BIN_DIR:-/usr/local/bin}"
release="https://github.com/pulumi/pulumi/releases/download/v${PULUMI_VERSION}"
archive="pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz"
# NOTE: asset names follow the Pulumi GitHub releases; the checksum file name
# (pulumi-<version>-checksums.txt) was not checked against a live release from here.
checksums="pulumi-${PULUMI_VERSION}-checksums.txt"
workdir="$(mktemp -d)"
trap 'rm -rf "${workdir}"' EXIT

download() {
  local url="$1" target="$2"
  if ! curl -fsSL --retry 3 --retry-delay 5 -o "${target}" "${url}"; then
    echo "error: download of ${url} failed or was refused; the build cannot install the" \
      "pinned Pulumi CLI v${PULUMI_VERSION}. Check network access to github.com." >&2
    exit 1
  fi
}

echo "Installing Pulumi CLI v${PULUMI_VERSION} into ${install_root}"
download "${release}/${archive}" "${workdir}/${archive}"
download "${release}/${checksums}" "${workdir}/${checksums}"
(cd "${workdir}" && grep " ${archive}\$" "${checksums}" | sha256sum --check --strict -)

mkdir -p "${install_root}"
tar -xzf "${workdir}/${archive}" -C "${install_root}" --strip-components=1
for binary in "${install_root}"/pulumi*; do
  ln -sf "${binary}" "${bin_dir}/$(basename "${binary}")"
done

installed="$(pulumi version)"
if [[ "${installed}" != "v${PULUMI_VERSION}" ]]; then
  echo "error: pulumi on PATH is ${installed}, expected v${PULUMI_VERSION}" >&2
  exit 1
fi

install_plugin() {
  local name="$1" version="$2"
  echo "Installing Pulumi resource plugin ${name} v${version}"
  if ! pulumi plugin install resource "${name}" "v${version}" --exact; then
    echo "error: installing Pulumi plugin ${name} v${version} failed (download refused or" \
      "unavailable); the build stops instead of letting pulumi fetch plugins ad hoc." >&2
    exit 1
  fi
}
install_plugin aws "${PULUMI_AWS_PLUGIN_VERSION}"
install_plugin awsx "${PULUMI_AWSX_PLUGIN_VERSION}"

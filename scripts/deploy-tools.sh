#!/usr/bin/env bash
# Installs the validators of deploy/ into the git-ignored .cache/tools (idempotent, quiet
# when everything is there) and prints nothing else on success:
#
#   .cache/tools/bin/kubeconform        `go install` from the Go module proxy (pinned)
#   .cache/tools/k8s-schemas/vX-local-strict/*.json
#                                       Kubernetes JSON schemas, offline: taken from the
#                                       `kubernetes-validate` wheel on PyPI (pinned), which
#                                       ships them generated from the API's OpenAPI spec
#   docker-compose                      Debian's package (Compose file validation; its
#                                       `config` needs no Docker engine)
#
# kubeconform normally downloads schemas from GitHub at run time; this machine, CI and the
# developers' machines reach only package registries, so the schemas come from a package.
# Their cross-file `$ref`s point at "/api/_definitions.json" under an https `$id`; they are
# rewritten to the sibling file so kubeconform resolves them from disk.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.7.0}"
K8S_SCHEMAS_PACKAGE="${K8S_SCHEMAS_PACKAGE:-kubernetes-validate==1.37.0}"
# The Kubernetes version deploy/k8s is validated against (kubeconform -kubernetes-version).
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.33.0}"

TOOLS="$PWD/.cache/tools"
mkdir -p "$TOOLS/bin"

say() { echo "deploy-tools: $*" >&2; }
die() { echo "deploy-tools: $*" >&2; exit 1; }

# ── kubeconform ───────────────────────────────────────────────────────────────
stamp="$TOOLS/bin/.kubeconform-$KUBECONFORM_VERSION"
if [ ! -x "$TOOLS/bin/kubeconform" ] || [ ! -f "$stamp" ]; then
  command -v go >/dev/null 2>&1 || die "'go' is required to install kubeconform (go install github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION)"
  say "installing kubeconform $KUBECONFORM_VERSION (go install)"
  GOBIN="$TOOLS/bin" GOFLAGS=-buildvcs=false go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" \
    || die "go install of kubeconform $KUBECONFORM_VERSION failed"
  rm -f "$TOOLS/bin"/.kubeconform-*
  touch "$stamp"
fi

# ── Kubernetes JSON schemas ───────────────────────────────────────────────────
schemas="$TOOLS/k8s-schemas/v$KUBERNETES_VERSION-local-strict"
pkg_stamp="$TOOLS/k8s-schemas/.from-${K8S_SCHEMAS_PACKAGE//[^A-Za-z0-9._-]/_}-v$KUBERNETES_VERSION"
if [ ! -f "$pkg_stamp" ] || [ ! -f "$schemas/deployment-apps-v1.json" ]; then
  command -v python3 >/dev/null 2>&1 || die "'python3' (with pip) is required to fetch the Kubernetes schemas ($K8S_SCHEMAS_PACKAGE from PyPI)"
  say "fetching Kubernetes $KUBERNETES_VERSION JSON schemas ($K8S_SCHEMAS_PACKAGE from PyPI)"
  dl="$TOOLS/downloads"
  mkdir -p "$dl"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: -d "$dl" "$K8S_SCHEMAS_PACKAGE" \
    || die "pip download $K8S_SCHEMAS_PACKAGE failed"
  wheels=("$dl"/kubernetes_validate-"${K8S_SCHEMAS_PACKAGE#*==}"-*.whl)
  wheel="${wheels[0]}"
  [ -f "$wheel" ] || die "pip download left no wheel of $K8S_SCHEMAS_PACKAGE in $dl"
  rm -rf "$TOOLS/k8s-schemas"
  python3 - "$wheel" "$KUBERNETES_VERSION" "$schemas" <<'PY' || die "could not extract the schemas from $wheel"
import json, os, sys, zipfile
wheel, version, out = sys.argv[1:]
prefix = f"kubernetes_validate/kubernetes-json-schema/v{version}-local-strict/"
os.makedirs(out, exist_ok=True)
n = 0
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if not (name.startswith(prefix) and name.endswith(".json")):
            continue
        doc = json.loads(z.read(name))
        if isinstance(doc, dict):
            doc.pop("$id", None)  # resolve refs against the file, not kubernetes.io
        text = json.dumps(doc).replace('"/api/_definitions.json#', '"_definitions.json#')
        with open(os.path.join(out, name[len(prefix):]), "w") as f:
            f.write(text)
        n += 1
if n == 0:
    sys.exit(f"no schemas for Kubernetes v{version} in {wheel}")
PY
  touch "$pkg_stamp"
fi

# ── docker-compose (Compose file validator) ───────────────────────────────────
if ! command -v docker-compose >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || die "docker-compose is missing and apt-get is not available to install it"
  say "installing docker-compose (apt-get)"
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  $sudo_ apt-get install -y --no-install-recommends docker-compose >/dev/null 2>&1 \
    || { $sudo_ apt-get update -qq >/dev/null && $sudo_ apt-get install -y --no-install-recommends docker-compose >/dev/null; } \
    || die "apt-get install docker-compose failed"
fi

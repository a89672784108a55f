#!/usr/bin/env bash
# Validates deploy/ with real tools (installed by scripts/deploy-tools.sh into .cache/tools):
#   - the Kubernetes manifests with kubeconform, strictly (unknown fields are errors), against
#     the Kubernetes $KUBERNETES_VERSION schemas; a resource without a schema is an error too;
#   - the Compose file with `docker-compose config` (its Compose-spec schema; no engine needed).
# Usage: deploy/validate.sh [--k8s DIR_OR_FILE]... [--compose FILE]...  (default: deploy/k8s, deploy/compose/compose.yaml)
# Exit 0 when everything is valid; otherwise the tools' messages and a non-zero status.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.33.0}"
export KUBERNETES_VERSION

k8s=()
compose=()
while [ $# -gt 0 ]; do
  case "$1" in
    --k8s) k8s+=("$2"); shift 2 ;;
    --compose) compose+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--k8s PATH]... [--compose FILE]..." >&2; exit 2 ;;
  esac
done
if [ ${#k8s[@]} -eq 0 ] && [ ${#compose[@]} -eq 0 ]; then
  k8s=("$root/deploy/k8s")
  compose=("$root/deploy/compose/compose.yaml")
fi

bash "$root/scripts/deploy-tools.sh"

status=0
if [ ${#k8s[@]} -gt 0 ]; then
  echo "kubeconform (Kubernetes $KUBERNETES_VERSION, strict): ${k8s[*]}"
  "$root/.cache/tools/bin/kubeconform" -strict -summary \
    -kubernetes-version "$KUBERNETES_VERSION" \
    -schema-location "$root/.cache/tools/k8s-schemas/{{ .NormalizedKubernetesVersion }}-local{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    "${k8s[@]}" || status=1
fi
# The Compose file requires the bootstrap admin token from the environment; its value does
# not matter to the schema check.
export QUIRE_BOOTSTRAP_ADMIN_TOKEN="${QUIRE_BOOTSTRAP_ADMIN_TOKEN:-placeholder-for-validation}"
export QUIRE_PUBLISH_HINT_TOKEN="${QUIRE_PUBLISH_HINT_TOKEN:-placeholder-for-validation}"
for f in "${compose[@]}"; do
  echo "docker-compose config: $f"
  if docker-compose -f "$f" config -q; then echo "valid: $f"; else status=1; fi
done
exit $status

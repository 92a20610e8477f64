#!/usr/bin/env bash
# Blue-green cut of the NexySync API on Kubernetes: ops/k8s/switch.sh blue|green [IMAGE]
#
#   1. rolls the target (idle) slot to IMAGE (default: the live slot's image) at the live slot's
#      replica count, and waits until every pod of it is ready (/v1/health/ready);
#   2. patches the Service nexysync-api to select the target slot: new connections, so new
#      requests and new streams, go there at once;
#   3. waits until the Service's endpoints are the target's pods only;
#   4. scales the old slot to 0 and waits for its pods to go: each gets preStop, then SIGTERM,
#      and gunicorn drains it (its streams end, clients resume on the new slot with Last-Event-ID,
#      open requests finish) within terminationGracePeriodSeconds.
# If step 1 fails nothing has moved; run it again, or `switch.sh <old slot>` to go back (the old
# slot's Deployment is kept at 0 with its image, ready to be scaled up again).
#
# Environment: NAMESPACE (default nexysync), KUBECTL (default kubectl), TIMEOUT (default 300s).
set -euo pipefail

target="${1:-}"
image="${2:-}"
case "$target" in
  blue) old=green ;;
  green) old=blue ;;
  *) echo "usage: $0 blue|green [IMAGE]" >&2; exit 2 ;;
esac
ns="${NAMESPACE:-nexysync}"
timeout="${TIMEOUT:-300s}"
kubectl=(${KUBECTL:-kubectl} --namespace "$ns")

live="$("${kubectl[@]}" get service nexysync-api -o jsonpath='{.spec.selector.slot}')"
if [[ "$live" == "$target" && -z "$image" ]]; then
  echo "$target is already live"
  exit 0
fi
if [[ -z "$image" ]]; then
  image="$("${kubectl[@]}" get deployment "nexysync-api-$live" -o jsonpath='{.spec.template.spec.containers[0].image}')"
fi
replicas="$("${kubectl[@]}" get deployment "nexysync-api-$live" -o jsonpath='{.spec.replicas}')"
if [[ -z "$replicas" || "$replicas" -lt 1 ]]; then replicas=2; fi

echo "1/4 rolling nexysync-api-$target to $image with $replicas replicas"
"${kubectl[@]}" set image "deployment/nexysync-api-$target" "api=$image"
"${kubectl[@]}" scale "deployment/nexysync-api-$target" --replicas="$replicas"
"${kubectl[@]}" rollout status "deployment/nexysync-api-$target" --timeout="$timeout"
"${kubectl[@]}" wait pod --selector="app=nexysync-api,slot=$target" --for=condition=Ready --timeout="$timeout"

if [[ "$live" == "$target" ]]; then
  echo "$target was live already: rolled it in place"
  exit 0
fi

echo "2/4 pointing the Service nexysync-api at $target"
"${kubectl[@]}" patch service nexysync-api --type=merge -p "{\"spec\":{\"selector\":{\"slot\":\"$target\"}}}"

echo "3/4 waiting until the Service's endpoints are $target pods only"
want="$("${kubectl[@]}" get pods --selector="app=nexysync-api,slot=$target" -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}' | sort)"
deadline=$((SECONDS + 120))
until [[ "$("${kubectl[@]}" get endpoints nexysync-api -o jsonpath='{range .subsets[*].addresses[*]}{.ip}{"\n"}{end}' | sort)" == "$want" ]]; do
  if ((SECONDS > deadline)); then echo "the endpoints did not follow the selector" >&2; exit 1; fi
  sleep 1
done

echo "4/4 draining nexysync-api-$old (its streams move to $target) and scaling it to 0"
"${kubectl[@]}" scale "deployment/nexysync-api-$old" --replicas=0
"${kubectl[@]}" wait pod --selector="app=nexysync-api,slot=$old" --for=delete --timeout="$timeout"
echo "live: $target ($image); $old is at 0"

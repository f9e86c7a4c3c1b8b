#!/usr/bin/env bash
# The dev overlay as the cluster e2e applies it: the image the job built (loaded into kind, never pulled) and JWT
# authentication with a key pair made here, so that the smoke test signs its own token whatever the overlay sets.
# Usage: render.sh OUT_DIR IMAGE. Writes into OUT_DIR: kustomization.yaml (a wrapper around the dev overlay),
# manifest.yaml (what to apply), token (a bearer token with books:read and books:write, valid for an hour) and
# the key pair. Nothing it writes is committed.
set -euo pipefail

out=${1:?usage: render.sh OUT_DIR IMAGE}
image=${2:?usage: render.sh OUT_DIR IMAGE}
root=$(cd "$(dirname "$0")/../.." && pwd)
issuer=https://cluster-e2e.invalid/
audience=myapp

mkdir -p "$out"
out=$(cd "$out" && pwd)

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$out/key.pem" 2>/dev/null
openssl pkey -in "$out/key.pem" -pubout -out "$out/public.pem"

# RS256, the app's default algorithm: openssl's PKCS #1 v1.5 signature is the JWS signature as it is.
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"%s","aud":"%s","sub":"cluster-e2e","scope":"books:read books:write","iat":%d,"exp":%d}' \
  "$issuer" "$audience" "$now" $((now + 3600)) | b64url)
signature=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$out/key.pem" -binary | b64url)
printf '%s.%s.%s\n' "$header" "$claims" "$signature" >"$out/token"

# A null removes the key: the overlay may point at a JWKS, and the app takes exactly one of the two.
{
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: myapp\ndata:\n'
  printf '  AUTH_MODE: jwt\n'
  printf '  AUTH_JWT_ISSUER: "%s"\n' "$issuer"
  printf '  AUTH_JWT_AUDIENCE: "%s"\n' "$audience"
  printf '  AUTH_JWT_ALGORITHMS: RS256\n'
  printf '  AUTH_JWT_JWKS_URL: null\n'
  printf '  AUTH_JWT_PUBLIC_KEY: |\n'
  sed 's/^/    /' "$out/public.pem"
} >"$out/auth.yaml"

image_patch="
      - op: replace
        path: /spec/template/spec/containers/0/image
        value: $image
      - op: add
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Never"

cat >"$out/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$out" "$root/deploy/k8s/overlays/dev")
patches:
  - target: { kind: ConfigMap, name: myapp }
    path: auth.yaml
  - target: { kind: Deployment, name: myapp }
    patch: |-$image_patch
  - target: { kind: Job }
    patch: |-$image_patch
EOF

kubectl kustomize "$out" >"$out/manifest.yaml"

#!/usr/bin/env bash
# Create, read, update, list and delete a book through the API, as a client does; any unexpected status fails.
# Usage: smoke.sh BASE_URL [TOKEN_FILE]. With a token, a write without it must first be refused with 401.
set -euo pipefail

base=${1:?usage: smoke.sh BASE_URL [TOKEN_FILE]}
token_file=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
auth=()
[ -z "$token_file" ] || auth=(-H "authorization: Bearer $(cat "$token_file")")

# request EXPECTED_STATUS METHOD PATH [curl arguments...]: the body lands in $work/body, the headers in $work/headers.
request() {
  local expected=$1 method=$2 path=$3
  shift 3
  local status
  status=$(curl -sS -o "$work/body" -D "$work/headers" -w '%{http_code}' -X "$method" "$@" "$base$path")
  if [ "$status" != "$expected" ]; then
    echo "smoke: $method $path answered $status, expected $expected:" >&2
    cat "$work/body" >&2
    echo >&2
    exit 1
  fi
  echo "smoke: $method $path $status"
}
header() { sed -n "s/^$1: *//Ip" "$work/headers" | tr -d '\r' | head -n 1; }
body_has() {
  grep -qF -- "$1" "$work/body" || {
    echo "smoke: the body lacks $1:" >&2
    cat "$work/body" >&2
    echo >&2
    exit 1
  }
}
json=(-H 'content-type: application/json')
book='{"title":"Cluster Smoke","author":"Kind Cluster","published_date":"2026-01-02"}'

request 200 GET /readyz
[ ${#auth[@]} -eq 0 ] || request 401 POST /v1/books "${json[@]}" -d "$book"

request 201 POST /v1/books "${auth[@]}" "${json[@]}" -d "$book"
location=$(header location)
# Location may be absolute (behind a proxy it names the public host); the path is what this client uses.
case $location in
  http://* | https://*) path=/${location#*://*/} ;;
  *) path=$location ;;
esac
id=${path##*/}
[ -n "$id" ] || {
  echo "smoke: no Location on 201" >&2
  exit 1
}

request 200 GET "$path" "${auth[@]}"
body_has "\"id\":\"$id\""
body_has '"status":"pending"'
etag=$(header etag)

request 200 PUT "$path" "${auth[@]}" "${json[@]}" -H "if-match: $etag" \
  -d '{"title":"Cluster Smoke, revised","author":"Kind Cluster","published_date":"2026-01-02"}'
body_has '"title":"Cluster Smoke, revised"'
etag=$(header etag)

request 200 GET '/v1/books?author=kind%20cluster' "${auth[@]}"
body_has "\"id\":\"$id\""

request 204 DELETE "$path" "${auth[@]}" -H "if-match: $etag"
request 404 GET "$path" "${auth[@]}"
echo "smoke: create, read, update, list and delete passed against $base"

#!/usr/bin/env bash
# update_report_status.sh moves one report to a new status (seed 000 v4's script):
#   update_report_status.sh <userID> <reportID> <new-status>
# It sends PUT /v4/report?user_id=<userID> with {"id":"<reportID>","status":"<new-status>"}
# to http://$HOST:$PORT (defaults 127.0.0.1:3000), prints what it sends and the answer.
# A sidecar bound off loopback wants a token of that user: set HERALD_TOKEN=<jwt>.
# Exit status: 0 done; 1 refused by the server (409 transition not allowed, 404 unknown
# report, 400 bad input, ...) with the server's error message on stderr; 2 usage;
# 3 the server cannot be reached.
set -uo pipefail

usage() {
	echo "usage: $(basename "$0") <userID> <reportID> <new-status>" >&2
	echo "  statuses: pending queued processing completed failed canceled" >&2
	echo "  server: http://\${HOST:-127.0.0.1}:\${PORT:-3000} (HOST, PORT); token: HERALD_TOKEN" >&2
	exit 2
}
[ $# -eq 3 ] || usage
case "$1" in -h|--help) usage ;; esac

HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-3000}"
case "$HOST" in *:*) hostpart="[$HOST]" ;; *) hostpart="$HOST" ;; esac
BASE="http://$hostpart:$PORT"

# json_string prints $1 as a JSON string literal. Quotes, backslashes and control
# characters are escaped, so an argument can never change the shape of the body.
json_string() {
	local s="$1" out="" c i code
	for ((i = 0; i < ${#s}; i++)); do
		c="${s:i:1}"
		case "$c" in
			'"') out+='\"' ;;
			'\') out+='\\' ;;
			$'\n') out+='\n' ;;
			$'\r') out+='\r' ;;
			$'\t') out+='\t' ;;
			*)
				printf -v code '%d' "'$c" 2>/dev/null || code=32
				if [ "$code" -ge 0 ] && [ "$code" -lt 32 ] || [ "$code" = 127 ]; then
					printf -v c '\\u%04x' "$code"
				fi
				out+="$c" ;;
		esac
	done
	printf '"%s"' "$out"
}

user="$1" report="$2" status="$3"
body="{\"id\":$(json_string "$report"),\"status\":$(json_string "$status")}"

echo "-> PUT $BASE/v4/report?user_id=$user"
echo "   $body"

response_file="$(mktemp)" curl_err="$(mktemp)" headers_file="$(mktemp)"
trap 'rm -f "$response_file" "$curl_err" "$headers_file"' EXIT
echo 'content-type: application/json' >"$headers_file"
# the token goes through a file, not the command line (ps would show it)
[ -n "${HERALD_TOKEN:-}" ] && printf 'authorization: Bearer %s\n' "$HERALD_TOKEN" >>"$headers_file"
http_code="$(curl -sS -o "$response_file" -w '%{http_code}' --max-time 10 \
	-X PUT --url "$BASE/v4/report" --url-query "user_id=$user" \
	-H "@$headers_file" --data-binary "$body" 2>"$curl_err")"
rc=$?
if [ $rc -ne 0 ]; then
	err="$(cat "$curl_err")"
	echo "error: cannot reach the server at $BASE: ${err#curl: }" >&2
	exit 3
fi
answer="$(cat "$response_file")"
echo "<- $http_code"
echo "   $answer"

case "$http_code" in
	2??) exit 0 ;;
esac
message="$answer"
if command -v jq >/dev/null 2>&1; then
	message="$(jq -r '.error // empty' <<<"$answer" 2>/dev/null)" || message=""
	[ -n "$message" ] || message="$answer"
fi
echo "error: the server refused the change ($http_code): $message" >&2
exit 1

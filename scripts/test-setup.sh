#!/usr/bin/env bash
# What `npm test` needs beyond npm (run by its pretest, so the README's test
# command works on a fresh machine, and CI runs this same step):
# - Debian's chromium (browser end-to-end tests), openssl (the TLS test's
#   certificate) and curl, and the Python client's python3-grpcio,
#   python3-protobuf, protobuf-compiler, protobuf-compiler-grpc and
#   libprotobuf-dev (its tests and `npm run generate:python`): installed when
#   missing, if apt-get is at hand and we are root; otherwise the script says
#   what to install;
# - the machine's Redis and Postgres on 127.0.0.1: started when down, with the
#   same commands the machine uses.
set -euo pipefail

missing=()
for tool in chromium openssl curl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
# The Python client runs on Debian's python3 and its packages (not a pyenv python on PATH).
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1; then
  missing+=(python3-grpcio python3-protobuf)
fi
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null 2>&1 || missing+=(protobuf-compiler-grpc)
# protoc's well-known types (google/protobuf/*.proto): a Recommends of protobuf-compiler, which
# an install without recommends leaves out.
[ -f /usr/include/google/protobuf/descriptor.proto ] || missing+=(libprotobuf-dev)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-setup: installing Debian packages the tests use: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    # A mirror or the dpkg lock can fail once; try a few times before giving up.
    for attempt in 1 2 3; do
      if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        break
      fi
      [ "$attempt" = 3 ] && { echo "test-setup: apt-get could not install ${missing[*]}" >&2; exit 1; }
      echo "test-setup: apt-get failed (attempt $attempt); retrying in 10 s" >&2
      sleep 10
    done
  else
    echo "test-setup: the tests need ${missing[*]}: install them (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "test-setup: starting Redis on 127.0.0.1:6379" >&2
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no >/dev/null
fi
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  echo "test-setup: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
fi

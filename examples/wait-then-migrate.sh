#!/bin/sh
# Run database migrations once the database accepts connections, telling a
# timeout apart from a broken invocation by portpatrol's exit code.
set -u

portpatrol --timeout="${WAIT_TIMEOUT:-60s}" --log-level=warn \
  --tcp.db.address="${DATABASE_ADDR:-localhost:5432}"
status=$?

case $status in
  0) ;;
  1) echo "the database did not accept connections within ${WAIT_TIMEOUT:-60s}" >&2; exit 1 ;;
  129|130|143) echo "interrupted" >&2; exit "$status" ;; # SIGHUP, SIGINT, SIGTERM
  *) echo "portpatrol could not start (exit $status); check its flags" >&2; exit 2 ;;
esac

exec ./migrate up

#!/bin/sh
# Writes rabbitmq.conf from the environment, then runs the broker in the foreground.
# default_user/default_pass are applied by the broker only when its database is new:
# the user is created on the first start and left alone afterwards.
set -eu
user=${RABBITMQ_DEFAULT_USER:-guest}
pass=${RABBITMQ_DEFAULT_PASS:-guest}
case "$user$pass" in *'
'*) echo "RABBITMQ_DEFAULT_USER/PASS must be one line" >&2; exit 2 ;; esac
{
  echo "listeners.tcp.default = 5672"
  echo "management.tcp.port = 15672"
  echo "default_user = $user"
  echo "default_pass = $pass"
  # the official image's choice: guest may log in from anywhere only if it is the
  # default user the operator asked for
  if [ "$user" = guest ]; then echo "loopback_users = none"; fi
} > /etc/rabbitmq/rabbitmq.conf
if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then  # a cluster: one cookie for every node
  umask 077
  # the package made one at build time, read-only (0400): replace it, do not write into it
  rm -f "$HOME/.erlang.cookie"
  printf '%s' "$RABBITMQ_ERLANG_COOKIE" > "$HOME/.erlang.cookie"
  unset RABBITMQ_ERLANG_COOKIE
fi
exec "$@"
